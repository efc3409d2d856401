//! Gemini-native clients (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`, SSE and JSON-array forms), with the virtual key in
//! `x-goog-api-key` or `?key=`, served by a Gemini provider: the captures reach the client
//! byte for byte, the provider gets its own key and the deployment's model in the path and
//! never the client's key, usage is metered as the MANIFEST says, errors are Google-shaped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use support::*;

fn config(upstream: std::net::SocketAddr, audit: &std::path::Path) -> String {
    config_text(
        None,
        1,
        &format!(
            "[[providers]]\nname = \"google\"\nkind = \"gemini\"\n\
             base_url = \"http://{upstream}/v1beta\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"oai\"\nkind = \"openai\"\n\
             base_url = \"http://{upstream}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"gem-x\"\n[[models.deployments]]\nprovider = \"google\"\n\
             model = \"gem-upstream\"\nprice = {{ input = 0.3, output = 2.5 }}\n\
             [[models]]\nname = \"gpt-x\"\n[[models.deployments]]\nprovider = \"oai\"\n\
             price = {{ input = 1.0, output = 2.0 }}\n{}",
            audit_to(audit)
        ),
    )
}

const BODY: &[u8] = br#"{"contents":[{"role":"user","parts":[{"text":"hello there"}]}],"generationConfig":{"maxOutputTokens":64}}"#;

#[test]
fn gemini_captures_pass_through_byte_for_byte_and_are_metered() {
    let replay = start_replay();
    let dir = test_dir("gemini-clients");
    let audit = dir.join("audit.jsonl");
    let gw = start(&config(replay.addr, &audit));
    // The key in the header for JSON, in the query for streams (both SDK styles).
    let expected = replay_captures(
        gw.local_addr(),
        "gemini/",
        |_| true,
        |path, stream| {
            if stream {
                post_with(
                    &format!("/v1beta/models/gem-x:streamGenerateContent?alt=sse&key={KEY}"),
                    &[("x-replay", path), ("x-replay-chunk", "7")],
                    BODY,
                )
            } else {
                post_with(
                    "/v1beta/models/gem-x:generateContent",
                    &[("x-goog-api-key", KEY), ("x-replay", path)],
                    BODY,
                )
            }
        },
    );
    gw.shutdown();
    assert_eq!(expected.len(), 3, "the Gemini captures");
    let heads = replay.heads.lock().unwrap().clone();
    for (head, (path, _)) in heads.iter().zip(&expected) {
        let line = head.lines().next().unwrap();
        let want = if path.ends_with(".sse") {
            "post /v1beta/models/gem-upstream:streamgeneratecontent?alt=sse http/1.1"
        } else {
            "post /v1beta/models/gem-upstream:generatecontent http/1.1"
        };
        assert_eq!(line, want);
        assert!(
            head.contains(&format!("x-goog-api-key: {UPSTREAM_KEY}")),
            "{head}"
        );
        assert_eq!(head.matches("x-goog-api-key").count(), 1, "{head}");
        assert!(
            !head.contains(&KEY.to_lowercase()),
            "the client's key went upstream: {head}"
        );
    }
    let records = audit_records(&audit);
    assert_eq!(records.len(), 3);
    for (r, (path, e)) in records.iter().zip(&expected) {
        let route = if path.ends_with(".sse") {
            "/v1beta/models/{model}:streamGenerateContent"
        } else {
            "/v1beta/models/{model}:generateContent"
        };
        assert_eq!(r["http.route"], route, "{r}");
        assert_eq!(r["gen_ai.operation.name"], "generate_content");
        assert_eq!(r["gen_ai.usage.input_tokens"], e["input_tokens"], "{r}");
        // Normalised output includes thoughts; Gemini reports them beside it.
        let output =
            e["output_tokens"].as_u64().unwrap() + e["reasoning_tokens"].as_u64().unwrap_or(0);
        assert_eq!(r["gen_ai.usage.output_tokens"], output, "{r}");
        assert_eq!(
            r["gen_ai.response.finish_reasons"][0], e["finish_reason"],
            "{r}"
        );
        assert_eq!(r["usage_estimated"], false, "{r}");
    }
}

