//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! `ConverseStream` sends it: an incremental, sans-IO decoder that hands each message out as
//! an [`SseEvent`] (so that metering and translation treat it like any other event stream),
//! and an encoder.
//!
//! A message is: total length (u32, big-endian, the whole message), headers length (u32),
//! a CRC32 of those 8 bytes, the headers, the payload, and a CRC32 of everything before it.
//! A header is a name (u8 length, bytes), a value type (u8) and a value whose size the type
//! fixes (0/1 true/false, 2 byte, 3 short, 4 int, 5 long, 8 timestamp, 9 uuid) or gives
//! (6 bytes, 7 string: u16 length). The decoder checks both CRCs, every length against the
//! bound and the message, and every header; a message that fails is an error naming why,
//! never an event.
//!
//! The event handed out: `event` is the `:event-type` header (for `:message-type: exception`
//! or `error` messages, the `:exception-type` or `:error-code` header, which ends in
//! `Exception`/`Error`... as AWS names them — [`is_error_message`] tells them apart); `data`
//! is the payload. Like the SSE scanner, a message lying wholly inside the piece fed is
//! borrowed from it; one that straddles pieces is gathered in a reused buffer.

use super::{SseError, SseEvent};

/// The bytes of a message's prelude (lengths and their CRC).
const PRELUDE: usize = 12;
/// The smallest message: a prelude and the message CRC.
const MIN_MESSAGE: usize = PRELUDE + 4;

/// Incremental decoder. One per stream; `reset` to reuse.
#[derive(Debug)]
pub struct EventStreamDecoder {
    /// Bytes of a message that straddles pieces.
    held: Vec<u8>,
    max_message_bytes: usize,
    messages: u64,
}

impl EventStreamDecoder {
    pub fn new(max_message_bytes: usize) -> Self {
        EventStreamDecoder {
            held: Vec::new(),
            max_message_bytes,
            messages: 0,
        }
    }

    pub fn reset(&mut self) {
        self.held.clear();
        self.messages = 0;
    }

    /// True when bytes of an incomplete message are pending.
    pub fn has_pending(&self) -> bool {
        !self.held.is_empty()
    }

