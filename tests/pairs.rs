//! The pairs matrix: every client dialect (OpenAI Chat Completions, OpenAI Responses,
//! Anthropic Messages, Gemini generateContent) against a provider of every dialect (an OpenAI
//! Chat deployment, an OpenAI `api = "responses"` deployment, Anthropic, Gemini), JSON and
//! stream, each a plain answer and a tool-call round trip (the call, then its result sent back
//! and answered), through the gateway to the mock provider over real sockets. What the client
//! assembles (read here with serde_json, independently of the gateway) must be a valid answer
//! in its own dialect, with the provider's output-token count; the audit records must be exact
//! (never estimated) and add up to what the mock billed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use serde_json::{Value, json};
use support::*;

/// Output tokens every request asks for; the mock answers with exactly that many.
const MAX: u64 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Chat,
    Responses,
    Messages,
    Gemini,
    Bedrock,
}

const CLIENTS: [Client; 5] = [
    Client::Chat,
    Client::Responses,
    Client::Messages,
    Client::Gemini,
    Client::Bedrock,
];

/// Public model → the provider dialect behind it (Vertex AI serves two of the dialects again,
/// with its own paths and OAuth2 tokens).
const PROVIDERS: [(&str, &str); 7] = [
    ("p-chat", "openai chat"),
    ("p-responses", "openai responses"),
    ("p-anthropic", "anthropic"),
    ("p-gemini", "gemini"),
    ("p-bedrock", "bedrock"),
    ("p-vertex-gemini", "vertex gemini"),
    ("p-vertex-claude", "vertex anthropic"),
];

/// A mock that also answers Vertex AI's token endpoint, checking the service account's
/// signature with the fixture's public key.
fn mock() -> tollgate_loadtest::mock::MockHandle {
    start_mock(|m| {
        m.api_keys = vec![UPSTREAM_KEY.into()];
        m.vertex_public_key = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/vertex/public.der"),
        );
    })
}

/// The fixture service account, its token endpoint pointed at the mock.
fn service_account(mock: std::net::SocketAddr, dir: &std::path::Path) -> std::path::PathBuf {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vertex/service-account.json");
    let mut sa: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    sa["token_uri"] = json!(format!("http://{mock}/token"));
    let path = dir.join("service-account.json");
    std::fs::write(&path, sa.to_string()).unwrap();
    path
}

fn config(mock: std::net::SocketAddr, audit: &std::path::Path) -> String {
    let sa = service_account(mock, audit.parent().unwrap());
    let provider = |name: &str, kind: &str, path: &str| {
        format!(
            "[[providers]]\nname = \"{name}\"\nkind = \"{kind}\"\n\
             base_url = \"http://{mock}{path}\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n"
        )
    };
    let model = |name: &str, provider: &str, api: &str| {
        format!(
            "[[models]]\nname = \"{name}\"\n[[models.deployments]]\nprovider = \"{provider}\"\n\
             model = \"{}\"\nprice = {{ input = 1.0, output = 2.0 }}\n{api}",
            match name {
                "p-vertex-gemini" => "gemini-2.5-flash".to_owned(),
                "p-vertex-claude" => "claude-sonnet-4-5@20250929".to_owned(),
                n => format!("up-{n}"),
            }
        )
    };
    config_text(
        None,
        1,
        &[
            provider("oai", "openai", "/v1"),
            provider("claude", "anthropic", "/v1"),
            provider("google", "gemini", "/v1beta"),
            // SigV4-signed: the mock checks the signature with the same secret.
            format!(
                "[[providers]]\nname = \"aws\"\nkind = \"bedrock\"\nregion = \"us-east-1\"\n\
                 base_url = \"http://{mock}\"\naws_access_key_env = \"TEST_UPSTREAM_KEY\"\n\
                 aws_secret_key_env = \"TEST_AWS_SECRET\"\naws_session_token_env = \"UNSET\"\n"
            ),
            model("p-chat", "oai", "api = \"chat\"\n"),
            model("p-responses", "oai", "api = \"responses\"\n"),
            model("p-anthropic", "claude", ""),
            model("p-gemini", "google", ""),
            model("p-bedrock", "aws", ""),
            format!(
                "[[providers]]\nname = \"gcp\"\nkind = \"vertex\"\nproject = \"tollgate-test\"\n\
                 region = \"us-east5\"\nbase_url = \"http://{mock}\"\n\
                 service_account_file = {:?}\n",
                sa.to_str().unwrap()
            ),
            model("p-vertex-gemini", "gcp", ""),
            model("p-vertex-claude", "gcp", ""),
            audit_to(audit),
        ]
        .concat(),
    )
}

// ------------------------------------------------------------------------ the requests

const SCHEMA: &str = r#"{"type":"object","properties":{"city":{"type":"string"}}}"#;

