//! OpenAI's Responses API (`POST /v1/responses`) through the gateway to an OpenAI provider (the
//! real mock, over a socket): passed through byte for byte, metered exactly — JSON, streams,
//! function calls — and translated for other providers, where what only OpenAI can do is
//! refused with a clear 400.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use support::*;

fn responses(model: &str, stream: bool, extra: &str) -> Vec<u8> {
    post(
        "/v1/responses",
        &format!(
            r#"{{"model":"{model}","input":[{{"role":"user","content":"hello there"}}],"max_output_tokens":9,"stream":{stream}{extra}}}"#
        ),
    )
}

fn config(mock: std::net::SocketAddr, audit: &std::path::Path) -> String {
    config_text(
        None,
        1,
        &format!(
            "[[providers]]\nname = \"oai\"\nkind = \"openai\"\n\
             base_url = \"http://{mock}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"claude\"\nkind = \"anthropic\"\n\
             base_url = \"http://{mock}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"gpt-x\"\n[[models.deployments]]\nprovider = \"oai\"\n\
             model = \"gpt-upstream\"\nprice = {{ input = 1.25, output = 10.0 }}\n\
             [[models]]\nname = \"claude-x\"\n[[models.deployments]]\nprovider = \"claude\"\n\
             price = {{ input = 3.0, output = 15.0 }}\n{}",
            audit_to(audit)
        ),
    )
}

