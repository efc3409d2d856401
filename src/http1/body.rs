//! Message body framing: Content-Length, chunked (RFC 9112 §7.1) and close-delimited.
//!
//! [`BodyDecoder`] is a sans-IO state machine. Each [`BodyDecoder::decode`] call looks at the
//! bytes the caller has buffered and returns a [`Step`]: how many bytes it consumed, which of
//! them (a range of the input) are payload, and whether the message is complete. It never
//! copies payload, so a relay can forward raw framing bytes while a tap reads the payload.
//!
//! The chunked parser is strict where leniency enables smuggling: chunk-size lines and the
//! CRLF after chunk data must end in CRLF (a bare LF is an error), sizes are hex without
//! sign or whitespace, sizes overflowing u64 are errors, and chunk extensions and trailers
//! are bounded ([`MAX_CHUNK_LINE_BYTES`], [`MAX_TRAILER_BYTES`]). Extensions and trailer fields
//! are skipped, never interpreted.

use std::ops::Range;

use super::{MAX_CHUNK_LINE_BYTES, MAX_TRAILER_BYTES};

/// How a message body is delimited, decided from its head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (no framing fields, `Content-Length: 0`, HEAD, 1xx/204/304).
    #[default]
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Response body delimited by the peer closing the connection.
    Close,
}

/// Why a body was refused. The connection cannot be reused after any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("invalid chunk size line")]
    InvalidChunkSize,
    #[error("chunk data not followed by CRLF")]
    MissingChunkCrlf,
    #[error("chunk size line longer than {MAX_CHUNK_LINE_BYTES} bytes")]
    ChunkLineTooLong,
    #[error("chunked trailer section larger than {MAX_TRAILER_BYTES} bytes")]
    TrailerTooLarge,
    #[error("body larger than {0} bytes")]
    TooLarge(u64),
    #[error("connection closed before the body was complete")]
    Truncated,
}

/// The result of one [`BodyDecoder::decode`] call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Bytes of the input this step consumed (framing and payload). Zero and `!done` means
    /// more input is needed.
    pub consumed: usize,
    /// The payload bytes within the consumed prefix (possibly empty).
    pub data: Range<usize>,
    /// The message body is complete; bytes after `consumed` belong to the next message.
    pub done: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Fixed length, this many bytes left.
    Length(u64),
    /// Until the peer closes.
    Close,
    /// At the start of a chunk-size line; `digits` seen so far and their value.
    Size {
        value: u64,
        digits: u8,
    },
    /// After the size digits: optional whitespace and extensions until CR. `line` counts
    /// bytes of the size line for the limit.
    SizeRest {
        value: u64,
        line: usize,
    },
    /// Saw CR at the end of the size line, expect LF.
    SizeLf {
        value: u64,
    },
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expect the CR after chunk data.
    DataCr,
    /// Expect the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final CRLF). `total` counts trailer bytes.
    TrailerStart {
        total: usize,
    },
    /// Inside a trailer field line.
    TrailerLine {
        total: usize,
    },
    /// Saw CR ending a trailer field line.
    TrailerLineLf {
        total: usize,
    },
    /// Saw CR of the final empty line.
    EndLf,
    Done,
}

/// Incremental body decoder. One per message; cheap to construct.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
    /// Payload bytes decoded so far.
    decoded: u64,
    max_body_bytes: u64,
}

impl BodyDecoder {
    /// A decoder for `kind`, refusing payloads over `max_body_bytes`.
    pub fn new(kind: BodyKind, max_body_bytes: u64) -> Result<Self, BodyError> {
        let state = match kind {
            BodyKind::Empty => State::Done,
            BodyKind::Length(n) if n > max_body_bytes => {
                return Err(BodyError::TooLarge(max_body_bytes));
            }
            BodyKind::Length(n) => State::Length(n),
            BodyKind::Chunked => State::Size {
                value: 0,
                digits: 0,
            },
            BodyKind::Close => State::Close,
        };
        Ok(BodyDecoder {
            state,
            decoded: 0,
            max_body_bytes,
        })
    }