/// A call from the first round, to send back with its result.
#[derive(Clone, Debug, Default, PartialEq)]
struct Call {
    id: String,
    name: String,
    args: String,
}

/// What a round sends: `Plain` (no tools), `Ask` (tools offered, the model may call one),
/// or the result of `Answer`'s call (tools offered, none to be called).
#[derive(Clone, Copy, Debug)]
enum Round<'a> {
    Plain,
    Ask,
    Answer(&'a Call),
}

fn request(client: Client, model: &str, stream: bool, round: Round<'_>) -> Vec<u8> {
    let call = match round {
        Round::Answer(c) => Some(c),
        _ => None,
    };
    let (path, headers, mut body) = body(client, model, stream, call);
    if matches!(round, Round::Plain) {
        let o = body.as_object_mut().unwrap();
        for k in ["tools", "tool_choice", "toolConfig"] {
            o.remove(k);
        }
    }
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    post_with(&path, &headers, body.to_string().as_bytes())
}

fn body(
    client: Client,
    model: &str,
    stream: bool,
    call: Option<&Call>,
) -> (String, Vec<(&'static str, String)>, Value) {
    let q = "Weather in Paris?";
    let bearer = vec![("authorization", format!("Bearer {KEY}"))];
    match client {
        Client::Chat => {
            let mut messages = vec![json!({"role": "user", "content": q})];
            if let Some(c) = call {
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.args}}]}));
                messages.push(json!({"role": "tool", "tool_call_id": c.id, "content": "18C"}));
            }
            let mut b = json!({"model": model, "max_tokens": MAX, "stream": stream,
                "messages": messages,
                "tools": [{"type": "function", "function": {"name": "get_weather",
                    "parameters": serde_json::from_str::<Value>(SCHEMA).unwrap()}}],
                "tool_choice": if call.is_some() { "none" } else { "auto" }});
            if stream {
                b["stream_options"] = json!({"include_usage": true});
            }
            ("/v1/chat/completions".into(), bearer, b)
        }
        Client::Responses => {
            let mut input = vec![json!({"role": "user", "content": q})];
            if let Some(c) = call {
                input.push(
                    json!({"type": "function_call", "call_id": c.id, "name": c.name,
                    "arguments": c.args}),
                );
                input.push(
                    json!({"type": "function_call_output", "call_id": c.id, "output": "18C"}),
                );
            }
            let b = json!({"model": model, "max_output_tokens": MAX, "stream": stream,
                "input": input,
                "tools": [{"type": "function", "name": "get_weather",
                    "parameters": serde_json::from_str::<Value>(SCHEMA).unwrap()}],
                "tool_choice": if call.is_some() { "none" } else { "auto" }});
            ("/v1/responses".into(), bearer, b)
        }
        Client::Messages => {
            let mut messages = vec![json!({"role": "user", "content": q})];
            if let Some(c) = call {
                let input: Value = serde_json::from_str(&c.args).unwrap();
                messages.push(json!({"role": "assistant", "content": [
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": input}]}));
                messages.push(json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": c.id, "content": "18C"}]}));
            }
            let b = json!({"model": model, "max_tokens": MAX, "stream": stream,
                "messages": messages,
                "tools": [{"name": "get_weather",
                    "input_schema": serde_json::from_str::<Value>(SCHEMA).unwrap()}],
                "tool_choice": {"type": if call.is_some() { "none" } else { "auto" }}});
            let headers = vec![
                ("x-api-key", KEY.to_string()),
                ("anthropic-version", "2023-06-01".to_string()),
            ];
            ("/v1/messages".into(), headers, b)
        }
        Client::Gemini => {
            let mut contents = vec![json!({"role": "user", "parts": [{"text": q}]})];
            if let Some(c) = call {
                let args: Value = serde_json::from_str(&c.args).unwrap();
                let mut fc = json!({"name": c.name, "args": args});
                let mut fr = json!({"name": c.name, "response": {"content": "18C"}});
                if !c.id.is_empty() {
                    fc["id"] = json!(c.id);
                    fr["id"] = json!(c.id);
                }
                contents.push(json!({"role": "model", "parts": [{"functionCall": fc}]}));
                contents.push(json!({"role": "user", "parts": [{"functionResponse": fr}]}));
            }
            let b = json!({"contents": contents,
                "generationConfig": {"maxOutputTokens": MAX},
                "tools": [{"functionDeclarations": [{"name": "get_weather",
                    "parametersJsonSchema": serde_json::from_str::<Value>(SCHEMA).unwrap()}]}],
                "toolConfig": {"functionCallingConfig": {
                    "mode": if call.is_some() { "NONE" } else { "AUTO" }}}});
            let path = if stream {
                format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
            } else {
                format!("/v1beta/models/{model}:generateContent")
            };
            (path, vec![("x-goog-api-key", KEY.to_string())], b)
        }
        Client::Bedrock => {
            let mut messages = vec![json!({"role": "user", "content": [{"text": q}]})];
            if let Some(c) = call {
                let input: Value = serde_json::from_str(&c.args).unwrap();
                messages.push(json!({"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": c.id, "name": c.name, "input": input}}]}));
                messages.push(json!({"role": "user", "content": [
                    {"toolResult": {"toolUseId": c.id, "content": [{"text": "18C"}]}}]}));
            }
            // Bedrock has no tool choice `none`: the second round leaves the choice out.
            let mut tools = json!({"tools": [{"toolSpec": {"name": "get_weather",
                "inputSchema": {"json": serde_json::from_str::<Value>(SCHEMA).unwrap()}}}]});
            if call.is_none() {
                tools["toolChoice"] = json!({"auto": {}});
            }
            let b = json!({"messages": messages, "inferenceConfig": {"maxTokens": MAX},
                "toolConfig": tools});
            let path = format!(
                "/model/{model}/{}",
                if stream {
                    "converse-stream"
                } else {
                    "converse"
                }
            );
            (path, bearer, b)
        }
    }
}

