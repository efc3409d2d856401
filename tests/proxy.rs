#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! The gateway in front of the real mock provider: what reaches the provider, what reaches
//! the client, keep-alive and pipelining, both I/O drivers, the built-in mock, auth, models.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use support::*;
use tollgate::net::io::Driver;

#[test]
fn proxies_json_and_sse_to_an_openai_compatible_upstream() {
    let mock = start_mock(|c| c.api_keys = vec![UPSTREAM_KEY.into()]);
    let gw = start(&config_text(Some(mock.addr), 2, ""));
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("up-chat", false)),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    // The mock answers with the model it was asked for: the deployment's upstream name.
    assert_eq!(v["model"], "up-model");
    assert_eq!(v["choices"][0]["message"]["content"], "The quick brown fox");
    assert!(r.header("x-request-id").is_some());

    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("up-chat", true)),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = r.text();
    assert_eq!(text.matches("data: ").count(), 4 + 2 + 1, "{text}"); // role, 4 tokens, stop, [DONE]
    assert!(text.ends_with("data: [DONE]\n\n"));

    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/embeddings", r#"{"model":"up-embed","input":"hello"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "list");

    // The upstream saw the gateway's credential (it rejects anything else), never the client's.
    let ledger = mock.ledger();
    assert_eq!(ledger.keys.keys().collect::<Vec<_>>(), vec![UPSTREAM_KEY]);
    assert_eq!(ledger.total.requests, 3);
    gw.shutdown();
}

/// A one-shot upstream that records the exact bytes it was sent.
fn capture_upstream(
    response: &'static [u8],
) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut got = Vec::new();
        let mut tmp = [0u8; 4096];
        // Read the head, then exactly content-length bytes of body.
        loop {
            let n = s.read(&mut tmp).unwrap();
            assert!(n > 0, "gateway closed early");
            got.extend_from_slice(&tmp[..n]);
            if let Some(i) = memchr::memmem::find(&got, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..i]).to_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if got.len() >= i + 4 + len {
                    break;
                }
            }
        }
        s.write_all(response).unwrap();
        got
    });
    (addr, h)
}

#[test]
fn forwards_the_body_byte_for_byte_except_the_model_span_and_swaps_credentials() {
    let (addr, upstream) = capture_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-upstream: yes\r\ncontent-length: 2\r\n\r\n{}",
    );
    let gw = start(&config_text(Some(addr), 1, ""));
    // Odd spacing, escapes and unknown fields must survive untouched.
    let body = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"h\\u00e9llo \\\"q\\\"\"}],\n  \
                \"model\" :  \"up-\\u0063hat\" , \"temperature\":0.50, \"x_custom\":[1,{}]}";
    let req = post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-trace", "abc"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "drop-me"),
        ],
        body.as_bytes(),
    );
    let r = roundtrip(gw.local_addr(), &req);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-upstream"), Some("yes"));
    assert_eq!(r.body, b"{}");
    let got = String::from_utf8(upstream.join().unwrap()).unwrap();
    let (head, fwd_body) = got.split_once("\r\n\r\n").unwrap();
    let lower = head.to_lowercase();
    assert!(
        head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(lower.contains(&format!(
        "authorization: bearer {}",
        UPSTREAM_KEY.to_lowercase()
    )));
    assert!(!got.contains(KEY), "client key leaked upstream:\n{got}");
    assert!(lower.contains("x-trace: abc"));
    assert!(
        !lower.contains("x-hop"),
        "Connection-listed header forwarded:\n{head}"
    );
    assert!(lower.contains(&format!("host: {addr}")));
    let expected = body.replace("\"up-\\u0063hat\"", "\"up-model\"");
    assert_eq!(fwd_body, expected);
    assert!(lower.contains(&format!("content-length: {}", expected.len())));
    gw.shutdown();
}

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let mock = start_mock(|_| {});
    let gw = start(&config_text(Some(mock.addr), 1, ""));
    let mut c = Client::connect(gw.local_addr());
    // Three requests in one write, alternating the built-in mock and the upstream.
    let mut batch = Vec::new();
    for (model, tokens) in [("mock-chat", 1), ("up-chat", 2), ("mock-chat", 3)] {
        let body = format!(r#"{{"model":"{model}","max_tokens":{tokens},"messages":[]}}"#);
        batch.extend_from_slice(&post("/v1/chat/completions", &body));
    }
    batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n");
    c.send(&batch);
    for tokens in 1..=3 {
        let r = c.response();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["usage"]["completion_tokens"], tokens);
    }
    assert_eq!(c.response().json()["status"], "ok");
    // The same connection keeps serving.
    for _ in 0..50 {
        c.send(&post("/v1/chat/completions", &chat("up-chat", false)));
        assert_eq!(c.response().status, 200);
    }
    gw.shutdown();
}

