//! The mock is a real HTTP/1.1 server: keep-alive, pipelining, chunked request bodies,
//! `Expect: 100-continue`, and clear OpenAI-shaped errors for bad input while it keeps
//! serving everyone else.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use bytes::Bytes;
use support::*;
use tollgate::http1::Method;
use tollgate_loadtest::dialect::Dialect;
use tollgate_loadtest::load::client::{self, Captured};

const CHAT: &[u8] = br#"{"model":"m","messages":[],"max_tokens":2}"#;

#[test]
fn keep_alive_and_pipelined_requests_are_answered_in_order() {
    let mock = MockProc::spawn(&[]);
    run(async move {
        let mut c = client::connect(mock.addr).await.unwrap();
        c.capture = Some(Captured::default());
        // Three requests in one write, each asking for a different token count.
        let mut all = Vec::new();
        for n in 1..=3 {
            all.extend_from_slice(&post(
                "/v1/chat/completions",
                &[("x-mock-tokens", &n.to_string())],
                CHAT,
            ));
        }
        c.write_raw(Bytes::from(all)).await.unwrap();
        for n in 1..=3u64 {
            let x = c
                .read_response(
                    std::time::Instant::now(),
                    Method::Post,
                    Dialect::OpenAi,
                    &mut |_| {},
                )
                .await
                .unwrap();
            assert!(x.keep_alive);
            let v = json(&c.capture.as_ref().unwrap().body);
            assert_eq!(
                v["usage"]["completion_tokens"], n,
                "responses in request order"
            );
        }
        // Then the same connection serves another plain request.
        let x = ask(&mut c, post("/v1/chat/completions", &[], CHAT)).await;
        assert_eq!(x.unwrap().status, 200);
        let s = stats(mock.addr).await;
        assert_eq!(
            s["connections"], 2,
            "one connection for four requests, one for the stats"
        );
    });
}

#[test]
fn chunked_request_body_split_at_every_byte() {
    let mock = MockProc::spawn(&[]);
    let body =
        br#"{"model":"chunky","messages":[{"role":"user","content":"split me"}],"max_tokens":3}"#;
    let mut req =
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    for part in body.chunks(13) {
        tollgate::http1::write::chunk(&mut req, part);
    }
    tollgate::http1::write::last_chunk(&mut req);
    let req = Bytes::from(req);
    run(async move {
        let mut c = client::connect(mock.addr).await.unwrap();
        c.capture = Some(Captured::default());
        for split in (0..req.len()).step_by(7) {
            c.write_raw(req.slice(..split)).await.unwrap();
            let x = ask(&mut c, req.slice(split..)).await.unwrap();
            assert_eq!(x.status, 200, "split at {split}");
            let v = json(&c.capture.as_ref().unwrap().body);
            assert_eq!(v["model"], "chunky");
            assert_eq!(
                v["usage"]["prompt_tokens"],
                prompt_tokens(body),
                "the de-chunked body is what is counted"
            );
        }
    });
}

#[test]
fn expect_100_continue() {
    let mock = MockProc::spawn(&[]);
    run(async move {
        let mut c = client::connect(mock.addr).await.unwrap();
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
            CHAT.len()
        );
        c.write_raw(Bytes::from(head)).await.unwrap();
        let (got, _) = c.read_some().await;
        assert!(got.starts_with(b"HTTP/1.1 100 Continue\r\n\r\n"));
        let mut c = client::Client::new(c.into_inner());
        // The interim response is skipped by the client; the final one follows the body.
        let x = ask(&mut c, Bytes::from_static(CHAT)).await.unwrap();
        assert_eq!(x.status, 200);
    });
}

/// Sends raw bytes on a new connection and returns everything until the mock closes it.
async fn raw(addr: std::net::SocketAddr, bytes: &'static [u8]) -> String {
    let mut c = client::connect(addr).await.unwrap();
    c.write_raw(Bytes::from_static(bytes)).await.unwrap();
    String::from_utf8_lossy(&c.read_to_close().await).into_owned()
}

