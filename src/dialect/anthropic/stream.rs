//! Messages streams ⇄ normalised events ([`crate::dialect::norm::Event`]).
//!
//! | event | normalised |
//! | --- | --- |
//! | `message_start` (`message.id`, `message.model`) | `Start` |
//! | `content_block_start` text (non-empty) / `text_delta` | `Text` |
//! | `content_block_start` tool_use (`id`, `name`) | `ToolCall` (index = the tool blocks counted from 0) |
//! | `input_json_delta` | `ToolArgs` |
//! | `message_delta` (`end_turn`, `stop_sequence`, `max_tokens`, `tool_use`, `refusal`, …) | `Finish` |
//! | `message_stop` | `End` |
//! | `error` | `Error` |
//!
//! Thinking blocks and signatures are not read: no other dialect's answer carries them.
//!
//! The writer opens a text block for text (closing a tool block), one `tool_use` block per
//! call, streams `text_delta` / `input_json_delta` into them, and ends with
//! [`anthropic_end`]: the open block's stop, `message_delta` (the stop reason, usage) and
//! `message_stop`.

use crate::dialect::norm::{Event, Finish, safe_raw, str_member, uint_member, value_member};
use crate::json;
use crate::sse::SseEvent;
use crate::usage::{Observed, Usage};

/// `stop_reason` → normalised.
pub fn finish_from(stop_reason: &[u8]) -> Finish {
    match stop_reason {
        b"max_tokens" | b"model_context_window_exceeded" => Finish::Length,
        b"tool_use" => Finish::ToolCalls,
        b"refusal" => Finish::ContentFilter,
        // end_turn, stop_sequence, pause_turn
        _ => Finish::Stop,
    }
}

/// Normalised → `stop_reason`.
pub fn stop_reason(f: Finish) -> &'static [u8] {
    match f {
        Finish::Stop => b"end_turn",
        Finish::Length => b"max_tokens",
        Finish::ToolCalls => b"tool_use",
        Finish::ContentFilter => b"refusal",
    }
}

/// `"usage":{…}` (`input_tokens` is the uncached part).
pub fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    let uncached = u
        .input_tokens
        .saturating_sub(u.cache_read_tokens + u.cache_creation_tokens);
    out.extend_from_slice(b"\"usage\":{\"input_tokens\":");
    json::uint(out, uncached);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    json::uint(out, u.cache_creation_tokens);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    json::uint(out, u.cache_read_tokens);
    out.extend_from_slice(b",\"output_tokens\":");
    json::uint(out, u.output_tokens);
    out.push(b'}');
}

/// An event's `type` when the SSE `event:` field is missing.
fn kind<'a>(e: &SseEvent<'a>) -> &'a [u8] {
    if e.event.is_empty() {
        str_member(e.data, b"type").unwrap_or_default()
    } else {
        e.event
    }
}

// --------------------------------------------------------------------------------- reader

/// Reads one stream's events into normalised ones.
#[derive(Debug, Default)]
pub struct Reader {
    /// The block index of each tool call, in order: position = the call's index.
    tools: Vec<u64>,
}

impl Reader {
    pub fn read<'a>(&mut self, e: &SseEvent<'a>, emit: &mut impl FnMut(Event<'a>)) {
        let data = e.data;
        match kind(e) {
            b"message_start" => {
                let msg = value_member(data, b"message").unwrap_or_default();
                emit(Event::Start {
                    id: str_member(msg, b"id").unwrap_or_default(),
                    model: str_member(msg, b"model").unwrap_or_default(),
                });
            }
            b"content_block_start" => {
                let index = uint_member(data, b"index").unwrap_or(0);
                let block = value_member(data, b"content_block").unwrap_or_default();
                match str_member(block, b"type") {
                    Some(b"tool_use") => {
                        let k = self.tools.len() as u64;
                        self.tools.push(index);
                        emit(Event::ToolCall {
                            index: k,
                            id: Some(str_member(block, b"id").unwrap_or_default()),
                            name: str_member(block, b"name").unwrap_or_default(),
                            args: None,
                        });
                    }
                    Some(b"text") => {
                        if let Some(text) = str_member(block, b"text").filter(|t| !t.is_empty()) {
                            emit(Event::Text(text));
                        }
                    }
                    _ => {}
                }
            }
            b"content_block_delta" => {
                let Some(delta) = value_member(data, b"delta") else {
                    return;
                };
                match str_member(delta, b"type") {
                    Some(b"text_delta") => {
                        if let Some(text) = str_member(delta, b"text").filter(|t| !t.is_empty()) {
                            emit(Event::Text(text));
                        }
                    }
                    Some(b"input_json_delta") => {
                        let block = uint_member(data, b"index").unwrap_or(0);
                        let Some(k) = self.tools.iter().position(|&b| b == block) else {
                            return;
                        };
                        if let Some(raw) =
                            str_member(delta, b"partial_json").filter(|p| !p.is_empty())
                        {
                            emit(Event::ToolArgs {
                                index: k as u64,
                                raw,
                            });
                        }
                    }
                    _ => {}
                }
            }
            b"message_delta" => {
                let reason = value_member(data, b"delta")
                    .and_then(|d| str_member(d, b"stop_reason"))
                    .unwrap_or(b"end_turn");
                emit(Event::Finish(finish_from(reason)));
            }
            b"message_stop" => emit(Event::End),
            b"error" => {
                let err = value_member(data, b"error").unwrap_or_default();
                emit(Event::Error {
                    message: str_member(err, b"message")
                        .unwrap_or(b"the provider reported an error"),
                    kind: str_member(err, b"type").unwrap_or_default(),
                });
            }
            _ => {}
        }
    }
}

