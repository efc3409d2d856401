//! A cached answer: the provider's answer normalised (`dialect::norm`), owned, with the usage
//! the provider reported and what the call cost. Filled from the provider's body — a whole
//! JSON answer or a stream's events, read by the provider dialect's readers — and rendered for
//! each hit by the client dialect's writers, as a JSON answer or as a stream: a stream fills
//! an entry that serves JSON requests and the reverse.
//!
//! What a hit carries: the text, tool calls (id, name, arguments), why it ended, the
//! provider's response id and model, and the original usage. What it does not: a provider's
//! extras outside the normalised form (reasoning text, citations); requests asking for what
//! the entry cannot hold (several choices, log probabilities) are never cached
//! (`cache::key`).

use crate::dialect::Dialect;
use crate::dialect::norm::{Answer, AnswerCall, Args, Event, Finish, write_value};
use crate::json::Scratch;
use crate::translate::response::{read_answer, write_answer};
use crate::translate::stream::{EventWriter, read_stream};
use crate::usage::Observed;

use super::key::Op;

/// One cached answer; immutable once stored (shared between workers behind an `Arc`).
#[derive(Debug)]
pub struct Entry {
    /// Who may be served it, and for which model and dialect: checked on every hit.
    pub scope: Box<str>,
    pub model: Box<str>,
    pub op: Op,
    pub id: Box<str>,
    pub response_model: Box<str>,
    pub text: String,
    pub calls: Vec<Call>,
    pub finish: Finish,
    /// The provider's usage (and ids) as the meter read them.
    pub observed: Observed,
    /// What the call cost when it was made: what a hit saves.
    pub cost_micro_usd: u64,
    /// µs since the Unix epoch when it was stored (a hit's `age`).
    pub stored_us: u64,
    /// The JSON body exactly as the client received it, when it came from a provider of the
    /// client's own dialect (replayed as it is: nothing of the provider's is lost).
    pub verbatim: Option<Box<[u8]>>,
}

#[derive(Debug)]
pub struct Call {
    pub id: Option<String>,
    pub name: String,
    /// The arguments as JSON text.
    pub args: String,
}

/// A tool call as a stream's events build it: raw JSON string contents.
#[derive(Default)]
struct RawCall {
    id: Option<Vec<u8>>,
    name: Vec<u8>,
    args: Vec<u8>,
    /// `args` is a whole JSON value (Gemini), not string contents.
    whole: bool,
}

/// Who, which model, which dialect: what an entry is for.
#[derive(Clone, Copy, Debug)]
pub struct Tag<'a> {
    pub scope: &'a str,
    pub model: &'a str,
    pub op: Op,
}

/// Room an entry takes besides its strings (the map slot, the LRU mark, the `Arc`).
const OVERHEAD_BYTES: usize = 256;

impl Entry {
    /// Bytes this entry holds, for the cache's byte bound.
    pub fn bytes(&self) -> usize {
        OVERHEAD_BYTES
            + self.scope.len()
            + self.model.len()
            + self.id.len()
            + self.response_model.len()
            + self.text.len()
            + self.verbatim.as_ref().map_or(0, |v| v.len())
            + self
                .calls
                .iter()
                .map(|c| 48 + c.id.as_ref().map_or(0, String::len) + c.name.len() + c.args.len())
                .sum::<usize>()
    }

    /// Is this entry for `tag`? (The hash says so already; this makes it certain.)
    pub fn is_for(&self, tag: &Tag<'_>) -> bool {
        &*self.scope == tag.scope && &*self.model == tag.model && self.op == tag.op
    }

    /// An entry from a provider's complete response body: a JSON answer, or (`stream`) the
    /// whole event stream. `None` when the body does not read as a complete answer.
    pub fn from_body(
        tag: &Tag<'_>,
        provider: Dialect,
        stream: bool,
        body: &[u8],
        observed: &Observed,
        scratch: &mut Scratch,
    ) -> Option<Entry> {
        let mut e = Entry {
            scope: tag.scope.into(),
            model: tag.model.into(),
            op: tag.op,
            id: Box::from(""),
            response_model: Box::from(""),
            text: String::new(),
            calls: Vec::new(),
            finish: Finish::Stop,
            observed: *observed,
            cost_micro_usd: 0,
            stored_us: 0,
            verbatim: None,
        };
        if stream {
            e.read_events(provider, body)?;
        } else {
            read_answer(provider, body, scratch, |a| e.take_answer(a)).ok()?;
        }
        Some(e)
    }

