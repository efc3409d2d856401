//! What a virtual key's configuration allows: enabled, expiry, which models, how many tokens —
//! enforced by the real gateway in front of the real mock provider.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use support::*;

fn send(addr: std::net::SocketAddr, path: &str, secret: &str, body: &str) -> Response {
    let auth = format!("Bearer {secret}");
    roundtrip(
        addr,
        &post_with(path, &[("authorization", &auth)], body.as_bytes()),
    )
}

#[test]
fn disabled_and_expired_keys_are_refused_with_their_reason() {
    let extra = [
        key_entry("off", "sk-off", "enabled = false"),
        key_entry("old", "sk-old", "expires = \"2000-01-01\""),
        key_entry("future", "sk-future", "expires = \"2999-12-31T23:59:59Z\""),
    ]
    .concat();
    let gw = start(&config_text(None, 1, &extra));
    let body = chat("mock-chat", false);
    for (secret, status, code) in [
        ("sk-off", 401, "key_disabled"),
        ("sk-old", 401, "key_expired"),
        ("sk-future", 200, ""),
    ] {
        let r = send(gw.local_addr(), "/v1/chat/completions", secret, &body);
        assert_eq!(r.status, status, "{secret}: {}", r.text());
        if status == 401 {
            assert_eq!(r.error_code(), code);
            assert_eq!(r.json()["error"]["type"], "authentication_error");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
}

#[test]
fn a_key_sees_and_uses_only_its_models() {
    let mock = start_mock(|_| {});
    let extra = key_entry("narrow", "sk-narrow", "models = [\"up-*\"]");
    let gw = start(&config_text(Some(mock.addr), 1, &extra));
    let addr = gw.local_addr();
    let r = send(
        addr,
        "/v1/chat/completions",
        "sk-narrow",
        &chat("mock-chat", false),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.error_code(), "model_not_allowed");
    assert_eq!(r.json()["error"]["param"], "model");
    let r = send(
        addr,
        "/v1/chat/completions",
        "sk-narrow",
        &chat("up-chat", false),
    );
    assert_eq!(r.status, 200);
    let listed = |secret: &str| -> Vec<String> {
        let auth = format!("Bearer {secret}");
        let req = format!("GET /v1/models HTTP/1.1\r\nhost: gw\r\nauthorization: {auth}\r\n\r\n");
        let r = roundtrip(addr, req.as_bytes());
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(listed("sk-narrow"), ["up-chat", "up-embed"]);
    assert_eq!(listed(KEY), ["mock-chat", "up-chat", "up-embed"]);
}

#[test]
fn max_tokens_has_a_ceiling_and_a_default_per_key() {
    let mock = start_mock(|_| {});
    let extra = key_entry(
        "capped",
        "sk-capped",
        "max_tokens = 50\ndefault_max_tokens = 7",
    );
    let gw = start(&config_text(Some(mock.addr), 1, &extra));
    let addr = gw.local_addr();
    let over = r#"{"model":"up-chat","max_tokens":51,"messages":[]}"#;
    let r = send(addr, "/v1/chat/completions", "sk-capped", over);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["param"], "max_tokens");
    assert!(r.text().contains("50"), "{}", r.text());

    // No max_tokens: the key's default goes upstream (chat, streamed chat, completions).
    for (path, body) in [
        (
            "/v1/chat/completions",
            r#"{"model":"up-chat","messages":[]}"#,
        ),
        (
            "/v1/chat/completions",
            r#"{"model":"up-chat","stream":true,"messages":[]}"#,
        ),
        ("/v1/completions", r#"{"model":"up-chat","prompt":"x"}"#),
    ] {
        let before = mock.ledger().total.completion_tokens;
        let r = send(addr, path, "sk-capped", body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            mock.ledger().total.completion_tokens - before,
            7,
            "{path} {body}: the default max_tokens reached the provider"
        );
    }
    // A request that sets its own (within the ceiling) keeps it.
    let before = mock.ledger().total.completion_tokens;
    let r = send(
        addr,
        "/v1/chat/completions",
        "sk-capped",
        r#"{"model":"up-chat","max_completion_tokens":3,"messages":[]}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(mock.ledger().total.completion_tokens - before, 3);
}

#[test]
fn key_policy_mistakes_in_the_config_name_their_path() {
    let text = config_text(
        None,
        1,
        &[
            key_entry(
                "a",
                "sk-a",
                "team = \"reserch\"\n[[teams]]\nname = \"research\"",
            ),
            key_entry("b", "sk-b", "expires = \"next week\""),
            key_entry("c", "sk-c", "models = [\"mock-caht\"]"),
            key_entry("d", "sk-d", "max_tokens = 10\ndefault_max_tokens = 20"),
        ]
        .concat(),
    );
    let e = tollgate::config::parse(&text, "t.toml", &|_| None)
        .unwrap_err()
        .to_string();
    for want in [
        "team: no team named `reserch`, did you mean `research`?",
        "expires: `next week` is not a date",
        "models[0]: `mock-caht` matches no configured model, did you mean `mock-chat`?",
        "default_max_tokens: 20 is above the key's max_tokens ceiling of 10",
    ] {
        assert!(e.contains(want), "missing {want:?} in:\n{e}");
    }
}