    /// Messages decoded so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Decodes the next piece, calling `on_event` for each message it completes. An error
    /// leaves the decoder failed: the stream cannot be resynchronised.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), SseError>
    where
        F: FnMut(&SseEvent<'_>),
    {
        let mut pos = 0;
        while pos < chunk.len() {
            if !self.held.is_empty() || chunk.len() - pos < PRELUDE {
                // Gather: first the length, then the rest of the message.
                let want = if self.held.len() < 4 {
                    4
                } else {
                    self.total(&self.held)?
                };
                let take = (want - self.held.len()).min(chunk.len() - pos);
                self.held.extend_from_slice(&chunk[pos..pos + take]);
                pos += take;
                if self.held.len() == 4 {
                    let total = self.total(&self.held)?;
                    self.held.reserve(total - 4);
                    continue;
                }
                if self.held.len() < 4 || self.held.len() < self.total(&self.held)? {
                    continue;
                }
                let held = std::mem::take(&mut self.held);
                let r = self.dispatch(&held, pos, &mut on_event);
                self.held = held;
                self.held.clear();
                r?;
                continue;
            }
            let total = self.total(&chunk[pos..])?;
            if chunk.len() - pos < total {
                self.held.extend_from_slice(&chunk[pos..]);
                return Ok(());
            }
            self.dispatch(&chunk[pos..pos + total], pos + total, &mut on_event)?;
            pos += total;
        }
        Ok(())
    }

    /// The total length a message starting with `b` declares, checked against the bounds.
    fn total(&self, b: &[u8]) -> Result<usize, SseError> {
        let total = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if total > self.max_message_bytes {
            return Err(SseError::EventTooLarge(self.max_message_bytes));
        }
        if total < MIN_MESSAGE {
            return Err(SseError::Corrupt("a message shorter than its framing"));
        }
        Ok(total)
    }

    fn dispatch<F>(&mut self, m: &[u8], end: usize, on_event: &mut F) -> Result<(), SseError>
    where
        F: FnMut(&SseEvent<'_>),
    {
        let message = decode(m)?;
        self.messages += 1;
        on_event(&SseEvent {
            event: message.event,
            data: message.payload,
            id: None,
            retry: None,
            end,
            terminated: true,
        });
        Ok(())
    }
}

/// One decoded message, borrowed.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `:event-type`, or for an exception or error message its type or code.
    pub event: &'a [u8],
    /// `:message-type` (`event`, `exception`, `error`).
    pub message_type: &'a [u8],
    pub payload: &'a [u8],
}

/// True for an event handed out for an `exception` or `error` message.
pub fn is_error_message(event: &[u8]) -> bool {
    event.ends_with(b"Exception") || event.ends_with(b"Error") || event.ends_with(b"error")
}

/// Decodes one whole message (`m` is exactly its bytes).
pub fn decode(m: &[u8]) -> Result<Message<'_>, SseError> {
    if m.len() < MIN_MESSAGE {
        return Err(SseError::Corrupt("a message shorter than its framing"));
    }
    let be32 = |at: usize| u32::from_be_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]]);
    if be32(0) as usize != m.len() {
        return Err(SseError::Corrupt(
            "a message whose length disagrees with its prelude",
        ));
    }
    if crc32fast::hash(&m[..8]) != be32(8) {
        return Err(SseError::Corrupt("a prelude whose CRC does not match"));
    }
    let crc_at = m.len() - 4;
    if crc32fast::hash(&m[..crc_at]) != be32(crc_at) {
        return Err(SseError::Corrupt("a message whose CRC does not match"));
    }
    let headers_len = be32(4) as usize;
    if headers_len > crc_at - PRELUDE {
        return Err(SseError::Corrupt("headers longer than the message"));
    }
    let headers = &m[PRELUDE..PRELUDE + headers_len];
    let payload = &m[PRELUDE + headers_len..crc_at];
    let (mut event_type, mut message_type, mut exception) = (None, None, None);
    let mut at = 0;
    while at < headers.len() {
        let bad = SseError::Corrupt("a header cut short");
        let name_len = usize::from(headers[at]);
        let name = headers.get(at + 1..at + 1 + name_len).ok_or(bad)?;
        at += 1 + name_len;
        let kind = *headers.get(at).ok_or(bad)?;
        at += 1;
        let size = match kind {
            0 | 1 => 0,
            2 => 1,
            3 => 2,
            4 => 4,
            5 | 8 => 8,
            9 => 16,
            6 | 7 => {
                let l = headers.get(at..at + 2).ok_or(bad)?;
                at += 2;
                usize::from(u16::from_be_bytes([l[0], l[1]]))
            }
            _ => return Err(SseError::Corrupt("a header of an unknown type")),
        };
        let value = headers.get(at..at + size).ok_or(bad)?;
        at += size;
        if kind == 7 {
            match name {
                b":event-type" => event_type = Some(value),
                b":message-type" => message_type = Some(value),
                b":exception-type" | b":error-code" => exception = Some(value),
                _ => {}
            }
        }
    }
    let message_type = message_type.unwrap_or(b"event");
    let event = match message_type {
        b"event" => event_type.unwrap_or_default(),
        _ => exception.unwrap_or(b"internalServerException"),
    };
    Ok(Message {
        event,
        message_type,
        payload,
    })
}

