//! The mock speaks each provider's wire format the way the corpus captures show it, with
//! token counts a test can predict from the bytes it sent.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use support::*;
use tollgate_loadtest::dialect::Dialect;

fn corpus(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/corpus")
        .join(path);
    std::fs::read(p).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Data payloads of a capture's events.
fn corpus_events(path: &str) -> Vec<(String, String)> {
    let bytes = corpus(path);
    let mut s = tollgate::sse::SseScanner::default();
    let mut out = Vec::new();
    s.feed(&bytes, |e| {
        out.push((
            String::from_utf8_lossy(e.event).into_owned(),
            String::from_utf8_lossy(e.data).into_owned(),
        ))
    })
    .unwrap();
    out
}

/// Every key the mock sends is one the provider sends too, and the keys a gateway reads are
/// all there.
fn assert_shape(mock: &Value, real: &Value, required: &[&str], what: &str) {
    let (m, r) = (keys(mock), keys(real));
    assert!(
        m.is_subset(&r),
        "{what}: mock keys {m:?} not all in the capture's {r:?}"
    );
    for k in required {
        assert!(m.contains(*k), "{what}: missing {k}");
    }
}

#[test]
fn openai_chat_json_matches_capture_shape_and_predicted_usage() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello there"}],"max_tokens":7}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/chat/completions", &[], body),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 200);
    let v = json(&cap.body);
    let real = json(&corpus("openai/chat_completion.json"));
    assert_shape(
        &v,
        &real,
        &["id", "object", "created", "model", "choices", "usage"],
        "chat.completion",
    );
    assert_shape(
        &v["usage"],
        &real["usage"],
        &["prompt_tokens", "completion_tokens", "total_tokens"],
        "usage",
    );
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["usage"]["prompt_tokens"], prompt_tokens(body));
    assert_eq!(v["usage"]["completion_tokens"], 7);
    assert_eq!(v["usage"]["total_tokens"], prompt_tokens(body) + 7);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        7
    );
}

#[test]
fn openai_stream_with_and_without_include_usage() {
    let mock = MockProc::spawn(&[]);
    let real = corpus_events("openai/chat_completion_stream_include_usage.sse");
    let real_chunk = json(real[1].1.as_bytes());
    let real_usage = json(real[real.len() - 2].1.as_bytes());

    let body = br#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[],"max_tokens":5}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/chat/completions", &[], body),
        Dialect::OpenAi,
    ));
    let x = r.unwrap();
    assert!(x.is_stream && x.stream_ended);
    assert_eq!(
        cap.header("content-type").unwrap(),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(cap.header("transfer-encoding").unwrap(), "chunked");
    // role chunk, 5 content chunks, finish chunk, usage chunk, [DONE]
    let ev = &cap.events;
    assert_eq!(ev.len(), 9);
    assert_eq!(ev.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = ev[..8].iter().map(|e| json(e.data.as_bytes())).collect();
    for c in &chunks[..7] {
        assert_shape(
            c,
            &real_chunk,
            &["id", "object", "created", "model", "choices", "usage"],
            "chunk",
        );
        assert!(
            c["usage"].is_null(),
            "with include_usage every chunk carries usage:null"
        );
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..6]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "The quick brown fox jumps");
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[7];
    assert_shape(usage, &real_usage, &["choices", "usage"], "usage chunk");
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], prompt_tokens(body));
    assert_eq!(usage["usage"]["completion_tokens"], 5);

    // Without include_usage: no usage anywhere, no choices:[] chunk.
    let body = br#"{"model":"gpt-4o-mini","stream":true,"messages":[],"max_tokens":3}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/chat/completions", &[], body),
        Dialect::OpenAi,
    ));
    assert!(r.unwrap().stream_ended);
    assert_eq!(cap.events.len(), 6);
    for e in &cap.events[..5] {
        let c = json(e.data.as_bytes());
        assert!(c.get("usage").is_none());
        assert_eq!(c["choices"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn openai_tool_call_streams_argument_fragments() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"model":"gpt-4o","stream":true,"max_tokens":4,"messages":[],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{}}}]}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/chat/completions", &[], body),
        Dialect::OpenAi,
    ));
    assert!(r.unwrap().stream_ended);
    let chunks: Vec<Value> = cap
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| json(e.data.as_bytes()))
        .collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["index"], 0);
    assert!(first["id"].as_str().unwrap().starts_with("call_"));
    let mut args = String::new();
    let mut fragments = 0;
    for c in &chunks[1..] {
        if let Some(tc) = c["choices"][0]["delta"].get("tool_calls") {
            assert_eq!(tc[0]["index"], 0);
            args.push_str(tc[0]["function"]["arguments"].as_str().unwrap());
            fragments += 1;
        }
    }
    assert_eq!(fragments, 4, "one fragment per token");
    assert_eq!(json(args.as_bytes())["input"], "The quick brown fox");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[test]
