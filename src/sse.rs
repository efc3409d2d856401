//! Incremental server-sent-events scanner (WHATWG HTML §9.2.6 "event stream interpretation").
//!
//! [`SseScanner::feed`] takes the stream in whatever pieces the network delivers and calls
//! back once per dispatched event with an [`SseEvent`] that borrows the event's fields. It is
//! sans-IO and tap-shaped: the relay keeps forwarding the original bytes; the scanner only
//! looks at them.
//!
//! Copying: line ends are found with `memchr2`. When an event's single `data:` line lies
//! wholly inside the piece being fed (the common case for provider streams), `data` borrows
//! that piece — no copy. Only bytes of an event that straddles two pieces, or multi-line data,
//! are copied into the scanner's reused buffers, bounded by `max_event_bytes`.
//!
//! Rules implemented: lines end in CRLF, LF or CR (a CR at the end of one piece and an LF at
//! the start of the next are one line end); a blank line dispatches; `:` starts a comment;
//! `field: value` strips one leading space from the value; `data` lines are joined with `\n`;
//! `event`, `id` (ignored if it contains NUL) and `retry` (digits only) are recorded; unknown
//! fields are ignored.
//!
//! Two deliberate differences from a browser, both for a gateway's benefit: an event is
//! dispatched when it had *any* field (a browser drops events with empty data), so that a
//! relay can account for every frame; and [`SseScanner::finish`] hands out an unterminated
//! final event (flagged `terminated: false`) instead of silently dropping it, so that usage in
//! a stream that lost its last blank line is still seen. A leading byte-order mark is not
//! stripped (no provider sends one).

pub mod eventstream;

/// Default bound on the bytes of one event (its data plus any partial line being built).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event. Borrowed: valid only inside the callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field; empty when absent (the type is then `message`).
    pub event: &'a [u8],
    /// The `data:` lines joined with `\n` (empty when the event had no data line).
    pub data: &'a [u8],
    pub id: Option<&'a [u8]>,
    pub retry: Option<u64>,
    /// Offset in the piece just fed at which this event's terminating blank line ends, i.e.
    /// where the next event's bytes start. For an event flushed by `finish`, 0.
    pub end: usize,
    /// False only for an event flushed at end of stream without its blank line.
    pub terminated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("server-sent event larger than {0} bytes")]
    EventTooLarge(usize),
    /// A binary event-stream message that fails its checks ([`eventstream`]).
    #[error("event-stream message refused: {0}")]
    Corrupt(&'static str),
}

/// Where the current line lives.
#[derive(Clone, Copy)]
enum Line {
    /// `chunk[start..end]`
    InChunk(usize, usize),
    /// The carried-over `partial` buffer.
    Carried,
}

/// Incremental event-stream scanner. One per stream; `reset` to reuse.
#[derive(Debug)]
pub struct SseScanner {
    /// An incomplete line carried over from the previous piece.
    partial: Vec<u8>,
    /// Data of the current event, when it could not be borrowed.
    data: Vec<u8>,
    /// Data of the current event borrowed from the current piece: `(start, end)`.
    data_in_chunk: Option<(usize, usize)>,
    data_lines: u32,
    event: Vec<u8>,
    id: Vec<u8>,
    has_id: bool,
    retry: Option<u64>,
    has_field: bool,
    /// The previous piece ended in CR: an LF at the start of the next piece belongs to it.
    skip_lf: bool,
    max_event_bytes: usize,
    events: u64,
    /// The stream is AWS's binary event stream, not SSE: fed to `decoder`.
    binary: bool,
    decoder: eventstream::EventStreamDecoder,
}

impl Default for SseScanner {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseScanner {
    pub fn new(max_event_bytes: usize) -> Self {
        SseScanner {
            partial: Vec::new(),
            data: Vec::new(),
            data_in_chunk: None,
            data_lines: 0,
            event: Vec::new(),
            id: Vec::new(),
            has_id: false,
            retry: None,
            has_field: false,
            skip_lf: false,
            max_event_bytes,
            events: 0,
            binary: false,
            decoder: eventstream::EventStreamDecoder::new(max_event_bytes),
        }
    }

    /// Reads the stream as AWS's binary event stream (Bedrock) instead of SSE, until `reset`:
    /// each message is handed out as an event named by its type.
    pub fn set_binary(&mut self) {
        self.binary = true;
    }

    /// Forget all state (keeps buffer capacity) to scan a new stream.
    pub fn reset(&mut self) {
        self.binary = false;
        self.decoder.reset();
        self.partial.clear();
        self.clear_event();
        self.skip_lf = false;
        self.events = 0;
    }

    /// Events dispatched so far.
    pub fn events(&self) -> u64 {
        if self.binary {
            return self.decoder.messages();
        }
        self.events
    }

