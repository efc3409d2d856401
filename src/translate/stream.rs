//! Event streams from the provider's dialect to the client's, one event at a time: each
//! provider event becomes zero or more client events as soon as it is read (the meter hands
//! over whole events; nothing waits for a later one). Text and argument fragments are copied
//! as raw JSON string contents — escapes and all — never unescaped and re-escaped; only the
//! rare structural events are looked into with [`crate::json::scan`]. Usage comes from the
//! meter's reading of the provider's events ([`Observed`]), so the client sees what is
//! charged.
//!
//! | provider event | client events |
//! | --- | --- |
//! | Anthropic `message_start` | OpenAI role chunk (id, model) |
//! | `content_block_start` tool_use | `tool_calls[k]` with id, name, `arguments: ""` (k counts tool blocks: stable, 0-based) |
//! | `text_delta` / `input_json_delta` | `content` / `tool_calls[k].function.arguments` fragment |
//! | `message_delta` | finish chunk (`end_turn`→`stop`, `max_tokens`→`length`, `tool_use`→`tool_calls`, `stop_sequence`→`stop`) |
//! | `message_stop` | usage chunk (if the client asked for it), `[DONE]` |
//! | `error` | OpenAI error event |
//! | OpenAI first chunk | Anthropic `message_start` |
//! | `content` fragment | `content_block_start` text (when not open), `text_delta` |
//! | `tool_calls[i]` with an id | `content_block_stop` of the open block, `content_block_start` tool_use |
//! | `tool_calls[i].function.arguments` | `input_json_delta` on that call's block |
//! | `[DONE]` (after finish and usage chunks) | `content_block_stop`, `message_delta` (stop reason, usage), `message_stop` |
//! | Gemini chunk text parts (not thoughts) | `content` fragment |
//! | `functionCall` part | one `tool_calls[k]` chunk with the whole arguments |
//! | `finishReason` | finish chunk (`STOP` with a call → `tool_calls`, `MAX_TOKENS` → `length`, safety → `content_filter`) |
//! | end of body (Gemini has no end marker) | usage chunk (if asked), `[DONE]` |

use super::Pair;
use super::response::{anthropic_usage, openai_usage};
use crate::json::scan::{elements, member, minify_into, string_at, uint_at};
use crate::json::{self};
use crate::sse::SseEvent;
use crate::usage::{Observed, Usage};

/// Translates one stream; see the module docs.
#[derive(Debug)]
pub enum StreamTranslator {
    /// Anthropic events to an OpenAI client.
    FromAnthropic(FromAnthropic),
    /// Gemini chunks to an OpenAI client.
    FromGemini(FromGemini),
    /// OpenAI chunks to an Anthropic client.
    FromOpenAi(FromOpenAi),
}

impl StreamTranslator {
    /// `client_usage`: the (OpenAI) client asked for a usage chunk; `created`: the response's
    /// Unix time for OpenAI chunks.
    pub fn new(pair: Pair, client_usage: bool, created: u64) -> Self {
        match pair {
            Pair::OpenAiToAnthropic => StreamTranslator::FromAnthropic(FromAnthropic {
                chunks: OpenAiChunks::default(),
                created,
                client_usage,
                tools: Vec::new(),
                ended: false,
                finished: false,
            }),
            Pair::OpenAiToGemini => StreamTranslator::FromGemini(FromGemini {
                chunks: OpenAiChunks::default(),
                created,
                client_usage,
                calls: 0,
                ended: false,
            }),
            Pair::AnthropicToOpenAi => StreamTranslator::FromOpenAi(FromOpenAi::default()),
        }
    }

    /// Appends the client's events for one provider event. `o` has already read it.
    pub fn event(&mut self, e: &SseEvent<'_>, o: &Observed, out: &mut Vec<u8>) {
        match self {
            StreamTranslator::FromAnthropic(t) => t.event(e, o, out),
            StreamTranslator::FromGemini(t) => t.event(e.data, out),
            StreamTranslator::FromOpenAi(t) => t.event(e.data, o, out),
        }
    }

