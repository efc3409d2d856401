//! The translation conformance suite. Every model-response capture in the corpus (OpenAI Chat
//! and OpenAI-compatible, OpenAI Responses, Anthropic, Gemini) is translated into each of the
//! three other client dialects by the relay's tap,
//! whole and split at every byte offset (the output must not depend on where reads end), and
//! what a client of that dialect assembles from it (read here with serde_json, independently
//! of the gateway) must match the MANIFEST: text, tool-call ids, names and arguments, the
//! finish reason in the client's words, and usage (cache and reasoning tokens included).
//! Then the same through the running gateway, with the captures replayed by a provider over
//! real sockets, and the translated requests checked at the provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use serde::Deserialize;
use serde_json::{Value, json};
use support::*;
use tollgate::dialect::Dialect;
use tollgate::json::Scratch;
use tollgate::stream::Meter;
use tollgate::translate::Pair;

#[derive(Deserialize)]
struct Manifest {
    file: Vec<Entry>,
}

#[derive(Deserialize, Clone)]
struct Entry {
    path: String,
    kind: String,
    format: String,
    expected: Expected,
}

#[derive(Deserialize, Clone, Default)]
struct Expected {
    usage_present: Option<bool>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cached_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    finish_reason: Option<String>,
    stop_reason: Option<String>,
    error_type: Option<String>,
    text: Option<String>,
    text_sha256: Option<String>,
    tool_calls: Option<Vec<Call>>,
}

#[derive(Deserialize, Clone, Debug, PartialEq)]
struct Call {
    id: String,
    name: String,
    arguments: String,
}

fn manifest() -> Vec<Entry> {
    toml::from_str::<Manifest>(&manifest_text()).unwrap().file
}

/// The dialect a capture is in (as a provider's answer).
fn provider_of(entry: &Entry) -> Option<Dialect> {
    match entry.format.as_str() {
        "anthropic.messages.json" | "anthropic.messages.stream" => Some(Dialect::Anthropic),
        "gemini.generate_content.json" | "gemini.generate_content.stream" => Some(Dialect::Gemini),
        "openai.chat.json" | "openai.chat.stream" => Some(Dialect::OpenAi),
        "openai.responses.json" | "openai.responses.stream" => Some(Dialect::Responses),
        "bedrock.converse.json" | "bedrock.converse.stream" => Some(Dialect::Bedrock),
        _ => None,
    }
}

const DIALECTS: [Dialect; 5] = [
    Dialect::OpenAi,
    Dialect::Responses,
    Dialect::Anthropic,
    Dialect::Gemini,
    Dialect::Bedrock,
];

/// The translation a capture goes through when a provider replays it to the gateway (one
/// client dialect per provider dialect).
fn pair_for(entry: &Entry) -> Option<Pair> {
    match entry.format.as_str() {
        "anthropic.messages.json" | "anthropic.messages.stream" => Some(Pair::OPENAI_TO_ANTHROPIC),
        "gemini.generate_content.json" | "gemini.generate_content.stream" => {
            Some(Pair::OPENAI_TO_GEMINI)
        }
        "openai.chat.json" | "openai.chat.stream" => Some(Pair::ANTHROPIC_TO_OPENAI),
        _ => None,
    }
}

// ------------------------------------------------------------ what a client assembles

#[derive(Debug, Default, PartialEq)]
struct Assembled {
    text: String,
    calls: Vec<Call>,
    finish: Option<String>,
    /// (all input, output, cache read, cache written, reasoning)
    usage: Option<(u64, u64, u64, u64, u64)>,
    /// The stream ended properly (`[DONE]` / `message_stop`).
    ended: bool,
    error: Option<String>,
}

fn data_events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let mut event = None;
            let mut data = String::new();
            for line in e.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                } else {
                    panic!("unexpected line {line:?} in {e:?}");
                }
            }
            (event, data)
        })
        .collect()
}

/// An OpenAI Chat Completions stream, as the OpenAI SDK accumulates it: tool calls by index
/// (an id starts one; arguments append), finish reason, usage chunk, `[DONE]`.
fn openai_stream(text: &str) -> Assembled {
    let mut a = Assembled::default();
    for (event, data) in data_events(text) {
        assert!(!a.ended, "nothing after [DONE]: {data}");
        if data == "[DONE]" {
            a.ended = true;
            continue;
        }
        let v: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
        if let Some(err) = v.get("error") {
            assert_eq!(event.as_deref(), Some("error"));
            a.error = Some(err["type"].as_str().unwrap().to_owned());
            continue;
        }
        assert_eq!(v["object"], "chat.completion.chunk", "{data}");
        assert!(v["id"].is_string() && v["created"].is_u64(), "{data}");
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            assert_eq!(v["choices"], json!([]), "usage comes in its own chunk");
            a.usage = Some(openai_usage(u));
        }
        for c in v["choices"].as_array().unwrap() {
            assert_eq!(c["index"], 0);
            let d = &c["delta"];
            if let Some(t) = d["content"].as_str() {
                a.text.push_str(t);
            }
            for tc in d["tool_calls"].as_array().into_iter().flatten() {
                let k = tc["index"].as_u64().unwrap() as usize;
                if let Some(id) = tc["id"].as_str() {
                    assert_eq!(
                        k,
                        a.calls.len(),
                        "tool indexes are dense and stable: {data}"
                    );
                    assert_eq!(tc["type"], "function");
                    a.calls.push(Call {
                        id: id.to_owned(),
                        name: tc["function"]["name"].as_str().unwrap().to_owned(),
                        arguments: String::new(),
                    });
                }
                if let Some(args) = tc["function"]["arguments"].as_str() {
                    a.calls[k].arguments.push_str(args);
                }
            }
            if let Some(f) = c["finish_reason"].as_str() {
                assert!(a.finish.is_none(), "one finish reason");
                a.finish = Some(f.to_owned());
            }
        }
    }
    a
}

