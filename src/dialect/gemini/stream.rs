//! `streamGenerateContent?alt=sse` chunks → normalised events ([`crate::dialect::norm::Event`]).
//!
//! | chunk | normalised |
//! | --- | --- |
//! | the first chunk (`responseId`, `modelVersion`) | `Start` |
//! | `candidates[0].content.parts[]` text (not thoughts) | `Text` |
//! | a `functionCall` part (`name`, `args`, maybe `id`) | `ToolCall` with the whole arguments |
//! | `finishReason` (`STOP` with a call → tool calls, `MAX_TOKENS` → length, safety → content filter) | `Finish` |
//! | `{"error":{…}}` | `Error` |
//!
//! Gemini has no end marker: the stream ends with the body ([`Reader::ENDS_WITH_BODY`]).

use crate::dialect::norm::{
    Event, Finish, Loc, json_object_into, safe_raw, str_member, value_member,
};
use crate::json::scan::{elements, minify_into};
use crate::usage::Observed;

/// `finishReason` → normalised (`tool`: the answer called a function, which Gemini reports as
/// `STOP`).
pub fn finish_from(reason: &[u8], tool: bool) -> Finish {
    match reason {
        b"MAX_TOKENS" => Finish::Length,
        b"SAFETY"
        | b"RECITATION"
        | b"BLOCKLIST"
        | b"PROHIBITED_CONTENT"
        | b"SPII"
        | b"IMAGE_SAFETY" => Finish::ContentFilter,
        _ if tool => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

/// Reads one stream's chunks into events.
#[derive(Debug, Default)]
pub struct Reader {
    started: bool,
    /// Function calls read so far (the next one's index).
    calls: u64,
}

impl Reader {
    /// The stream ends with the body: there is no end event.
    pub const ENDS_WITH_BODY: bool = true;

    pub fn read<'a>(&mut self, data: &'a [u8], emit: &mut impl FnMut(Event<'a>)) {
        if let Some(err) = value_member(data, b"error").filter(|e| e.first() == Some(&b'{')) {
            emit(Event::Error {
                message: str_member(err, b"message").unwrap_or(b"the provider reported an error"),
                kind: str_member(err, b"status").unwrap_or_default(),
            });
            return;
        }
        if !std::mem::replace(&mut self.started, true) {
            emit(Event::Start {
                id: str_member(data, b"responseId").unwrap_or_default(),
                model: str_member(data, b"modelVersion").unwrap_or_default(),
            });
        }
        let Some(candidate) =
            value_member(data, b"candidates").and_then(|c| elements(c).next().map(|r| &c[r]))
        else {
            return;
        };
        if let Some(parts) =
            value_member(candidate, b"content").and_then(|c| value_member(c, b"parts"))
        {
            for r in elements(parts) {
                let part = &parts[r];
                if value_member(part, b"thought") == Some(b"true") {
                    continue;
                }
                if let Some(text) = str_member(part, b"text").filter(|t| !t.is_empty()) {
                    emit(Event::Text(text));
                }
                if let Some(call) = value_member(part, b"functionCall") {
                    let index = self.calls;
                    self.calls += 1;
                    emit(Event::ToolCall {
                        index,
                        id: str_member(call, b"id").filter(|i| safe_raw(i)),
                        name: str_member(call, b"name").unwrap_or_default(),
                        args: Some(value_member(call, b"args").unwrap_or(b"{}")),
                    });
                }
            }
        }
        if let Some(reason) = str_member(candidate, b"finishReason") {
            emit(Event::Finish(finish_from(reason, self.calls > 0)));
        }
    }
}

// --------------------------------------------------------------------------------- writer

/// A function call held until it is complete.
#[derive(Debug)]
struct HeldCall {
    id: Vec<u8>,
    /// Raw JSON string contents.
    name: Vec<u8>,
    /// The arguments so far: raw string contents, or a whole JSON object when `whole`.
    args: Vec<u8>,
    whole: bool,
}

/// Writes one stream's normalised events as `generateContent` chunks: SSE events (`alt=sse`),
/// or the elements of one JSON array (Gemini's default stream framing).
///
/// Gemini sends a function call whole, its `args` an object, while the other dialects stream
/// a call's arguments as string fragments: a call is held until it is complete (the next
/// call, text, the finish or the end), then written as one part. Usage and the finish reason
/// go in the last chunk, as Gemini writes them.
#[derive(Debug, Default)]
pub struct Writer {
    /// The client asked for the JSON-array framing (no `alt=sse`).
    array: bool,
    /// Chunks written so far.
    chunks: u64,
    id: Vec<u8>,
    model: Vec<u8>,
    /// The call being read.
    call: Option<HeldCall>,
    finish: Option<Finish>,
    ended: bool,
}

impl Writer {
    pub fn new(array: bool) -> Self {
        Writer {
            array,
            ..Writer::default()
        }
    }

    /// Whether the answer has said why it ended.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    fn open(&mut self, out: &mut Vec<u8>) {
        match (self.array, self.chunks) {
            (true, 0) => out.push(b'['),
            (true, _) => out.extend_from_slice(b",\r\n"),
            (false, _) => out.extend_from_slice(b"data: "),
        }
        self.chunks += 1;
    }

    fn close(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b",\"modelVersion\":\"");
        out.extend_from_slice(&self.model);
        out.extend_from_slice(b"\",\"responseId\":\"");
        out.extend_from_slice(&self.id);
        out.extend_from_slice(b"\"}");
        if !self.array {
            out.extend_from_slice(b"\r\n\r\n");
        }
    }

    /// A chunk of one part, written by `part`.
    fn chunk(&mut self, out: &mut Vec<u8>, part: impl FnOnce(&mut Vec<u8>)) {
        self.open(out);
        out.extend_from_slice(b"{\"candidates\":[{\"content\":{\"parts\":[");
        part(out);
        out.extend_from_slice(b"],\"role\":\"model\"},\"index\":0}]");
        self.close(out);
    }

    /// Writes the held call, if any.
    fn flush_call(&mut self, out: &mut Vec<u8>) {
        let Some(HeldCall {
            id,
            name,
            args,
            whole,
        }) = self.call.take()
        else {
            return;
        };
        let mut object = Vec::with_capacity(args.len() + 2);
        let ok = if whole {
            object.extend_from_slice(&args);
            true
        } else {
            raw_args_object(&args, &mut object)
        };
        if !ok {
            // Not a JSON object, which `args` must be: kept as text, as for Anthropic clients.
            object.clear();
            object.extend_from_slice(b"{\"arguments\":\"");
            object.extend_from_slice(&args);
            object.extend_from_slice(b"\"}");
        }
        self.chunk(out, |out| {
            out.extend_from_slice(b"{\"functionCall\":{\"id\":\"");
            out.extend_from_slice(&id);
            out.extend_from_slice(b"\",\"name\":\"");
            out.extend_from_slice(&name);
            out.extend_from_slice(b"\",\"args\":");
            out.extend_from_slice(&object);
            out.extend_from_slice(b"}}");
        });
    }

    fn error(&mut self, out: &mut Vec<u8>, message: &[u8]) {
        self.open(out);
        out.extend_from_slice(b"{\"error\":{\"code\":500,\"message\":\"");
        out.extend_from_slice(message);
        out.extend_from_slice(b"\",\"status\":\"INTERNAL\"}}");
        out.extend_from_slice(if self.array {
            b"]"
        } else {
            b"\r\n\r\n".as_slice()
        });
        self.ended = true;
    }

    pub fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match e {
            Event::Start { id, model } => {
                self.id = if safe_raw(id) {
                    id.to_vec()
                } else {
                    Vec::new()
                };
                self.model = if safe_raw(model) {
                    model.to_vec()
                } else {
                    Vec::new()
                };
            }
            Event::Text(raw) => {
                self.flush_call(out);
                if !self.ended {
                    self.chunk(out, |out| {
                        out.extend_from_slice(b"{\"text\":\"");
                        out.extend_from_slice(raw);
                        out.extend_from_slice(b"\"}");
                    });
                }
            }
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => {
                self.flush_call(out);
                let id = match id {
                    Some(id) => id.to_vec(),
                    None => format!("call_{index}").into_bytes(),
                };
                let name = if safe_raw(name) {
                    name.to_vec()
                } else {
                    Vec::new()
                };
                let mut held = HeldCall {
                    id,
                    name,
                    args: Vec::new(),
                    whole: args.is_some(),
                };
                if let Some(value) = args {
                    minify_into(&mut held.args, value);
                }
                self.call = Some(held);
            }
            Event::ToolArgs { raw, .. } => {
                if let Some(held) = self.call.as_mut().filter(|c| !c.whole) {
                    held.args.extend_from_slice(raw);
                }
            }
            Event::Finish(f) => {
                self.flush_call(out);
                self.finish = Some(f);
            }
            Event::End => self.end(o, out),
            Event::Error { message, .. } => {
                self.flush_call(out);
                if !self.ended {
                    self.error(out, message);
                }
            }
        }
    }

    /// The last chunk (finish reason, usage) and, for the array framing, its `]`, once.
    pub fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        self.flush_call(out);
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.open(out);
        out.extend_from_slice(
            b"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},\"finishReason\":\"",
        );
        out.extend_from_slice(super::answer::finish_name(
            self.finish.unwrap_or(Finish::Stop),
        ));
        out.extend_from_slice(b"\",\"index\":0}],");
        super::answer::write_usage(out, &o.usage);
        self.close(out);
        if self.array {
            out.push(b']');
        }
    }
}

/// Arguments streamed as raw JSON string contents → the JSON object they spell, into `out`;
/// false when they do not spell one (empty arguments are `{}`).
fn raw_args_object(raw: &[u8], out: &mut Vec<u8>) -> bool {
    if raw.iter().all(u8::is_ascii_whitespace) {
        out.extend_from_slice(b"{}");
        return true;
    }
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    let Ok(text) = simd_json::from_slice::<String>(&mut quoted) else {
        return false;
    };
    json_object_into(out, &text, Loc::top("arguments")).is_ok()
}