    fn take_answer(&mut self, a: &Answer<'_, '_>) {
        self.id = a.id.into();
        self.response_model = a.model.into();
        self.text = a.text.concat();
        self.finish = a.finish;
        for c in &a.calls {
            let args = match c.args {
                Args::Text(t) => t.to_owned(),
                Args::Json(Some(v)) => {
                    let mut out = Vec::new();
                    write_value(&mut out, v);
                    String::from_utf8(out).unwrap_or_default()
                }
                Args::Json(None) => "{}".to_owned(),
            };
            self.calls.push(Call {
                id: c.id.map(str::to_owned),
                name: c.name.to_owned(),
                args,
            });
        }
    }

    /// Collects a stream's events; `None` unless the stream said why it ended and ended
    /// without an error.
    fn read_events(&mut self, provider: Dialect, body: &[u8]) -> Option<()> {
        let mut raw_text = Vec::new();
        let mut raw_calls: Vec<RawCall> = Vec::new();
        let (mut id, mut model) = (Vec::new(), Vec::new());
        let (mut finish, mut failed) = (None, false);
        read_stream(provider, body, |e| match e {
            Event::Start { id: i, model: m } => {
                id = i.to_vec();
                model = m.to_vec();
            }
            Event::Text(t) => raw_text.extend_from_slice(t),
            Event::ToolCall {
                index,
                id,
                name,
                args,
            } => {
                let i = index as usize;
                if raw_calls.len() <= i {
                    raw_calls.resize_with(i + 1, RawCall::default);
                }
                let c = &mut raw_calls[i];
                c.id = id.map(<[u8]>::to_vec);
                c.name = name.to_vec();
                if let Some(a) = args {
                    // Whole arguments as a JSON value (Gemini), not string contents.
                    c.args = a.to_vec();
                    c.whole = true;
                }
            }
            Event::ToolArgs { index, raw } => {
                if let Some(c) = raw_calls.get_mut(index as usize) {
                    c.args.extend_from_slice(raw);
                }
            }
            Event::Finish(f) => finish = Some(f),
            Event::End => {}
            Event::Error { .. } => failed = true,
        })
        .ok()?;
        if failed {
            return None;
        }
        self.finish = finish?;
        self.id = unescape(&id)?.into();
        self.response_model = unescape(&model)?.into();
        self.text = unescape(&raw_text)?;
        for c in raw_calls {
            let id = match c.id {
                Some(i) => Some(unescape(&i)?),
                None => None,
            };
            let args = if c.whole {
                String::from_utf8(c.args).ok()?
            } else {
                unescape(&c.args)?
            };
            self.calls.push(Call {
                id,
                name: unescape(&c.name)?,
                args,
            });
        }
        Some(())
    }

    fn answer(&self) -> Answer<'_, 'static> {
        Answer {
            id: &self.id,
            model: &self.response_model,
            text: if self.text.is_empty() {
                Vec::new()
            } else {
                vec![self.text.as_str()]
            },
            calls: self
                .calls
                .iter()
                .map(|c| AnswerCall {
                    id: c.id.as_deref(),
                    name: &c.name,
                    args: Args::Text(&c.args),
                })
                .collect(),
            finish: self.finish,
        }
    }

    /// The answer as a JSON body in `client`'s dialect (the client's dialect is the one the
    /// entry was filled for: the key says so).
    pub fn write_json(&self, client: Dialect, created: u64, out: &mut Vec<u8>) {
        if let Some(v) = &self.verbatim {
            out.extend_from_slice(v);
            return;
        }
        write_answer(client, &self.answer(), &self.observed, created, out);
    }

