//! The Responses API's typed event stream ⇄ normalised events.
//!
//! | event | normalised |
//! | --- | --- |
//! | `response.created` (its `response.id`, `response.model`) | start |
//! | `response.output_text.delta`, `response.refusal.delta` | text |
//! | `response.output_item.added` of a `function_call` (`call_id`, `name`) | a tool call (numbered in order) |
//! | `response.function_call_arguments.delta` (by `output_index`) | tool arguments |
//! | `response.completed` / `response.incomplete` (`incomplete_details.reason`) | finish, end |
//! | `response.failed` (`response.error`), `error` | error |
//!
//! Everything else (`in_progress`, `content_part.*`, `*.done`, reasoning items) is read past:
//! what it says was said by the deltas.
//!
//! The writer writes the real sequence for each normalised event, each with its
//! `sequence_number`: `response.created` and `response.in_progress` at the start; per text run
//! `output_item.added` (a `message`), `content_part.added`, `output_text.delta`s, then
//! `output_text.done`, `content_part.done`, `output_item.done`; per tool call
//! `output_item.added` (a `function_call`), `function_call_arguments.delta`s, then
//! `function_call_arguments.done`, `output_item.done`; at the end `response.completed` (or
//! `response.incomplete`) with the whole output and the metered usage. The `*.done` events and
//! the final response repeat the text and arguments, so the writer keeps them (raw JSON string
//! contents, as they came) until the stream ends.

use super::answer::{write_head, write_usage};
use crate::dialect::norm::{Event, Finish, safe_raw, str_member, uint_member, value_member};
use crate::json;
use crate::json::scan::minify_into;
use crate::sse::SseEvent;
use crate::usage::Observed;

/// Reads one stream's events into normalised events.
#[derive(Debug, Default)]
pub struct Reader {
    /// `output_index` of each function call read so far (its place is its normalised index).
    calls: Vec<u64>,
}

impl Reader {
    pub fn read<'a>(&mut self, e: &SseEvent<'a>, emit: &mut impl FnMut(Event<'a>)) {
        let data = e.data;
        let ty = str_member(data, b"type").unwrap_or_default();
        match ty {
            b"response.output_text.delta" | b"response.refusal.delta" => {
                if let Some(d) = str_member(data, b"delta").filter(|d| !d.is_empty()) {
                    emit(Event::Text(d));
                }
            }
            b"response.function_call_arguments.delta" => {
                let at = uint_member(data, b"output_index");
                let index = self.calls.iter().position(|&o| Some(o) == at);
                if let (Some(index), Some(raw)) = (index, str_member(data, b"delta")) {
                    emit(Event::ToolArgs {
                        index: index as u64,
                        raw,
                    });
                }
            }
            b"response.output_item.added" => {
                let Some(item) = value_member(data, b"item") else {
                    return;
                };
                if str_member(item, b"type") != Some(b"function_call") {
                    return;
                }
                let index = self.calls.len() as u64;
                self.calls
                    .push(uint_member(data, b"output_index").unwrap_or(u64::MAX));
                emit(Event::ToolCall {
                    index,
                    id: str_member(item, b"call_id").filter(|i| safe_raw(i)),
                    name: str_member(item, b"name").unwrap_or_default(),
                    args: None,
                });
                if let Some(raw) = str_member(item, b"arguments").filter(|a| !a.is_empty()) {
                    emit(Event::ToolArgs { index, raw });
                }
            }
            b"response.created" => {
                let r = value_member(data, b"response").unwrap_or_default();
                emit(Event::Start {
                    id: str_member(r, b"id").unwrap_or_default(),
                    model: str_member(r, b"model").unwrap_or_default(),
                });
            }
            b"response.completed" | b"response.incomplete" => {
                let r = value_member(data, b"response").unwrap_or_default();
                let reason =
                    value_member(r, b"incomplete_details").and_then(|d| str_member(d, b"reason"));
                let status = str_member(r, b"status").unwrap_or(b"completed");
                emit(Event::Finish(super::answer::finish_from(
                    status,
                    reason,
                    !self.calls.is_empty(),
                )));
                emit(Event::End);
            }
            b"response.failed" => {
                let err = value_member(data, b"response")
                    .and_then(|r| value_member(r, b"error"))
                    .unwrap_or_default();
                emit(Event::Error {
                    message: str_member(err, b"message").unwrap_or(b"the response failed"),
                    kind: str_member(err, b"code").unwrap_or_default(),
                });
            }
            b"error" => emit(Event::Error {
                message: str_member(data, b"message").unwrap_or(b"the provider reported an error"),
                kind: str_member(data, b"code").unwrap_or_default(),
            }),
            _ => {}
        }
    }
}

// --------------------------------------------------------------------------------- writer

#[derive(Debug)]
struct Item {
    /// `None`: a message; else a function call's `call_id` and name (raw).
    call: Option<(Vec<u8>, Vec<u8>)>,
    /// The text, or the arguments, so far (raw JSON string contents).
    body: Vec<u8>,
    done: bool,
}