fn openai_usage(u: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    assert_eq!(
        n(&u["total_tokens"]),
        n(&u["prompt_tokens"]) + n(&u["completion_tokens"])
    );
    (
        n(&u["prompt_tokens"]),
        n(&u["completion_tokens"]),
        n(&u["prompt_tokens_details"]["cached_tokens"]),
        0,
        n(&u["completion_tokens_details"]["reasoning_tokens"]),
    )
}

fn openai_json(v: &Value) -> Assembled {
    assert_eq!(v["object"], "chat.completion", "{v}");
    let c = &v["choices"][0];
    let m = &c["message"];
    assert_eq!(m["role"], "assistant");
    Assembled {
        text: m["content"].as_str().unwrap_or_default().to_owned(),
        calls: m["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|tc| Call {
                id: tc["id"].as_str().unwrap().to_owned(),
                name: tc["function"]["name"].as_str().unwrap().to_owned(),
                arguments: tc["function"]["arguments"].as_str().unwrap().to_owned(),
            })
            .collect(),
        finish: c["finish_reason"].as_str().map(str::to_owned),
        usage: Some(openai_usage(&v["usage"])),
        ended: true,
        error: None,
    }
}

/// An Anthropic Messages stream, as the Anthropic SDK accumulates it: blocks by index,
/// `input_json_delta` fragments joined, stop reason and usage from `message_delta`.
fn anthropic_stream(text: &str) -> Assembled {
    let mut a = Assembled::default();
    let mut blocks: Vec<(String, Option<usize>)> = Vec::new(); // (type, call index)
    let mut input = (0, 0, 0);
    let mut open = std::collections::HashSet::new();
    for (event, data) in data_events(text) {
        assert!(!a.ended, "nothing after message_stop");
        let v: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
        let kind = v["type"].as_str().unwrap();
        assert_eq!(event.as_deref(), Some(kind), "event name = data type");
        match kind {
            "message_start" => {
                assert_eq!(v["message"]["role"], "assistant");
                let u = &v["message"]["usage"];
                input = (
                    u["input_tokens"].as_u64().unwrap(),
                    u["cache_read_input_tokens"].as_u64().unwrap_or(0),
                    u["cache_creation_input_tokens"].as_u64().unwrap_or(0),
                );
            }
            "content_block_start" => {
                let i = v["index"].as_u64().unwrap() as usize;
                assert_eq!(i, blocks.len(), "block indexes are dense");
                assert!(open.insert(i));
                let b = &v["content_block"];
                let t = b["type"].as_str().unwrap().to_owned();
                let call = (t == "tool_use").then(|| {
                    a.calls.push(Call {
                        id: b["id"].as_str().unwrap().to_owned(),
                        name: b["name"].as_str().unwrap().to_owned(),
                        arguments: String::new(),
                    });
                    a.calls.len() - 1
                });
                blocks.push((t, call));
            }
            "content_block_delta" => {
                let i = v["index"].as_u64().unwrap() as usize;
                let d = &v["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => {
                        assert_eq!(blocks[i].0, "text");
                        a.text.push_str(d["text"].as_str().unwrap());
                    }
                    "input_json_delta" => {
                        let k = blocks[i].1.expect("a tool_use block");
                        a.calls[k]
                            .arguments
                            .push_str(d["partial_json"].as_str().unwrap());
                    }
                    other => panic!("delta {other}"),
                }
            }
            "content_block_stop" => {
                assert!(open.remove(&(v["index"].as_u64().unwrap() as usize)));
            }
            "message_delta" => {
                a.finish = v["delta"]["stop_reason"].as_str().map(str::to_owned);
                let u = &v["usage"];
                if let Some(i) = u["input_tokens"].as_u64() {
                    input = (
                        i,
                        u["cache_read_input_tokens"].as_u64().unwrap_or(0),
                        u["cache_creation_input_tokens"].as_u64().unwrap_or(0),
                    );
                }
                a.usage = Some((
                    input.0 + input.1 + input.2,
                    u["output_tokens"].as_u64().unwrap(),
                    input.1,
                    input.2,
                    0,
                ));
            }
            "message_stop" => {
                assert!(open.is_empty(), "every block stopped before message_stop");
                a.ended = true;
            }
            "error" => a.error = Some(v["error"]["type"].as_str().unwrap().to_owned()),
            "ping" => {}
            other => panic!("event {other}"),
        }
    }
    a
}

fn anthropic_json(v: &Value) -> Assembled {
    assert_eq!(v["type"], "message", "{v}");
    let mut a = Assembled {
        finish: v["stop_reason"].as_str().map(str::to_owned),
        ended: true,
        ..Assembled::default()
    };
    for b in v["content"].as_array().unwrap() {
        match b["type"].as_str().unwrap() {
            "text" => a.text.push_str(b["text"].as_str().unwrap()),
            "tool_use" => a.calls.push(Call {
                id: b["id"].as_str().unwrap().to_owned(),
                name: b["name"].as_str().unwrap().to_owned(),
                arguments: serde_json::to_string(&b["input"]).unwrap(),
            }),
            other => panic!("block {other}"),
        }
    }
    let u = &v["usage"];
    let (i, r, w) = (
        u["input_tokens"].as_u64().unwrap(),
        u["cache_read_input_tokens"].as_u64().unwrap_or(0),
        u["cache_creation_input_tokens"].as_u64().unwrap_or(0),
    );
    a.usage = Some((i + r + w, u["output_tokens"].as_u64().unwrap(), r, w, 0));
    a
}