    /// The provider's body ended: appends whatever the client's dialect needs to close a
    /// stream that was answered in full but not closed by the provider in its own words.
    pub fn finish(&mut self, o: &Observed, out: &mut Vec<u8>) {
        match self {
            StreamTranslator::FromAnthropic(t) => {
                if t.finished {
                    t.end(o, out);
                }
            }
            StreamTranslator::FromGemini(t) => t.end(o, out),
            StreamTranslator::FromOpenAi(t) => {
                if t.finish.is_some() {
                    t.end(o, out);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------ small readers

/// The raw contents of the string member `k` of the object `b`.
fn str_member<'a>(b: &'a [u8], k: &[u8]) -> Option<&'a [u8]> {
    member(b, k).and_then(|r| string_at(b, r.start))
}

fn value_member<'a>(b: &'a [u8], k: &[u8]) -> Option<&'a [u8]> {
    member(b, k).map(|r| &b[r])
}

fn uint_member(b: &[u8], k: &[u8]) -> Option<u64> {
    member(b, k).and_then(|r| uint_at(b, r.start))
}

/// An Anthropic event's `type` when the SSE `event:` field is missing.
fn anthropic_kind<'a>(e: &SseEvent<'a>) -> &'a [u8] {
    if e.event.is_empty() {
        str_member(e.data, b"type").unwrap_or_default()
    } else {
        e.event
    }
}

/// Ids and model names are echoed when they need no escaping beyond what they carry (they
/// are raw JSON string contents already).
fn safe_raw(s: &[u8]) -> bool {
    !s.contains(&b'"') && !s.iter().any(|&b| b < 0x20)
}

// ----------------------------------------------------------------- OpenAI chunk writer

/// Writes OpenAI `chat.completion.chunk` events for one stream.
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
        openai_usage(out, u);
        out.extend_from_slice(b"}\n\n");
    }

    pub fn done(out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

/// An OpenAI error event from an error object's raw message and type.
fn openai_error_event(out: &mut Vec<u8>, message: &[u8], kind: &[u8]) {
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

// ------------------------------------------------------------------ Anthropic → OpenAI

#[derive(Debug)]
pub struct FromAnthropic {
    chunks: OpenAiChunks,
    created: u64,
    client_usage: bool,
    /// The Anthropic block index of each tool call, in order: position = OpenAI index.
    tools: Vec<u64>,
    /// The finish chunk went out.
    finished: bool,
    ended: bool,
}

impl FromAnthropic {
    fn ensure_started(&mut self) {
        if !self.chunks.is_started() {
            self.chunks.start(b"", b"", self.created);
        }
    }

    fn event(&mut self, e: &SseEvent<'_>, o: &Observed, out: &mut Vec<u8>) {
        let data = e.data;
        match anthropic_kind(e) {
            b"message_start" => {
                let msg = value_member(data, b"message").unwrap_or_default();
                self.chunks.start(
                    str_member(msg, b"id").unwrap_or_default(),
                    str_member(msg, b"model").unwrap_or_default(),
                    self.created,
                );
                self.chunks.chunk(out, None, |out| {
                    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}");
                });
            }
            b"content_block_start" => {
                self.ensure_started();
                let index = uint_member(data, b"index").unwrap_or(0);
                let block = value_member(data, b"content_block").unwrap_or_default();
                match str_member(block, b"type") {
                    Some(b"tool_use") => {
                        let k = self.tools.len();
                        self.tools.push(index);
                        let id = str_member(block, b"id").unwrap_or_default();
                        let name = str_member(block, b"name").unwrap_or_default();
                        self.chunks.chunk(out, None, |out| {
                            out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                            json::uint(out, k as u64);
                            out.extend_from_slice(b",\"id\":\"");
                            out.extend_from_slice(id);
                            out.extend_from_slice(
                                b"\",\"type\":\"function\",\"function\":{\"name\":\"",
                            );
                            out.extend_from_slice(name);
                            out.extend_from_slice(b"\",\"arguments\":\"\"}}]}");
                        });
                    }
                    Some(b"text") => {
                        if let Some(text) = str_member(block, b"text").filter(|t| !t.is_empty()) {
                            self.text(text, out);
                        }
                    }
                    _ => {}
                }
            }
            b"content_block_delta" => {
                self.ensure_started();
                let Some(delta) = value_member(data, b"delta") else {
                    return;
                };
                match str_member(delta, b"type") {
                    Some(b"text_delta") => {
                        if let Some(text) = str_member(delta, b"text").filter(|t| !t.is_empty()) {
                            self.text(text, out);
                        }
                    }
                    Some(b"input_json_delta") => {
                        let index = uint_member(data, b"index").unwrap_or(0);
                        let Some(k) = self.tools.iter().position(|&i| i == index) else {
                            return;
                        };
                        let Some(part) =
                            str_member(delta, b"partial_json").filter(|p| !p.is_empty())
                        else {
                            return;
                        };
                        self.chunks.chunk(out, None, |out| {
                            out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                            json::uint(out, k as u64);
                            out.extend_from_slice(b",\"function\":{\"arguments\":\"");
                            out.extend_from_slice(part);
                            out.extend_from_slice(b"\"}}]}");
                        });
                    }
                    // Thinking and signatures are not part of an OpenAI answer.
                    _ => {}
                }
            }
            b"message_delta" => {
                self.ensure_started();
                let reason = value_member(data, b"delta")
                    .and_then(|d| str_member(d, b"stop_reason"))
                    .unwrap_or(b"end_turn");
                self.chunks.chunk(
                    out,
                    Some(super::openai_finish_from_anthropic(reason)),
                    |out| {
                        out.extend_from_slice(b"{}");
                    },
                );
                self.finished = true;
            }
            b"message_stop" => self.end(o, out),
            b"error" => {
                let err = value_member(data, b"error").unwrap_or_default();
                openai_error_event(
                    out,
                    str_member(err, b"message").unwrap_or(b"the provider reported an error"),
                    str_member(err, b"type").unwrap_or_default(),
                );
                self.ended = true;
            }
            _ => {}
        }
    }

    fn text(&self, raw: &[u8], out: &mut Vec<u8>) {
        self.chunks.chunk(out, None, |out| {
            out.extend_from_slice(b"{\"content\":\"");
            out.extend_from_slice(raw);
            out.extend_from_slice(b"\"}");
        });
    }

    fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.ensure_started();
        if self.client_usage {
            self.chunks.usage(out, &o.usage);
        }
        OpenAiChunks::done(out);
    }
}