    /// True when bytes of an undispatched event are pending.
    pub fn has_pending(&self) -> bool {
        if self.binary {
            return self.decoder.has_pending();
        }
        self.has_field || !self.partial.is_empty()
    }

    /// Scans the next piece of the stream, calling `on_event` for each event it completes.
    pub fn feed<F>(&mut self, chunk: &[u8], mut on_event: F) -> Result<(), SseError>
    where
        F: FnMut(&SseEvent<'_>),
    {
        if self.binary {
            return self.decoder.feed(chunk, on_event);
        }
        let mut pos = 0;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if chunk[0] == b'\n' {
                pos = 1;
            }
        }
        let result = self.scan(chunk, pos, &mut on_event);
        // The borrow of `chunk` ends here: keep borrowed data for the next piece.
        self.own_data(chunk);
        result
    }

    fn scan<F>(&mut self, chunk: &[u8], mut pos: usize, on_event: &mut F) -> Result<(), SseError>
    where
        F: FnMut(&SseEvent<'_>),
    {
        while pos < chunk.len() {
            let Some(i) = memchr::memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.partial.extend_from_slice(&chunk[pos..]);
                return self.check_size();
            };
            let eol = pos + i;
            let mut next = eol + 1;
            if chunk[eol] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if self.partial.is_empty() {
                self.line(chunk, Line::InChunk(pos, eol), next, on_event)?;
            } else {
                self.partial.extend_from_slice(&chunk[pos..eol]);
                self.check_size()?;
                let r = self.line(chunk, Line::Carried, next, on_event);
                self.partial.clear();
                r?;
            }
            pos = next;
        }
        Ok(())
    }

    /// End of stream: completes a pending line and hands out a pending event with
    /// `terminated: false`. Returns whether such an event was dispatched.
    pub fn finish<F>(&mut self, mut on_event: F) -> bool
    where
        F: FnMut(&SseEvent<'_>),
    {
        if self.binary {
            // An incomplete binary message is nothing: it cannot be read.
            return false;
        }
        if !self.partial.is_empty() {
            // Cannot fail: the partial line was size-checked as it grew.
            let _ = self.line(&[], Line::Carried, 0, &mut on_event);
            self.partial.clear();
        }
        self.skip_lf = false;
        if !self.has_field {
            return false;
        }
        self.dispatch(&[], 0, false, &mut on_event);
        true
    }

    fn check_size(&self) -> Result<(), SseError> {
        let borrowed = self.data_in_chunk.map_or(0, |(s, e)| e - s);
        if self.partial.len() + self.data.len() + borrowed > self.max_event_bytes {
            return Err(SseError::EventTooLarge(self.max_event_bytes));
        }
        Ok(())
    }

    fn own_data(&mut self, chunk: &[u8]) {
        if let Some((s, e)) = self.data_in_chunk.take() {
            self.data.extend_from_slice(&chunk[s..e]);
        }
    }

    fn line<F>(
        &mut self,
        chunk: &[u8],
        loc: Line,
        end: usize,
        on_event: &mut F,
    ) -> Result<(), SseError>
    where
        F: FnMut(&SseEvent<'_>),
    {
        let partial = std::mem::take(&mut self.partial);
        let (line, base) = match loc {
            Line::InChunk(s, e) => (&chunk[s..e], Some(s)),
            Line::Carried => (&partial[..], None),
        };
        if line.is_empty() {
            if self.has_field {
                self.dispatch(chunk, end, true, on_event);
            }
        } else if line[0] != b':' {
            let (name, value, value_at) = match memchr::memchr(b':', line) {
                Some(c) => {
                    let v = c + 1 + usize::from(line.get(c + 1) == Some(&b' '));
                    (&line[..c], &line[v..], v)
                }
                None => (line, &line[line.len()..], line.len()),
            };
            self.has_field = true;
            match name {
                b"data" => {
                    if self.data_lines == 0 && self.data.is_empty() && base.is_some() {
                        let s = base.unwrap_or(0) + value_at;
                        self.data_in_chunk = Some((s, s + value.len()));
                    } else {
                        self.own_data(chunk);
                        if self.data_lines > 0 {
                            self.data.push(b'\n');
                        }
                        self.data.extend_from_slice(value);
                    }
                    self.data_lines += 1;
                    if let Err(e) = self.check_size() {
                        self.partial = partial;
                        return Err(e);
                    }
                }
                b"event" => {
                    self.event.clear();
                    self.event.extend_from_slice(value);
                }
                b"id" if memchr::memchr(0, value).is_none() => {
                    self.id.clear();
                    self.id.extend_from_slice(value);
                    self.has_id = true;
                }
                b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                    self.retry = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
                }
                _ => {}
            }
        }
        self.partial = partial;
        Ok(())
    }

    fn dispatch<F>(&mut self, chunk: &[u8], end: usize, terminated: bool, on_event: &mut F)
    where
        F: FnMut(&SseEvent<'_>),
    {
        let data = match self.data_in_chunk {
            Some((s, e)) => &chunk[s..e],
            None => &self.data[..],
        };
        self.events += 1;
        on_event(&SseEvent {
            event: &self.event,
            data,
            id: self.has_id.then_some(&self.id[..]),
            retry: self.retry,
            end,
            terminated,
        });
        self.clear_event();
    }

    fn clear_event(&mut self) {
        self.data.clear();
        self.data_in_chunk = None;
        self.data_lines = 0;
        self.event.clear();
        self.id.clear();
        self.has_id = false;
        self.retry = None;
        self.has_field = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq, Clone)]
    struct Owned {
        event: Vec<u8>,
        data: Vec<u8>,
        id: Option<Vec<u8>>,
        retry: Option<u64>,
        terminated: bool,
    }

    fn scan_pieces(pieces: &[&[u8]]) -> Vec<Owned> {
        let mut s = SseScanner::default();
        let mut out = Vec::new();
        let mut push = |e: &SseEvent<'_>| {
            out.push(Owned {
                event: e.event.to_vec(),
                data: e.data.to_vec(),
                id: e.id.map(<[u8]>::to_vec),
                retry: e.retry,
                terminated: e.terminated,
            })
        };
        for p in pieces {
            s.feed(p, &mut push).unwrap();
        }
        s.finish(&mut push);
        out
    }