    /// True once the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// The peer closed the connection: fine for a close-delimited body, otherwise truncation.
    pub fn finish_eof(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::Close | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(BodyError::Truncated),
        }
    }

    /// Decodes from the start of `buf`. Returns at most one payload range per call; call
    /// again with `&buf[step.consumed..]` while `step.consumed > 0 && !step.done`.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Step, BodyError> {
        let mut pos = 0usize;
        loop {
            match self.state {
                State::Done => {
                    return Ok(Step {
                        consumed: pos,
                        data: pos..pos,
                        done: true,
                    });
                }
                State::Length(left) => {
                    let n = left.min((buf.len() - pos) as u64) as usize;
                    let data = pos..pos + n;
                    self.decoded += n as u64;
                    self.state = if left == n as u64 {
                        State::Done
                    } else {
                        State::Length(left - n as u64)
                    };
                    let done = self.state == State::Done;
                    return Ok(Step {
                        consumed: pos + n,
                        data,
                        done,
                    });
                }
                State::Close => {
                    let n = buf.len() - pos;
                    self.decoded += n as u64;
                    if self.decoded > self.max_body_bytes {
                        return Err(BodyError::TooLarge(self.max_body_bytes));
                    }
                    return Ok(Step {
                        consumed: buf.len(),
                        data: pos..buf.len(),
                        done: false,
                    });
                }
                State::Data(left) => {
                    let n = left.min((buf.len() - pos) as u64) as usize;
                    if n == 0 {
                        return Ok(Step {
                            consumed: pos,
                            data: pos..pos,
                            done: false,
                        });
                    }
                    self.decoded += n as u64;
                    self.state = if left == n as u64 {
                        State::DataCr
                    } else {
                        State::Data(left - n as u64)
                    };
                    return Ok(Step {
                        consumed: pos + n,
                        data: pos..pos + n,
                        done: false,
                    });
                }
                _ => {}
            }
            // Byte-at-a-time states (framing lines): short, bounded.
            let Some(&b) = buf.get(pos) else {
                return Ok(Step {
                    consumed: pos,
                    data: pos..pos,
                    done: false,
                });
            };
            pos += 1;
            self.state = match self.state {
                State::Size { value, digits } => match hex_value(b) {
                    Some(d) => {
                        if digits >= 16 {
                            return Err(BodyError::InvalidChunkSize);
                        }
                        State::Size {
                            value: (value << 4) | u64::from(d),
                            digits: digits + 1,
                        }
                    }
                    None if digits == 0 => return Err(BodyError::InvalidChunkSize),
                    None => match b {
                        b'\r' => State::SizeLf { value },
                        b';' | b' ' | b'\t' => State::SizeRest {
                            value,
                            line: usize::from(digits) + 1,
                        },
                        _ => return Err(BodyError::InvalidChunkSize),
                    },
                },
                State::SizeRest { value, line } => {
                    if line >= MAX_CHUNK_LINE_BYTES {
                        return Err(BodyError::ChunkLineTooLong);
                    }
                    match b {
                        b'\r' => State::SizeLf { value },
                        b'\n' => return Err(BodyError::InvalidChunkSize),
                        // Extensions are visible ASCII, spaces and tabs; refuse control bytes.
                        0..=8 | 10..=31 | 127 => return Err(BodyError::InvalidChunkSize),
                        _ => State::SizeRest {
                            value,
                            line: line + 1,
                        },
                    }
                }
                State::SizeLf { value } => {
                    if b != b'\n' {
                        return Err(BodyError::InvalidChunkSize);
                    }
                    if value == 0 {
                        State::TrailerStart { total: 0 }
                    } else {
                        if self.decoded.saturating_add(value) > self.max_body_bytes {
                            return Err(BodyError::TooLarge(self.max_body_bytes));
                        }
                        State::Data(value)
                    }
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BodyError::MissingChunkCrlf);
                    }
                    State::DataLf
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BodyError::MissingChunkCrlf);
                    }
                    State::Size {
                        value: 0,
                        digits: 0,
                    }
                }
                State::TrailerStart { total } => match b {
                    b'\r' => State::EndLf,
                    b'\n' => return Err(BodyError::MissingChunkCrlf),
                    _ => State::TrailerLine { total: total + 1 },
                },
                State::TrailerLine { total } => {
                    if total >= MAX_TRAILER_BYTES {
                        return Err(BodyError::TrailerTooLarge);
                    }
                    match b {
                        b'\r' => State::TrailerLineLf { total: total + 1 },
                        b'\n' | 0 => return Err(BodyError::MissingChunkCrlf),
                        _ => State::TrailerLine { total: total + 1 },
                    }
                }
                State::TrailerLineLf { total } => {
                    if b != b'\n' {
                        return Err(BodyError::MissingChunkCrlf);
                    }
                    State::TrailerStart { total: total + 1 }
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(BodyError::MissingChunkCrlf);
                    }
                    State::Done
                }
                s @ (State::Length(_) | State::Close | State::Data(_) | State::Done) => s,
            };
        }
    }
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces cut at `cuts`, the way bytes arrive from a socket, keeping
    /// unconsumed bytes like a real read buffer. Returns (payload, done, leftover).
    fn run(
        kind: BodyKind,
        input: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, bool, Vec<u8>), BodyError> {
        let mut d = BodyDecoder::new(kind, 1 << 20)?;
        let mut buffered: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut bounds = cuts.to_vec();
        bounds.push(input.len());
        let mut prev = 0;
        for &b in &bounds {
            buffered.extend_from_slice(&input[prev..b]);
            prev = b;
            loop {
                let step = d.decode(&buffered)?;
                out.extend_from_slice(&buffered[step.data.clone()]);
                buffered.drain(..step.consumed);
                if step.done {
                    buffered.extend_from_slice(&input[prev..]);
                    return Ok((out, true, buffered));
                }
                if step.consumed == 0 {
                    break;
                }
            }
        }
        Ok((out, false, buffered))
    }

    const CHUNKED: &[u8] =
        b"5\r\nhello\r\n1;ext=\"v\"\r\n \r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";

    #[test]
    fn chunked_every_split_point() {
        let want = b"hello 0123456789".to_vec();
        for cut in 0..=CHUNKED.len() {
            let (out, done, left) = run(BodyKind::Chunked, CHUNKED, &[cut]).unwrap();
            assert_eq!(
                (out.as_slice(), done, left.as_slice()),
                (&want[..], true, &b"NEXT"[..]),
                "cut {cut}"
            );
        }
        // and byte by byte
        let cuts: Vec<usize> = (1..CHUNKED.len()).collect();
        let (out, done, _) = run(BodyKind::Chunked, CHUNKED, &cuts).unwrap();
        assert_eq!((out, done), (want, true));
    }

    #[test]
    fn length_every_split_point_and_pipelined_rest() {
        let input = b"0123456789GET /";
        for cut in 0..=input.len() {
            let (out, done, left) = run(BodyKind::Length(10), input, &[cut]).unwrap();
            assert_eq!(
                (out.as_slice(), done, left.as_slice()),
                (&b"0123456789"[..], true, &b"GET /"[..])
            );
        }
    }

    #[test]
    fn close_delimited_needs_eof() {
        let (out, done, _) = run(BodyKind::Close, b"abc", &[1]).unwrap();
        assert_eq!((out.as_slice(), done), (&b"abc"[..], false));
        let mut d = BodyDecoder::new(BodyKind::Close, 10).unwrap();
        d.decode(b"abc").unwrap();
        assert!(d.finish_eof().is_ok() && d.is_done());
        let mut d = BodyDecoder::new(BodyKind::Length(5), 10).unwrap();
        d.decode(b"abc").unwrap();
        assert_eq!(d.finish_eof(), Err(BodyError::Truncated));
    }

    #[test]
    fn malformed_chunked_is_refused() {
        let cases: &[(&[u8], BodyError)] = &[
            (b"\r\n", BodyError::InvalidChunkSize),
            (b"g\r\n", BodyError::InvalidChunkSize),
            (b"-1\r\n", BodyError::InvalidChunkSize),
            (b"5\nhello\r\n", BodyError::InvalidChunkSize),
            (b"5\r\nhelloXX", BodyError::MissingChunkCrlf),
            (b"5\r\nhello\n0\r\n\r\n", BodyError::MissingChunkCrlf),
            (b"11111111111111111\r\n", BodyError::InvalidChunkSize),
            (b"0\r\nX: 1\n\r\n", BodyError::MissingChunkCrlf),
            (b"1;a\x01\r\n", BodyError::InvalidChunkSize),
        ];
        for (input, want) in cases {
            assert_eq!(
                run(BodyKind::Chunked, input, &[]).unwrap_err(),
                *want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn limits() {
        assert_eq!(
            BodyDecoder::new(BodyKind::Length(11), 10).unwrap_err(),
            BodyError::TooLarge(10)
        );
        let mut d = BodyDecoder::new(BodyKind::Chunked, 10).unwrap();
        assert_eq!(d.decode(b"b\r\n").unwrap_err(), BodyError::TooLarge(10));
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE_BYTES));
        assert_eq!(
            run(BodyKind::Chunked, &long, &[]).unwrap_err(),
            BodyError::ChunkLineTooLong
        );
        let mut trailer = b"0\r\nX: ".to_vec();
        trailer.extend(std::iter::repeat_n(b'a', MAX_TRAILER_BYTES));
        assert_eq!(
            run(BodyKind::Chunked, &trailer, &[]).unwrap_err(),
            BodyError::TrailerTooLarge
        );
        let mut d = BodyDecoder::new(BodyKind::Close, 4).unwrap();
        assert_eq!(d.decode(b"12345").unwrap_err(), BodyError::TooLarge(4));
    }
}