// --------------------------------------------------------------------- Gemini → OpenAI

#[derive(Debug)]
pub struct FromGemini {
    chunks: OpenAiChunks,
    created: u64,
    client_usage: bool,
    /// Function calls relayed so far (the next one's OpenAI index).
    calls: u64,
    ended: bool,
}

impl FromGemini {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if let Some(err) = value_member(data, b"error").filter(|e| e.first() == Some(&b'{')) {
            openai_error_event(
                out,
                str_member(err, b"message").unwrap_or(b"the provider reported an error"),
                str_member(err, b"status").unwrap_or_default(),
            );
            self.ended = true;
            return;
        }
        if !self.chunks.is_started() {
            self.chunks.start(
                str_member(data, b"responseId").unwrap_or_default(),
                str_member(data, b"modelVersion").unwrap_or_default(),
                self.created,
            );
            self.chunks.chunk(out, None, |out| {
                out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}");
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
                    self.chunks.chunk(out, None, |out| {
                        out.extend_from_slice(b"{\"content\":\"");
                        out.extend_from_slice(text);
                        out.extend_from_slice(b"\"}");
                    });
                }
                if let Some(call) = value_member(part, b"functionCall") {
                    let k = self.calls;
                    self.calls += 1;
                    let name = str_member(call, b"name").unwrap_or_default();
                    let id = str_member(call, b"id").filter(|i| safe_raw(i));
                    let mut args = Vec::with_capacity(64);
                    minify_into(&mut args, value_member(call, b"args").unwrap_or(b"{}"));
                    self.chunks.chunk(out, None, |out| {
                        out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                        json::uint(out, k);
                        out.extend_from_slice(b",\"id\":\"");
                        match id {
                            Some(id) => out.extend_from_slice(id),
                            None => {
                                out.extend_from_slice(b"call_");
                                json::uint(out, k);
                            }
                        }
                        out.extend_from_slice(
                            b"\",\"type\":\"function\",\"function\":{\"name\":\"",
                        );
                        out.extend_from_slice(name);
                        out.extend_from_slice(b"\",\"arguments\":");
                        json::string(out, &args);
                        out.extend_from_slice(b"}}]}");
                    });
                }
            }
        }
        if let Some(reason) = str_member(candidate, b"finishReason") {
            let finish = super::openai_finish_from_gemini(reason, self.calls > 0);
            self.chunks
                .chunk(out, Some(finish), |out| out.extend_from_slice(b"{}"));
        }
    }

    fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
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

// ------------------------------------------------------------------ OpenAI → Anthropic

#[derive(Debug, Default)]
pub struct FromOpenAi {
    started: bool,
    /// The next content block's index.
    next_block: u64,
    /// The block open for more deltas (text or the latest tool call).
    open: Option<u64>,
    /// The open block is text.
    open_is_text: bool,
    /// (OpenAI tool-call index, Anthropic block index) of each call.
    tools: Vec<(u64, u64)>,
    finish: Option<&'static [u8]>,
    ended: bool,
}