fn anthropic_stream_event_sequence_and_usage() {
    let mock = MockProc::spawn(&[]);
    let real = corpus_events("anthropic/stream_tool_use.sse");
    let body = br#"{"model":"claude-sonnet-4-5","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#;
    let req = post(
        "/v1/messages",
        &[("x-api-key", "k"), ("anthropic-version", "2023-06-01")],
        body,
    );
    let (r, cap) = run(send(mock.addr, req, Dialect::Anthropic));
    assert!(r.unwrap().stream_ended);
    let names: Vec<&str> = cap.events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for e in &cap.events {
        assert_eq!(
            json(e.data.as_bytes())["type"],
            e.event.as_str(),
            "event line equals JSON type"
        );
    }
    let start = json(cap.events[0].data.as_bytes());
    let real_start = json(real[0].1.as_bytes());
    assert_shape(
        &start["message"],
        &real_start["message"],
        &["id", "model", "usage"],
        "message_start",
    );
    assert_eq!(
        start["message"]["usage"]["input_tokens"],
        prompt_tokens(body)
    );
    let delta = json(cap.events[7].data.as_bytes());
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");

    // Tool use: input_json_delta fragments that concatenate to the input.
    let body = br#"{"model":"claude-sonnet-4-5","stream":true,"max_tokens":2,"messages":[],"tools":[{"name":"get_weather","input_schema":{}}]}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/messages", &[], body),
        Dialect::Anthropic,
    ));
    assert!(r.unwrap().stream_ended);
    let block = json(cap.events[1].data.as_bytes());
    assert_eq!(block["content_block"]["type"], "tool_use");
    assert_eq!(block["content_block"]["name"], "get_weather");
    let partial: String = cap
        .events
        .iter()
        .filter(|e| e.event == "content_block_delta")
        .map(|e| {
            let d = json(e.data.as_bytes());
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(json(partial.as_bytes())["input"], "The quick");
    assert_eq!(
        json(cap.events[cap.events.len() - 2].data.as_bytes())["delta"]["stop_reason"],
        "tool_use"
    );
}

#[test]
fn anthropic_json_with_cache_tokens() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"model":"claude-sonnet-4-5","max_tokens":4,"messages":[{"role":"user","content":"a long cached prompt ................................"}]}"#;
    let req = post("/v1/messages", &[("x-mock-cached-tokens", "10")], body);
    let (r, cap) = run(send(mock.addr, req, Dialect::Anthropic));
    assert_eq!(r.unwrap().status, 200);
    let v = json(&cap.body);
    let real = json(&corpus("anthropic/message.json"));
    assert_shape(
        &v,
        &real,
        &[
            "id",
            "type",
            "role",
            "content",
            "model",
            "stop_reason",
            "usage",
        ],
        "message",
    );
    assert_eq!(
        v["usage"]["input_tokens"],
        prompt_tokens(body) - 10,
        "input_tokens excludes cache reads"
    );
    assert_eq!(v["usage"]["cache_read_input_tokens"], 10);
    assert_eq!(v["usage"]["output_tokens"], 4);
}

