#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! What bad input gets (ARCHITECTURE.md, "Bad input"): every limit and timeout, request smuggling, chunked
//! bodies split at every byte, and upstream resets, stalls and garbage. After each, the
//! worker must still serve a normal request.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};

use support::*;

/// Config with small limits and short timeouts so each one can be hit.
const TIGHT: &str = "[limits]\nmax_head_bytes = 2048\nmax_headers = 16\nmax_body_bytes = 4096\n\
                     header_timeout_ms = 200\nbody_timeout_ms = 200\nidle_timeout_ms = 300\n\
                     max_connections = 4\n\
                     [upstream]\nhead_timeout_ms = 300\nbody_idle_timeout_ms = 300\n\
                     [routing]\nmax_attempts = 1\nbreaker_failures = 1000\n";

/// One attempt per request (failover has its own tests in `routing.rs`).
const ONE_ATTEMPT: &str = "[routing]\nmax_attempts = 1\n";

fn still_serves(addr: SocketAddr) {
    let r = roundtrip(
        addr,
        &post("/v1/chat/completions", &chat("mock-chat", false)),
    );
    assert_eq!(r.status, 200, "worker stopped serving: {}", r.text());
}

/// Sends `req`, expects an OpenAI-shaped error with `status`, and the connection closed.
fn rejected(addr: SocketAddr, req: &[u8], status: u16) -> Response {
    let mut c = Client::connect(addr);
    c.send(req);
    let r = c.response();
    assert_eq!(
        r.status,
        status,
        "{:?} -> {}",
        String::from_utf8_lossy(req),
        r.text()
    );
    r.error_code();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed());
    r
}

#[test]
fn limits_are_enforced_and_the_worker_keeps_serving() {
    let gw = start(&config_text(None, 1, TIGHT));
    let a = gw.local_addr();
    let auth = format!("authorization: Bearer {KEY}\r\n");

    // Head bytes.
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: gw\r\nx-big: {}\r\n\r\n",
        "a".repeat(4000)
    );
    rejected(a, big.as_bytes(), 431);
    still_serves(a);
    // Header count.
    let mut many = "GET /healthz HTTP/1.1\r\nhost: gw\r\n".to_string();
    for i in 0..40 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    rejected(a, many.as_bytes(), 431);
    still_serves(a);
    // Body bytes, by Content-Length (refused before reading) and by chunked framing.
    let r = rejected(
        a,
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}content-length: 5000\r\n\r\n"
        )
        .as_bytes(),
        413,
    );
    assert_eq!(r.error_code(), "request_too_large");
    let mut chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}transfer-encoding: chunked\r\n\r\n"
    );
    for _ in 0..5 {
        chunked.push_str(&format!("400\r\n{}\r\n", "x".repeat(1024)));
    }
    rejected(a, chunked.as_bytes(), 413);
    still_serves(a);
    gw.shutdown();
}

#[test]
fn a_request_without_exactly_one_host_is_a_400() {
    // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with two, is a 400 (not a 404).
    let gw = start(&config_text(None, 1, TIGHT));
    let a = gw.local_addr();
    let r = rejected(a, b"GET /healthz HTTP/1.1\r\n\r\n", 400);
    assert!(r.text().contains("Host"), "{}", r.text());
    rejected(
        a,
        b"GET /healthz HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
        400,
    );
    // HTTP/1.0 has no such rule.
    let mut c = Client::connect(a);
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(c.response().status, 200);
    still_serves(a);
}

