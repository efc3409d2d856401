//! Converse streams (AWS's event stream, decoded by [`crate::sse::eventstream`] into events
//! named by `:event-type`) ⇄ normalised events.
//!
//! | event | normalised |
//! | --- | --- |
//! | `messageStart` | start (Bedrock streams carry no id or model) |
//! | `contentBlockStart` with `start.toolUse` (`toolUseId`, `name`) | a tool call (numbered in order) |
//! | `contentBlockDelta`: `delta.text` / `delta.toolUse.input` | text / tool arguments |
//! | `messageStop` (`stopReason`) | finish, said with the end (below) |
//! | `metadata` (`usage`) | end |
//! | an exception message (`throttlingException`, `modelStreamErrorException`, …) | error |
//!
//! The finish is held until `metadata`: a stream cut between the two lost its usage, and a
//! client must not be told it ended whole.
//!
//! The writer writes the same messages, binary-framed, text blocks without a
//! `contentBlockStart` (as Bedrock does), each block closed by `contentBlockStop`, usage in
//! the final `metadata`.

use super::answer::{finish_from, stop_reason, write_usage};
use crate::dialect::norm::{Event, Finish, safe_raw, str_member, uint_member, value_member};
use crate::json;
use crate::json::scan::minify_into;
use crate::sse::SseEvent;
use crate::sse::eventstream::{encode_event, encode_exception, is_error_message};
use crate::usage::Observed;

/// Reads one stream's events into normalised events.
#[derive(Debug, Default)]
pub struct Reader {
    /// `contentBlockIndex` of each tool call read so far (its place is its index).
    calls: Vec<u64>,
    /// `messageStop`'s reason, said with the end: the stream is whole only once its
    /// `metadata` (the usage) arrived.
    stop: Option<Finish>,
}

impl Reader {
    pub fn read<'a>(&mut self, e: &SseEvent<'a>, emit: &mut impl FnMut(Event<'a>)) {
        let data = e.data;
        match e.event {
            b"contentBlockDelta" => {
                let Some(delta) = value_member(data, b"delta") else {
                    return;
                };
                if let Some(t) = str_member(delta, b"text").filter(|t| !t.is_empty()) {
                    emit(Event::Text(t));
                } else if let Some(raw) =
                    value_member(delta, b"toolUse").and_then(|t| str_member(t, b"input"))
                {
                    let at = uint_member(data, b"contentBlockIndex");
                    if let Some(index) = self.calls.iter().position(|&b| Some(b) == at) {
                        emit(Event::ToolArgs {
                            index: index as u64,
                            raw,
                        });
                    }
                }
            }
            b"contentBlockStart" => {
                let Some(tool) =
                    value_member(data, b"start").and_then(|s| value_member(s, b"toolUse"))
                else {
                    return;
                };
                let index = self.calls.len() as u64;
                self.calls
                    .push(uint_member(data, b"contentBlockIndex").unwrap_or(u64::MAX));
                emit(Event::ToolCall {
                    index,
                    id: str_member(tool, b"toolUseId").filter(|i| safe_raw(i)),
                    name: str_member(tool, b"name").unwrap_or_default(),
                    args: None,
                });
            }
            b"messageStart" => emit(Event::Start {
                id: b"",
                model: b"",
            }),
            b"messageStop" => {
                self.stop = Some(finish_from(
                    str_member(data, b"stopReason").unwrap_or(b"end_turn"),
                ));
            }
            b"metadata" => {
                if let Some(f) = self.stop.take() {
                    emit(Event::Finish(f));
                }
                emit(Event::End);
            }
            ev if is_error_message(ev) => emit(Event::Error {
                message: str_member(data, b"message")
                    .or_else(|| str_member(data, b"Message"))
                    .unwrap_or(b"the provider reported an error"),
                kind: ev,
            }),
            _ => {}
        }
    }
}

// --------------------------------------------------------------------------------- writer

/// The Bedrock exception a stream error is written as: its own name when it is one, else the
/// nearest (rate limits throttle, overloads are unavailability, the rest a model error).
fn exception_name(kind: &[u8]) -> &[u8] {
    let has = |w: &[u8]| memchr::memmem::find(kind, w).is_some();
    if kind.ends_with(b"Exception") && safe_raw(kind) {
        kind
    } else if has(b"rate") || has(b"RESOURCE_EXHAUSTED") {
        b"throttlingException"
    } else if has(b"overload") || has(b"unavailable") || has(b"UNAVAILABLE") {
        b"serviceUnavailableException"
    } else {
        b"modelStreamErrorException"
    }
}