#[test]
fn gemini_sse_json_and_array() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"why is the sky blue"}]}],"generationConfig":{"maxOutputTokens":3}}"#;
    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    let req = post(
        path,
        &[("x-goog-api-key", "g"), ("x-mock-reasoning-tokens", "11")],
        body,
    );
    let (r, cap) = run(send(mock.addr, req, Dialect::Gemini));
    assert!(r.unwrap().stream_ended);
    assert!(
        cap.body.windows(4).any(|w| w == b"\r\n\r\n"),
        "Gemini frames events with CRLF"
    );
    assert_eq!(cap.events.len(), 3);
    let real = corpus_events("gemini/stream_generate_content.sse");
    let real_last = json(real.last().unwrap().1.as_bytes());
    for (i, e) in cap.events.iter().enumerate() {
        let v = json(e.data.as_bytes());
        assert_shape(
            &v,
            &real_last,
            &["candidates", "usageMetadata", "modelVersion"],
            "chunk",
        );
        let u = &v["usageMetadata"];
        assert_eq!(u["promptTokenCount"], prompt_tokens(body));
        assert_eq!(u["candidatesTokenCount"], i as u64 + 1, "cumulative");
        assert_eq!(u["thoughtsTokenCount"], 11);
        assert_eq!(
            u["totalTokenCount"],
            prompt_tokens(body) + i as u64 + 1 + 11
        );
    }
    assert_eq!(
        json(cap.events[2].data.as_bytes())["candidates"][0]["finishReason"],
        "STOP"
    );

    let (r, cap) = run(send(
        mock.addr,
        post("/v1beta/models/gemini-2.5-flash:generateContent", &[], body),
        Dialect::Gemini,
    ));
    assert_eq!(r.unwrap().status, 200);
    let v = json(&cap.body);
    assert_shape(
        &v,
        &json(&corpus("gemini/generate_content.json")),
        &["candidates", "usageMetadata"],
        "json",
    );
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        "The quick brown"
    );

    // streamGenerateContent without alt=sse: one JSON array of the chunks.
    let (r, cap) = run(send(
        mock.addr,
        post(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            &[],
            body,
        ),
        Dialect::Gemini,
    ));
    assert!(!r.unwrap().is_stream);
    assert_eq!(json(&cap.body).as_array().unwrap().len(), 3);
}

#[test]
fn completions_embeddings_models() {
    let mock = MockProc::spawn(&["--models", "a,b"]);
    let body = br#"{"model":"gpt-3.5-turbo-instruct","prompt":"x","max_tokens":2}"#;
    let (_, cap) = run(send(
        mock.addr,
        post("/v1/completions", &[], body),
        Dialect::OpenAi,
    ));
    let v = json(&cap.body);
    assert_eq!(
        (v["object"].as_str(), v["choices"][0]["text"].as_str()),
        (Some("text_completion"), Some("The quick"))
    );
    assert_eq!(v["usage"]["completion_tokens"], 2);

    let body = br#"{"model":"text-embedding-3-small","input":["a","b"],"dimensions":5}"#;
    let (_, cap) = run(send(
        mock.addr,
        post("/v1/embeddings", &[], body),
        Dialect::OpenAi,
    ));
    let v = json(&cap.body);
    assert_shape(
        &v,
        &json(&corpus("openai/embeddings.json")),
        &["data", "usage", "model"],
        "embeddings",
    );
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][1]["embedding"].as_array().unwrap().len(), 5);
    assert_eq!(v["usage"]["prompt_tokens"], prompt_tokens(body));

    let (_, cap) = run(send(mock.addr, get("/v1/models"), Dialect::OpenAi));
    let v = json(&cap.body);
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_shape(
        &v["data"][0],
        &json(&corpus("openai/models.json"))["data"][0],
        &["id", "object"],
        "model",
    );
}