#[test]
fn gemini_clients_get_google_errors_and_the_array_form_from_the_mock() {
    let dir = test_dir("gemini-clients-mock");
    let audit = dir.join("audit.jsonl");
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let gw = start(&config(mock.addr, &audit));
    let a = gw.local_addr();
    let call =
        |path: &str, key: &str| roundtrip(a, &post_with(path, &[("x-goog-api-key", key)], BODY));
    // Without alt=sse a stream is one JSON array, relayed as it came and metered.
    let r = call("/v1beta/models/gem-x:streamGenerateContent", KEY);
    assert_eq!(r.status, 200, "{}", r.text());
    let chunks = r.json();
    let chunks = chunks.as_array().unwrap();
    assert_eq!(chunks.len(), 64, "one element per token");
    let last = &chunks.last().unwrap()["usageMetadata"];
    // Google's error shape for a Gemini client.
    let r = call("/v1beta/models/gem-x:generateContent", "sk-wrong");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["status"],
        "UNAUTHENTICATED",
        "{}",
        r.text()
    );
    let r = call("/v1beta/models/nope:generateContent", KEY);
    assert_eq!(
        (r.status, r.json()["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    // Google's model list, on Google's path.
    let r = roundtrip(
        a,
        format!(
            "GET /v1beta/models?pageSize=50 HTTP/1.1\r\nhost: gw\r\nx-goog-api-key: {KEY}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = r.json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"models/gem-x".to_owned()), "{names:?}");
    let r = roundtrip(
        a,
        b"GET /v1beta/models HTTP/1.1\r\nhost: gw\r\nx-goog-api-key: sk-wrong\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.json()["error"]["status"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    // A body that is not a JSON object: a Google-shaped 400, nothing sent upstream.
    for bad in [&b"[1,2]"[..], b"{\"contents\": [", b"not json"] {
        let r = roundtrip(
            a,
            &post_with(
                "/v1beta/models/gem-x:generateContent",
                &[("x-goog-api-key", KEY)],
                bad,
            ),
        );
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(
            r.json()["error"]["status"],
            "INVALID_ARGUMENT",
            "{}",
            r.text()
        );
    }
    // A model only an OpenAI provider serves: translated, answered in Google's shape.
    let r = call("/v1beta/models/gpt-x:generateContent", KEY);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(
        !v["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{v}"
    );
    assert_eq!(v["candidates"][0]["content"]["role"], "model", "{v}");
    assert!(v["usageMetadata"]["candidatesTokenCount"].as_u64().unwrap() > 0);
    gw.shutdown();
    let ledger = mock.ledger();
    assert_eq!(ledger.rejected, 0, "the provider got its own key");
    assert_eq!(ledger.total.requests, 2);
    let records = audit_records(&audit);
    let served = &records[0];
    assert_eq!(
        served["gen_ai.usage.input_tokens"], last["promptTokenCount"],
        "{served}"
    );
    assert_eq!(served["gen_ai.usage.output_tokens"], 64, "{served}");
    let metered = records.iter().fold((0, 0), |(i, o), r| {
        (
            i + r["gen_ai.usage.input_tokens"].as_u64().unwrap_or(0),
            o + r["gen_ai.usage.output_tokens"].as_u64().unwrap_or(0),
        )
    });
    assert_eq!(
        (ledger.total.prompt_tokens, ledger.total.completion_tokens),
        metered
    );
}

#[test]
fn a_keys_default_output_cap_reaches_a_gemini_provider() {
    let dir = test_dir("gemini-clients-cap");
    let mock = start_mock(|_| {});
    let text = config(mock.addr, &dir.join("audit.jsonl"))
        + &key_entry("capped", "sk-capped", "default_max_tokens = 5");
    let gw = start(&text);
    let a = gw.local_addr();
    for body in [
        &br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#[..],
        br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"temperature":0.2}}"#,
    ] {
        let r = roundtrip(
            a,
            &post_with(
                "/v1beta/models/gem-x:generateContent",
                &[("x-goog-api-key", "sk-capped")],
                body,
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["usageMetadata"]["candidatesTokenCount"], 5, "{}", r.text());
    }
    gw.shutdown();
}