#[test]
fn hostile_input_gets_a_clear_error_and_others_are_still_served() {
    let mock = MockProc::spawn(&["--workers", "1", "--max-body-bytes", "1000"]);
    let cases: &[(&[u8], &str, &str)] = &[
        (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", "400", "Content-Length and Transfer-Encoding"),
        (b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n", "400", "conflicting Content-Length"),
        (b"GET / HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n", "400", "malformed"),
        (b"NOT HTTP AT ALL\r\n\r\n", "400", "malformed"),
        (b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\nContent-Length: 5000\r\n\r\n", "413", "larger than 1000"),
        (b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400", "chunk size"),
    ];
    for (bytes, status, msg) in cases {
        let got = run(raw(mock.addr, bytes));
        assert!(got.starts_with(&format!("HTTP/1.1 {status} ")), "{got}");
        let body = &got[got.find("\r\n\r\n").unwrap() + 4..];
        let v = json(body.as_bytes());
        assert!(v["error"]["message"].as_str().unwrap().contains(msg), "{v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    // A head that never ends is refused at the limit, not buffered forever.
    let mut flood = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..5000 {
        flood.extend_from_slice(format!("x-{i}: {}\r\n", "a".repeat(20)).as_bytes());
    }
    let flood: &'static [u8] = flood.leak();
    let got = run(raw(mock.addr, flood));
    assert!(
        got.starts_with("HTTP/1.1 431 "),
        "{}",
        &got[..got.len().min(80)]
    );

    // Bad JSON, unknown routes and missing fields keep the connection (framing was fine).
    run(async move {
        let mut c = client::connect(mock.addr).await.unwrap();
        c.capture = Some(Captured::default());
        for (req, status) in [
            (post("/v1/chat/completions", &[], b"{not json"), 400),
            (post("/v1/nope", &[], CHAT), 404),
            (get("/v1/chat/completions"), 405),
            (post("/v1/chat/completions", &[], b"{}"), 400),
            (post("/v1/chat/completions", &[], CHAT), 200),
        ] {
            let x = ask(&mut c, req).await.unwrap();
            assert_eq!(x.status, status);
            assert!(x.keep_alive);
        }
        let s = stats(mock.addr).await;
        assert_eq!(
            s["total"]["requests"], 1,
            "only the good request reached a model"
        );
        assert!(s["rejected"].as_u64().unwrap() >= 10);
    });
}

#[test]
fn api_keys_are_enforced_when_configured() {
    let mock = MockProc::spawn(&["--api-key", "sk-good"]);
    let (r, cap) = run(send(
        mock.addr,
        post(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-bad")],
            CHAT,
        ),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 401);
    assert_eq!(json(&cap.body)["error"]["code"], "invalid_api_key");
    let (r, _) = run(send(
        mock.addr,
        post("/v1/chat/completions", &[], CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 401);
    let (r, _) = run(send(
        mock.addr,
        post(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-good")],
            CHAT,
        ),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 200);
    let (r, _) = run(send(
        mock.addr,
        post(
            "/v1/messages",
            &[("x-api-key", "sk-good")],
            br#"{"model":"c","messages":[]}"#,
        ),
        Dialect::Anthropic,
    ));
    assert_eq!(r.unwrap().status, 200);
}

#[test]
fn ledger_counts_per_key_and_model_and_resets() {
    let mock = MockProc::spawn(&[]);
    let a =
        br#"{"model":"alpha","messages":[{"role":"user","content":"0123456789"}],"max_tokens":3}"#;
    let b = br#"{"model":"beta","stream":true,"messages":[],"max_tokens":5}"#;
    run(async move {
        for _ in 0..4 {
            let (r, _) = send(
                mock.addr,
                post(
                    "/v1/chat/completions",
                    &[("authorization", "Bearer key-a")],
                    a,
                ),
                Dialect::OpenAi,
            )
            .await;
            assert_eq!(r.unwrap().status, 200);
        }
        for _ in 0..3 {
            let req = post(
                "/v1/chat/completions",
                &[
                    ("authorization", "Bearer key-b"),
                    ("x-mock-reasoning-tokens", "2"),
                ],
                b,
            );
            assert!(
                send(mock.addr, req, Dialect::OpenAi)
                    .await
                    .0
                    .unwrap()
                    .stream_ended
            );
        }
        let s = stats(mock.addr).await;
        let ka = &s["keys"]["key-a"];
        assert_eq!(
            (ka["requests"].as_u64(), ka["billed"].as_u64()),
            (Some(4), Some(4))
        );
        assert_eq!(ka["prompt_tokens"], 4 * prompt_tokens(a));
        assert_eq!(ka["completion_tokens"], 4 * 3);
        let kb = &s["keys"]["key-b"];
        assert_eq!(
            kb["completion_tokens"],
            3 * (5 + 2),
            "completion includes reasoning"
        );
        assert_eq!(kb["reasoning_tokens"], 3 * 2);
        assert_eq!(kb["streams"], 3);
        assert_eq!(
            kb["usage_reported"], 0,
            "no include_usage: billed but not reported"
        );
        assert_eq!(s["models"]["alpha"]["requests"], 4);
        assert_eq!(s["models"]["beta"]["requests"], 3);
        assert_eq!(s["total"]["requests"], 7);
        reset_stats(mock.addr).await;
        assert_eq!(stats(mock.addr).await["total"]["requests"], 0);
    });
}

#[test]
fn both_io_drivers_and_in_process_start() {
    for driver in ["epoll", "uring"] {
        if driver == "uring" && !monoio::utils::detect_uring() {
            eprintln!("io_uring unavailable on this kernel: only the epoll driver was tested");
            continue;
        }
        let mock = MockProc::spawn(&["--driver", driver]);
        let (r, _) = run(send(
            mock.addr,
            post("/v1/chat/completions", &[], CHAT),
            Dialect::OpenAi,
        ));
        assert_eq!(r.unwrap().status, 200, "driver {driver}");
    }
    // The same server started in-process (what gateway tests use), with its ledger readable.
    let cfg = tollgate_loadtest::mock::MockConfig {
        workers: 2,
        ..Default::default()
    };
    let handle = tollgate_loadtest::mock::start(cfg).unwrap();
    let (r, _) = run(send(
        handle.addr,
        post("/v1/chat/completions", &[], CHAT),
        Dialect::OpenAi,
    ));
    assert_eq!(r.unwrap().status, 200);
    assert_eq!(handle.ledger().total.completion_tokens, 2);
}
