//! Test support: the real mock binary on port 0, an async runner, and request helpers built
//! on the load generator's client.

#![allow(dead_code, reason = "each test file uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use tollgate::http1::Method;
use tollgate_loadtest::dialect::Dialect;
use tollgate_loadtest::io::Driver;
use tollgate_loadtest::load::client::{self, Captured, Exchange, ExchangeError};

/// The `tollgate-mock` binary, started on port 0; killed on drop.
pub struct MockProc {
    child: Child,
    pub addr: SocketAddr,
    pub url: String,
}

impl MockProc {
    pub fn spawn(args: &[&str]) -> MockProc {
        let workers: &[&str] = if args.contains(&"--workers") {
            &[]
        } else {
            &["--workers", "2"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-mock"))
            .args(["--listen", "127.0.0.1:0"])
            .args(workers)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tollgate-mock");
        // The mock prints its address once every worker is accepting: no sleeps needed.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        let addr = url.rsplit("//").next().unwrap().parse().unwrap();
        MockProc { child, addr, url }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MockProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run<F: Future>(f: F) -> F::Output {
    tollgate_loadtest::io::block_on(Driver::Auto, || f).unwrap()
}

/// A request: POST `path` with `body` and extra header lines.
pub fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Bytes {
    let mut out =
        format!("POST {path} HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    Bytes::from(out)
}

pub fn get(path: &str) -> Bytes {
    Bytes::from(format!("GET {path} HTTP/1.1\r\nhost: mock\r\n\r\n"))
}

/// Sends one request on a fresh connection and captures the response.
pub async fn send(
    addr: SocketAddr,
    req: Bytes,
    dialect: Dialect,
) -> (Result<Exchange, ExchangeError>, Captured) {
    let mut c = client::connect(addr).await.unwrap();
    c.capture = Some(Captured::default());
    let r = c.exchange(req, Method::Post, dialect, &mut |_| {}).await;
    (r, c.capture.take().unwrap())
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// The mock's documented prompt estimate.
pub fn prompt_tokens(body: &[u8]) -> u64 {
    (body.len() as u64).div_ceil(4)
}

/// GET /mock/stats.
pub async fn stats(addr: SocketAddr) -> serde_json::Value {
    let mut c = client::connect(addr).await.unwrap();
    c.capture = Some(Captured::default());
    c.exchange(
        get("/mock/stats"),
        Method::Get,
        Dialect::OpenAi,
        &mut |_| {},
    )
    .await
    .unwrap();
    json(&c.capture.take().unwrap().body)
}

pub async fn reset_stats(addr: SocketAddr) {
    let mut c = client::connect(addr).await.unwrap();
    let x = ask(&mut c, post("/mock/reset", &[], b"")).await.unwrap();
    assert_eq!(x.status, 200);
}

/// POSTs `req` (OpenAI dialect) on an open client connection.
pub async fn ask<S>(c: &mut client::Client<S>, req: Bytes) -> Result<Exchange, ExchangeError>
where
    S: monoio::io::AsyncReadRent + monoio::io::AsyncWriteRent,
{
    c.exchange(req, Method::Post, Dialect::OpenAi, &mut |_| {})
        .await
}