#[test]
fn both_io_drivers_serve() {
    let mock = start_mock(|_| {});
    for driver in [Driver::Epoll, Driver::Uring] {
        if driver == Driver::Uring && !monoio::utils::detect_uring() {
            eprintln!("io_uring unavailable here; epoll covered");
            continue;
        }
        let gw = start_with(&config_text(Some(mock.addr), 2, ""), driver);
        for model in ["mock-chat", "up-chat"] {
            for stream in [false, true] {
                let r = roundtrip(
                    gw.local_addr(),
                    &post("/v1/chat/completions", &chat(model, stream)),
                );
                assert_eq!(r.status, 200, "{driver:?} {model} {stream}: {}", r.text());
            }
        }
        gw.shutdown();
    }
}

#[test]
fn the_default_config_answers_with_the_built_in_mock() {
    let gw = start_default();
    let auth = [("authorization", "Bearer sk-tollgate-demo")];
    let body = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(
        gw.local_addr(),
        &post_with("/v1/chat/completions", &auth, body),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let body =
        br#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(
        gw.local_addr(),
        &post_with("/v1/chat/completions", &auth, body),
    );
    assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());
    // An Anthropic client's stream is streamed in Anthropic's events, not answered with JSON
    // (what the Anthropic SDK's `messages.stream` needs).
    let body = br#"{"model":"gpt-4o-mini","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = roundtrip(gw.local_addr(), &post_with("/v1/messages", &auth, body));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let text = r.text();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"), "{text}");
    assert_eq!(events.last(), Some(&"message_stop"), "{text}");
    let deltas = events.iter().filter(|e| **e == "content_block_delta");
    assert_eq!(deltas.count(), 5, "{text}");
    // The other client APIs too, each answered in its own shape.
    let body = br#"{"model":"gpt-4o-mini","input":"hi","max_output_tokens":4}"#;
    let r = roundtrip(gw.local_addr(), &post_with("/v1/responses", &auth, body));
    assert_eq!(r.json()["object"], "response", "{}", r.text());
    let body = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;
    let r = roundtrip(
        gw.local_addr(),
        &post_with("/v1beta/models/gpt-4o-mini:generateContent", &auth, body),
    );
    assert!(
        r.json()["candidates"][0]["content"]["parts"].is_array(),
        "{}",
        r.text()
    );
    let body = br#"{"messages":[{"role":"user","content":[{"text":"hi"}]}],"inferenceConfig":{"maxTokens":3}}"#;
    let r = roundtrip(
        gw.local_addr(),
        &post_with("/model/gpt-4o-mini/converse-stream", &auth, body),
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    let events: Vec<String> = eventstream_frames(&r.body)
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert_eq!(events.first().map(String::as_str), Some("messageStart"));
    assert_eq!(events.last().map(String::as_str), Some("metadata"));
    assert_eq!(
        events.iter().filter(|e| *e == "contentBlockDelta").count(),
        3
    );
    // Only models that can serve are listed: the real providers have no API key here.
    let r = roundtrip(
        gw.local_addr(),
        b"GET /v1/models HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer sk-tollgate-demo\r\n\r\n",
    );
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids,
        [
            "gpt-4o-mini",
            "text-embedding-3-small",
            "gpt-4o-mini-cached"
        ]
    );
    assert_eq!(r.json()["object"], "list");
    // Anthropic's shape for a client that speaks Anthropic (its SDK sends the version).
    let r = roundtrip(
        gw.local_addr(),
        b"GET /v1/models HTTP/1.1\r\nhost: gw\r\nx-api-key: sk-tollgate-demo\r\n\
          anthropic-version: 2023-06-01\r\n\r\n",
    );
    let j = r.json();
    let data = j["data"].as_array().unwrap();
    assert_eq!(
        (data.len(), &data[0]["type"], &data[0]["id"]),
        (
            3,
            &serde_json::json!("model"),
            &serde_json::json!("gpt-4o-mini")
        )
    );
    assert!(
        data[0]["created_at"].as_str().unwrap().ends_with('Z'),
        "{j}"
    );
    assert_eq!(j["has_more"], false);
    assert_eq!(
        (j["first_id"].as_str(), j["last_id"].as_str()),
        (Some("gpt-4o-mini"), Some("gpt-4o-mini-cached"))
    );
    assert!(j.get("object").is_none(), "{j}");
    // The cached model: the second identical request is answered from the cache.
    let ask = post_with(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-tollgate-demo")],
        br#"{"model":"gpt-4o-mini-cached","messages":[{"role":"user","content":"hi"}]}"#,
    );
    let first = roundtrip(gw.local_addr(), &ask);
    assert_eq!(first.header("x-tollgate-cache"), Some("miss"));
    let again = roundtrip(gw.local_addr(), &ask);
    assert_eq!(again.header("x-tollgate-cache"), Some("hit"));
    assert_eq!(again.json(), first.json());
    gw.shutdown();
}