// ------------------------------------------------------------ what a client assembles

#[derive(Debug, Default)]
struct Got {
    text: String,
    calls: Vec<Call>,
    output_tokens: Option<u64>,
    /// The answer said why it ended (in its dialect's words).
    finish: Option<String>,
    /// The stream ended as its dialect ends one.
    ended: bool,
}

/// `(event name, data)` of each SSE event.
fn events(body: &str) -> Vec<(Option<String>, String)> {
    let body = body.replace("\r\n", "\n");
    let mut out = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let (mut event, mut data) = (None, String::new());
        for line in block.lines() {
            if let Some(e) = line.strip_prefix("event:") {
                event = Some(e.trim().to_string());
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        out.push((event, data));
    }
    out
}

/// What a client of `client` assembles from a response body (Bedrock's stream is binary).
fn assemble(client: Client, stream: bool, bytes: &[u8]) -> Got {
    if client == Client::Bedrock && stream {
        return bedrock_stream(bytes);
    }
    let body = std::str::from_utf8(bytes).unwrap();
    let mut g = Got::default();
    if !stream {
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        match client {
            Client::Chat => {
                let m = &v["choices"][0]["message"];
                g.text = m["content"].as_str().unwrap_or("").into();
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    g.calls.push(Call {
                        id: c["id"].as_str().unwrap().into(),
                        name: c["function"]["name"].as_str().unwrap().into(),
                        args: c["function"]["arguments"].as_str().unwrap().into(),
                    });
                }
                g.finish = v["choices"][0]["finish_reason"].as_str().map(Into::into);
                g.output_tokens = v["usage"]["completion_tokens"].as_u64();
            }
            Client::Responses => {
                assert_eq!(v["object"], "response", "{v}");
                responses_output(&v, &mut g);
            }
            Client::Messages => {
                assert_eq!(v["type"], "message", "{v}");
                for b in v["content"].as_array().unwrap() {
                    match b["type"].as_str().unwrap() {
                        "text" => g.text.push_str(b["text"].as_str().unwrap()),
                        "tool_use" => g.calls.push(Call {
                            id: b["id"].as_str().unwrap().into(),
                            name: b["name"].as_str().unwrap().into(),
                            args: b["input"].to_string(),
                        }),
                        other => panic!("{other}: {v}"),
                    }
                }
                g.finish = v["stop_reason"].as_str().map(Into::into);
                g.output_tokens = v["usage"]["output_tokens"].as_u64();
            }
            Client::Gemini => gemini_chunk(&v, &mut g),
            Client::Bedrock => {
                for b in v["output"]["message"]["content"].as_array().unwrap() {
                    if let Some(t) = b["text"].as_str() {
                        g.text.push_str(t);
                    }
                    if let Some(t) = b.get("toolUse") {
                        g.calls.push(Call {
                            id: t["toolUseId"].as_str().unwrap().into(),
                            name: t["name"].as_str().unwrap().into(),
                            args: t["input"].to_string(),
                        });
                    }
                }
                g.finish = v["stopReason"].as_str().map(Into::into);
                g.output_tokens = v["usage"]["outputTokens"].as_u64();
            }
        }
        g.ended = true;
        return g;
    }
    let evs = events(body);
    match client {
        Client::Bedrock => unreachable!("a binary stream, assembled above"),
        Client::Chat => {
            let mut calls: Vec<Call> = Vec::new();
            for (_, data) in &evs {
                if data == "[DONE]" {
                    g.ended = true;
                    continue;
                }
                let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
                if let Some(n) = v["usage"]["completion_tokens"].as_u64() {
                    g.output_tokens = Some(n);
                }
                let Some(ch) = v["choices"].get(0) else {
                    continue;
                };
                if let Some(t) = ch["delta"]["content"].as_str() {
                    g.text.push_str(t);
                }
                for tc in ch["delta"]["tool_calls"].as_array().into_iter().flatten() {
                    let i = tc["index"].as_u64().unwrap() as usize;
                    if i == calls.len() {
                        calls.push(Call::default());
                    }
                    let c = &mut calls[i];
                    if let Some(id) = tc["id"].as_str() {
                        c.id = id.into();
                    }
                    if let Some(n) = tc["function"]["name"].as_str() {
                        c.name = n.into();
                    }
                    if let Some(a) = tc["function"]["arguments"].as_str() {
                        c.args.push_str(a);
                    }
                }
                if let Some(f) = ch["finish_reason"].as_str() {
                    g.finish = Some(f.into());
                }
            }
            g.calls = calls;
        }
        Client::Responses => {
            let mut final_response = None;
            let mut by_index: Vec<(u64, Call)> = Vec::new();
            for (n, (event, data)) in evs.iter().enumerate() {
                let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
                let ty = v["type"].as_str().unwrap();
                assert_eq!(
                    event.as_deref(),
                    Some(ty),
                    "the event names its type: {data}"
                );
                assert_eq!(v["sequence_number"], n as u64, "numbered in order: {data}");
                match (n, ty) {
                    (0, t) => assert_eq!(t, "response.created", "{body}"),
                    (1, t) => assert_eq!(t, "response.in_progress", "{body}"),
                    _ => {}
                }
                match ty {
                    "response.output_text.delta" => {
                        g.text.push_str(v["delta"].as_str().unwrap());
                    }
                    "response.output_item.added" if v["item"]["type"] == "function_call" => {
                        by_index.push((
                            v["output_index"].as_u64().unwrap(),
                            Call {
                                id: v["item"]["call_id"].as_str().unwrap().into(),
                                name: v["item"]["name"].as_str().unwrap().into(),
                                args: String::new(),
                            },
                        ));
                    }
                    "response.function_call_arguments.delta" => {
                        let i = v["output_index"].as_u64().unwrap();
                        let c = by_index.iter_mut().find(|(o, _)| *o == i).unwrap();
                        c.1.args.push_str(v["delta"].as_str().unwrap());
                    }
                    "response.completed" | "response.incomplete" => {
                        assert_eq!(n, evs.len() - 1, "the last event: {body}");
                        final_response = Some(v["response"].clone());
                    }
                    "error" | "response.failed" => panic!("{body}"),
                    _ => {}
                }
            }
            g.calls = by_index.into_iter().map(|(_, c)| c).collect();
            // The final response repeats the whole output: it must agree with the deltas.
            let r = final_response.expect("a terminal event");
            let mut whole = Got::default();
            responses_output(&r, &mut whole);
            assert_eq!(whole.text, g.text, "{body}");
            assert_eq!(whole.calls, g.calls, "{body}");
            g.finish = whole.finish;
            g.output_tokens = whole.output_tokens;
            g.ended = true;
        }
        Client::Messages => {
            let mut open_call: Option<usize> = None;
            for (event, data) in &evs {
                let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
                match event.as_deref().unwrap() {
                    "content_block_start" if v["content_block"]["type"] == "tool_use" => {
                        g.calls.push(Call {
                            id: v["content_block"]["id"].as_str().unwrap().into(),
                            name: v["content_block"]["name"].as_str().unwrap().into(),
                            args: String::new(),
                        });
                        open_call = Some(g.calls.len() - 1);
                    }
                    "content_block_delta" => match v["delta"]["type"].as_str().unwrap() {
                        "text_delta" => g.text.push_str(v["delta"]["text"].as_str().unwrap()),
                        "input_json_delta" => g.calls[open_call.unwrap()]
                            .args
                            .push_str(v["delta"]["partial_json"].as_str().unwrap()),
                        other => panic!("{other}"),
                    },
                    "message_delta" => {
                        g.finish = v["delta"]["stop_reason"].as_str().map(Into::into);
                        g.output_tokens = v["usage"]["output_tokens"].as_u64();
                    }
                    "message_stop" => g.ended = true,
                    "error" => panic!("{body}"),
                    _ => {}
                }
            }
        }
        Client::Gemini => {
            for (_, data) in &evs {
                let v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
                assert!(v.get("error").is_none(), "{body}");
                gemini_chunk(&v, &mut g);
            }
            g.ended = g.finish.is_some();
        }
    }
    g
}