/// Writes one stream's normalised events as Converse stream messages.
#[derive(Debug, Default)]
pub struct Writer {
    started: bool,
    /// The open content block's index.
    open: Option<u64>,
    /// The next block's index.
    next: u64,
    /// The block of each normalised tool-call index.
    calls: Vec<u64>,
    finish: Option<Finish>,
    stopped: bool,
    ended: bool,
    buf: Vec<u8>,
}

impl Writer {
    /// Whether the answer has said why it ended.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    fn emit(&mut self, out: &mut Vec<u8>, event: &[u8]) {
        encode_event(out, event, &self.buf);
        self.buf.clear();
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !std::mem::replace(&mut self.started, true) {
            self.buf.extend_from_slice(b"{\"role\":\"assistant\"}");
            self.emit(out, b"messageStart");
        }
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(i) = self.open.take() {
            self.buf.extend_from_slice(b"{\"contentBlockIndex\":");
            json::uint(&mut self.buf, i);
            self.buf.push(b'}');
            self.emit(out, b"contentBlockStop");
        }
    }

    fn delta(&mut self, out: &mut Vec<u8>, block: u64, key: &[u8], raw: &[u8]) {
        self.buf.extend_from_slice(b"{\"contentBlockIndex\":");
        json::uint(&mut self.buf, block);
        self.buf.extend_from_slice(b",\"delta\":");
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(raw);
        self.buf
            .extend_from_slice(if key.starts_with(b"{\"toolUse\"") {
                b"\"}}}".as_slice()
            } else {
                b"\"}}"
            });
        self.emit(out, b"contentBlockDelta");
    }

    fn stop(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        self.close_block(out);
        self.buf.extend_from_slice(b"{\"stopReason\":\"");
        self.buf
            .extend_from_slice(stop_reason(self.finish.unwrap_or(Finish::Stop)));
        self.buf.extend_from_slice(b"\"}");
        self.emit(out, b"messageStop");
    }

    pub fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(out);
        match e {
            Event::Start { .. } => {}
            Event::Text(raw) => {
                let block = match self.open {
                    Some(b) if !self.calls.contains(&b) => b,
                    _ => {
                        self.close_block(out);
                        let b = self.next;
                        self.next += 1;
                        self.open = Some(b);
                        b
                    }
                };
                self.delta(out, block, b"{\"text\":\"", raw);
            }
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => {
                self.close_block(out);
                let b = self.next;
                self.next += 1;
                self.open = Some(b);
                let slot = index as usize;
                if self.calls.len() <= slot {
                    self.calls.resize(slot + 1, u64::MAX);
                }
                self.calls[slot] = b;
                self.buf.extend_from_slice(b"{\"contentBlockIndex\":");
                json::uint(&mut self.buf, b);
                self.buf
                    .extend_from_slice(b",\"start\":{\"toolUse\":{\"toolUseId\":\"");
                match id {
                    Some(id) => self.buf.extend_from_slice(id),
                    None => {
                        self.buf.extend_from_slice(b"call_");
                        json::uint(&mut self.buf, index);
                    }
                }
                self.buf.extend_from_slice(b"\",\"name\":\"");
                if safe_raw(name) {
                    self.buf.extend_from_slice(name);
                }
                self.buf.extend_from_slice(b"\"}}}");
                self.emit(out, b"contentBlockStart");
                if let Some(value) = args {
                    let mut min = Vec::with_capacity(value.len());
                    minify_into(&mut min, value);
                    let mut quoted = Vec::with_capacity(min.len() + 8);
                    json::string(&mut quoted, &min);
                    self.delta(
                        out,
                        b,
                        b"{\"toolUse\":{\"input\":\"",
                        &quoted[1..quoted.len() - 1],
                    );
                }
            }
            Event::ToolArgs { index, raw } => {
                if let Some(&b) = self.calls.get(index as usize).filter(|&&b| b != u64::MAX) {
                    self.delta(out, b, b"{\"toolUse\":{\"input\":\"", raw);
                }
            }
            Event::Finish(f) => {
                self.finish = Some(f);
                self.stop(out);
            }
            Event::End => self.end(o, out),
            Event::Error { message, kind } => {
                let mut payload = b"{\"message\":\"".to_vec();
                payload.extend_from_slice(message);
                payload.extend_from_slice(b"\"}");
                let kind = exception_name(kind);
                encode_exception(out, kind, &payload);
                self.ended = true;
            }
        }
    }

    /// `messageStop` (if not yet written) and the final `metadata` with usage, once.
    pub fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(out);
        self.stop(out);
        self.ended = true;
        self.buf.push(b'{');
        write_usage(&mut self.buf, &o.usage);
        self.buf
            .extend_from_slice(b",\"metrics\":{\"latencyMs\":0}}");
        self.emit(out, b"metadata");
    }
}
