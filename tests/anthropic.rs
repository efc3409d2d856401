//! Anthropic's Messages API, passed through: a client of `POST /v1/messages` (Anthropic SDK
//! style: `x-api-key`) reaches an `anthropic` provider with the provider's own credential and
//! an `anthropic-version`, gets Anthropic's JSON and SSE back as the provider sent them, is
//! metered from Anthropic's usage fields, and gets errors in Anthropic's shape. (Translation
//! between the dialects: tests/translation.rs.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use support::*;

fn messages(secret: &str, model: &str, stream: bool) -> Vec<u8> {
    post_with(
        "/v1/messages",
        &[("x-api-key", secret), ("anthropic-version", "2023-06-01")],
        format!(
            r#"{{"model":"{model}","max_tokens":12,"stream":{stream},"messages":[{{"role":"user","content":"hello there"}}]}}"#
        )
        .as_bytes(),
    )
}

fn config(mock: std::net::SocketAddr, audit: &std::path::Path) -> String {
    config_text(
        None,
        1,
        &format!(
            "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\n\
             base_url = \"http://{mock}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"claude-x\"\n[[models.deployments]]\nprovider = \"claude\"\n\
             model = \"claude-upstream\"\nprice = {{ input = 3.0, output = 15.0 }}\n{}",
            audit_to(audit)
        ),
    )
}