#[test]
fn shaping_headers_control_tokens_size_and_time() {
    let mock = MockProc::spawn(&["--tokens", "4"]);
    // No max_tokens: the server default.
    let body = br#"{"model":"m","messages":[]}"#;
    let (_, cap) = run(send(
        mock.addr,
        post("/v1/chat/completions", &[], body),
        Dialect::OpenAi,
    ));
    assert_eq!(json(&cap.body)["usage"]["completion_tokens"], 4);
    // x-mock-tokens wins over max_tokens; x-mock-token-bytes fixes the size.
    let body = br#"{"model":"m","messages":[],"max_tokens":100}"#;
    let req = post(
        "/v1/chat/completions",
        &[("x-mock-tokens", "6"), ("x-mock-token-bytes", "10")],
        body,
    );
    let (_, cap) = run(send(mock.addr, req, Dialect::OpenAi));
    let v = json(&cap.body);
    assert_eq!(v["usage"]["completion_tokens"], 6);
    assert_eq!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        60
    );
    // Time to first token and inter-token gaps are at least what was asked for.
    let body = br#"{"model":"m","stream":true,"messages":[],"max_tokens":3}"#;
    let req = post(
        "/v1/chat/completions",
        &[("x-mock-ttft-ms", "30"), ("x-mock-itl-ms", "20")],
        body,
    );
    let (r, cap) = run(send(mock.addr, req, Dialect::OpenAi));
    let x = r.unwrap();
    assert!(x.ttft.unwrap() >= std::time::Duration::from_millis(30));
    let content: Vec<_> = cap
        .events
        .iter()
        .filter(|e| e.data.contains("\"content\":\"") && !e.data.contains("\"content\":\"\""))
        .collect();
    assert_eq!(content.len(), 3);
    assert!(
        content[2].at >= std::time::Duration::from_millis(70),
        "third token no earlier than ttft + 2 gaps"
    );
    assert!(content[1].at >= std::time::Duration::from_millis(50));
    // A bad shaping value is a 400 naming the header.
    let req = post("/v1/chat/completions", &[("x-mock-tokens", "lots")], body);
    let (r, cap) = run(send(mock.addr, req, Dialect::OpenAi));
    assert_eq!(r.unwrap().status, 400);
    assert!(
        json(&cap.body)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-mock-tokens")
    );
}