fn bedrock_stream(body: &[u8]) -> Got {
    let mut g = Got::default();
    let mut blocks: Vec<(u64, usize)> = Vec::new();
    for (event, v) in eventstream_frames(body) {
        match event.as_str() {
            "contentBlockStart" => {
                let t = &v["start"]["toolUse"];
                g.calls.push(Call {
                    id: t["toolUseId"].as_str().unwrap().into(),
                    name: t["name"].as_str().unwrap().into(),
                    args: String::new(),
                });
                blocks.push((v["contentBlockIndex"].as_u64().unwrap(), g.calls.len() - 1));
            }
            "contentBlockDelta" => {
                let d = &v["delta"];
                if let Some(t) = d["text"].as_str() {
                    g.text.push_str(t);
                } else if let Some(i) = d["toolUse"]["input"].as_str() {
                    let b = v["contentBlockIndex"].as_u64().unwrap();
                    let (_, c) = blocks.iter().find(|(x, _)| *x == b).unwrap();
                    g.calls[*c].args.push_str(i);
                }
            }
            "messageStop" => g.finish = v["stopReason"].as_str().map(Into::into),
            "metadata" => {
                g.output_tokens = v["usage"]["outputTokens"].as_u64();
                g.ended = true;
            }
            e if e.ends_with("Exception") => panic!("{v}"),
            _ => {}
        }
    }
    g
}