#[test]
fn messages_pass_through_to_an_anthropic_provider_and_are_metered() {
    let dir = test_dir("anthropic-pass");
    let audit = dir.join("audit.log");
    // The provider accepts only its own key (sent as x-api-key).
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();
    let r = roundtrip(a, &messages(KEY, "claude-x", false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-upstream");
    let (input, output) = (
        v["usage"]["input_tokens"].as_u64().unwrap(),
        v["usage"]["output_tokens"].as_u64().unwrap(),
    );
    assert_eq!(output, 12);
    let r = roundtrip(a, &messages(KEY, "claude-x", true));
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("event: message_start") && text.contains("event: message_stop"),
        "{text}"
    );
    gw.shutdown();
    assert_eq!(mock.ledger().rejected, 0, "the provider got its own key");
    let records = audit_records(&audit);
    assert_eq!(records.len(), 2);
    for r in &records {
        assert_eq!(r["http.route"], "/v1/messages", "{r}");
        assert_eq!(r["gen_ai.operation.name"], "chat");
        assert_eq!(r["gen_ai.usage.input_tokens"], input, "{r}");
        assert_eq!(r["gen_ai.usage.output_tokens"], 12, "{r}");
        assert_eq!(r["usage_estimated"], false, "{r}");
        assert!(r["cost_micro_usd"].as_u64() > Some(0));
    }
}

#[test]
fn messages_clients_get_anthropic_errors() {
    let dir = test_dir("anthropic-errors");
    let mock = start_mock(|_| {});
    let gw = start(&config(mock.addr, &dir.join("audit.log")));
    let a = gw.local_addr();
    // A wrong key: Anthropic's shape.
    let r = roundtrip(a, &messages("sk-wrong", "claude-x", false));
    assert_eq!(r.status, 401);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");
    let r = roundtrip(a, &messages(KEY, "mock-chat", false));
    assert_eq!(r.status, 200, "the built-in mock speaks both: {}", r.text());
    // Chat completions for an Anthropic-only model are translated (tests/translation.rs);
    // embeddings have no Anthropic equivalent: a clear 400.
    let r = roundtrip(a, &post("/v1/chat/completions", &chat("claude-x", false)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let r = roundtrip(
        a,
        &post("/v1/embeddings", r#"{"model":"claude-x","input":"hello"}"#),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_request_body");
    assert!(
        r.text().contains("only OpenAI Chat Completions providers"),
        "{}",
        r.text()
    );
    gw.shutdown();
}

/// Every Anthropic capture in the corpus (an `anthropic` provider replaying it, in 7-byte
/// chunks) reaches a Messages client byte for byte, and the audit record has the usage the
/// MANIFEST says (input normalised: uncached + cache read + cache creation) and the stop reason.
#[test]
fn anthropic_captures_pass_through_byte_for_byte_and_are_metered_as_the_manifest_says() {
    let replay = start_replay();
    let dir = test_dir("anthropic-corpus");
    let log = dir.join("audit.jsonl");
    let gw = start(&config(replay.addr, &log));
    let messages = |f: &serde_json::Value| {
        f["format"]
            .as_str()
            .unwrap()
            .starts_with("anthropic.messages")
            && f["expected"].get("error_type").is_none()
    };
    let expected = replay_captures(gw.local_addr(), "anthropic/", messages, |path, stream| {
        post_with(
            "/v1/messages",
            &[
                ("x-api-key", KEY),
                ("x-replay", path),
                ("x-replay-chunk", "7"),
            ],
            format!(r#"{{"model":"claude-x","max_tokens":64,"stream":{stream},"messages":[]}}"#)
                .as_bytes(),
        )
    });
    gw.shutdown();
    // What the provider received: its own key in x-api-key, an API version, and neither the
    // client's key nor an Authorization header.
    let heads = replay.heads.lock().unwrap();
    assert_eq!(
        heads.len(),
        expected.len(),
        "one upstream request per capture"
    );
    for head in heads.iter() {
        assert!(head.starts_with("post /v1/messages http/1.1"), "{head}");
        assert!(
            head.contains(&format!("x-api-key: {UPSTREAM_KEY}")),
            "{head}"
        );
        assert_eq!(
            head.matches("anthropic-version: 2023-06-01").count(),
            1,
            "{head}"
        );
        assert!(
            !head.contains("authorization") && !head.contains(KEY),
            "{head}"
        );
    }
    assert!(expected.len() >= 4, "{expected:?}");
    let recs = audit_records(&log);
    assert_eq!(recs.len(), expected.len());
    for (rec, (path, want)) in recs.iter().zip(&expected) {
        let n = |k: &str| want[k].as_u64().unwrap_or(0);
        let input = n("input_tokens") + n("cached_input_tokens") + n("cache_creation_input_tokens");
        assert_eq!(rec["gen_ai.usage.input_tokens"], input, "{path}: {rec}");
        assert_eq!(
            rec["gen_ai.usage.output_tokens"],
            n("output_tokens"),
            "{path}: {rec}"
        );
        assert_eq!(rec["usage_estimated"], false, "{path}: {rec}");
        if let Some(stop) = want["stop_reason"].as_str() {
            assert_eq!(
                rec["gen_ai.response.finish_reasons"][0], stop,
                "{path}: {rec}"
            );
        }
    }
}

#[test]
fn an_anthropic_stream_cut_at_the_budget_cap_ends_in_anthropic_events() {
    let dir = test_dir("anthropic-cut");
    let audit = dir.join("audit.log");
    let mock = start_mock(|_| {});
    let cap = 400;
    let extra = key_entry(
        "capped",
        "sk-capped",
        &format!("budget = {{ tokens = {cap}, period = \"daily\" }}\ncut_stream_at_cap = true"),
    );
    let gw = start(&format!(
        "{}{extra}[quotas]\ndefault_output_tokens = 20\n",
        config(mock.addr, &audit)
    ));
    let r = roundtrip(
        gw.local_addr(),
        &post_with(
            "/v1/messages",
            &[
                ("x-api-key", "sk-capped"),
                ("anthropic-version", "2023-06-01"),
                ("x-mock-tokens", "1000"),
                ("x-mock-token-bytes", "4"),
            ],
            br#"{"model":"claude-x","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"write a lot"}]}"#,
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    // Only Anthropic events: no OpenAI chunk, no `[DONE]`.
    assert!(!text.contains("chat.completion"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    let events: Vec<(&str, serde_json::Value)> = text
        .split("\n\n")
        .filter_map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(n, _)| *n).collect();
    let n = names.len();
    assert!(n > 4, "{text}");
    assert_eq!(names[0], "message_start");
    assert_eq!(
        names[n - 3..],
        ["content_block_stop", "message_delta", "message_stop"],
        "{text}"
    );
    let delta = &events[n - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens", "{delta}");
    let delivered: usize = events
        .iter()
        .filter(|(n, _)| *n == "content_block_delta")
        .map(|(_, e)| e["delta"]["text"].as_str().unwrap_or("").len())
        .sum();
    assert!(
        delivered > 0 && (delivered as u64) / 4 < cap,
        "delivered {delivered} bytes"
    );
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() >= (delivered / 4) as u64);
    gw.shutdown();
}