/// The end of an Anthropic stream: the open content block's `content_block_stop` (if one is
/// open), `message_delta` with the stop reason and usage, and `message_stop`. What a
/// translated stream ends with, and what the relay writes when it cuts a stream at a budget
/// cap (`stop_reason: max_tokens`).
pub fn anthropic_end(out: &mut Vec<u8>, open_block: Option<u64>, stop_reason: &[u8], u: &Usage) {
    if let Some(b) = open_block {
        anthropic_event(out, b"content_block_stop", |out| {
            out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
            json::uint(out, b);
            out.push(b'}');
        });
    }
    anthropic_event(out, b"message_delta", |out| {
        out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        out.extend_from_slice(stop_reason);
        out.extend_from_slice(b"\",\"stop_sequence\":null},");
        anthropic_usage(out, u);
        out.push(b'}');
    });
    anthropic_event(out, b"message_stop", |out| {
        out.extend_from_slice(b"{\"type\":\"message_stop\"}");
    });
}

fn anthropic_event(out: &mut Vec<u8>, name: &[u8], body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\ndata: ");
    body(out);
    out.extend_from_slice(b"\n\n");
}

impl FromOpenAi {
    fn start(&mut self, id: &[u8], model: &[u8], out: &mut Vec<u8>) {
        self.started = true;
        anthropic_event(out, b"message_start", |out| {
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

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if let Some(b) = self.open.take() {
            anthropic_event(out, b"content_block_stop", |out| {
                out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
                json::uint(out, b);
                out.push(b'}');
            });
        }
    }

    fn open_block(
        &mut self,
        out: &mut Vec<u8>,
        text: bool,
        block: impl FnOnce(&mut Vec<u8>),
    ) -> u64 {
        self.close_open(out);
        let b = self.next_block;
        self.next_block += 1;
        self.open = Some(b);
        self.open_is_text = text;
        anthropic_event(out, b"content_block_start", |out| {
            out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
            json::uint(out, b);
            out.extend_from_slice(b",\"content_block\":");
            block(out);
            out.push(b'}');
        });
        b
    }

    fn delta(out: &mut Vec<u8>, b: u64, kind: &[u8], field: &[u8], raw: &[u8]) {
        anthropic_event(out, b"content_block_delta", |out| {
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

    fn event(&mut self, data: &[u8], o: &Observed, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if data == b"[DONE]" {
            self.end(o, out);
            return;
        }
        if let Some(err) = value_member(data, b"error").filter(|e| e.first() == Some(&b'{')) {
            anthropic_event(out, b"error", |out| {
                out.extend_from_slice(
                    b"{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"",
                );
                out.extend_from_slice(
                    str_member(err, b"message").unwrap_or(b"the provider reported an error"),
                );
                out.extend_from_slice(b"\"}}");
            });
            self.ended = true;
            return;
        }
        if !self.started {
            self.start(
                str_member(data, b"id").unwrap_or_default(),
                str_member(data, b"model").unwrap_or_default(),
                out,
            );
        }
        let Some(choices) = value_member(data, b"choices") else {
            return;
        };
        for r in elements(choices) {
            let choice = &choices[r];
            if uint_member(choice, b"index").unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = value_member(choice, b"delta") {
                if let Some(text) = str_member(delta, b"content").filter(|t| !t.is_empty()) {
                    let b = match self.open {
                        Some(b) if self.open_is_text => b,
                        _ => self.open_block(out, true, |out| {
                            out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}");
                        }),
                    };
                    Self::delta(out, b, b"text_delta", b"text", text);
                }
                if let Some(calls) = value_member(delta, b"tool_calls") {
                    for r in elements(calls) {
                        let call = &calls[r];
                        let index = uint_member(call, b"index").unwrap_or(0);
                        let f = value_member(call, b"function").unwrap_or_default();
                        let block = match self.tools.iter().find(|t| t.0 == index) {
                            Some(&(_, b)) => b,
                            None => {
                                let id = str_member(call, b"id").unwrap_or_default();
                                let name = str_member(f, b"name").unwrap_or_default();
                                let b = self.open_block(out, false, |out| {
                                    out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"");
                                    out.extend_from_slice(id);
                                    out.extend_from_slice(b"\",\"name\":\"");
                                    out.extend_from_slice(name);
                                    out.extend_from_slice(b"\",\"input\":{}}");
                                });
                                self.tools.push((index, b));
                                b
                            }
                        };
                        if let Some(args) = str_member(f, b"arguments").filter(|a| !a.is_empty()) {
                            Self::delta(out, block, b"input_json_delta", b"partial_json", args);
                        }
                    }
                }
            }
            if let Some(reason) = str_member(choice, b"finish_reason") {
                self.finish = Some(super::anthropic_stop_from_openai(reason));
            }
        }
    }

    fn end(&mut self, o: &Observed, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if !self.started {
            self.start(b"", b"", out);
        }
        let open = self.open.take();
        anthropic_end(out, open, self.finish.unwrap_or(b"end_turn"), &o.usage);
    }
}