/// Appends one message: string headers `headers` (name, value) and `payload`.
pub fn encode(out: &mut Vec<u8>, headers: &[(&[u8], &[u8])], payload: &[u8]) {
    let start = out.len();
    let headers_len: usize = headers.iter().map(|(n, v)| 1 + n.len() + 3 + v.len()).sum();
    let total = PRELUDE + headers_len + payload.len() + 4;
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[start..start + 8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.push(7);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Appends an event message of type `event` with a JSON payload.
pub fn encode_event(out: &mut Vec<u8>, event: &[u8], payload: &[u8]) {
    encode(
        out,
        &[
            (b":event-type", event),
            (b":content-type", b"application/json"),
            (b":message-type", b"event"),
        ],
        payload,
    );
}

/// Appends an exception message (`throttlingException`, `modelStreamErrorException`, …).
pub fn encode_exception(out: &mut Vec<u8>, exception: &[u8], payload: &[u8]) {
    encode(
        out,
        &[
            (b":exception-type", exception),
            (b":content-type", b"application/json"),
            (b":message-type", b"exception"),
        ],
        payload,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        encode_event(&mut s, b"messageStart", br#"{"role":"assistant"}"#);
        encode_event(
            &mut s,
            b"contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hello"}}"#,
        );
        encode_event(&mut s, b"messageStop", br#"{"stopReason":"end_turn"}"#);
        encode_exception(
            &mut s,
            b"throttlingException",
            br#"{"message":"slow down"}"#,
        );
        s
    }

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<(String, String, usize)>, SseError> {
        let mut d = EventStreamDecoder::new(1 << 20);
        let mut got = Vec::new();
        for p in pieces {
            d.feed(p, |e| {
                got.push((
                    String::from_utf8_lossy(e.event).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                    e.end,
                ))
            })?;
        }
        assert!(!d.has_pending());
        Ok(got)
    }

    #[test]
    fn every_split_point_decodes_the_same_messages() {
        let s = stream();
        let whole = decode_all(&[&s]).unwrap();
        let names: Vec<&str> = whole.iter().map(|(e, _, _)| e.as_str()).collect();
        assert_eq!(
            names,
            [
                "messageStart",
                "contentBlockDelta",
                "messageStop",
                "throttlingException"
            ]
        );
        assert_eq!(
            whole[1].1,
            r#"{"contentBlockIndex":0,"delta":{"text":"Hello"}}"#
        );
        assert!(is_error_message(whole[3].0.as_bytes()));
        assert!(!is_error_message(whole[2].0.as_bytes()));
        // `end` marks where each message ends in the piece fed.
        assert_eq!(whole.last().unwrap().2, s.len());
        for cut in 0..=s.len() {
            let got = decode_all(&[&s[..cut], &s[cut..]]).unwrap();
            let strip = |v: &[(String, String, usize)]| {
                v.iter()
                    .map(|(e, d, _)| (e.clone(), d.clone()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&got), strip(&whole), "split at {cut}");
        }
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(decode_all(&bytes).unwrap().len(), 4);
    }

    #[test]
    fn corrupt_and_oversized_messages_are_refused_with_a_reason() {
        let s = stream();
        // A flipped payload byte: the message CRC.
        let mut bad = s.clone();
        bad[30] ^= 1;
        assert_eq!(
            decode_all(&[&bad]),
            Err(SseError::Corrupt("a message whose CRC does not match"))
        );
        // A flipped length byte: the prelude CRC.
        let mut bad = s.clone();
        bad[5] ^= 1;
        assert_eq!(
            decode_all(&[&bad]),
            Err(SseError::Corrupt("a prelude whose CRC does not match"))
        );
        // A length over the bound.
        let mut d = EventStreamDecoder::new(64);
        let mut big = Vec::new();
        encode_event(&mut big, b"contentBlockDelta", &[b'a'; 100]);
        assert_eq!(d.feed(&big, |_| {}), Err(SseError::EventTooLarge(64)));
        // Headers that run past the message, re-checksummed so only the lengths are wrong.
        let mut m = Vec::new();
        encode_event(&mut m, b"x", b"{}");
        m[7] = 200;
        let crc = crc32fast::hash(&m[..8]).to_be_bytes();
        m[8..12].copy_from_slice(&crc);
        let n = m.len();
        let crc = crc32fast::hash(&m[..n - 4]).to_be_bytes();
        m[n - 4..].copy_from_slice(&crc);
        assert_eq!(
            decode_all(&[&m]),
            Err(SseError::Corrupt("headers longer than the message"))
        );
        // Too short to be a message.
        assert_eq!(
            decode_all(&[&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]]),
            Err(SseError::Corrupt("a message shorter than its framing"))
        );
    }
}
