//! Chat Completions streams ⇄ normalised events ([`crate::dialect::norm::Event`]).
//!
//! | chunk | event |
//! | --- | --- |
//! | the first chunk (its `id`, `model`) | `Start` |
//! | `choices[0].delta.content` | `Text` |
//! | `delta.tool_calls[i]` with a new `index` (its `id`, `function.name`) | `ToolCall` (index i) |
//! | `delta.tool_calls[i].function.arguments` | `ToolArgs` |
//! | `finish_reason` (`stop`, `length`, `tool_calls`, `content_filter`) | `Finish` |
//! | `[DONE]` | `End` |
//! | `{"error":{…}}` | `Error` |
//!
//! The writer writes the same chunks back: a role chunk first, one chunk per fragment (tool-call
//! deltas with stable indexes), the finish chunk, then — at the end — the usage chunk if the
//! client asked for one, and `[DONE]`. Only choice 0 is read (a translated request asks for one).

use crate::dialect::norm::{Event, Finish, safe_raw, str_member, uint_member, value_member};
use crate::json::scan::{Members, elements, minify_into, string_at, uint_at};
use crate::json::{self};
use crate::usage::{Observed, Usage};

/// `finish_reason` → normalised.
pub fn finish_from(reason: &[u8]) -> Finish {
    match reason {
        b"length" => Finish::Length,
        b"tool_calls" | b"function_call" => Finish::ToolCalls,
        b"content_filter" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

/// Normalised → `finish_reason`.
pub fn finish_name(f: Finish) -> &'static [u8] {
    match f {
        Finish::Stop => b"stop",
        Finish::Length => b"length",
        Finish::ToolCalls => b"tool_calls",
        Finish::ContentFilter => b"content_filter",
    }
}

/// `"usage":{…}` (input includes cached tokens, output includes reasoning).
pub fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"\"usage\":{\"prompt_tokens\":");
    json::uint(out, u.input_tokens);
    out.extend_from_slice(b",\"completion_tokens\":");
    json::uint(out, u.output_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    json::uint(out, u.input_tokens + u.output_tokens);
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    json::uint(out, u.cache_read_tokens);
    out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
    json::uint(out, u.reasoning_tokens);
    out.extend_from_slice(b"}}");
}

/// An error event from an error's raw message and type.
pub fn write_error_event(out: &mut Vec<u8>, message: &[u8], kind: &[u8]) {
    out.extend_from_slice(b"event: error\ndata: {\"error\":{\"message\":\"");
    out.extend_from_slice(message);
    out.extend_from_slice(b"\",\"type\":\"");
    out.extend_from_slice(if safe_raw(kind) && !kind.is_empty() {
        kind
    } else {
        b"server_error"
    });
    out.extend_from_slice(b"\",\"param\":null,\"code\":null}}\n\n");
}

// --------------------------------------------------------------------------------- reader

/// Reads one stream's chunks into events.
#[derive(Debug, Default)]
pub struct Reader {
    started: bool,
    /// The tool-call indexes seen (a new one starts a call).
    calls: Vec<u64>,
}

impl Reader {
    /// The events of one chunk's `data`, to `emit`.
    pub fn read<'a>(&mut self, data: &'a [u8], emit: &mut impl FnMut(Event<'a>)) {
        if data == b"[DONE]" {
            emit(Event::End);
            return;
        }
        // One pass over each object's members (a chunk is read once, not once per member
        // looked up).
        let top = members(data, [b"error".as_slice(), b"id", b"model", b"choices"]);
        if let Some(err) = top[0].filter(|e| e.first() == Some(&b'{')) {
            emit(Event::Error {
                message: str_member(err, b"message").unwrap_or(b"the provider reported an error"),
                kind: str_member(err, b"type").unwrap_or_default(),
            });
            return;
        }
        if !std::mem::replace(&mut self.started, true) {
            emit(Event::Start {
                id: top[1].and_then(contents).unwrap_or_default(),
                model: top[2].and_then(contents).unwrap_or_default(),
            });
        }
        let Some(choices) = top[3] else {
            return;
        };
        for r in elements(choices) {
            let [index, delta, reason] = members(
                &choices[r],
                [b"index".as_slice(), b"delta", b"finish_reason"],
            );
            if index.and_then(|i| uint_at(i, 0)).unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = delta {
                let [text, calls] = members(delta, [b"content".as_slice(), b"tool_calls"]);
                if let Some(text) = text.and_then(contents).filter(|t| !t.is_empty()) {
                    emit(Event::Text(text));
                }
                if let Some(calls) = calls {
                    for r in elements(calls) {
                        self.call(&calls[r], emit);
                    }
                }
            }
            if let Some(reason) = reason.and_then(contents) {
                emit(Event::Finish(finish_from(reason)));
            }
        }
    }

    fn call<'a>(&mut self, call: &'a [u8], emit: &mut impl FnMut(Event<'a>)) {
        let index = uint_member(call, b"index").unwrap_or(0);
        let f = value_member(call, b"function").unwrap_or_default();
        if !self.calls.contains(&index) {
            self.calls.push(index);
            emit(Event::ToolCall {
                index,
                id: Some(str_member(call, b"id").unwrap_or_default()),
                name: str_member(f, b"name").unwrap_or_default(),
                args: None,
            });
        }
        if let Some(raw) = str_member(f, b"arguments").filter(|a| !a.is_empty()) {
            emit(Event::ToolArgs { index, raw });
        }
    }
}

