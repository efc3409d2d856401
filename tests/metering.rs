//! Metering through the real gateway: usage read from streams and bodies as they are relayed,
//! the usage chunk the gateway asked for removed again, estimates when usage never comes, and
//! the audit trail that records it all — checked against the mock provider's ledger and the
//! corpus MANIFEST.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

use serde_json::Value;
use support::*;

/// `data:` payloads of an SSE body.
fn events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: ").map(str::to_owned))
        .collect()
}

fn has_usage_chunk(body: &[u8]) -> bool {
    events(body).iter().any(|e| {
        serde_json::from_str::<Value>(e).is_ok_and(|v| {
            v["usage"].is_object() && v["choices"].as_array().is_some_and(Vec::is_empty)
        })
    })
}

fn tokens(rec: &Value) -> (u64, u64) {
    (
        rec["gen_ai.usage.input_tokens"].as_u64().unwrap(),
        rec["gen_ai.usage.output_tokens"].as_u64().unwrap(),
    )
}

/// The test price ($0.15 in, $0.60 out per million tokens) in micro-dollars, rounded up.
fn cost(input: u64, output: u64) -> u64 {
    (input * 150_000 + output * 600_000).div_ceil(1_000_000)
}

#[test]
fn streams_and_bodies_are_metered_exactly_and_clients_see_what_they_asked_for() {
    let mock = start_mock(|_| {});
    let dir = test_dir("meter-exact");
    let log = dir.join("audit.jsonl");
    let gw = start(&config_text(Some(mock.addr), 1, &audit_to(&log)));
    let mut c = Client::connect(gw.local_addr());
    let with_usage = r#"{"model":"up-chat","stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    let asks: [(&str, &str, bool); 5] = [
        ("/v1/chat/completions", &chat("up-chat", true), false),
        ("/v1/chat/completions", with_usage, true),
        ("/v1/chat/completions", &chat("up-chat", false), false),
        ("/v1/chat/completions", &chat("mock-chat", true), false),
        (
            "/v1/embeddings",
            r#"{"model":"up-embed","input":["a","b"]}"#,
            false,
        ),
    ];
    let mut want = Vec::new();
    let mut before = mock.ledger().total;
    for (path, body, client_asked) in asks {
        c.send(&post(path, body));
        let r = c.response();
        assert_eq!(r.status, 200, "{}", r.text());
        if body.contains("\"stream\":true") {
            assert_eq!(events(&r.body).last().map(String::as_str), Some("[DONE]"));
            assert_eq!(
                has_usage_chunk(&r.body),
                client_asked,
                "the usage chunk reaches exactly the clients that asked: {}",
                r.text()
            );
            assert_eq!(
                r.text().contains("\"usage\":null"),
                client_asked,
                "nor does include_usage's `usage: null` member: {}",
                r.text()
            );
        }
        let now = mock.ledger().total;
        let expect = if body.contains("mock-chat") {
            // The built-in mock: ⌈body/4⌉ prompt tokens, max_tokens completion tokens.
            (body.len().div_ceil(4) as u64, 4)
        } else {
            (
                now.prompt_tokens - before.prompt_tokens,
                now.completion_tokens - before.completion_tokens,
            )
        };
        if !body.contains("mock-chat") {
            assert!(
                r.header("x-upstream-request-id").is_some(),
                "the provider's request id is kept beside the gateway's"
            );
            assert_eq!(
                now.usage_reported - before.usage_reported,
                1,
                "the upstream was asked for usage"
            );
        }
        before = now;
        want.push((r.header("x-request-id").unwrap().to_owned(), expect));
    }
    drop(c);
    let p = gw.shutdown();
    let recs = audit_records(&log);
    assert_eq!(recs.len(), want.len());
    let (mut sum_in, mut sum_out) = (0, 0);
    for (rec, (id, (input, output))) in recs.iter().zip(&want) {
        assert_eq!(
            rec["request_id"],
            id.as_str(),
            "x-request-id names the record: {rec}"
        );
        assert_eq!(tokens(rec), (*input, *output), "{rec}");
        assert_eq!(rec["usage_estimated"], false, "{rec}");
        assert_eq!(rec["cost_micro_usd"], cost(*input, *output), "{rec}");
        assert_eq!(rec["attempts"], 1);
        assert_eq!(rec["key"], "test");
        sum_in += input;
        sum_out += output;
    }
    assert_eq!(recs[0]["gen_ai.response.finish_reasons"][0], "stop");
    assert_eq!(recs[0]["gen_ai.request.model"], "up-chat");
    assert_eq!(recs[0]["gen_ai.response.model"], "up-model");
    assert_eq!(recs[0]["gen_ai.operation.name"], "chat");
    assert_eq!(recs[0]["stream"], true);
    assert!(recs[0]["ttft_us"].as_u64().unwrap() > 0);
    assert!(recs[0]["gen_ai.response.id"].is_string());
    assert_eq!(recs[4]["gen_ai.operation.name"], "embeddings");
    let spend = &p.spend["test"];
    assert_eq!(
        (spend.requests, spend.input_tokens, spend.output_tokens),
        (5, sum_in, sum_out),
        "the spend figures match the audit trail"
    );
    assert_eq!(p.audit_written, 5);
    assert_eq!(p.audit_dropped, 0);
}