#[test]
fn slow_clients_time_out() {
    let gw = start(&config_text(None, 1, TIGHT));
    let a = gw.local_addr();
    // Slowloris: a head that never ends gets 408 once the header timeout passes.
    let r = rejected(
        a,
        b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-slow: 1\r\n",
        408,
    );
    assert_eq!(r.error_code(), "request_timeout");
    // A body that stops short.
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {KEY}\r\ncontent-length: 100\r\n\r\n{{\"model\""
    );
    rejected(a, req.as_bytes(), 408);
    // An idle keep-alive connection is closed without a response.
    let mut c = Client::connect(a);
    c.send(&post("/v1/chat/completions", &chat("mock-chat", false)));
    assert_eq!(c.response().status, 200);
    assert!(c.is_closed(), "idle connection was not closed");
    assert!(c.buffered().is_empty());
    still_serves(a);
    gw.shutdown();
}

#[test]
fn connections_over_the_limit_get_503() {
    let gw = start(&config_text(None, 1, TIGHT));
    let a = gw.local_addr();
    let mut held: Vec<Client> = (0..4).map(|_| Client::connect(a)).collect();
    // Make sure all four are accepted and being served.
    for c in &mut held {
        c.send(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n");
        assert_eq!(c.response().status, 200);
    }
    let mut extra = Client::connect(a);
    let r = extra.response();
    assert_eq!((r.status, r.error_code().as_str()), (503, "overloaded"));
    drop(held);
    // Capacity comes back once connections close (the worker notices each close).
    let mut served = false;
    for _ in 0..1000 {
        let mut c = Client::connect(a);
        c.send(b"GET /healthz HTTP/1.1\r\nhost: gw\r\n\r\n");
        if c.response().status == 200 {
            served = true;
            break;
        }
    }
    assert!(served);
    gw.shutdown();
}

#[test]
fn smuggling_vectors_are_refused_and_nothing_is_forwarded() {
    let mock = start_mock(|_| {});
    let gw = start(&config_text(Some(mock.addr), 1, ""));
    let a = gw.local_addr();
    let body = chat("up-chat", false);
    let auth = format!("authorization: Bearer {KEY}\r\n");
    let len = body.len();
    let cases: Vec<(String, u16)> = vec![
        (
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}content-length: {len}\r\ntransfer-encoding: chunked\r\n\r\n{body}"
            ),
            400,
        ),
        (
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}content-length: {len}\r\ncontent-length: {}\r\n\r\n{body}",
                len + 1
            ),
            400,
        ),
        (
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}content-length: {len}\r\nx-fold: a\r\n  b\r\n\r\n{body}"
            ),
            400,
        ),
        (
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}transfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
            ),
            501,
        ),
        (
            format!(
                "POST /v1/chat/completions HTTP/1.0\r\n{auth}transfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}transfer-encoding: chunked\r\n\r\nzz\r\n{body}\r\n0\r\n\r\n"
            ),
            400,
        ),
        (
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n{auth}content-length: -1\r\n\r\n"
            ),
            400,
        ),
        ("GARBAGE\r\n\r\n".to_string(), 400),
    ];
    for (req, status) in cases {
        rejected(a, req.as_bytes(), status);
    }
    assert_eq!(
        mock.ledger().total.requests,
        0,
        "a refused request reached the provider"
    );
    let r = roundtrip(a, &post("/v1/chat/completions", &body));
    assert_eq!(r.status, 200);
    assert_eq!(mock.ledger().total.requests, 1);
    gw.shutdown();
}

#[test]
fn chunked_bodies_split_at_every_byte() {
    let mock = start_mock(|_| {});
    let gw = start(&config_text(Some(mock.addr), 1, ""));
    let body = chat("up-chat", false);
    let (a, b) = body.split_at(body.len() / 2);
    let framed = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {KEY}\r\n\
         transfer-encoding: chunked\r\n\r\n{:x};ext=1\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-trailer: t\r\n\r\n",
        a.len(),
        b.len()
    );
    let bytes = framed.as_bytes();
    let mut c = Client::connect(gw.local_addr());
    for split in 1..bytes.len() {
        c.s.write_all(&bytes[..split]).unwrap();
        c.s.flush().unwrap();
        c.s.write_all(&bytes[split..]).unwrap();
        let r = c.response();
        assert_eq!(r.status, 200, "split at {split}: {}", r.text());
        assert_eq!(r.json()["model"], "up-model");
    }
    // Every one reached the provider with the de-chunked, rewritten body.
    let ledger = mock.ledger();
    assert_eq!(ledger.total.requests, (bytes.len() - 1) as u64);
    assert_eq!(ledger.models.keys().collect::<Vec<_>>(), vec!["up-model"]);
    gw.shutdown();
}