    /// The answer as a complete event stream in `client`'s dialect: start, the text, each
    /// tool call and its arguments, why it ended, the usage and the dialect's end.
    pub fn write_stream(&self, client: Dialect, w: StreamForm, out: &mut Vec<u8>) {
        let mut writer = EventWriter::new(client, w.client_usage, w.gemini_array, w.created);
        let o = &self.observed;
        let (id, model) = (escaped(&self.id), escaped(&self.response_model));
        writer.write(
            Event::Start {
                id: &id,
                model: &model,
            },
            o,
            out,
        );
        if !self.text.is_empty() {
            writer.write(Event::Text(&escaped(&self.text)), o, out);
        }
        for (i, c) in self.calls.iter().enumerate() {
            let cid = c.id.as_deref().map(escaped);
            writer.write(
                Event::ToolCall {
                    index: i as u64,
                    id: cid.as_deref(),
                    name: &escaped(&c.name),
                    args: None,
                },
                o,
                out,
            );
            writer.write(
                Event::ToolArgs {
                    index: i as u64,
                    raw: &escaped(&c.args),
                },
                o,
                out,
            );
        }
        writer.write(Event::Finish(self.finish), o, out);
        writer.write(Event::End, o, out);
    }
}

/// How a stream hit is written: what the client asked of its stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamForm {
    /// An OpenAI client asked for the usage chunk.
    pub client_usage: bool,
    /// A Gemini client without `alt=sse`: one JSON array.
    pub gemini_array: bool,
    pub created: u64,
}

/// `s` as JSON string contents (escaped, without the quotes).
fn escaped(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    crate::json::escaped(&mut out, s.as_bytes());
    out
}

/// Raw JSON string contents, unescaped (`None` when they are not UTF-8).
fn unescape(raw: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(raw.len());
    crate::json::unescape(raw, &mut out);
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: Tag<'static> = Tag {
        scope: "team:a",
        model: "m",
        op: Op::Chat,
    };

    #[test]
    fn a_stream_fills_an_entry_that_renders_both_ways() {
        let body = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"x\\\"\"}}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";
        let mut s = Scratch::default();
        let o = Observed::default();
        let e = Entry::from_body(&TAG, Dialect::OpenAi, true, body, &o, &mut s).unwrap();
        assert_eq!(e.text, "Hello \"x\"");
        assert_eq!(&*e.id, "c1");
        assert_eq!(e.finish, Finish::Stop);
        let mut json = Vec::new();
        e.write_json(Dialect::Anthropic, 1, &mut json);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["content"][0]["text"], "Hello \"x\"");
        let mut sse = Vec::new();
        e.write_stream(Dialect::OpenAi, StreamForm::default(), &mut sse);
        let again = Entry::from_body(&TAG, Dialect::OpenAi, true, &sse, &o, &mut s).unwrap();
        assert_eq!(again.text, e.text);
        assert!(sse.ends_with(b"data: [DONE]\n\n"));
    }

    #[test]
    fn a_cut_or_failed_stream_fills_nothing() {
        let cut = b"data: {\"id\":\"c1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        let mut s = Scratch::default();
        let o = Observed::default();
        assert!(Entry::from_body(&TAG, Dialect::OpenAi, true, cut, &o, &mut s).is_none());
    }

    #[test]
    fn a_json_answer_with_tool_calls_round_trips() {
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"ok"},{"type":"tool_use","id":"tu_1","name":"get","input":{"city":"Paris"}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#;
        let mut s = Scratch::default();
        let o = Observed::default();
        let e = Entry::from_body(&TAG, Dialect::Anthropic, false, body, &o, &mut s).unwrap();
        assert_eq!(e.calls.len(), 1);
        assert_eq!(e.calls[0].args, r#"{"city":"Paris"}"#);
        assert_eq!(e.finish, Finish::ToolCalls);
        let mut sse = Vec::new();
        e.write_stream(Dialect::Anthropic, StreamForm::default(), &mut sse);
        let again = Entry::from_body(&TAG, Dialect::Anthropic, true, &sse, &o, &mut s).unwrap();
        assert_eq!(again.calls[0].args, e.calls[0].args);
        assert_eq!(again.calls[0].name, "get");
        assert_eq!(again.text, "ok");
        assert!(e.is_for(&TAG));
        assert!(!e.is_for(&Tag {
            scope: "team:b",
            ..TAG
        }));
    }
}