#[test]
fn corpus_captures_relay_byte_for_byte_and_are_metered_as_the_manifest_says() {
    let manifest = manifest_json();
    let replay = start_replay();
    let dir = test_dir("meter-corpus");
    let log = dir.join("audit.jsonl");
    let gw = start(&config_text(Some(replay.addr), 1, &audit_to(&log)));
    let mut c = Client::connect(gw.local_addr());
    let mut expected = Vec::new();
    for f in manifest["file"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let format = f["format"].as_str().unwrap();
        if !(format == "openai.chat.stream" || format == "openai.chat.json") {
            continue; // other dialects need translation routes (their extraction is unit-tested)
        }
        let stream = format.ends_with("stream");
        let bytes = capture(path);
        // The client asks for usage itself, then does not (the gateway asks for it).
        for client_asks in [true, false] {
            let body = if client_asks {
                format!(
                    r#"{{"model":"up-chat","stream":{stream},"stream_options":{{"include_usage":true}},"messages":[]}}"#
                )
            } else {
                format!(r#"{{"model":"up-chat","stream":{stream},"messages":[]}}"#)
            };
            let req = post_with(
                "/v1/chat/completions",
                &[
                    ("authorization", &format!("Bearer {KEY}")),
                    ("x-replay", path),
                    ("x-replay-chunk", "7"),
                ],
                body.as_bytes(),
            );
            c.send(&req);
            let r = c.response();
            assert_eq!(r.status, 200, "{path}");
            let upstream_body = replay.bodies.lock().unwrap().last().unwrap().clone();
            let upstream: Value = serde_json::from_slice(&upstream_body).unwrap();
            if stream {
                assert_eq!(
                    upstream["stream_options"]["include_usage"], true,
                    "{path}: the upstream is always asked for usage"
                );
            }
            if client_asks || !stream {
                assert_eq!(
                    sha256_hex(&r.body),
                    f["expected"]["file_sha256"].as_str().unwrap(),
                    "{path}: the client receives the capture byte for byte"
                );
            } else {
                assert_eq!(
                    String::from_utf8_lossy(&r.body),
                    String::from_utf8_lossy(&without_usage_chunks(&bytes).0),
                    "{path}: only the usage chunk the gateway asked for is removed"
                );
            }
            expected.push((path.to_owned(), f["expected"].clone()));
        }
    }
    drop(c);
    gw.shutdown();
    let recs = audit_records(&log);
    assert_eq!(recs.len(), expected.len());
    assert!(expected.len() >= 16, "every OpenAI-dialect capture, twice");
    for (rec, (path, want)) in recs.iter().zip(&expected) {
        let (input, output) = tokens(rec);
        if want["usage_present"] == false {
            assert_eq!(rec["usage_estimated"], true, "{path}: {rec}");
            assert!(input > 0 && output > 0, "{path}: never zero: {rec}");
            continue;
        }
        assert_eq!(rec["usage_estimated"], false, "{path}: {rec}");
        assert_eq!(input, want["input_tokens"].as_u64().unwrap(), "{path}");
        assert_eq!(output, want["output_tokens"].as_u64().unwrap(), "{path}");
        for (field, key) in [
            (
                "gen_ai.usage.cache_read.input_tokens",
                "cached_input_tokens",
            ),
            ("gen_ai.usage.reasoning.output_tokens", "reasoning_tokens"),
        ] {
            if let Some(n) = want[key].as_u64() {
                assert_eq!(rec[field], n, "{path}: {field}");
            }
        }
        assert_eq!(
            rec["gen_ai.response.finish_reasons"][0], want["finish_reason"],
            "{path}"
        );
        assert_eq!(rec["cost_micro_usd"], cost(input, output), "{path}");
    }
}

#[test]
fn a_client_that_leaves_mid_stream_is_still_billed_and_the_record_says_estimated() {
    let mock = start_mock(|_| {});
    let dir = test_dir("meter-leave");
    let log = dir.join("audit.jsonl");
    let gw = start(&config_text(Some(mock.addr), 1, &audit_to(&log)));
    let body = chat("up-chat", true);
    let mut c = Client::connect(gw.local_addr());
    c.send(&post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-mock-tokens", "400"),
            ("x-mock-itl-ms", "2"),
            ("x-mock-token-bytes", "4"),
        ],
        body.as_bytes(),
    ));
    // Three content events, then gone (unread bytes make the close a reset).
    c.read_until(b"\"content\":\"");
    c.read_until(b"data: {");
    drop(c);
    let p = gw.shutdown();
    let ledger = ledger_when(&mock, |l| l.total.requests > 0).total;
    let recs = audit_records(&log);
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec["error.type"], "client_closed", "{rec}");
    assert_eq!(rec["error_side"], "downstream", "{rec}");
    assert_eq!(rec["usage_estimated"], true, "{rec}");
    let (input, output) = tokens(rec);
    assert_eq!(
        input, ledger.prompt_tokens,
        "the prompt estimate follows the body the provider got"
    );
    assert!(
        output > 0 && output < 400,
        "output counted from what was relayed: {rec}"
    );
    assert!(
        output <= ledger.completion_tokens,
        "{output} > what the provider sent"
    );
    assert_eq!(p.spend["test"].estimated_requests, 1);
    assert_eq!(p.spend["test"].output_tokens, output);
}