/// Writes one stream's normalised events as Responses API events.
#[derive(Debug)]
pub struct Writer {
    created: u64,
    seq: u64,
    id: Vec<u8>,
    model: Vec<u8>,
    started: bool,
    items: Vec<Item>,
    /// The item being written (its `output_index`).
    open: Option<usize>,
    /// The item of each normalised tool-call index.
    calls: Vec<usize>,
    finish: Option<Finish>,
    ended: bool,
}

impl Writer {
    pub fn new(created: u64) -> Self {
        Writer {
            created,
            seq: 0,
            id: Vec::new(),
            model: Vec::new(),
            started: false,
            items: Vec::new(),
            open: None,
            calls: Vec::new(),
            finish: None,
            ended: false,
        }
    }

    /// Whether the answer has said why it ended.
    pub fn finished(&self) -> bool {
        self.finish.is_some()
    }

    /// `event: <ty>\ndata: {"type":"<ty>","sequence_number":n` — the caller writes the rest
    /// and [`Writer::close`]s it.
    fn event(&mut self, out: &mut Vec<u8>, ty: &[u8]) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(ty);
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(ty);
        out.extend_from_slice(b"\",\"sequence_number\":");
        json::uint(out, self.seq);
        self.seq += 1;
    }

    fn close(out: &mut Vec<u8>) {
        out.extend_from_slice(b"}\n\n");
    }

    /// `"item_id":"…","output_index":i`
    fn item_ref(&self, out: &mut Vec<u8>, i: usize) {
        out.extend_from_slice(b",\"item_id\":\"");
        self.item_id(out, i);
        out.extend_from_slice(b"\",\"output_index\":");
        json::uint(out, i as u64);
    }

    fn item_id(&self, out: &mut Vec<u8>, i: usize) {
        out.extend_from_slice(if self.items[i].call.is_some() {
            b"fc_"
        } else {
            b"msg_"
        });
        json::uint(out, i as u64);
        out.push(b'_');
        out.extend_from_slice(&self.id);
    }

    /// The item as `output_item.*` and the final response show it.
    fn item(&self, out: &mut Vec<u8>, i: usize) {
        let item = &self.items[i];
        let status: &[u8] = if item.done {
            b"completed"
        } else {
            b"in_progress"
        };
        match &item.call {
            None => {
                out.extend_from_slice(b"{\"type\":\"message\",\"id\":\"");
                self.item_id(out, i);
                out.extend_from_slice(b"\",\"status\":\"");
                out.extend_from_slice(status);
                out.extend_from_slice(b"\",\"role\":\"assistant\",\"content\":[");
                if item.done {
                    Self::text_part(out, &item.body);
                }
                out.extend_from_slice(b"]}");
            }
            Some((call_id, name)) => {
                out.extend_from_slice(b"{\"type\":\"function_call\",\"id\":\"");
                self.item_id(out, i);
                out.extend_from_slice(b"\",\"call_id\":\"");
                out.extend_from_slice(call_id);
                out.extend_from_slice(b"\",\"name\":\"");
                out.extend_from_slice(name);
                out.extend_from_slice(b"\",\"arguments\":\"");
                if item.done {
                    out.extend_from_slice(&item.body);
                }
                out.extend_from_slice(b"\",\"status\":\"");
                out.extend_from_slice(status);
                out.extend_from_slice(b"\"}");
            }
        }
    }

    fn text_part(out: &mut Vec<u8>, text: &[u8]) {
        out.extend_from_slice(b"{\"type\":\"output_text\",\"text\":\"");
        out.extend_from_slice(text);
        out.extend_from_slice(b"\",\"annotations\":[]}");
    }

    /// The response object: in progress (`None`) or finished.
    fn response(&self, out: &mut Vec<u8>, f: Option<Finish>, o: Option<&Observed>) {
        out.extend_from_slice(b",\"response\":");
        write_head(out, &self.id, &self.model, self.created, f);
        out.push(b'[');
        if f.is_some() {
            for i in 0..self.items.len() {
                if i > 0 {
                    out.push(b',');
                }
                self.item(out, i);
            }
        }
        out.extend_from_slice(b"],");
        match o {
            Some(o) => write_usage(out, &o.usage),
            None => out.extend_from_slice(b"\"usage\":null"),
        }
        out.push(b'}');
    }

    fn start(&mut self, id: &[u8], model: &[u8], out: &mut Vec<u8>) {
        self.started = true;
        self.id.clear();
        self.id
            .extend_from_slice(if safe_raw(id) && !id.is_empty() {
                id
            } else {
                b"resp_tollgate"
            });
        self.model.clear();
        if safe_raw(model) {
            self.model.extend_from_slice(model);
        }
        for ty in [
            b"response.created".as_slice(),
            b"response.in_progress".as_slice(),
        ] {
            self.event(out, ty);
            self.response(out, None, None);
            Self::close(out);
        }
    }

    /// Opens a new item (closing the open one).
    fn open_item(&mut self, call: Option<(Vec<u8>, Vec<u8>)>, out: &mut Vec<u8>) -> usize {
        self.close_open(out);
        let i = self.items.len();
        let is_call = call.is_some();
        self.items.push(Item {
            call,
            body: Vec::new(),
            done: false,
        });
        self.open = Some(i);
        self.event(out, b"response.output_item.added");
        out.extend_from_slice(b",\"output_index\":");
        json::uint(out, i as u64);
        out.extend_from_slice(b",\"item\":");
        self.item(out, i);
        Self::close(out);
        if !is_call {
            self.event(out, b"response.content_part.added");
            self.item_ref(out, i);
            out.extend_from_slice(b",\"content_index\":0,\"part\":");
            Self::text_part(out, b"");
            Self::close(out);
        }
        i
    }

    /// The `*.done` events of the open item.
    fn close_open(&mut self, out: &mut Vec<u8>) {
        let Some(i) = self.open.take() else {
            return;
        };
        self.items[i].done = true;
        if self.items[i].call.is_none() {
            self.event(out, b"response.output_text.done");
            self.item_ref(out, i);
            out.extend_from_slice(b",\"content_index\":0,\"text\":\"");
            out.extend_from_slice(&self.items[i].body);
            out.push(b'"');
            Self::close(out);
            self.event(out, b"response.content_part.done");
            self.item_ref(out, i);
            out.extend_from_slice(b",\"content_index\":0,\"part\":");
            Self::text_part(out, &self.items[i].body);
            Self::close(out);
        } else {
            self.event(out, b"response.function_call_arguments.done");
            self.item_ref(out, i);
            out.extend_from_slice(b",\"arguments\":\"");
            out.extend_from_slice(&self.items[i].body);
            out.push(b'"');
            Self::close(out);
        }
        self.event(out, b"response.output_item.done");
        out.extend_from_slice(b",\"output_index\":");
        json::uint(out, i as u64);
        out.extend_from_slice(b",\"item\":");
        self.item(out, i);
        Self::close(out);
    }

    fn args_delta(&mut self, i: usize, raw: &[u8], out: &mut Vec<u8>) {
        self.event(out, b"response.function_call_arguments.delta");
        self.item_ref(out, i);
        out.extend_from_slice(b",\"delta\":\"");
        out.extend_from_slice(raw);
        out.push(b'"');
        Self::close(out);
        self.items[i].body.extend_from_slice(raw);
    }

    pub fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if let Event::Start { id, model } = e {
            if !self.started {
                self.start(id, model, out);
            }
            return;
        }
        if !self.started {
            self.start(b"", b"", out);
        }
        match e {
            Event::Start { .. } => {}
            Event::Text(raw) => {
                let i = match self.open {
                    Some(i) if self.items[i].call.is_none() => i,
                    _ => self.open_item(None, out),
                };
                self.event(out, b"response.output_text.delta");
                self.item_ref(out, i);
                out.extend_from_slice(b",\"content_index\":0,\"delta\":\"");
                out.extend_from_slice(raw);
                out.extend_from_slice(b"\",\"logprobs\":[]");
                Self::close(out);
                self.items[i].body.extend_from_slice(raw);
            }
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => {
                let call_id = match id {
                    Some(id) => id.to_vec(),
                    None => format!("call_{index}").into_bytes(),
                };
                let name = if safe_raw(name) { name } else { b"" };
                let i = self.open_item(Some((call_id, name.to_vec())), out);
                let slot = index as usize;
                if self.calls.len() <= slot {
                    self.calls.resize(slot + 1, usize::MAX);
                }
                self.calls[slot] = i;
                if let Some(value) = args {
                    // Whole arguments as JSON (Gemini): one delta of their string form.
                    let mut min = Vec::with_capacity(value.len());
                    minify_into(&mut min, value);
                    let mut quoted = Vec::with_capacity(min.len() + 8);
                    json::string(&mut quoted, &min);
                    self.args_delta(i, &quoted[1..quoted.len() - 1], out);
                }
            }
            Event::ToolArgs { index, raw } => {
                if let Some(&i) = self.calls.get(index as usize).filter(|&&i| i != usize::MAX) {
                    self.args_delta(i, raw, out);
                }
            }
            Event::Finish(f) => self.finish = Some(f),
            Event::End => self.end(o, out),
            Event::Error { message, kind } => {
                self.event(out, b"error");
                out.extend_from_slice(b",\"code\":\"");
                out.extend_from_slice(if safe_raw(kind) && !kind.is_empty() {
                    kind
                } else {
                    b"server_error"
                });
                out.extend_from_slice(b"\",\"message\":\"");
                out.extend_from_slice(message);
                out.extend_from_slice(b"\",\"param\":null");
                Self::close(out);
                self.ended = true;
            }
        }
    }

    /// The open item's `*.done` events and the final `response.completed` (or
    /// `response.incomplete`), once.
    pub fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if !self.started {
            self.start(b"", b"", out);
        }
        self.close_open(out);
        let f = self.finish.unwrap_or(Finish::Stop);
        let ty: &[u8] = match f {
            Finish::Length | Finish::ContentFilter => b"response.incomplete",
            Finish::Stop | Finish::ToolCalls => b"response.completed",
        };
        self.event(out, ty);
        self.response(out, Some(f), Some(o));
        Self::close(out);
    }
}
