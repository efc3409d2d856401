//! Anthropic's Messages API, passed through: a client of `POST /v1/messages` (Anthropic SDK
//! style: `x-api-key`) reaches an `anthropic` provider with the provider's own credential and
//! an `anthropic-version`, gets Anthropic's JSON and SSE back as the provider sent them, is
//! metered from Anthropic's usage fields, and gets errors in Anthropic's shape. (Translation
//! between the dialects is not built yet: such requests are refused with a clear 400.)

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
    // A model only an OpenAI-dialect provider serves: a clear 400, in Anthropic's shape.
    let r = roundtrip(a, &messages(KEY, "mock-chat", false));
    assert_eq!(r.status, 200, "the built-in mock speaks both: {}", r.text());
    let r = roundtrip(a, &post("/v1/chat/completions", &chat("claude-x", false)));
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_request_body");
    assert!(r.text().contains("translation"), "{}", r.text());
    gw.shutdown();
}