#[test]
fn an_upstream_reset_mid_stream_is_billed_for_what_was_relayed() {
    let mock = start_mock(|_| {});
    let dir = test_dir("meter-reset");
    let log = dir.join("audit.jsonl");
    let gw = start(&config_text(Some(mock.addr), 1, &audit_to(&log)));
    let r = roundtrip(
        gw.local_addr(),
        &post_with(
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {KEY}")),
                ("x-mock-tokens", "50"),
                ("x-mock-token-bytes", "4"),
                ("x-mock-fault", "reset-after=12"),
            ],
            chat("up-chat", true).as_bytes(),
        ),
    );
    assert_eq!(r.status, 200);
    assert!(r.text().contains("event: error"), "{}", r.text());
    gw.shutdown();
    let ledger = mock.ledger().total;
    let rec = &audit_records(&log)[0];
    assert_eq!(rec["usage_estimated"], true, "{rec}");
    // 4-byte tokens: the estimate from relayed content counts the tokens relayed, which is
    // what the provider sent unless the reset discarded some in flight.
    let (input, output) = tokens(rec);
    assert_eq!(input, ledger.prompt_tokens, "{rec}");
    assert!(
        output > 0 && output <= ledger.completion_tokens && ledger.completion_tokens < 50,
        "{rec} vs {ledger:?}"
    );
}

/// One gateway (with `extra` config) in front of a mock, and a client whose first request —
/// a small chat, `max_tokens` 4 — carries the mock fault `fault`: the response to it, and
/// everything a test checks afterwards.
struct Faulted {
    mock: tollgate_loadtest::mock::MockHandle,
    gw: tollgate::runtime::Gateway,
    log: std::path::PathBuf,
    body: String,
    client: Client,
    first: Response,
}

fn faulted(name: &str, extra: &str, fault: &str) -> Faulted {
    let mock = start_mock(|_| {});
    let log = test_dir(name).join("audit.jsonl");
    let gw = start(&(config_text(Some(mock.addr), 1, &audit_to(&log)) + extra));
    let body = chat("up-chat", false);
    let mut client = Client::connect(gw.local_addr());
    client.send(&post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-mock-fault", fault),
        ],
        body.as_bytes(),
    ));
    let first = client.response();
    Faulted {
        mock,
        gw,
        log,
        body,
        client,
        first,
    }
}