    /// The same input split at every offset (and at every pair of offsets for short inputs)
    /// must scan to the same events.
    fn assert_split_invariant(input: &[u8]) -> Vec<Owned> {
        let whole = scan_pieces(&[input]);
        for i in 0..=input.len() {
            assert_eq!(
                scan_pieces(&[&input[..i], &input[i..]]),
                whole,
                "split at {i}"
            );
        }
        if input.len() <= 200 {
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let got = scan_pieces(&[&input[..i], &input[i..j], &input[j..]]);
                    assert_eq!(got, whole, "split at {i},{j}");
                }
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(scan_pieces(&bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn line_endings_fields_comments() {
        let input = b": comment\r\nevent: a\r\ndata: 1\r\ndata:2\r\nid: x\r\nretry: 15\r\n\r\ndata: b\rdata: c\r\rdata: d\n\ndata\n\nevent: only\n\n";
        let ev = assert_split_invariant(input);
        assert_eq!(ev.len(), 5);
        assert_eq!(
            (ev[0].event.as_slice(), ev[0].data.as_slice()),
            (&b"a"[..], &b"1\n2"[..])
        );
        assert_eq!(
            (ev[0].id.as_deref(), ev[0].retry),
            (Some(&b"x"[..]), Some(15))
        );
        assert_eq!(ev[1].data, b"b\nc");
        assert_eq!(ev[2].data, b"d");
        assert_eq!(ev[3].data, b"");
        assert_eq!(
            (ev[4].event.as_slice(), ev[4].data.as_slice()),
            (&b"only"[..], &b""[..])
        );
        assert!(ev.iter().all(|e| e.terminated));
    }

    #[test]
    fn final_event_without_blank_line_is_flushed_unterminated() {
        let ev = assert_split_invariant(b"data: 1\n\ndata: {\"usage\":1}");
        assert_eq!(ev.len(), 2);
        assert_eq!(
            (ev[1].data.as_slice(), ev[1].terminated),
            (&b"{\"usage\":1}"[..], false)
        );
        let ev = assert_split_invariant(b"data: 1\n\ndata: 2\n");
        assert_eq!(
            (ev[1].data.as_slice(), ev[1].terminated),
            (&b"2"[..], false)
        );
    }

    #[test]
    fn end_offsets_point_past_the_blank_line() {
        let input = b"data: a\n\ndata: b\r\n\r\nrest";
        let mut s = SseScanner::default();
        let mut ends = Vec::new();
        s.feed(input, |e| ends.push(e.end)).unwrap();
        assert_eq!(ends, vec![9, 20]);
        assert_eq!(&input[20..], b"rest");
    }

    #[test]
    fn single_data_line_in_one_piece_is_borrowed() {
        let input = b"data: hello\n\n";
        let mut s = SseScanner::default();
        let mut ptr = None;
        s.feed(input, |e| ptr = Some(e.data.as_ptr())).unwrap();
        assert_eq!(ptr, Some(input[6..].as_ptr()));
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut s = SseScanner::new(16);
        let err = s.feed(b"data: 0123456789abcdefXYZ", |_| {}).unwrap_err();
        assert_eq!(err, SseError::EventTooLarge(16));
        let mut s = SseScanner::new(16);
        s.feed(b"data: 0123456789\n", |_| {}).unwrap();
        assert!(s.feed(b"data: 0123456789\n", |_| {}).is_err());
    }
}
