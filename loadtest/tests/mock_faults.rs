//! Every fault the mock offers actually happens, and is counted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::time::Duration;

use support::*;
use tollgate_loadtest::dialect::Dialect;
use tollgate_loadtest::load::client::{self, ExchangeError};

const CHAT: &[u8] =
    br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#;
const CHAT_STREAM: &[u8] =
    br#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[],"max_tokens":5}"#;

fn fault(path: &str, spec: &str, body: &[u8]) -> bytes::Bytes {
    post(path, &[("x-mock-fault", spec)], body)
}

#[test]
fn error_statuses_in_each_dialect_with_retry_after() {
    let mock = MockProc::spawn(&[]);
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "status=429,retry-after=7", CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 429);
    assert_eq!(cap.header("retry-after").as_deref(), Some("7"));
    let v = json(&cap.body);
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert_eq!(v["error"]["type"], "requests");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again in 7s")
    );

    let body = br#"{"model":"claude","max_tokens":3,"messages":[]}"#;
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/messages", "status=529", body),
        Dialect::Anthropic,
    ));
    assert_eq!(r.unwrap().status, 529);
    let v = json(&cap.body);
    assert_eq!(
        v,
        json(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
    );
    assert_eq!(cap.header("retry-after").as_deref(), Some("1"));

    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/messages", "status=429", body),
        Dialect::Anthropic,
    ));
    assert_eq!(r.unwrap().status, 429);
    assert_eq!(json(&cap.body)["error"]["type"], "rate_limit_error");

    let path = "/v1beta/models/g:generateContent";
    let (r, cap) = run(send(
        mock.addr,
        fault(path, "status=503", br#"{"contents":[]}"#),
        Dialect::Gemini,
    ));
    assert_eq!(r.unwrap().status, 503);
    assert_eq!(json(&cap.body)["error"]["status"], "UNAVAILABLE");

    for status in [500u16, 503] {
        let (r, cap) = run(send(
            mock.addr,
            fault("/v1/chat/completions", &format!("status={status}"), CHAT),
            Dialect::OpenAi,
        ));
        assert_eq!(r.unwrap().status, status);
        assert_eq!(json(&cap.body)["error"]["type"], "server_error");
    }
    let s = run(stats(mock.addr));
    assert_eq!(s["total"]["errors"], 6);
    assert_eq!(s["total"]["billed"], 0, "errors bill nothing");
    assert_eq!(s["faults"]["status"], 6);
}

#[test]
fn reset_before_head_and_mid_stream() {
    let mock = MockProc::spawn(&[]);
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "reset", CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap_err(), ExchangeError::Closed);
    assert!(cap.head.is_empty(), "nothing was sent before the reset");

    // reset-after=3: the head and exactly three events arrive, then a reset.
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "reset-after=3", CHAT_STREAM),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap_err(), ExchangeError::Closed);
    assert_eq!(cap.events.len(), 3);
    assert!(!cap.events.iter().any(|e| e.data == "[DONE]"));

    // The ledger bills what was emitted before the cut: role chunk + 2 content tokens.
    let s = run(stats(mock.addr));
    let m = &s["models"]["gpt-4o-mini"];
    assert_eq!(m["requests"], 2);
    assert_eq!(m["errors"], 1);
    assert_eq!(m["billed"], 1);
    assert_eq!(m["completion_tokens"], 2);
    assert_eq!(m["usage_reported"], 0);
    assert_eq!(m["prompt_tokens"], prompt_tokens(CHAT_STREAM));

    // reset-after=N on a JSON answer: N body bytes, then a reset.
    let (r, _) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "reset-after=10", CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap_err(), ExchangeError::Closed);
}

#[test]
fn stall_before_head_and_after_events() {
    let mock = MockProc::spawn(&[]);
    let (r, _) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "stall=120", CHAT),
        Dialect::OpenAi,
    ));
    let x = r.unwrap();
    assert_eq!(x.status, 200);
    assert!(
        x.ttfb >= Duration::from_millis(120),
        "no byte before the stall ends: {:?}",
        x.ttfb
    );

    // Long enough that the assertions below hold with a wide margin on a loaded machine: the
    // stall's timer never fires early, and reading an event late only shortens the measured
    // gap by that lateness.
    let stall = Duration::from_millis(600);
    let (r, cap) = run(send(
        mock.addr,
        fault(
            "/v1/chat/completions",
            &format!("stall={},stall-after=2", stall.as_millis()),
            CHAT_STREAM,
        ),
        Dialect::OpenAi,
    ));
    assert!(r.unwrap().stream_ended);
    assert!(cap.events.len() > 2, "{:?}", cap.events);
    assert!(
        cap.events[1].at < stall,
        "event 2 comes before the stall: {:?}",
        cap.events[1].at
    );
    assert!(
        cap.events[2].at - cap.events[1].at >= stall * 3 / 4,
        "event 3 only after the stall: {:?} then {:?}",
        cap.events[1].at,
        cap.events[2].at
    );
}