/// A provider that stalls past `ttft_timeout_ms` still bills the call when it gets to it: the
/// gateway, which stopped waiting, charges the call its reservation estimate (prompt bytes / 4
/// and `max_tokens`), flagged estimated — never less than the provider's bill.
#[test]
fn a_call_abandoned_at_the_first_token_timeout_is_charged_its_estimate() {
    let extra = "[upstream]\nttft_timeout_ms = 200\n[routing]\nmax_attempts = 1\n";
    let t = faulted("meter-stall", extra, "stall=600");
    let r = &t.first;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (504, "upstream_timeout")
    );
    // The mock bills it once its stall is over.
    let billed = ledger_when(&t.mock, |l| l.total.billed == 1).total;
    let p = t.gw.shutdown();
    let rec = &audit_records(&t.log)[0];
    assert_eq!(rec["error.type"], "upstream_timeout", "{rec}");
    let input = (t.body.len() as u64).div_ceil(4);
    assert_eq!(rec["abandoned_cost_micro_usd"], cost(input, 4), "{rec}");
    assert_eq!(rec["abandoned_tokens"], input + 4, "{rec}");
    let spend = &p.spend["test"];
    assert_eq!((spend.input_tokens, spend.output_tokens), (input, 4));
    assert_eq!(spend.estimated_requests, 1);
    assert!(
        spend.input_tokens >= billed.prompt_tokens
            && spend.output_tokens >= billed.completion_tokens,
        "charged {spend:?}, billed {billed:?}"
    );
}

/// An answer that is not a stream is held until it is whole: cut half-way by the provider, it
/// reaches the client as a clean error in its dialect on a connection that carries on (not
/// half a body), and — generated whole before it was sent — is charged up to `max_tokens`.
#[test]
fn a_json_answer_cut_half_way_is_an_error_not_half_a_body() {
    let extra = "[routing]\nmax_attempts = 1\n";
    let mut t = faulted("meter-cut-json", extra, "reset-after=40");
    assert_eq!(t.first.status, 502, "{}", t.first.text());
    assert_eq!(t.first.error_code(), "upstream_protocol_error");
    // The same connection serves the next request.
    t.client.send(&post("/v1/chat/completions", &t.body));
    let r = t.client.response();
    assert_eq!(r.status, 200, "{}", r.text());
    let billed = ledger_when(&t.mock, |l| l.total.billed == 2).total;
    let p = t.gw.shutdown();
    let recs = audit_records(&t.log);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["usage_estimated"], true, "{}", recs[0]);
    assert_eq!(recs[0]["gen_ai.usage.output_tokens"], 4, "{}", recs[0]);
    let spend = &p.spend["test"];
    assert!(
        spend.input_tokens >= billed.prompt_tokens
            && spend.output_tokens >= billed.completion_tokens,
        "charged {spend:?}, billed {billed:?}"
    );
}

#[test]
fn prompts_and_completions_are_hashed_only_for_keys_that_ask() {
    let mock = start_mock(|_| {});
    let dir = test_dir("meter-hash");
    let log = dir.join("audit.jsonl");
    let extra = format!(
        "{}[[teams]]\nname = \"research\"\n[[keys]]\nid = \"hashed\"\nsha256 = \"{}\"\nteam = \"research\"\nlog_content = \"sha256\"\ntags = {{ env = \"prod\" }}\n",
        audit_to(&log),
        sha256_hex("sk-hashed")
    );
    let gw = start(&config_text(Some(mock.addr), 1, &extra));
    let secret = "the secret prompt text";
    let body = format!(
        r#"{{"model":"up-chat","stream":true,"messages":[{{"role":"user","content":"{secret}"}}]}}"#
    );
    let mut seen = Vec::new();
    for key in ["sk-hashed", KEY] {
        let r = roundtrip(
            gw.local_addr(),
            &post_with(
                "/v1/chat/completions",
                &[("authorization", &format!("Bearer {key}"))],
                body.as_bytes(),
            ),
        );
        assert_eq!(r.status, 200);
        seen.push(r.body);
    }
    gw.shutdown();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(secret), "prompts are never logged");
    let recs = audit_records(&log);
    assert_eq!(recs[0]["key"], "hashed");
    assert_eq!(recs[0]["team"], "research");
    assert_eq!(recs[0]["tags"]["env"], "prod");
    assert_eq!(recs[0]["prompt_sha256"], sha256_hex(body.as_bytes()));
    assert_eq!(
        recs[0]["completion_sha256"],
        sha256_hex(&seen[0]),
        "the hash of the body the client received"
    );
    assert!(recs[1].get("prompt_sha256").is_none());
    assert!(recs[1].get("completion_sha256").is_none());
}