/// The values of the top-level members `keys` of the object `b` (the first of each), in one
/// pass.
fn members<'a, const N: usize>(b: &'a [u8], keys: [&[u8]; N]) -> [Option<&'a [u8]>; N] {
    let mut out = [None; N];
    for m in Members::new(b).map_while(Result::ok) {
        let k = &b[m.key];
        if let Some(i) = keys.iter().position(|x| *x == k)
            && out[i].is_none()
        {
            out[i] = Some(&b[m.value]);
        }
    }
    out
}

/// A raw string value's contents (`None` when it is not a string).
fn contents(v: &[u8]) -> Option<&[u8]> {
    string_at(v, 0)
}

// --------------------------------------------------------------------------------- writer

/// Writes `chat.completion.chunk` events for one stream.
#[derive(Debug, Default)]
pub struct OpenAiChunks {
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[`
    prefix: Vec<u8>,
}

impl OpenAiChunks {
    /// Sets the stream's id and model (raw JSON string contents) and creation time.
    pub fn start(&mut self, id: &[u8], model: &[u8], created: u64) {
        self.start_as(id, model, created, b"chat.completion.chunk");
    }

    /// [`OpenAiChunks::start`] for chunks of another `object` (the legacy Completions API's
    /// `text_completion`).
    pub fn start_as(&mut self, id: &[u8], model: &[u8], created: u64, object: &[u8]) {
        let p = &mut self.prefix;
        p.clear();
        p.extend_from_slice(b"data: {\"id\":\"");
        p.extend_from_slice(if safe_raw(id) && !id.is_empty() {
            id
        } else {
            b"chatcmpl-tollgate"
        });
        p.extend_from_slice(b"\",\"object\":\"");
        p.extend_from_slice(object);
        p.extend_from_slice(b"\",\"created\":");
        json::uint(p, created);
        p.extend_from_slice(b",\"model\":\"");
        if safe_raw(model) {
            p.extend_from_slice(model);
        }
        p.extend_from_slice(b"\",\"choices\":[");
    }

    pub fn is_started(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// One chunk for choice 0: `delta` writes the delta object.
    pub fn chunk(
        &self,
        out: &mut Vec<u8>,
        finish: Option<&[u8]>,
        delta: impl FnOnce(&mut Vec<u8>),
    ) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":");
        delta(out);
        out.extend_from_slice(b",\"finish_reason\":");
        match finish {
            Some(f) => {
                out.push(b'"');
                out.extend_from_slice(f);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    /// A chunk whose one choice `choice` writes whole (a Completions `text` choice).
    pub fn choice(&self, out: &mut Vec<u8>, choice: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(&self.prefix);
        choice(out);
        out.extend_from_slice(b"]}\n\n");
    }

    /// The usage chunk (`choices: []`).
    pub fn usage(&self, out: &mut Vec<u8>, u: &Usage) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"],");
        write_usage(out, u);
        out.extend_from_slice(b"}\n\n");
    }

    pub fn done(out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

/// Writes one stream's events as chunks.
#[derive(Debug)]
pub struct Writer {
    chunks: OpenAiChunks,
    created: u64,
    /// The client asked for a usage chunk.
    client_usage: bool,
    /// The finish chunk went out.
    finished: bool,
    ended: bool,
}

impl Writer {
    pub fn new(client_usage: bool, created: u64) -> Self {
        Writer {
            chunks: OpenAiChunks::default(),
            created,
            client_usage,
            finished: false,
            ended: false,
        }
    }

    /// Whether the answer has said why it ended.
    pub fn finished(&self) -> bool {
        self.finished
    }

    pub fn write(&mut self, e: Event<'_>, o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if let Event::Start { id, model } = e {
            self.chunks.start(id, model, self.created);
            self.chunks.chunk(out, None, |out| {
                out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}");
            });
            return;
        }
        if !self.chunks.is_started() {
            self.chunks.start(b"", b"", self.created);
        }
        match e {
            Event::Start { .. } => {}
            Event::Text(raw) => self.chunks.chunk(out, None, |out| {
                out.extend_from_slice(b"{\"content\":\"");
                out.extend_from_slice(raw);
                out.extend_from_slice(b"\"}");
            }),
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => self.chunks.chunk(out, None, |out| {
                out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                json::uint(out, index);
                out.extend_from_slice(b",\"id\":\"");
                match id {
                    Some(id) => out.extend_from_slice(id),
                    None => {
                        out.extend_from_slice(b"call_");
                        json::uint(out, index);
                    }
                }
                out.extend_from_slice(b"\",\"type\":\"function\",\"function\":{\"name\":\"");
                out.extend_from_slice(name);
                out.extend_from_slice(b"\",\"arguments\":");
                match args {
                    Some(value) => {
                        let mut min = Vec::with_capacity(value.len());
                        minify_into(&mut min, value);
                        json::string(out, &min);
                    }
                    None => out.extend_from_slice(b"\"\""),
                }
                out.extend_from_slice(b"}}]}");
            }),
            Event::ToolArgs { index, raw } => self.chunks.chunk(out, None, |out| {
                out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                json::uint(out, index);
                out.extend_from_slice(b",\"function\":{\"arguments\":\"");
                out.extend_from_slice(raw);
                out.extend_from_slice(b"\"}}]}");
            }),
            Event::Finish(f) => {
                self.finished = true;
                self.chunks.chunk(out, Some(finish_name(f)), |out| {
                    out.extend_from_slice(b"{}")
                });
            }
            Event::End => self.end(o, out),
            Event::Error { message, kind } => {
                write_error_event(out, message, kind);
                self.ended = true;
            }
        }
    }

    /// The usage chunk (if asked for) and `[DONE]`, once.
    pub fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if !self.chunks.is_started() {
            self.chunks.start(b"", b"", self.created);
        }
        if self.client_usage {
            self.chunks.usage(out, &o.usage);
        }
        OpenAiChunks::done(out);
    }
}