fn responses_output(v: &Value, g: &mut Got) {
    for item in v["output"].as_array().unwrap() {
        match item["type"].as_str().unwrap() {
            "message" => {
                for p in item["content"].as_array().unwrap() {
                    g.text.push_str(p["text"].as_str().unwrap());
                }
            }
            "function_call" => g.calls.push(Call {
                id: item["call_id"].as_str().unwrap().into(),
                name: item["name"].as_str().unwrap().into(),
                args: item["arguments"].as_str().unwrap().into(),
            }),
            _ => {}
        }
    }
    g.finish = v["status"].as_str().map(Into::into);
    g.output_tokens = v["usage"]["output_tokens"].as_u64();
}

fn gemini_chunk(v: &Value, g: &mut Got) {
    let c = &v["candidates"][0];
    for p in c["content"]["parts"].as_array().into_iter().flatten() {
        if let Some(t) = p["text"].as_str() {
            g.text.push_str(t);
        }
        if let Some(fc) = p.get("functionCall") {
            assert!(fc["args"].is_object(), "{v}");
            g.calls.push(Call {
                id: fc["id"].as_str().unwrap_or("").into(),
                name: fc["name"].as_str().unwrap().into(),
                args: fc["args"].to_string(),
            });
        }
    }
    if let Some(f) = c["finishReason"].as_str() {
        g.finish = Some(f.into());
    }
    if let Some(n) = v["usageMetadata"]["candidatesTokenCount"].as_u64() {
        g.output_tokens = Some(
            n + v["usageMetadata"]["thoughtsTokenCount"]
                .as_u64()
                .unwrap_or(0),
        );
    }
}