/// A Responses API stream, as the OpenAI SDK's `responses.stream` accumulates it: text
/// deltas, function calls by output index, the terminal event's response (whose output must
/// agree with the deltas), `sequence_number` counting from 0.
fn responses_stream(text: &str) -> Assembled {
    let mut a = Assembled::default();
    let mut calls: Vec<(u64, Call)> = Vec::new();
    for (n, (event, data)) in data_events(text).into_iter().enumerate() {
        assert!(!a.ended, "nothing after the terminal event: {data}");
        let v: Value = serde_json::from_str(&data).unwrap();
        let ty = v["type"].as_str().unwrap();
        assert_eq!(event.as_deref(), Some(ty), "{data}");
        assert_eq!(v["sequence_number"], n as u64, "{data}");
        match ty {
            "response.output_text.delta" => a.text.push_str(v["delta"].as_str().unwrap()),
            "response.output_item.added" if v["item"]["type"] == "function_call" => {
                calls.push((
                    v["output_index"].as_u64().unwrap(),
                    Call {
                        id: v["item"]["call_id"].as_str().unwrap().to_owned(),
                        name: v["item"]["name"].as_str().unwrap().to_owned(),
                        arguments: String::new(),
                    },
                ));
            }
            "response.function_call_arguments.delta" => {
                let i = v["output_index"].as_u64().unwrap();
                let c = calls.iter_mut().find(|(o, _)| *o == i).unwrap();
                c.1.arguments.push_str(v["delta"].as_str().unwrap());
            }
            "response.completed" | "response.incomplete" => {
                let whole = responses_json(&v["response"]);
                assert_eq!(whole.text, a.text, "the final output repeats the deltas");
                a.finish = whole.finish;
                a.usage = whole.usage;
                a.ended = true;
            }
            "error" => a.error = v["message"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    a.calls = calls.into_iter().map(|(_, c)| c).collect();
    a
}

fn responses_json(v: &Value) -> Assembled {
    assert_eq!(v["object"], "response", "{v}");
    let mut a = Assembled {
        ended: true,
        ..Assembled::default()
    };
    for item in v["output"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => {
                for p in item["content"].as_array().unwrap() {
                    a.text.push_str(p["text"].as_str().unwrap());
                }
            }
            "function_call" => a.calls.push(Call {
                id: item["call_id"].as_str().unwrap().to_owned(),
                name: item["name"].as_str().unwrap().to_owned(),
                arguments: item["arguments"].as_str().unwrap().to_owned(),
            }),
            other => panic!("{other}: {v}"),
        }
    }
    a.finish = v["status"].as_str().map(str::to_owned);
    let u = &v["usage"];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    assert_eq!(
        n(&u["total_tokens"]),
        n(&u["input_tokens"]) + n(&u["output_tokens"])
    );
    a.usage = Some((
        n(&u["input_tokens"]),
        n(&u["output_tokens"]),
        n(&u["input_tokens_details"]["cached_tokens"]),
        0,
        n(&u["output_tokens_details"]["reasoning_tokens"]),
    ));
    a
}

/// A Gemini answer: one `generateContent` response, or the chunks of a stream (SSE), parts
/// appended, the last `usageMetadata` and `finishReason` winning. Output is normalised to
/// include thoughts, as the other dialects count it.
fn gemini_chunks(chunks: &[Value]) -> Assembled {
    let mut a = Assembled::default();
    for v in chunks {
        if let Some(e) = v.get("error") {
            a.error = e["message"].as_str().map(str::to_owned);
            continue;
        }
        let c = &v["candidates"][0];
        for p in c["content"]["parts"].as_array().into_iter().flatten() {
            if let Some(t) = p["text"].as_str() {
                a.text.push_str(t);
            }
            if let Some(fc) = p.get("functionCall") {
                assert!(fc["args"].is_object(), "{v}");
                a.calls.push(Call {
                    id: fc["id"].as_str().unwrap().to_owned(),
                    name: fc["name"].as_str().unwrap().to_owned(),
                    arguments: fc["args"].to_string(),
                });
            }
        }
        if let Some(f) = c["finishReason"].as_str() {
            a.finish = Some(f.to_owned());
            a.ended = true;
        }
        let u = &v["usageMetadata"];
        if u.is_object() {
            let n = |v: &Value| v.as_u64().unwrap_or(0);
            let thoughts = n(&u["thoughtsTokenCount"]);
            a.usage = Some((
                n(&u["promptTokenCount"]),
                n(&u["candidatesTokenCount"]) + thoughts,
                n(&u["cachedContentTokenCount"]),
                0,
                thoughts,
            ));
        }
    }
    a
}

/// A Bedrock answer: a `converse` body, or the binary stream's messages (frames checked),
/// as boto3 assembles them. Input is normalised to include the cache parts.
fn bedrock(sse: bool, bytes: &[u8]) -> Assembled {
    let mut a = Assembled::default();
    let usage = |u: &Value| {
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        let (read, write) = (
            n(&u["cacheReadInputTokens"]),
            n(&u["cacheWriteInputTokens"]),
        );
        (
            n(&u["inputTokens"]) + read + write,
            n(&u["outputTokens"]),
            read,
            write,
            0,
        )
    };
    if !sse {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        for b in v["output"]["message"]["content"].as_array().unwrap() {
            if let Some(t) = b["text"].as_str() {
                a.text.push_str(t);
            }
            if let Some(t) = b.get("toolUse") {
                a.calls.push(Call {
                    id: t["toolUseId"].as_str().unwrap().to_owned(),
                    name: t["name"].as_str().unwrap().to_owned(),
                    arguments: t["input"].to_string(),
                });
            }
        }
        a.finish = v["stopReason"].as_str().map(str::to_owned);
        a.usage = Some(usage(&v["usage"]));
        a.ended = true;
        return a;
    }
    let mut blocks: Vec<(u64, usize)> = Vec::new();
    for (event, v) in eventstream_frames(bytes) {
        assert!(!a.ended, "nothing after metadata: {v}");
        match event.as_str() {
            "contentBlockStart" => {
                let t = &v["start"]["toolUse"];
                a.calls.push(Call {
                    id: t["toolUseId"].as_str().unwrap().to_owned(),
                    name: t["name"].as_str().unwrap().to_owned(),
                    arguments: String::new(),
                });
                blocks.push((v["contentBlockIndex"].as_u64().unwrap(), a.calls.len() - 1));
            }
            "contentBlockDelta" => {
                let d = &v["delta"];
                if let Some(t) = d["text"].as_str() {
                    a.text.push_str(t);
                } else if let Some(i) = d["toolUse"]["input"].as_str() {
                    let b = v["contentBlockIndex"].as_u64().unwrap();
                    let (_, c) = blocks.iter().find(|(x, _)| *x == b).unwrap();
                    a.calls[*c].arguments.push_str(i);
                }
            }
            "messageStop" => a.finish = v["stopReason"].as_str().map(str::to_owned),
            "metadata" => {
                a.usage = Some(usage(&v["usage"]));
                a.ended = true;
            }
            e if e.ends_with("Exception") => a.error = v["message"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    a
}

fn assemble(client: Dialect, sse: bool, bytes: &[u8]) -> Assembled {
    if client == Dialect::Bedrock {
        return bedrock(sse, bytes);
    }
    let text = std::str::from_utf8(bytes).unwrap();

    match (client, sse) {
        (Dialect::OpenAi, true) => openai_stream(text),
        (Dialect::OpenAi, false) => openai_json(&serde_json::from_str(text).unwrap()),
        (Dialect::Responses, true) => responses_stream(text),
        (Dialect::Responses, false) => responses_json(&serde_json::from_str(text).unwrap()),
        (Dialect::Gemini, true) => {
            let chunks: Vec<Value> = data_events(&text.replace("\r\n", "\n"))
                .into_iter()
                .map(|(event, data)| {
                    assert_eq!(event, None, "{data}");
                    serde_json::from_str(&data).unwrap()
                })
                .collect();
            gemini_chunks(&chunks)
        }
        (Dialect::Gemini, false) => gemini_chunks(&[serde_json::from_str(text).unwrap()]),
        (Dialect::Anthropic, true) => anthropic_stream(text),
        (Dialect::Anthropic, false) => anthropic_json(&serde_json::from_str(text).unwrap()),
        (Dialect::Bedrock, _) => unreachable!("assembled above"),
    }
}

/// How an answer ended, in no dialect's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Stop,
    Length,
    Tool,
    Filter,
}

/// The MANIFEST's finish reason in the client's words.
fn expected_finish(entry: &Entry, client: Dialect) -> Option<String> {
    let e = &entry.expected;
    let has_calls = e.tool_calls.as_ref().is_some_and(|c| !c.is_empty());
    let end = match (&e.stop_reason, &e.finish_reason) {
        (Some(s), _) => match s.as_str() {
            "max_tokens" => End::Length,
            "tool_use" => End::Tool,
            "refusal" => End::Filter,
            _ => End::Stop,
        },
        (None, Some(f)) => match f.as_str() {
            "length" | "MAX_TOKENS" | "incomplete" => End::Length,
            "content_filter" | "SAFETY" => End::Filter,
            "tool_calls" => End::Tool,
            _ if has_calls => End::Tool,
            _ => End::Stop,
        },
        (None, None) => return None,
    };
    let word = match (client, end) {
        (Dialect::OpenAi, End::Stop) => "stop",
        (Dialect::OpenAi, End::Length) => "length",
        (Dialect::OpenAi, End::Tool) => "tool_calls",
        (Dialect::OpenAi, End::Filter) => "content_filter",
        (Dialect::Anthropic, End::Stop | End::Filter) => "end_turn",
        (Dialect::Anthropic, End::Length) => "max_tokens",
        (Dialect::Anthropic, End::Tool) => "tool_use",
        (Dialect::Responses, End::Stop | End::Tool) => "completed",
        (Dialect::Responses, End::Length | End::Filter) => "incomplete",
        (Dialect::Gemini, End::Stop | End::Tool) => "STOP",
        (Dialect::Gemini, End::Length) => "MAX_TOKENS",
        (Dialect::Gemini, End::Filter) => "SAFETY",
        (Dialect::Bedrock, End::Stop) => "end_turn",
        (Dialect::Bedrock, End::Length) => "max_tokens",
        (Dialect::Bedrock, End::Tool) => "tool_use",
        (Dialect::Bedrock, End::Filter) => "content_filtered",
    };
    Some(word.to_owned())
}

/// Checks what a client assembled against the MANIFEST.
fn check(entry: &Entry, client: Dialect, a: &Assembled, what: &str) {
    let p = &entry.path;
    let e = &entry.expected;
    if let Some(t) = &e.text {
        assert_eq!(&a.text, t, "{p}: {what}: text");
    }
    if let Some(h) = &e.text_sha256 {
        assert_eq!(&sha256_hex(&a.text), h, "{p}: {what}: text sha256");
    }
    let want_calls = e.tool_calls.clone().unwrap_or_default();
    assert_eq!(a.calls.len(), want_calls.len(), "{p}: {what}: tool calls");
    for (got, want) in a.calls.iter().zip(&want_calls) {
        assert_eq!(got.id, want.id, "{p}: {what}");
        assert_eq!(got.name, want.name, "{p}: {what}");
        if entry.kind == "json" || p.starts_with("gemini/") || client == Dialect::Gemini {
            // Re-serialised arguments: the same JSON value.
            let g: Value = serde_json::from_str(&got.arguments).unwrap();
            let w: Value = serde_json::from_str(&want.arguments).unwrap();
            assert_eq!(g, w, "{p}: {what}: arguments");
        } else {
            assert_eq!(
                got.arguments, want.arguments,
                "{p}: {what}: argument fragments"
            );
        }
    }
    if e.error_type.is_some() {
        assert!(
            a.error.is_some(),
            "{p}: {what}: the error reaches the client"
        );
        assert!(
            !a.ended,
            "{p}: {what}: a failed stream does not end as if whole"
        );
        return;
    }
    assert_eq!(
        a.finish,
        expected_finish(entry, client),
        "{p}: {what}: finish"
    );
    assert!(a.ended, "{p}: {what}: ended properly");
    if e.usage_present == Some(false) {
        return;
    }
    let u = a.usage.unwrap_or_else(|| panic!("{p}: {what}: usage"));
    let cached = e.cached_input_tokens.unwrap_or(0);
    let written = e.cache_creation_input_tokens.unwrap_or(0);
    // Anthropic's input_tokens is the uncached part; the others count all input.
    let all_input = if p.starts_with("anthropic/") || p.starts_with("bedrock/") {
        e.input_tokens.unwrap() + cached + written
    } else {
        e.input_tokens.unwrap()
    };
    let reasoning = e.reasoning_tokens.unwrap_or(0);
    // Gemini's visible output excludes thoughts; OpenAI's completion tokens include them.
    let output = e.output_tokens.unwrap()
        + if p.starts_with("gemini/") {
            reasoning
        } else {
            0
        };
    assert_eq!(u.0, all_input, "{p}: {what}: input");
    assert_eq!(u.1, output, "{p}: {what}: output");
    assert_eq!(u.2, cached, "{p}: {what}: cache read");
    if matches!(client, Dialect::Anthropic | Dialect::Bedrock) {
        assert_eq!(u.3, written, "{p}: {what}: cache written");
    } else if p.starts_with("gemini/") {
        assert_eq!(u.4, reasoning, "{p}: {what}: reasoning");
    }
}

// ----------------------------------------------------------------- the tap, every split

fn translate(pair: Pair, sse: bool, client_usage: bool, pieces: &[&[u8]]) -> Vec<u8> {
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    m.start(pair.provider(), sse, false, false);
    m.translate(pair, client_usage, false, 1_700_000_000);
    let mut out = Vec::new();
    for p in pieces {
        m.pass(p, &mut out, &mut scratch);
    }
    m.end(Some(&mut out), &mut scratch);
    assert_eq!(m.translation_failed(), None);
    out
}

#[test]
fn every_capture_translates_as_the_manifest_says_at_every_split() {
    let mut checked = 0;
    for entry in manifest() {
        let Some(provider) = provider_of(&entry) else {
            continue;
        };
        let bytes = capture(&entry.path);
        let sse = entry.kind == "stream";
        for client in DIALECTS {
            let Some(pair) = Pair::between(client, provider) else {
                continue;
            };
            let what = format!("{} for a {client:?} client", entry.path);
            let whole = translate(pair, sse, true, &[&bytes]);
            let a = assemble(client, sse, &whole);
            check(&entry, client, &a, &format!("{client:?} client, whole"));
            for cut in 0..=bytes.len() {
                let out = translate(pair, sse, true, &[&bytes[..cut], &bytes[cut..]]);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&whole),
                    "{what} split at {cut}"
                );
            }
            let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(
                translate(pair, sse, true, &pieces),
                whole,
                "{what} byte by byte"
            );
            if sse && client == Dialect::OpenAi {
                // No usage chunk unless the client asked for one; the rest is the same.
                let quiet = openai_stream(
                    std::str::from_utf8(&translate(pair, sse, false, &[&bytes])).unwrap(),
                );
                assert_eq!(quiet.usage, None, "{what}");
                assert_eq!(
                    (quiet.text, quiet.calls, quiet.finish),
                    (a.text, a.calls, a.finish)
                );
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        28 * 4,
        "every model-answer capture of the four dialects, for each of the three other client \
         dialects"
    );
}

#[test]
fn error_bodies_are_translated_into_the_clients_shape() {
    let mut scratch = Scratch::default();
    let anthropic = capture("anthropic/error_529_overloaded.json");
    let mut m = Meter::default();
    m.translate_error(Pair::OPENAI_TO_ANTHROPIC, 529, false);
    let mut out = Vec::new();
    m.pass(&anthropic, &mut out, &mut scratch);
    m.end(Some(&mut out), &mut scratch);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["message"], "Overloaded");
    assert_eq!(v["error"]["code"], "overloaded");
    for (file, status, kind) in [
        ("openai/error_429_rate_limit.json", 429, "rate_limit_error"),
        (
            "openai/error_400_context_length.json",
            400,
            "invalid_request_error",
        ),
    ] {
        let body = capture(file);
        let want: Value = serde_json::from_slice(&body).unwrap();
        m.translate_error(Pair::ANTHROPIC_TO_OPENAI, status, false);
        let mut out = Vec::new();
        m.pass(&body, &mut out, &mut scratch);
        m.end(Some(&mut out), &mut scratch);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], kind);
        assert_eq!(v["error"]["message"], want["error"]["message"], "{file}");
    }
}

// --------------------------------------------------------------------- through the gateway

fn replay_config(replay: std::net::SocketAddr, audit: &std::path::Path) -> String {
    config_text(
        None,
        1,
        &format!(
            "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\n\
             base_url = \"http://{replay}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"google\"\nkind = \"gemini\"\n\
             base_url = \"http://{replay}/v1beta\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"oai\"\nkind = \"openai\"\n\
             base_url = \"http://{replay}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"to-anthropic\"\n[[models.deployments]]\nprovider = \"claude\"\n\
             model = \"claude-up\"\nprice = {{ input = 3.0, output = 15.0, cached_input = 0.3 }}\n\
             [[models]]\nname = \"to-gemini\"\n[[models.deployments]]\nprovider = \"google\"\n\
             model = \"gemini-up\"\nprice = {{ input = 1.0, output = 10.0 }}\n\
             [[models]]\nname = \"to-openai\"\n[[models.deployments]]\nprovider = \"oai\"\n\
             model = \"gpt-up\"\nprice = {{ input = 2.5, output = 10.0 }}\n{}",
            audit_to(audit)
        ),
    )
}

const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;

fn openai_request(model: &str, file: &str, chunk: usize, stream: bool) -> Vec<u8> {
    post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-replay", file),
            ("x-replay-chunk", &chunk.to_string()),
        ],
        format!(
            r#"{{"model":"{model}","stream":{stream},"stream_options":{},"messages":[{{"role":"system","content":"Be brief."}},{{"role":"user","content":"hello"}}],{TOOLS}}}"#,
            if stream { r#"{"include_usage":true}"# } else { "null" }
        )
        .as_bytes(),
    )
}