#[test]
fn responses_json_and_streams_match_the_captures() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"model":"gpt-5","input":"Hello there","max_output_tokens":5}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/responses", &[], body),
        Dialect::Responses,
    ));
    assert_eq!(r.unwrap().status, 200);
    let v = json(&cap.body);
    let real = json(&corpus("openai/responses.json"));
    let required = [
        "id",
        "object",
        "created_at",
        "status",
        "model",
        "output",
        "usage",
    ];
    assert_shape(&v, &real, &required, "response");
    assert_shape(
        &v["output"][0],
        &real["output"][0],
        &["id", "type", "content"],
        "message",
    );
    assert_shape(
        &v["output"][0]["content"][0],
        &real["output"][0]["content"][0],
        &["type", "text"],
        "output_text",
    );
    let usage = [
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "output_tokens_details",
    ];
    assert_shape(&v["usage"], &real["usage"], &usage, "usage");
    assert_eq!(v["usage"]["input_tokens"], prompt_tokens(body));
    assert_eq!(v["usage"]["output_tokens"], 5);
    assert_eq!(v["status"], "completed");

    // A text stream: the event sequence of the capture, one delta per token, usage last.
    let real = corpus_events("openai/responses_stream_text.sse");
    let body = br#"{"model":"gpt-5","input":"hi","stream":true,"max_output_tokens":3}"#;
    let (r, cap) = run(send(
        mock.addr,
        post("/v1/responses", &[], body),
        Dialect::Responses,
    ));
    assert!(r.unwrap().stream_ended);
    let names: Vec<&str> = cap.events.iter().map(|e| e.event.as_str()).collect();
    let mut want: Vec<&str> = real.iter().map(|(n, _)| n.as_str()).collect();
    want.dedup();
    let mut got = names.clone();
    got.dedup();
    assert_eq!(got, want, "the capture's event sequence (deltas collapsed)");
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "response.output_text.delta")
            .count(),
        3
    );
    for (i, e) in cap.events.iter().enumerate() {
        let d = json(e.data.as_bytes());
        assert_eq!(d["type"], e.event.as_str(), "event line equals JSON type");
        assert_eq!(d["sequence_number"], i, "sequence numbers count the events");
    }
    let done = json(cap.events.last().unwrap().data.as_bytes());
    // (Against the 2025-09 capture: the March one predates `background` and `service_tier`.)
    let newer = corpus_events("openai/responses_stream_function_call.sse");
    let real_done = json(newer.last().unwrap().1.as_bytes());
    assert_shape(
        &done["response"],
        &real_done["response"],
        &required,
        "completed",
    );
    assert_eq!(done["response"]["usage"]["output_tokens"], 3);
    assert_eq!(
        json(cap.events[0].data.as_bytes())["response"]["usage"],
        Value::Null
    );

    // A function call: argument deltas shaped like the gpt-5 capture's.
    let real = corpus_events("openai/responses_stream_function_call.sse");
    let body = br#"{"model":"gpt-5","input":"hi","stream":true,"max_output_tokens":4,
        "tools":[{"type":"function","name":"get_weather","parameters":{}}]}"#;
    let (_, cap) = run(send(
        mock.addr,
        post("/v1/responses", &[], body),
        Dialect::Responses,
    ));
    let find = |events: &[(String, Value)], name: &str| {
        events
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let mock_events: Vec<(String, Value)> = cap
        .events
        .iter()
        .map(|e| (e.event.clone(), json(e.data.as_bytes())))
        .collect();
    let real_events: Vec<(String, Value)> = real
        .iter()
        .map(|(n, d)| (n.clone(), json(d.as_bytes())))
        .collect();
    for name in [
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
    ] {
        let (m, r) = (find(&mock_events, name), find(&real_events, name));
        assert_shape(
            &m,
            &r,
            &["type", "sequence_number", "item_id", "output_index"],
            name,
        );
    }
    let args: String = mock_events
        .iter()
        .filter(|(n, _)| n == "response.function_call_arguments.delta")
        .map(|(_, v)| v["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(json(args.as_bytes())["input"], "The quick brown fox");
    let item = &find(&mock_events, "response.output_item.done")["item"];
    let real_item = &real_events[12].1["item"];
    assert_eq!(real_item["type"], "function_call");
    assert_shape(
        item,
        real_item,
        &["type", "call_id", "name", "arguments"],
        "function_call",
    );
    assert_eq!(item["name"], "get_weather");
}

/// Bedrock's binary stream: `(event type, payload)` per message, CRCs checked by the decoder.
fn frames(bytes: &[u8]) -> Vec<(String, Value)> {
    let mut d = tollgate::sse::eventstream::EventStreamDecoder::new(1 << 20);
    let mut out = Vec::new();
    d.feed(bytes, |e| {
        out.push((String::from_utf8_lossy(e.event).into_owned(), json(e.data)))
    })
    .unwrap();
    assert!(!d.has_pending(), "whole messages only");
    out
}

#[test]
fn bedrock_converse_json_and_binary_stream_match_the_captures() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"messages":[{"role":"user","content":[{"text":"a long cached prompt .............................."}]}],"inferenceConfig":{"maxTokens":4}}"#;
    let req = post(
        "/model/anthropic.claude-x-v1%3A0/converse",
        &[("x-mock-cached-tokens", "10")],
        body,
    );
    let (r, cap) = run(send(mock.addr, req, Dialect::Bedrock));
    assert_eq!(r.unwrap().status, 200);
    let v = json(&cap.body);
    let real = json(&corpus("bedrock/converse_cache_read.json"));
    assert_shape(
        &v,
        &real,
        &["output", "stopReason", "usage", "metrics"],
        "converse",
    );
    assert_shape(
        &v["usage"],
        &real["usage"],
        &["inputTokens", "outputTokens", "totalTokens"],
        "usage",
    );
    assert_eq!(
        v["usage"]["inputTokens"],
        prompt_tokens(body) - 10,
        "inputTokens excludes cache reads"
    );
    assert_eq!(v["usage"]["cacheReadInputTokens"], 10);
    assert_eq!(v["usage"]["outputTokens"], 4);
    assert_eq!(v["stopReason"], "end_turn");

    // The stream: the capture's message sequence (no start for a text block), each payload
    // with the capture's members for its type, `p` padding included.
    let req = post("/model/m/converse-stream", &[], body);
    let (r, cap) = run(send(mock.addr, req, Dialect::Bedrock));
    assert_eq!(r.unwrap().status, 200);
    let head = String::from_utf8_lossy(&cap.head).to_lowercase();
    assert!(
        head.contains("content-type: application/vnd.amazon.eventstream"),
        "{head}"
    );
    let mock_frames = frames(&cap.body);
    let real_frames = frames(&corpus("bedrock/converse_stream_text.bin"));
    let names: Vec<&str> = mock_frames.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    for (event, payload) in &mock_frames {
        let (_, real) = real_frames.iter().find(|(e, _)| e == event).unwrap();
        assert_shape(payload, real, &["p"], event);
    }
    let usage = &mock_frames.last().unwrap().1["usage"];
    assert_eq!(usage["outputTokens"], 4);
}