// --------------------------------------------------------------------------------- writer

fn event(out: &mut Vec<u8>, name: &[u8], body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\ndata: ");
    body(out);
    out.extend_from_slice(b"\n\n");
}

/// The end of a stream: the open content block's `content_block_stop` (if one is open),
/// `message_delta` with the stop reason and usage, and `message_stop`. What a translated
/// stream ends with, and what the relay writes when it cuts a stream at a budget cap
/// (`stop_reason: max_tokens`).
pub fn anthropic_end(out: &mut Vec<u8>, open_block: Option<u64>, stop_reason: &[u8], u: &Usage) {
    if let Some(b) = open_block {
        event(out, b"content_block_stop", |out| {
            out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
            json::uint(out, b);
            out.push(b'}');
        });
    }
    event(out, b"message_delta", |out| {
        out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        out.extend_from_slice(stop_reason);
        out.extend_from_slice(b"\",\"stop_sequence\":null},");
        write_usage(out, u);
        out.push(b'}');
    });
    event(out, b"message_stop", |out| {
        out.extend_from_slice(b"{\"type\":\"message_stop\"}");
    });
}

/// Writes one stream's events as Messages events.
#[derive(Debug, Default)]
pub struct Writer {
    started: bool,
    /// The next content block's index.
    next_block: u64,
    /// The block open for more deltas (text or the latest tool call).
    open: Option<u64>,
    /// The open block is text.
    open_is_text: bool,
    /// (call index, block index) of each call.
    tools: Vec<(u64, u64)>,
    finish: Option<Finish>,
    ended: bool,
}

impl Writer {
    /// Whether the answer has said why it ended.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    pub fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match e {
            Event::Start { id, model } => self.start(id, model, out),
            Event::Text(raw) => {
                self.ensure_started(out);
                let b = match self.open {
                    Some(b) if self.open_is_text => b,
                    _ => self.open_block(out, true, |out| {
                        out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}");
                    }),
                };
                delta(out, b, b"text_delta", b"text", raw);
            }
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => {
                self.ensure_started(out);
                let b = self.open_block(out, false, |out| {
                    out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"");
                    // A provider without call ids (Gemini): one made up, for the result.
                    match id.filter(|i| !i.is_empty()) {
                        Some(id) => out.extend_from_slice(id),
                        None => {
                            out.extend_from_slice(b"toolu_");
                            crate::json::uint(out, index);
                        }
                    }
                    out.extend_from_slice(b"\",\"name\":\"");
                    out.extend_from_slice(name);
                    out.extend_from_slice(b"\",\"input\":{}}");
                });
                self.tools.push((index, b));
                if let Some(value) = args {
                    // Whole arguments: one fragment, as string contents.
                    let mut min = Vec::with_capacity(value.len());
                    crate::json::scan::minify_into(&mut min, value);
                    let mut quoted = Vec::with_capacity(min.len() + 2);
                    json::string(&mut quoted, &min);
                    let raw = &quoted[1..quoted.len() - 1];
                    delta(out, b, b"input_json_delta", b"partial_json", raw);
                }
            }
            Event::ToolArgs { index, raw } => {
                if let Some(&(_, b)) = self.tools.iter().find(|t| t.0 == index) {
                    delta(out, b, b"input_json_delta", b"partial_json", raw);
                }
            }
            Event::Finish(f) => self.finish = Some(f),
            Event::End => self.end(o, out),
            Event::Error { message, .. } => {
                event(out, b"error", |out| {
                    out.extend_from_slice(
                        b"{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"",
                    );
                    out.extend_from_slice(message);
                    out.extend_from_slice(b"\"}}");
                });
                self.ended = true;
            }
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start(b"", b"", out);
        }
    }

    fn start(&mut self, id: &[u8], model: &[u8], out: &mut Vec<u8>) {
        self.started = true;
        event(out, b"message_start", |out| {
            out.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":\"");
            out.extend_from_slice(if safe_raw(id) && !id.is_empty() {
                id
            } else {
                b"msg_tollgate"
            });
            out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
            if safe_raw(model) {
                out.extend_from_slice(model);
            }
            out.extend_from_slice(
                b"\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}",
            );
        });
    }

    fn open_block(
        &mut self,
        out: &mut Vec<u8>,
        text: bool,
        block: impl FnOnce(&mut Vec<u8>),
    ) -> u64 {
        if let Some(b) = self.open.take() {
            event(out, b"content_block_stop", |out| {
                out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
                json::uint(out, b);
                out.push(b'}');
            });
        }
        let b = self.next_block;
        self.next_block += 1;
        self.open = Some(b);
        self.open_is_text = text;
        event(out, b"content_block_start", |out| {
            out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
            json::uint(out, b);
            out.extend_from_slice(b",\"content_block\":");
            block(out);
            out.push(b'}');
        });
        b
    }

    /// The open block's stop, `message_delta`, `message_stop`, once.
    pub fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if !self.started {
            self.start(b"", b"", out);
        }
        let open = self.open.take();
        let reason = stop_reason(self.finish.unwrap_or(Finish::Stop));
        anthropic_end(out, open, reason, &o.usage);
    }
}

fn delta(out: &mut Vec<u8>, b: u64, kind: &[u8], field: &[u8], raw: &[u8]) {
    event(out, b"content_block_delta", |out| {
        out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
        json::uint(out, b);
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(field);
        out.extend_from_slice(b"\":\"");
        out.extend_from_slice(raw);
        out.extend_from_slice(b"\"}}");
    });
}