#[test]
fn malformed_and_truncated() {
    let mock = MockProc::spawn(&[]);
    // Malformed stream: one event is not valid JSON; framing stays intact.
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "malformed", CHAT_STREAM),
        Dialect::OpenAi,
    ));
    assert!(r.unwrap().stream_ended);
    let bad = cap.events.iter().filter(|e| {
        e.data != "[DONE]" && serde_json::from_str::<serde_json::Value>(&e.data).is_err()
    });
    assert_eq!(bad.count(), 1);

    // Malformed JSON answer: correctly framed, but not parseable.
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "malformed", CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 200);
    assert!(!cap.body.is_empty(), "a body was sent, only cut off");
    assert!(serde_json::from_slice::<serde_json::Value>(&cap.body).is_err());

    // Truncated stream: ends cleanly at the HTTP level, but without usage or [DONE].
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "truncate", CHAT_STREAM),
        Dialect::OpenAi,
    ));
    let x = r.unwrap();
    assert!(
        !x.stream_ended,
        "the client sees the stream did not end properly"
    );
    assert!(
        cap.events
            .iter()
            .any(|e| e.data.contains("\"delta\":{\"content\":")),
        "the content events came: {:?}",
        cap.events
    );
    assert!(!cap.events.iter().any(|e| e.data.contains("\"usage\":{")));

    let body = br#"{"model":"claude","stream":true,"max_tokens":3,"messages":[]}"#;
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/messages", "truncate", body),
        Dialect::Anthropic,
    ));
    assert!(!r.unwrap().stream_ended);
    assert!(
        cap.events.iter().any(|e| e.event == "content_block_delta"),
        "the content events came: {:?}",
        cap.events
    );
    assert!(
        !cap.events
            .iter()
            .any(|e| e.event == "message_delta" || e.event == "message_stop")
    );
}

#[test]
fn drip_sends_one_byte_per_write() {
    let mock = MockProc::spawn(&[]);
    let body = br#"{"model":"m","messages":[],"max_tokens":1}"#;
    let req = fault("/v1/chat/completions", "drip,drip-ms=1", body);
    let reads = run(async move {
        let mut c = client::connect(mock.addr).await.unwrap();
        c.write_raw(req).await.unwrap();
        let mut reads = 0;
        let got = loop {
            let (got, closed) = c.read_some().await;
            reads += 1;
            if closed.is_some() || got.ends_with(b"}") && got.len() > 200 {
                break got;
            }
        };
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK"));
        reads
    });
    assert!(
        reads > 100,
        "the answer came in {reads} reads, one byte at a time"
    );
}

#[test]
fn fault_rate_applies_to_a_fraction_of_requests() {
    let mock = MockProc::spawn(&["--workers", "1", "--fault", "status=503@0.3", "--seed", "7"]);
    let statuses = run(async move {
        let mut c = client::connect(mock.addr).await.unwrap();
        let mut out = Vec::new();
        for _ in 0..200 {
            let x = ask(&mut c, post("/v1/chat/completions", &[], CHAT)).await;
            out.push(x.unwrap().status);
        }
        (out, stats(mock.addr).await)
    });
    let (statuses, s) = statuses;
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        (30..=90).contains(&failed),
        "about 30% of 200 fail: {failed}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 200 - failed);
    assert_eq!(s["faults"]["status"], failed as u64);
    assert_eq!(s["total"]["errors"], failed as u64);

    // A header fault takes precedence over the rate; a spec that does not parse is a 400.
    let mock = MockProc::spawn(&["--fault", "status=503@1.0"]);
    let (r, _) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "status=429", CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 429);
    let (r, cap) = run(send(
        mock.addr,
        fault("/v1/chat/completions", "explode", CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 400);
    assert!(
        json(&cap.body)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown fault")
    );
}