#[test]
fn ten_thousand_mixed_requests_match_the_mock_ledger_token_for_token() {
    let mock = start_mock(|c| c.workers = 2);
    let dir = test_dir("meter-10k");
    let log = dir.join("audit.jsonl");
    let gw = start(&config_text(Some(mock.addr), 2, &audit_to(&log)));
    let addr = gw.local_addr();
    const CLIENTS: usize = 8;
    const EACH: usize = 1250;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..EACH {
                    let n = t * EACH + i;
                    let (path, body) = match n % 5 {
                        0 | 1 => ("/v1/chat/completions", chat("up-chat", true)),
                        2 => ("/v1/chat/completions", chat("up-chat", false)),
                        3 => (
                            "/v1/completions",
                            format!(
                                r#"{{"model":"up-chat","prompt":"p{n}","max_tokens":{},"stream":{}}}"#,
                                1 + n % 7,
                                n.is_multiple_of(2)
                            ),
                        ),
                        _ => (
                            "/v1/embeddings",
                            format!(r#"{{"model":"up-embed","input":"text {n}"}}"#),
                        ),
                    };
                    c.send(&post(path, &body));
                    let r = c.response();
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let p = gw.shutdown();
    let ledger = mock.ledger().total;
    let recs = audit_records(&log);
    assert_eq!(recs.len(), CLIENTS * EACH);
    let sum = |f: &str| recs.iter().map(|r| r[f].as_u64().unwrap()).sum::<u64>();
    assert_eq!(ledger.billed, (CLIENTS * EACH) as u64);
    assert_eq!(sum("gen_ai.usage.input_tokens"), ledger.prompt_tokens);
    assert_eq!(sum("gen_ai.usage.output_tokens"), ledger.completion_tokens);
    assert!(recs.iter().all(|r| r["usage_estimated"] == false));
    let spend = &p.spend["test"];
    assert_eq!(spend.requests, (CLIENTS * EACH) as u64);
    assert_eq!(spend.input_tokens, ledger.prompt_tokens);
    assert_eq!(spend.output_tokens, ledger.completion_tokens);
    assert_eq!(spend.cost_micro_usd, sum("cost_micro_usd"));
    assert_eq!(p.audit_dropped, 0);
}

#[test]
fn a_stuck_audit_output_blocks_nobody_and_loses_no_spend() {
    let mock = start_mock(|_| {});
    let dir = test_dir("meter-stuck");
    let fifo = dir.join("audit.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A reader that opens the pipe and, for now, never reads: the writer blocks once the
    // pipe's buffer is full, like a disk that stopped answering.
    let idle_reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let extra = format!("{}queue_records = 16\n", audit_to(&fifo));
    let gw = start(&config_text(Some(mock.addr), 1, &extra));
    let mut c = Client::connect(gw.local_addr());
    let n = 1500;
    for _ in 0..n {
        c.send(&post("/v1/chat/completions", &chat("up-chat", true)));
        assert_eq!(c.response().status, 200);
    }
    drop(c);
    // Now drain the pipe so the writer can finish, and shut down.
    let drain = std::thread::spawn(move || {
        // A blocking reader (the writer holds the other end, so this open returns at once).
        let mut reader = std::fs::File::open(&fifo).unwrap();
        drop(idle_reader);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        all
    });
    let p = gw.shutdown();
    let written = String::from_utf8(drain.join().unwrap())
        .unwrap()
        .lines()
        .count() as u64;
    let ledger = mock.ledger().total;
    assert!(
        p.audit_dropped > 0,
        "the stuck output made the bounded queue drop records"
    );
    assert_eq!(written, p.audit_written);
    assert_eq!(
        written + p.audit_dropped,
        n,
        "every record was written or counted as dropped"
    );
    let spend = &p.spend["test"];
    assert_eq!(spend.requests, n, "spend is never dropped");
    assert_eq!(spend.input_tokens, ledger.prompt_tokens);
    assert_eq!(spend.output_tokens, ledger.completion_tokens);
}