#[test]
fn expect_100_continue() {
    let gw = start(&config_text(None, 1, ""));
    let body = chat("mock-chat", false);
    let mut c = Client::connect(gw.local_addr());
    c.send(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {KEY}\r\n\
             expect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = c.read_until(b"\r\n\r\n");
    assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n"));
    c.send(body.as_bytes());
    assert_eq!(c.response().status, 200);
    gw.shutdown();
}

fn fault(model: &str, stream: bool, spec: &str) -> Vec<u8> {
    post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-mock-fault", spec),
        ],
        chat(model, stream).as_bytes(),
    )
}

#[test]
fn upstream_failures_get_clear_errors() {
    let mock = start_mock(|_| {});
    let gw = start(&config_text(Some(mock.addr), 1, TIGHT));
    let a = gw.local_addr();
    // Reset before the head: 502, as JSON.
    let r = roundtrip(a, &fault("up-chat", false, "reset"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "upstream_protocol_error")
    );
    // Stall before the head: 504 after the head timeout.
    let r = roundtrip(a, &fault("up-chat", false, "stall=5000"));
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (504, "upstream_timeout")
    );

    // Mid-stream reset: the stream ends with an SSE error event and a proper last chunk.
    let mut c = Client::connect(a);
    c.send(&fault("up-chat", true, "reset-after=2"));
    let r = c.response();
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("event: error\ndata: {\"error\""), "{text}");
    assert!(text.contains("upstream_protocol_error"), "{text}");
    assert!(!text.contains("[DONE]"));
    assert!(r.raw_body.ends_with(b"0\r\n\r\n"));
    // The stream ended in good order: the connection carries the client's next request
    // (closing it would lose one already on its way).
    c.send(&post("/v1/chat/completions", &chat("up-chat", false)));
    assert_eq!(c.response().status, 200);
    // Mid-stream stall: an error event after the body idle timeout.
    let r = roundtrip(a, &fault("up-chat", true, "stall=5000,stall-after=1"));
    assert!(r.text().contains("upstream_timeout"), "{}", r.text());
    still_serves(a);
    let r = roundtrip(a, &post("/v1/chat/completions", &chat("up-chat", true)));
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    // Provider errors are relayed as they are (status and body). (Last: a retry-after cools
    // the deployment down for that long.)
    let r = roundtrip(a, &fault("up-chat", false, "status=429,retry-after=7"));
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["type"], "requests"); // the provider's own body
    // The only deployment was asked to wait, not found failing: it still takes requests
    // (the provider says whether it can), and the first one served closes its circuit.
    let before = mock.ledger().total.requests;
    let r = roundtrip(a, &post("/v1/chat/completions", &chat("up-chat", false)));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mock.ledger().total.requests, before + 1);
    gw.shutdown();
}

#[test]
fn garbage_from_the_upstream_is_a_502() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        for reply in [
            &b"SSH-2.0-OpenSSH\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\ntransfer-encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        ] {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let mut tmp = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut tmp).unwrap();
            s.write_all(reply).unwrap();
        }
    });
    let gw = start(&config_text(Some(addr), 1, ONE_ATTEMPT));
    for _ in 0..3 {
        let r = roundtrip(
            gw.local_addr(),
            &post("/v1/chat/completions", &chat("up-chat", false)),
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (502, "upstream_protocol_error"),
            "{}",
            r.text()
        );
    }
    server.join().unwrap();
    still_serves(gw.local_addr());
    gw.shutdown();
}

#[test]
fn sse_events_reach_the_client_before_the_provider_sends_the_next() {
    let mock = start_mock(|_| {});
    let gw = start(&config_text(Some(mock.addr), 1, ""));
    let mut c = Client::connect(gw.local_addr());
    // The provider waits 60 s between tokens: a buffering relay would hold event 1 back.
    c.send(&post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-mock-itl-ms", "60000"),
        ],
        chat("up-chat", true).as_bytes(),
    ));
    let got = c.read_until(b"\"content\":\"The\"");
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains(" quick"),
        "event 2 cannot have been sent yet: {text}"
    );
    assert!(!text.contains("[DONE]"));
    // No drain here: the provider would hold the stream for minutes. The gateway's threads end
    // with the test process.
    drop(gw);
}