#[test]
fn responses_pass_through_to_an_openai_provider_and_are_metered() {
    let dir = test_dir("responses-pass");
    let audit = dir.join("audit.log");
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();

    let r = roundtrip(a, &responses("gpt-x", false, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["object"].as_str(), v["status"].as_str()),
        (Some("response"), Some("completed"))
    );
    assert_eq!(
        v["model"], "gpt-upstream",
        "the deployment's model went upstream"
    );
    assert_eq!(v["output"][0]["type"], "message");
    let input = v["usage"]["input_tokens"].as_u64().unwrap();
    assert_eq!(v["usage"]["output_tokens"], 9);

    let r = roundtrip(a, &responses("gpt-x", true, ""));
    assert_eq!(r.status, 200);
    let text = r.text();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"response.created"), "{text}");
    assert_eq!(events.last(), Some(&"response.completed"), "{text}");
    assert_eq!(
        events
            .iter()
            .filter(|e| **e == "response.output_text.delta")
            .count(),
        9
    );
    assert!(
        !text.contains("[DONE]") && !text.contains("stream_options"),
        "{text}"
    );

    // A function call, streamed as argument deltas.
    let tools = r#","tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{}}}]"#;
    let r = roundtrip(a, &responses("gpt-x", true, tools));
    let text = r.text();
    assert!(
        text.contains("event: response.function_call_arguments.delta"),
        "{text}"
    );
    assert!(text.contains(r#""name":"get_weather""#), "{text}");
    gw.shutdown();

    let ledger = mock.ledger();
    assert_eq!(ledger.rejected, 0, "the provider got its own key");
    let records = audit_records(&audit);
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(r["http.route"], "/v1/responses", "{r}");
        assert_eq!(r["gen_ai.operation.name"], "chat");
        assert!(r["gen_ai.usage.input_tokens"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["gen_ai.usage.output_tokens"], 9, "{r}");
        assert_eq!(r["gen_ai.response.finish_reasons"][0], "completed", "{r}");
        assert_eq!(r["usage_estimated"], false, "{r}");
        assert!(
            r["gen_ai.response.id"]
                .as_str()
                .unwrap()
                .starts_with("resp_"),
            "{r}"
        );
    }
    assert_eq!(records[0]["gen_ai.usage.input_tokens"], input);
    // What the gateway metered is what the provider billed.
    let metered: (u64, u64) = records.iter().fold((0, 0), |(i, o), r| {
        (
            i + r["gen_ai.usage.input_tokens"].as_u64().unwrap(),
            o + r["gen_ai.usage.output_tokens"].as_u64().unwrap(),
        )
    });
    assert_eq!(
        metered,
        (ledger.total.prompt_tokens, ledger.total.completion_tokens)
    );
    // $1.25 / $10 per million: the cost follows the tokens.
    let r = &records[0];
    let want = (input * 1_250_000 + 9 * 10_000_000).div_ceil(1_000_000);
    assert_eq!(r["cost_micro_usd"], want, "{r}");
}

#[test]
fn responses_for_an_anthropic_model_are_translated_and_openai_only_features_refused_by_name() {
    let dir = test_dir("responses-translated");
    let mock = start_mock(|_| {});
    let gw = start(&config(mock.addr, &dir.join("audit.log")));
    let a = gw.local_addr();
    let r = roundtrip(a, &responses("claude-x", false, ""));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "response", "{v}");
    assert_eq!(v["status"], "completed", "{v}");
    let text = v["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(!text.is_empty(), "{v}");
    assert_eq!(v["usage"]["output_tokens"], 9, "{v}");
    // What only OpenAI can do is a 400 that names it, and nothing goes upstream.
    for (extra, named) in [
        (r#","tools":[{"type":"web_search"}]"#, "`web_search`"),
        (
            r#","tools":[{"type":"file_search","vector_store_ids":["v"]}]"#,
            "`file_search`",
        ),
        (
            r#","previous_response_id":"resp_1""#,
            "previous_response_id",
        ),
        (r#","background":true"#, "background"),
    ] {
        let r = roundtrip(a, &responses("claude-x", false, extra));
        assert_eq!(r.status, 400, "{extra}: {}", r.text());
        assert!(r.text().contains(named), "{extra}: {}", r.text());
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    }
    gw.shutdown();
    assert_eq!(
        mock.ledger().total.requests,
        1,
        "only the first went upstream"
    );
}

#[test]
fn a_responses_stream_the_provider_breaks_ends_with_its_error_event_and_is_estimated() {
    let dir = test_dir("responses-broken");
    let audit = dir.join("audit.log");
    let mock = start_mock(|_| {});
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();
    let faulty = |fault: &str| {
        post_with(
            "/v1/responses",
            &[
                ("authorization", &format!("Bearer {KEY}")),
                ("x-mock-fault", fault),
            ],
            br#"{"model":"gpt-x","input":"hello there","max_output_tokens":9,"stream":true}"#,
        )
    };
    // The connection is reset after 6 events: the client gets what came, then an error event
    // in the Responses shape, and never a `response.completed`.
    let r = roundtrip(a, &faulty("reset-after=6"));
    assert_eq!(r.status, 200);
    let text = r.text();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.starts_with("event: error\ndata: {\"type\":\"error\",\"code\":"),
        "{text}"
    );
    assert!(!text.contains("response.completed"), "{text}");
    // A stream that ends cleanly but without its terminal event: relayed as it came.
    let r = roundtrip(a, &faulty("truncate"));
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("response.completed"), "{}", r.text());
    gw.shutdown();
    let records = audit_records(&audit);
    assert_eq!(records.len(), 2);
    for r in &records {
        // No usage reported: charged an estimate from the prompt and what was relayed.
        assert_eq!(r["usage_estimated"], true, "{r}");
        assert!(r["gen_ai.usage.input_tokens"].as_u64().unwrap() > 0, "{r}");
        assert!(r["gen_ai.usage.output_tokens"].as_u64().unwrap() > 0, "{r}");
        assert!(r["cost_micro_usd"].as_u64().unwrap() > 0, "{r}");
    }
}

/// The real captures through the gateway: byte for byte to the client, the provider gets its
/// own key and the deployment's model, and the audit record says what the MANIFEST says.
#[test]
fn responses_captures_pass_through_byte_for_byte_and_are_metered_as_the_manifest_says() {
    let replay = start_replay();
    let dir = test_dir("responses-corpus");
    let audit = dir.join("audit.jsonl");
    let gw = start(&config(replay.addr, &audit));
    let expected = replay_captures(
        gw.local_addr(),
        "openai/responses",
        |_| true,
        |path, stream| {
            post_with(
                "/v1/responses",
                &[
                    ("authorization", &format!("Bearer {KEY}")),
                    ("x-replay", path),
                    ("x-replay-chunk", "7"),
                ],
                format!(r#"{{"model":"gpt-x","input":"hello","stream":{stream}}}"#).as_bytes(),
            )
        },
    );
    gw.shutdown();
    assert_eq!(expected.len(), 3, "the Responses captures");
    let bodies = replay.bodies.lock().unwrap().clone();
    let heads = replay.heads.lock().unwrap().clone();
    for (head, body) in heads.iter().zip(&bodies) {
        assert!(head.starts_with("post /v1/responses http/1.1"), "{head}");
        assert!(
            head.contains(&format!("authorization: bearer {UPSTREAM_KEY}")),
            "{head}"
        );
        assert!(!head.contains(&KEY.to_lowercase()), "{head}");
        let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(sent["model"], "gpt-upstream");
        assert!(
            sent.get("stream_options").is_none(),
            "nothing spliced in: {sent}"
        );
    }
    let records = audit_records(&audit);
    assert_eq!(records.len(), 3);
    for (r, (_, e)) in records.iter().zip(&expected) {
        assert_eq!(r["gen_ai.usage.input_tokens"], e["input_tokens"], "{r}");
        assert_eq!(r["gen_ai.usage.output_tokens"], e["output_tokens"], "{r}");
        assert_eq!(
            r["gen_ai.usage.reasoning.output_tokens"], e["reasoning_tokens"],
            "{r}"
        );
        assert_eq!(
            r["gen_ai.usage.cache_read.input_tokens"], e["cached_input_tokens"],
            "{r}"
        );
        assert_eq!(
            r["gen_ai.response.finish_reasons"][0], e["finish_reason"],
            "{r}"
        );
        assert_eq!(r["usage_estimated"], false, "{r}");
    }
}

/// A key for the providers' models only (not the built-in mock's `mock-chat`).
const PROVIDERS_KEY: &str = "sk-providers-only";

/// A request with no body (`GET`, `DELETE`) or an empty one (`POST`), with `PROVIDERS_KEY`.
fn bodiless(method: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {PROVIDERS_KEY}\r\n"
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        out.push_str("content-length: 0\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The response object without its `created_at` (the mock stamps each answer's own second).
fn timeless(mut v: serde_json::Value) -> serde_json::Value {
    v.as_object_mut().unwrap().remove("created_at");
    v
}

#[test]
fn stored_responses_go_as_they_came_to_the_openai_provider_that_holds_them_unmetered() {
    let dir = test_dir("responses-stored");
    let audit = dir.join("audit.log");
    // Two OpenAI organisations (each its own mock) and an Anthropic provider.
    let first = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let second = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let only_claude = "sk-only-claude";
    let gw = start(&config_text(
        None,
        1,
        &format!(
            "[[providers]]\nname = \"oai\"\nkind = \"openai\"\n\
             base_url = \"http://{}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"oai-2\"\nkind = \"openai\"\n\
             base_url = \"http://{}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"claude\"\nkind = \"anthropic\"\n\
             base_url = \"http://{}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"claude-x\"\n[[models.deployments]]\nprovider = \"claude\"\n\
             price = {{ input = 3.0, output = 15.0 }}\n\
             [[models]]\nname = \"gpt-x\"\n[[models.deployments]]\nprovider = \"oai\"\n\
             model = \"gpt-upstream\"\nprice = {{ input = 1.25, output = 10.0 }}\n\
             [[models]]\nname = \"gpt-y\"\n[[models.deployments]]\nprovider = \"oai-2\"\n\
             model = \"gpt-upstream\"\nprice = {{ input = 1.25, output = 10.0 }}\n\
             {}{}{}",
            first.addr,
            second.addr,
            first.addr,
            key_entry("claude-only", only_claude, "models = [\"claude-x\"]"),
            key_entry(
                "providers",
                PROVIDERS_KEY,
                "models = [\"claude-x\", \"gpt-x\", \"gpt-y\"]"
            ),
            audit_to(&audit)
        ),
    ));
    let a = gw.local_addr();

    // A response made through the gateway, then retrieved: the provider's bytes as they are
    // (its `usage` included), from the first OpenAI provider in config order.
    let made = roundtrip(a, &responses("gpt-x", false, "")).json();
    let id = made["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/responses/{id}");
    let got = roundtrip(a, &bodiless("GET", &path, &[]));
    assert_eq!(got.status, 200, "{}", got.text());
    let direct = {
        let req = format!(
            "GET {path} HTTP/1.1\r\nhost: m\r\nauthorization: Bearer {UPSTREAM_KEY}\r\n\r\n"
        );
        roundtrip(first.addr, req.as_bytes())
    };
    assert_eq!(timeless(got.json()), timeless(direct.json()));
    assert_eq!(got.json()["id"], id.as_str());
    assert!(got.json()["usage"]["output_tokens"].as_u64().unwrap() > 0);

    let items = roundtrip(
        a,
        &bodiless("GET", &format!("{path}/input_items?limit=5&order=asc"), &[]),
    );
    assert_eq!(
        (items.status, items.json()["object"].as_str()),
        (200, Some("list")),
        "{}",
        items.text()
    );
    let deleted = roundtrip(a, &bodiless("DELETE", &path, &[]));
    assert_eq!(deleted.json()["deleted"], true, "{}", deleted.text());
    // The provider's refusal goes to the client as it came.
    let cancel = roundtrip(a, &bodiless("POST", &format!("{path}/cancel"), &[]));
    assert_eq!(cancel.status, 400, "{}", cancel.text());
    assert_eq!(
        cancel.json()["error"]["message"],
        "Cannot cancel a synchronous response."
    );
    let calls = |m: &tollgate_loadtest::mock::MockHandle| m.ledger().stored_calls;
    assert_eq!(
        (calls(&first), calls(&second)),
        (5, 0),
        "the direct call and four"
    );

    // An id the first organisation does not know is asked of the second; the last 404 goes
    // to the client.
    let unknown = roundtrip(a, &bodiless("GET", "/v1/responses/resp_elsewhere", &[]));
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(
        unknown.text().contains("resp_elsewhere"),
        "{}",
        unknown.text()
    );
    assert_eq!((calls(&first), calls(&second)), (6, 1));
    // `x-tollgate-model` names whose providers to ask.
    let named = roundtrip(a, &bodiless("GET", &path, &[("x-tollgate-model", "gpt-y")]));
    assert_eq!(named.status, 200, "{}", named.text());
    assert_eq!((calls(&first), calls(&second)), (6, 2));

    // Nowhere to go: a model with no OpenAI provider, or a key that reaches none.
    let claude = roundtrip(
        a,
        &bodiless("GET", &path, &[("x-tollgate-model", "claude-x")]),
    );
    assert_eq!(claude.status, 400, "{}", claude.text());
    assert!(
        claude.text().contains("Stored responses live with OpenAI"),
        "{}",
        claude.text()
    );
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {only_claude}\r\n\r\n");
    let r = roundtrip(a, req.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let r = roundtrip(a, &bodiless("GET", &path, &[("x-tollgate-model", "nope")]));
    assert_eq!(r.status, 404, "{}", r.text());
    let r = roundtrip(a, &bodiless("POST", &path, &[]));
    assert_eq!(r.status, 405, "{}", r.text());
    let r = roundtrip(a, &bodiless("GET", "/v1/responses/resp_1/other", &[]));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!((calls(&first), calls(&second)), (6, 2));
    gw.shutdown();

    // Nothing generated, nothing metered: the one response made is all the providers billed
    // and all the audit trail charged.
    assert_eq!(first.ledger().total.requests, 1);
    assert_eq!(second.ledger().total.requests, 0);
    let records = audit_records(&audit);
    let stored: Vec<_> = records
        .iter()
        .filter(|r| r["http.route"] == "/v1/responses/{response_id}")
        .collect();
    // Every call that was routed (not the 405 and the unknown URL).
    assert_eq!(stored.len(), 9, "{records:#?}");
    for r in &stored {
        assert!(r.get("cost_micro_usd").is_none(), "{r}");
        assert!(r.get("gen_ai.usage.output_tokens").is_none(), "{r}");
    }
    assert_eq!(stored[0]["deployment"], "oai/gpt-upstream");
    assert_eq!(stored[0]["http.response.status_code"], 200);
    let charged: u64 = records
        .iter()
        .filter_map(|r| r["cost_micro_usd"].as_u64())
        .sum();
    assert_eq!(charged, records[0]["cost_micro_usd"].as_u64().unwrap());
}