fn anthropic_request(file: &str, chunk: usize, stream: bool) -> Vec<u8> {
    post_with(
        "/v1/messages",
        &[
            ("x-api-key", KEY),
            ("anthropic-version", "2023-06-01"),
            ("x-replay", file),
            ("x-replay-chunk", &chunk.to_string()),
        ],
        format!(
            r#"{{"model":"to-openai","max_tokens":100,"stream":{stream},"system":"Be brief.","messages":[{{"role":"user","content":"hello"}}],"tools":[{{"name":"get_weather","input_schema":{{"type":"object"}}}}]}}"#
        )
        .as_bytes(),
    )
}

#[test]
fn captures_replayed_by_a_provider_reach_clients_of_the_other_dialect() {
    let dir = test_dir("translation-replay");
    let audit = dir.join("audit.log");
    let replay = start_replay();
    let gw = start(&replay_config(replay.addr, &audit));
    let a = gw.local_addr();
    let mut served = Vec::new();
    for entry in manifest() {
        let Some(pair) = pair_for(&entry) else {
            continue;
        };
        let sse = entry.kind == "stream";
        for chunk in [7, 64, 100_000] {
            let req = match pair {
                Pair::OPENAI_TO_ANTHROPIC => {
                    openai_request("to-anthropic", &entry.path, chunk, sse)
                }
                Pair::OPENAI_TO_GEMINI => openai_request("to-gemini", &entry.path, chunk, sse),
                Pair::ANTHROPIC_TO_OPENAI => anthropic_request(&entry.path, chunk, sse),
                other => unreachable!("{other:?}"),
            };
            let r = roundtrip(a, &req);
            assert_eq!(r.status, 200, "{}: {}", entry.path, r.text());
            let want_type = if sse {
                "text/event-stream"
            } else {
                "application/json"
            };
            assert!(r.header("content-type").unwrap().starts_with(want_type));
            let got = assemble(pair.client(), sse, r.text().as_bytes());
            check(
                &entry,
                pair.client(),
                &got,
                &format!("gateway, chunks of {chunk}"),
            );
            served.push(entry.clone());
        }
    }
    gw.shutdown();
    assert_eq!(served.len(), 57);

    // What the providers were sent.
    let heads = replay.heads.lock().unwrap().clone();
    let bodies = replay.bodies.lock().unwrap().clone();
    assert_eq!(heads.len(), served.len());
    for ((head, body), entry) in heads.iter().zip(&bodies).zip(&served) {
        let body: Value = serde_json::from_slice(body).unwrap();
        let line = head.lines().next().unwrap();
        assert!(
            head.contains(&format!(
                "\r\n{}",
                match pair_for(entry).unwrap() {
                    Pair::OPENAI_TO_ANTHROPIC =>
                        format!("x-api-key: {}", UPSTREAM_KEY.to_lowercase()),
                    Pair::OPENAI_TO_GEMINI =>
                        format!("x-goog-api-key: {}", UPSTREAM_KEY.to_lowercase()),
                    Pair::ANTHROPIC_TO_OPENAI =>
                        format!("authorization: bearer {}", UPSTREAM_KEY.to_lowercase()),
                    other => unreachable!("{other:?}"),
                }
            )),
            "the provider's own credential, in its scheme: {head}"
        );
        assert!(
            !head.contains(&KEY.to_lowercase()),
            "never the client's key: {head}"
        );
        let sse = entry.kind == "stream";
        match pair_for(entry).unwrap() {
            Pair::OPENAI_TO_ANTHROPIC => {
                assert_eq!(line, "post /v1/messages http/1.1");
                assert!(head.contains("\r\nanthropic-version: 2023-06-01"));
                assert_eq!(body["model"], "claude-up");
                assert_eq!(
                    body["system"],
                    json!([{"type": "text", "text": "Be brief."}])
                );
                assert_eq!(
                    body["messages"],
                    json!([{"role": "user", "content": "hello"}])
                );
                assert_eq!(body["max_tokens"], 4096, "the deployment's default");
                assert_eq!(body["tools"][0]["name"], "get_weather");
                assert_eq!(body.get("stream").is_some(), sse);
            }
            Pair::OPENAI_TO_GEMINI => {
                let want = if sse {
                    "post /v1beta/models/gemini-up:streamgeneratecontent?alt=sse http/1.1"
                } else {
                    "post /v1beta/models/gemini-up:generatecontent http/1.1"
                };
                assert_eq!(line, want);
                assert_eq!(
                    body["systemInstruction"],
                    json!({"parts": [{"text": "Be brief."}]})
                );
                assert_eq!(
                    body["contents"],
                    json!([{"role": "user", "parts": [{"text": "hello"}]}])
                );
                assert_eq!(
                    body["tools"][0]["functionDeclarations"][0]["name"],
                    "get_weather"
                );
            }
            Pair::ANTHROPIC_TO_OPENAI => {
                assert_eq!(line, "post /v1/chat/completions http/1.1");
                assert!(!head.contains("anthropic-version"), "{head}");
                assert_eq!(body["model"], "gpt-up");
                assert_eq!(
                    body["messages"][0],
                    json!({"role": "system", "content": "Be brief."})
                );
                assert_eq!(body["max_completion_tokens"], 100);
                if sse {
                    assert_eq!(body["stream_options"], json!({"include_usage": true}));
                }
            }
            other => unreachable!("{other:?}"),
        }
    }

    // Metered from the provider's own usage: the audit agrees with what clients were told.
    let records = audit_records(&audit);
    assert_eq!(records.len(), served.len());
    for (r, entry) in records.iter().zip(&served) {
        let e = &entry.expected;
        if e.usage_present == Some(false) || e.error_type.is_some() {
            continue;
        }
        let cached = e.cached_input_tokens.unwrap_or(0);
        let input = if entry.path.starts_with("anthropic/") {
            e.input_tokens.unwrap() + cached + e.cache_creation_input_tokens.unwrap_or(0)
        } else {
            e.input_tokens.unwrap()
        };
        assert_eq!(r["gen_ai.usage.input_tokens"], input, "{}: {r}", entry.path);
        assert_eq!(r["usage_estimated"], false, "{}: {r}", entry.path);
    }
}