#[test]
fn vertex_anthropic_routes_answer_in_anthropics_wire_with_the_model_from_the_path() {
    let mock = MockProc::spawn(&[]);
    let path = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-x@20250101";
    let body = br#"{"anthropic_version":"vertex-2023-10-16","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#;
    let (r, cap) = run(send(
        mock.addr,
        post(&format!("{path}:rawPredict"), &[], body),
        Dialect::Anthropic,
    ));
    assert_eq!(r.unwrap().status, 200);
    let v = json(&cap.body);
    let real = json(&corpus("anthropic/message.json"));
    assert_shape(
        &v,
        &real,
        &[
            "id",
            "type",
            "role",
            "content",
            "model",
            "stop_reason",
            "usage",
        ],
        "message",
    );
    assert_eq!(v["model"], "claude-x@20250101", "the model is the path's");
    assert_eq!(v["usage"]["input_tokens"], prompt_tokens(body));
    assert_eq!(v["usage"]["output_tokens"], 3);

    // The stream: Anthropic's event sequence, usage in message_start and message_delta.
    let stream = br#"{"anthropic_version":"vertex-2023-10-16","stream":true,"max_tokens":2,"messages":[{"role":"user","content":"hi"}]}"#;
    let (r, cap) = run(send(
        mock.addr,
        post(&format!("{path}:streamRawPredict"), &[], stream),
        Dialect::Anthropic,
    ));
    assert!(r.unwrap().stream_ended);
    let names: Vec<&str> = cap.events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let start = json(cap.events[0].data.as_bytes());
    assert_eq!(start["message"]["model"], "claude-x@20250101");
    assert_eq!(
        start["message"]["usage"]["input_tokens"],
        prompt_tokens(stream)
    );

    // What Vertex refuses: a `model` member, or no (or another) API version.
    for bad in [
        &br#"{"anthropic_version":"vertex-2023-10-16","model":"claude-x","max_tokens":3,"messages":[]}"#[..],
        br#"{"max_tokens":3,"messages":[]}"#,
        br#"{"anthropic_version":"2023-06-01","max_tokens":3,"messages":[]}"#,
    ] {
        let (r, cap) = run(send(
            mock.addr,
            post(&format!("{path}:rawPredict"), &[], bad),
            Dialect::Anthropic,
        ));
        assert_eq!(r.unwrap().status, 400, "{}", String::from_utf8_lossy(bad));
        assert_eq!(json(&cap.body)["type"], "error");
    }
}