/// The finish reason a client of `client` expects for an answer that called a tool, and for
/// one that did not.
fn finishes(client: Client) -> (&'static str, &'static [&'static str]) {
    match client {
        Client::Chat => ("tool_calls", &["stop", "length"]),
        Client::Responses => ("completed", &["completed", "incomplete"]),
        Client::Messages => ("tool_use", &["end_turn", "max_tokens"]),
        Client::Gemini => ("STOP", &["STOP", "MAX_TOKENS"]),
        Client::Bedrock => ("tool_use", &["end_turn", "max_tokens"]),
    }
}

#[test]
fn every_client_dialect_is_served_by_every_provider_dialect() {
    let dir = test_dir("pairs");
    let audit = dir.join("audit.log");
    let mock = mock();
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();
    let mut matrix = Vec::new();
    let mut sent = 0;
    for client in CLIENTS {
        for (model, provider) in PROVIDERS {
            for stream in [false, true] {
                let what = format!("{client:?} client, {provider} provider, stream={stream}");
                // A plain answer, no tools.
                let r = roundtrip(a, &request(client, model, stream, Round::Plain));
                assert_eq!(r.status, 200, "{what}, plain: {}", r.text());
                let got = assemble(client, stream, &r.body);
                assert!(
                    got.calls.is_empty() && !got.text.is_empty(),
                    "{what}: {got:?}"
                );
                assert!(got.ended, "{what}");
                assert_eq!(got.output_tokens, Some(MAX), "{what}: the provider's count");
                // The first round: the model calls the tool.
                let r = roundtrip(a, &request(client, model, stream, Round::Ask));
                sent += 3;
                assert_eq!(r.status, 200, "{what}: {}", r.text());
                let want_type = match (stream, client) {
                    (false, _) => "application/json",
                    (true, Client::Bedrock) => "application/vnd.amazon.eventstream",
                    (true, _) => "text/event-stream",
                };
                assert!(
                    r.header("content-type").unwrap().starts_with(want_type),
                    "{what}: {:?}",
                    r.header("content-type")
                );
                let got = assemble(client, stream, &r.body);
                assert_eq!(got.calls.len(), 1, "{what}: {got:?}");
                let call = got.calls[0].clone();
                assert_eq!(call.name, "get_weather", "{what}");
                let args: Value = serde_json::from_str(&call.args)
                    .unwrap_or_else(|e| panic!("{what}: {e}: {call:?}"));
                assert!(args.is_object(), "{what}: {call:?}");
                if client != Client::Gemini {
                    assert!(!call.id.is_empty(), "{what}: a call id to answer it by");
                }
                let (tool_finish, _) = finishes(client);
                assert_eq!(got.finish.as_deref(), Some(tool_finish), "{what}: {got:?}");
                assert!(got.ended, "{what}");
                assert_eq!(got.output_tokens, Some(MAX), "{what}: the provider's count");
                // The second round: the result goes back, the model answers in text.
                let r = roundtrip(a, &request(client, model, stream, Round::Answer(&call)));
                assert_eq!(r.status, 200, "{what}, with the result: {}", r.text());
                let got = assemble(client, stream, &r.body);
                if client == Client::Bedrock {
                    // No `none` to send: the model may call the tool again; the round trip
                    // itself is what is checked.
                    assert!(got.calls.len() <= 1, "{what}: {got:?}");
                } else {
                    assert!(got.calls.is_empty(), "{what}: {got:?}");
                    assert!(!got.text.is_empty(), "{what}: {got:?}");
                    let (_, text_finish) = finishes(client);
                    assert!(
                        text_finish.contains(&got.finish.as_deref().unwrap_or("")),
                        "{what}: {got:?}"
                    );
                }
                assert!(got.ended, "{what}");
                assert_eq!(got.output_tokens, Some(MAX), "{what}: the provider's count");
            }
            matrix.push(format!("{client:?} → {provider}"));
        }
    }
    gw.shutdown();
    eprintln!("pairs served: {}/35\n{}", matrix.len(), matrix.join("\n"));
    assert_eq!(matrix.len(), 35);
    let ledger = mock.ledger();
    assert_eq!(
        ledger.tokens_issued, 1,
        "one Vertex access token, fetched by the coordinator, served every call"
    );
    assert_eq!(
        ledger.rejected, 0,
        "each provider got its own key, in its scheme"
    );
    let records = audit_records(&audit);
    assert_eq!(records.len(), sent);
    let mut metered = (0, 0);
    for r in &records {
        assert_eq!(r["http.response.status_code"], 200, "{r}");
        assert_eq!(r["usage_estimated"], false, "{r}");
        metered.0 += r["gen_ai.usage.input_tokens"].as_u64().unwrap();
        metered.1 += r["gen_ai.usage.output_tokens"].as_u64().unwrap();
    }
    assert_eq!(
        metered,
        (ledger.total.prompt_tokens, ledger.total.completion_tokens),
        "what the audit says was used is what the provider billed"
    );
}

/// The response cache, through every pair: an answer filled from a stream is served again as
/// JSON, and one filled from JSON as a stream — each rendered in the client's dialect and read
/// here like any other answer (text, tool calls, why it ended, the provider's token count) —
/// while the provider is called once per distinct request.
#[test]
fn cached_answers_are_served_in_every_dialect_and_form() {
    let dir = test_dir("pairs-cache");
    let audit = dir.join("audit.log");
    let mock = mock();
    let mut text = config(mock.addr, &audit);
    for (model, _) in PROVIDERS {
        text = text.replace(
            &format!("[[models]]\nname = \"{model}\"\n"),
            &format!("[[models]]\nname = \"{model}\"\ncache = {{ ttl = \"1h\" }}\n"),
        );
    }
    let gw = start(&text);
    let a = gw.local_addr();
    let mut served = 0;
    for client in CLIENTS {
        for (model, provider) in PROVIDERS {
            for (round, first_stream) in [(Round::Ask, true), (Round::Plain, false)] {
                let what = format!("{client:?} client, {provider} provider, {round:?}");
                let r = roundtrip(a, &request(client, model, first_stream, round));
                assert_eq!(r.status, 200, "{what}: {}", r.text());
                assert_eq!(r.header("x-tollgate-cache"), Some("miss"), "{what}");
                let first = assemble(client, first_stream, &r.body);
                for stream in [!first_stream, first_stream] {
                    let r = roundtrip(a, &request(client, model, stream, round));
                    let what = format!("{what}, hit as stream={stream}");
                    assert_eq!(r.status, 200, "{what}: {}", r.text());
                    assert_eq!(r.header("x-tollgate-cache"), Some("hit"), "{what}");
                    let got = assemble(client, stream, &r.body);
                    assert!(got.ended, "{what}: {got:?}");
                    assert_eq!(got.text, first.text, "{what}");
                    assert_eq!(got.finish, first.finish, "{what}");
                    assert_eq!(got.output_tokens, Some(MAX), "{what}: the original usage");
                    assert_eq!(got.calls.len(), first.calls.len(), "{what}: {got:?}");
                    for (g, f) in got.calls.iter().zip(&first.calls) {
                        assert_eq!(g.name, f.name, "{what}");
                        // Gemini's calls carry no id; its writer names them `call_<n>`.
                        if !f.id.is_empty() {
                            assert_eq!(g.id, f.id, "{what}");
                        }
                        let (g, f): (Value, Value) = (
                            serde_json::from_str(&g.args).unwrap(),
                            serde_json::from_str(&f.args).unwrap(),
                        );
                        assert_eq!(g, f, "{what}");
                    }
                }
                served += 1;
            }
        }
    }
    gw.shutdown();
    let ledger = mock.ledger();
    let calls = ledger.total.requests;
    assert_eq!(
        calls, served,
        "one provider call per distinct request, every hit from the cache"
    );
    let records = audit_records(&audit);
    let hits = records.iter().filter(|r| r["cache"] == "hit").count();
    assert_eq!(hits as u64, 2 * served);
    for r in records.iter().filter(|r| r["cache"] == "hit") {
        assert_eq!(r["cost_micro_usd"], 0, "hits are free by default: {r}");
        assert!(r["cache_saved_micro_usd"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(
            r["gen_ai.usage.output_tokens"], MAX,
            "the original usage: {r}"
        );
    }
}

/// A Bedrock provider's stream with a message whose CRC does not match (the mock's
/// `malformed` fault): for a client of another dialect it is refused, never relayed
/// untranslated — an error in the client's dialect naming why; a Bedrock client gets the
/// bytes as they came (its SDK checks the CRC itself), and that call is settled from an
/// estimate.
#[test]
fn a_corrupt_bedrock_frame_is_refused_with_a_reason() {
    let dir = test_dir("pairs-corrupt");
    let audit = dir.join("audit.log");
    let mock = mock();
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();
    let fault = [("x-mock-fault", "malformed".to_string())];
    let send = |client: Client| {
        let (path, mut headers, body) = body(client, "p-bedrock", true, None);
        headers.extend(fault.iter().cloned());
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        roundtrip(a, &post_with(&path, &headers, body.to_string().as_bytes()))
    };
    // The corrupt message arrives with the first ones, before anything reached the client: a
    // 502 in the client's shape, naming why.
    let r = send(Client::Chat);
    assert_eq!(r.status, 502, "{}", r.text());
    let e = r.json();
    assert_eq!(e["error"]["code"], "upstream_protocol_error", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("CRC does not match"), "{message}");
    let r = send(Client::Bedrock);
    assert_eq!(r.status, 200);
    let bad = std::panic::catch_unwind(|| eventstream_frames(&r.body));
    assert!(
        bad.is_err(),
        "the corrupt message reached the Bedrock client as it came"
    );
    gw.shutdown();
    let records = audit_records(&audit);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["http.response.status_code"], 502);
    assert_eq!(records[1]["usage_estimated"], true, "{}", records[1]);
    assert!(records[1]["gen_ai.usage.output_tokens"].as_u64().unwrap() > 0);
}

/// A Vertex service account whose token cannot be fetched (its token endpoint refuses the
/// connection): the gateway starts, says why in its log, and calls to its deployments fail
/// clearly and at once — no request waits on the token endpoint — while every other provider
/// serves.
#[test]
fn a_vertex_provider_without_a_token_fails_clearly_and_alone() {
    let dir = test_dir("pairs-no-token");
    let audit = dir.join("audit.log");
    let mock = mock();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let text = config(mock.addr, &audit);
    // The token endpoint lives in the service-account file: point it at the closed port.
    let sa = dir.join("service-account.json");
    let json = std::fs::read_to_string(&sa).unwrap().replace(
        &format!("http://{}/token", mock.addr),
        &format!("http://{dead}/token"),
    );
    std::fs::write(&sa, json).unwrap();
    let gw = start(&text);
    let a = gw.local_addr();
    let r = roundtrip(
        a,
        &request(Client::Chat, "p-vertex-gemini", false, Round::Plain),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("no Vertex AI access token"),
        "{}",
        r.text()
    );
    let r = roundtrip(a, &request(Client::Chat, "p-gemini", false, Round::Plain));
    assert_eq!(r.status, 200, "{}", r.text());
    gw.shutdown();
    assert_eq!(mock.ledger().tokens_issued, 0);
}

/// A Bedrock stream cut before `messageStop` (the connection reset after 2, 4 or 6 messages):
/// a client of another dialect never sees a clean end — an error before the first byte, or an
/// error event after it, never `[DONE]` — and the call settles from an estimate.
#[test]
fn a_bedrock_stream_cut_short_never_ends_cleanly() {
    let dir = test_dir("pairs-cut");
    let audit = dir.join("audit.log");
    let mock = mock();
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();
    for cut in [2, 4, 6] {
        let (path, mut headers, body) = body(Client::Chat, "p-bedrock", true, None);
        headers.push(("x-mock-fault", format!("reset-after={cut}")));
        headers.push(("x-mock-itl-ms", "1".to_string()));
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = roundtrip(a, &post_with(&path, &headers, body.to_string().as_bytes()));
        let text = r.text();
        assert!(
            r.status == 502 || (text.contains("event: error") && !text.contains("[DONE]")),
            "cut at {cut}: {} {text}",
            r.status
        );
    }
    gw.shutdown();
    let records = audit_records(&audit);
    assert_eq!(records.len(), 3);
    for r in records
        .iter()
        .filter(|r| r["http.response.status_code"] == 200)
    {
        assert_eq!(r["usage_estimated"], true, "{r}");
    }
}

/// `req` with `headers` added after its request line.
fn with_headers(req: Vec<u8>, headers: &[(&str, String)]) -> Vec<u8> {
    let line_end = req.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
    let mut out = req[..line_end].to_vec();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(&req[line_end..]);
    out
}

/// Guardrails on answers, through every pair: the provider's answer holds an email and a card
/// number, streamed in pieces of 1 to 7 bytes (every split of the values across events), and
/// every client dialect — JSON and stream, text and a tool call's arguments — gets them
/// redacted with the rest of the text untouched, its stream still valid in its dialect.
#[test]
fn guarded_answers_are_redacted_in_every_dialect_and_form() {
    let dir = test_dir("pairs-guard");
    let audit = dir.join("audit.log");
    let mock = mock();
    let key_line = format!("sha256 = \"{}\"\n", sha256_hex(KEY));
    let text = config(mock.addr, &audit).replacen(
        &key_line,
        &format!("{key_line}guardrails = [\"pii\"]\n"),
        1,
    ) + "[[guardrails]]\nname = \"pii\"\ndetectors = [\"email\", \"card\"]\n\
         action = \"redact\"\nwhere = [\"response\"]\n";
    let gw = start(&text);
    let a = gw.local_addr();
    let say = "Reach jo.doe@corp.example.com or pay 4111 1111 1111 1111 today.";
    let want = "Reach [EMAIL_1] or pay [CARD_1] today.";
    let mut n = 0usize;
    for client in CLIENTS {
        for (model, provider) in &PROVIDERS[..5] {
            for stream in [false, true] {
                n += 1;
                let bytes = 1 + n % 7;
                let what =
                    format!("{client:?} client, {provider}, stream={stream}, {bytes}-byte pieces");
                let headers = [
                    ("x-mock-say", say.to_owned()),
                    ("x-mock-token-bytes", bytes.to_string()),
                ];
                let req = with_headers(request(client, model, stream, Round::Plain), &headers);
                let r = roundtrip(a, &req);
                assert_eq!(r.status, 200, "{what}: {}", r.text());
                let got = assemble(client, stream, &r.body);
                assert_eq!(got.text, want, "{what}: {got:?}");
                assert!(got.ended, "{what}");
                // A tool call's arguments (`{"input":"<the text>"}`), streamed in pieces.
                let req = with_headers(request(client, model, stream, Round::Ask), &headers);
                let r = roundtrip(a, &req);
                assert_eq!(r.status, 200, "{what}: {}", r.text());
                let got = assemble(client, stream, &r.body);
                assert_eq!(got.calls.len(), 1, "{what}: {got:?}");
                let args: Value = serde_json::from_str(&got.calls[0].args)
                    .unwrap_or_else(|e| panic!("{what}: {e}: {got:?}"));
                assert_eq!(args["input"], want, "{what}: {got:?}");
            }
        }
    }
    gw.shutdown();
    let records = audit_records(&audit);
    assert_eq!(records.len(), 2 * n);
    for r in &records {
        let g = &r["guardrails"];
        assert!(
            g.as_array().is_some_and(|g| g.len() == 2
                && g.iter()
                    .all(|h| h["rule"] == "pii" && h["where"] == "response" && h["count"] == 1)),
            "{r}"
        );
        assert!(!r.to_string().contains("jo.doe"), "{r}");
    }
}