#[test]
fn authentication_and_request_validation() {
    let gw = start(&config_text(None, 1, ""));
    let a = gw.local_addr();
    let body = chat("mock-chat", false);
    let r = roundtrip(a, &post_with("/v1/chat/completions", &[], body.as_bytes()));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "missing_api_key")
    );
    let r = roundtrip(
        a,
        &post_with(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-wrong")],
            body.as_bytes(),
        ),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_api_key")
    );
    let r = roundtrip(
        a,
        &post_with(
            "/v1/chat/completions",
            &[("x-api-key", KEY)],
            body.as_bytes(),
        ),
    );
    assert_eq!(r.status, 200);

    for (body, status, code, param) in [
        ("{not json", 400, "invalid_request_body", None),
        ("[1,2]", 400, "invalid_request_body", None),
        (
            r#"{"messages":[]}"#,
            400,
            "invalid_request_body",
            Some("model"),
        ),
        (r#"{"model":7}"#, 400, "invalid_request_body", Some("model")),
        (
            r#"{"model":"mock-chat","stream":"yes"}"#,
            400,
            "invalid_request_body",
            Some("stream"),
        ),
        (
            r#"{"model":"gpt-9"}"#,
            404,
            "model_not_found",
            Some("model"),
        ),
    ] {
        let r = roundtrip(a, &post("/v1/chat/completions", body));
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (status, code),
            "{body}"
        );
        assert_eq!(r.json()["error"]["param"].as_str(), param, "{body}");
    }
    let r = roundtrip(a, b"GET /v1/nope HTTP/1.1\r\nhost: gw\r\n\r\n");
    assert_eq!((r.status, r.error_code().as_str()), (404, "unknown_url"));
    let r = roundtrip(a, b"GET /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n\r\n");
    assert_eq!(r.status, 405);
    // Health and readiness need no key.
    let r = roundtrip(a, b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = roundtrip(a, b"GET /readyz HTTP/1.1\r\nhost: gw\r\n\r\n");
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ready"))
    );
    gw.shutdown();
}

#[test]
fn errors_keep_the_connection_when_the_request_was_read_completely() {
    let gw = start(&config_text(None, 1, ""));
    let mut c = Client::connect(gw.local_addr());
    c.send(&post("/v1/chat/completions", r#"{"model":"gpt-9"}"#));
    assert_eq!(c.response().status, 404);
    c.send(&post_with("/v1/chat/completions", &[], b"{}"));
    let r = c.response();
    assert_eq!(r.status, 401);
    // An unauthenticated request with a body we never read: the connection is closed.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
    gw.shutdown();
}

#[test]
fn long_prompts_reach_the_provider_byte_for_byte_with_only_the_edited_spans_changed() {
    let replay = start_replay();
    let gw = start(&config_text(Some(replay.addr), 1, ""));
    let mut c = Client::connect(gw.local_addr());
    let long = "y".repeat(100 * 1024);
    // The model before the prompt (the tail after the edits is sent from the read buffer),
    // and after it (everything before the last edit is copied).
    for body in [
        format!(
            r#"{{"model":"up-chat","stream":true,"messages":[{{"role":"user","content":"{long}"}}]}}"#
        ),
        format!(
            r#"{{"messages":[{{"role":"user","content":"{long}"}}],"stream":true,"model":"up-chat"}}"#
        ),
    ] {
        c.send(&post_with(
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {KEY}")),
                (
                    "x-replay",
                    "openai/chat_completion_stream_include_usage.sse",
                ),
            ],
            body.as_bytes(),
        ));
        assert_eq!(c.response().status, 200);
        let got = replay.bodies.lock().unwrap().last().unwrap().clone();
        let want = body
            .replacen('{', r#"{"stream_options":{"include_usage":true},"#, 1)
            .replace(r#""model":"up-chat""#, r#""model":"up-model""#);
        assert_eq!(got.len(), want.len());
        assert!(
            got == want.as_bytes(),
            "the provider got exactly the edited body"
        );
    }
}