#[test]
fn untranslatable_requests_are_refused_by_name_and_never_sent() {
    let replay = start_replay();
    let gw = start(&replay_config(
        replay.addr,
        &test_dir("translation-refuse").join("a.log"),
    ));
    let a = gw.local_addr();
    let chat = |model: &str, extra: &str| {
        post(
            "/v1/chat/completions",
            &format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#
            ),
        )
    };
    for (req, param) in [
        (chat("to-anthropic", r#","n":3"#), "n"),
        (chat("to-anthropic", r#","temperature":1.7"#), "temperature"),
        (
            chat("to-anthropic", r#","logit_bias":{"50256":-100}"#),
            "logit_bias",
        ),
        (
            chat("to-gemini", r#","parallel_tool_calls":false"#),
            "parallel_tool_calls",
        ),
        (
            post(
                "/v1/chat/completions",
                r#"{"model":"to-anthropic","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}"#,
            ),
            "messages[0].content[0].type",
        ),
    ] {
        let r = roundtrip(a, &req);
        assert_eq!(r.status, 400, "{param}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["param"], param, "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(param),
            "{v}"
        );
    }
    let r = roundtrip(
        a,
        &post_with(
            "/v1/messages",
            &[("x-api-key", KEY)],
            br#"{"model":"to-openai","max_tokens":10,"top_k":5,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
    );
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(
        v["type"], "error",
        "Anthropic's shape for an Anthropic client: {v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("top_k"));
    // Embeddings have no Anthropic or Gemini equivalent: no provider can serve them.
    let r = roundtrip(
        a,
        &post("/v1/embeddings", r#"{"model":"to-gemini","input":"x"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    gw.shutdown();
    assert!(
        replay.bodies.lock().unwrap().is_empty(),
        "nothing reached a provider"
    );
}

#[test]
fn provider_errors_reach_the_client_in_its_own_shape() {
    let replay = start_replay();
    let gw = start(&replay_config(
        replay.addr,
        &test_dir("translation-errors").join("a.log"),
    ));
    let a = gw.local_addr();
    let mut req = openai_request(
        "to-anthropic",
        "anthropic/error_529_overloaded.json",
        64,
        false,
    );
    let at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    req.splice(at..at, b"\r\nx-replay-status: 400".iter().copied());
    let r = roundtrip(a, &req);
    assert_eq!(r.status, 400, "the provider's status");
    let v = r.json();
    assert_eq!(v["error"]["message"], "Overloaded", "{v}");
    assert!(v["error"]["type"].is_string());
    let mut req = anthropic_request("openai/error_400_context_length.json", 64, true);
    let at = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    req.splice(at..at, b"\r\nx-replay-status: 400".iter().copied());
    let r = roundtrip(a, &req);
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This model's maximum context length")
    );
    // A mid-stream error event (Anthropic's overloaded_error) becomes OpenAI's.
    let r = roundtrip(
        a,
        &openai_request(
            "to-anthropic",
            "anthropic/stream_error_overloaded.sse",
            64,
            true,
        ),
    );
    let got = openai_stream(&r.text());
    assert_eq!(got.text, "The sky is");
    assert_eq!(got.error.as_deref(), Some("overloaded_error"));
    gw.shutdown();
}

/// The real mock provider, speaking each dialect, behind translations both ways: generated
/// answers and tool calls, streamed and not, metered exactly from the provider's usage — and
/// `tool_choice: none` stays none (the mock calls a tool whenever it may).
#[test]
fn the_mock_provider_serves_every_translated_route() {
    let dir = test_dir("translation-mock");
    let audit = dir.join("audit.log");
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let gw = start(&replay_config(mock.addr, &audit));
    let a = gw.local_addr();
    let tools = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]"#;
    for model in ["to-anthropic", "to-gemini"] {
        for stream in [false, true] {
            for (choice, calls) in [("\"auto\"", 1), ("\"none\"", 0), ("\"required\"", 1)] {
                let body = format!(
                    r#"{{"model":"{model}","max_tokens":9,"stream":{stream},"stream_options":{},"messages":[{{"role":"user","content":"hello"}}],{tools},"tool_choice":{choice}}}"#,
                    if stream {
                        r#"{"include_usage":true}"#
                    } else {
                        "null"
                    }
                );
                let r = roundtrip(a, &post("/v1/chat/completions", &body));
                assert_eq!(r.status, 200, "{model}: {}", r.text());
                let got = assemble(Dialect::OpenAi, stream, r.text().as_bytes());
                let what = format!("{model} stream={stream} tool_choice={choice}");
                assert_eq!(got.calls.len(), calls, "{what}: {got:?}");
                if calls == 1 {
                    assert_eq!(got.calls[0].name, "get_weather", "{what}");
                    let args: Value = serde_json::from_str(&got.calls[0].arguments)
                        .unwrap_or_else(|e| panic!("{what}: {e}: {:?}", got.calls[0]));
                    assert!(args.is_object(), "{what}");
                    assert_eq!(got.finish.as_deref(), Some("tool_calls"), "{what}");
                } else {
                    assert!(!got.text.is_empty(), "{what}");
                    assert_eq!(got.finish.as_deref(), Some("stop"), "{what}");
                }
                assert!(got.ended, "{what}");
                assert_eq!(
                    got.usage.unwrap().1,
                    9,
                    "{what}: the provider's output tokens"
                );
            }
        }
    }
    for stream in [false, true] {
        for (choice, calls) in [(r#"{"type":"auto"}"#, 1), (r#"{"type":"none"}"#, 0)] {
            let r = roundtrip(
                a,
                &post_with(
                    "/v1/messages",
                    &[("x-api-key", KEY)],
                    format!(r#"{{"model":"to-openai","max_tokens":7,"stream":{stream},"messages":[{{"role":"user","content":"hello"}}],"tools":[{{"name":"get_weather","input_schema":{{"type":"object"}}}}],"tool_choice":{choice}}}"#).as_bytes(),
                ),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            let got = assemble(Dialect::Anthropic, stream, r.text().as_bytes());
            let what = format!("messages stream={stream} tool_choice={choice}");
            assert_eq!(got.calls.len(), calls, "{what}: {got:?}");
            if calls == 1 {
                assert_eq!(got.calls[0].name, "get_weather");
                assert!(
                    serde_json::from_str::<Value>(&got.calls[0].arguments)
                        .unwrap()
                        .is_object()
                );
                assert_eq!(got.finish.as_deref(), Some("tool_use"), "{what}");
            } else {
                assert_eq!(got.finish.as_deref(), Some("end_turn"), "{what}");
                assert!(!got.text.is_empty(), "{what}");
            }
            assert_eq!(got.usage.unwrap().1, 7, "{what}");
            assert!(got.ended, "{what}");
        }
    }
    gw.shutdown();
    assert_eq!(
        mock.ledger().rejected,
        0,
        "each provider got its own key in its scheme"
    );
    let records = audit_records(&audit);
    assert_eq!(records.len(), 16);
    for r in records {
        assert_eq!(r["usage_estimated"], false, "{r}");
        assert!(r["gen_ai.usage.output_tokens"].as_u64().unwrap() > 0);
    }
}

/// A provider answer that cannot be translated never reaches the client half-translated or in
/// the wrong dialect: malformed JSON and an over-sized event are refused (the relay turns this
/// into a 502 before the first byte, or an error event mid-stream).
#[test]
fn hostile_provider_bodies_are_refused_not_passed_through() {
    let mut scratch = Scratch::default();
    let mut m = Meter::default();
    m.start(Dialect::Anthropic, false, false, false);
    m.translate(Pair::OPENAI_TO_ANTHROPIC, false, false, 1);
    let mut out = Vec::new();
    m.pass(
        br#"{"id":"msg_1","content":[{"type":"text","text":"cut"#,
        &mut out,
        &mut scratch,
    );
    m.end(Some(&mut out), &mut scratch);
    assert!(out.is_empty(), "nothing of it went out");
    assert!(m.translation_failed().unwrap().contains("not valid JSON"));

    let mut big = b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"".to_vec();
    big.resize(big.len() + 2 * 1024 * 1024, b'a');
    big.extend_from_slice(b"\"}}\n\n");
    m.start(Dialect::Anthropic, true, false, false);
    m.translate(Pair::OPENAI_TO_ANTHROPIC, false, false, 1);
    let mut out = Vec::new();
    for piece in big.chunks(64 * 1024) {
        m.pass(piece, &mut out, &mut scratch);
    }
    m.end(Some(&mut out), &mut scratch);
    assert!(
        !String::from_utf8_lossy(&out).contains("content_block_delta"),
        "no Anthropic bytes reach an OpenAI client"
    );
    assert!(m.translation_failed().unwrap().contains("too large"));

    // The same for every pair: a provider body cut short, and an event over the bound.
    let json_of = |d: Dialect| match d {
        Dialect::OpenAi => "openai/chat_completion.json",
        Dialect::Responses => "openai/responses.json",
        Dialect::Anthropic => "anthropic/message.json",
        Dialect::Gemini => "gemini/generate_content.json",
        Dialect::Bedrock => "bedrock/converse.json",
    };
    let mut pairs = 0;
    for provider in DIALECTS {
        for client in DIALECTS {
            let Some(pair) = Pair::between(client, provider) else {
                continue;
            };
            let body = capture(json_of(provider));
            m.start(provider, false, false, false);
            m.translate(pair, false, false, 1);
            let mut out = Vec::new();
            m.pass(&body[..body.len() / 2], &mut out, &mut scratch);
            m.end(Some(&mut out), &mut scratch);
            assert!(out.is_empty(), "{pair:?}: nothing of a cut body went out");
            assert!(m.translation_failed().is_some(), "{pair:?}");

            let mut big = b"data: {\"type\":\"x\",\"delta\":\"".to_vec();
            big.resize(big.len() + 2 * 1024 * 1024, b'a');
            big.extend_from_slice(b"\"}\n\n");
            m.start(provider, true, false, false);
            m.translate(pair, false, false, 1);
            let mut out = Vec::new();
            for piece in big.chunks(64 * 1024) {
                m.pass(piece, &mut out, &mut scratch);
            }
            m.end(Some(&mut out), &mut scratch);
            assert!(
                !out.windows(64).any(|w| w.iter().all(|&b| b == b'a')),
                "{pair:?}: none of the provider's bytes went out"
            );
            assert!(
                m.translation_failed().unwrap().contains("too large"),
                "{pair:?}"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 20);

    // A Bedrock stream whose bytes stop inside a message, before `messageStop`: the partial
    // message is never read, and no client is told the answer ended.
    let stream = capture("bedrock/converse_stream_tool.bin");
    let cut = &stream[..stream.len() / 2 + 7];
    for client in [
        Dialect::OpenAi,
        Dialect::Responses,
        Dialect::Anthropic,
        Dialect::Gemini,
    ] {
        let pair = Pair::between(client, Dialect::Bedrock).unwrap();
        let out = translate(pair, true, true, &[cut]);
        let a = assemble(client, true, &out);
        assert!(!a.ended, "{client:?}: {}", String::from_utf8_lossy(&out));
        assert_eq!(a.finish, None, "{client:?}");
    }
}

/// A Bedrock stream cut after `messageStop` but before `metadata` (which carries the usage)
/// is not whole: no client is told it ended.
#[test]
fn a_bedrock_stream_without_its_usage_message_does_not_end_cleanly() {
    let stream = capture("bedrock/converse_stream_text.bin");
    // Drop the last message (metadata): its length is the first 4 bytes of its prelude.
    let mut at = 0;
    let mut starts = Vec::new();
    while at < stream.len() {
        starts.push(at);
        at += u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
    }
    let cut = &stream[..*starts.last().unwrap()];
    for client in [
        Dialect::OpenAi,
        Dialect::Responses,
        Dialect::Anthropic,
        Dialect::Gemini,
    ] {
        let pair = Pair::between(client, Dialect::Bedrock).unwrap();
        let a = assemble(client, true, &translate(pair, true, true, &[cut]));
        assert!(!a.ended, "{client:?}");
        let whole = assemble(client, true, &translate(pair, true, true, &[&stream]));
        assert!(whole.ended, "{client:?}");
    }
}
