//! Test support for the gateway: the in-process gateway on port 0, the real mock provider
//! (the same server `tollgate-mock` runs) on port 0, and a blocking raw-bytes HTTP client.
//!
//! Clients use blocking std sockets with a read timeout: the timeout only turns a hang into a
//! failure, nothing waits on it.

#![allow(dead_code, reason = "each test file uses a subset")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tollgate::config;
use tollgate::http1::{self, BodyDecoder, Method, ResponseHead};
use tollgate::runtime::Gateway;
use tollgate::runtime::io::Driver;
use tollgate_loadtest::mock::{self, MockConfig, MockHandle};

/// The virtual key every test config accepts.
pub const KEY: &str = "sk-test-key";

/// A failing test should fail, not hang.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Starts the real mock provider in-process on port 0.
pub fn start_mock(tweak: impl FnOnce(&mut MockConfig)) -> MockHandle {
    let mut cfg = MockConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        ..MockConfig::default()
    };
    tweak(&mut cfg);
    mock::start(cfg).unwrap()
}

/// A test config: the built-in mock as model `mock-chat`, and (when `upstream` is given) an
/// OpenAI-compatible provider at that address serving `up-chat` (upstream name `up-model`)
/// and `up-embed`. `extra` is appended verbatim (tables like `[limits]`).
pub fn config_text(upstream: Option<SocketAddr>, workers: usize, extra: &str) -> String {
    let mut t = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = {workers}\n\
         pin_workers = false\ndrain_timeout_ms = 10000\n\
         [[providers]]\nname = \"builtin\"\nkind = \"mock\"\n\
         [[models]]\nname = \"mock-chat\"\n[[models.deployments]]\nprovider = \"builtin\"\n\
         [[keys]]\nid = \"test\"\nsha256 = \"{}\"\n",
        sha256_hex(KEY)
    );
    if let Some(a) = upstream {
        t.push_str(&format!(
            "[[providers]]\nname = \"up\"\nkind = \"openai_compatible\"\n\
             base_url = \"http://{a}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"up-chat\"\n[[models.deployments]]\nprovider = \"up\"\n\
             model = \"up-model\"\n\
             [[models]]\nname = \"up-embed\"\n[[models.deployments]]\nprovider = \"up\"\n"
        ));
    }
    // Test prices: gpt-4o-mini's ($0.15 in, $0.60 out, $0.075 cached, per million tokens).
    for m in ["mock-chat", "up-model", "up-embed"] {
        t.push_str(&format!(
            "[prices.{m:?}]\ninput = 0.15\noutput = 0.60\ncached_input = 0.075\n"
        ));
    }
    if !extra.contains("[audit]") {
        t.push_str("[audit]\noutput = \"off\"\n");
    }
    t.push_str(extra);
    t
}

/// The upstream credential tests configure (`$TEST_UPSTREAM_KEY`).
pub const UPSTREAM_KEY: &str = "sk-upstream-secret";

pub fn snapshot(text: &str) -> config::Snapshot {
    config::parse(text, "test", &|v| {
        (v == "TEST_UPSTREAM_KEY").then(|| UPSTREAM_KEY.to_string())
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

pub fn start(text: &str) -> Gateway {
    Gateway::start(snapshot(text)).unwrap()
}

pub fn start_with(text: &str, driver: Driver) -> Gateway {
    let mut s = snapshot(text);
    s.server.driver = driver;
    Gateway::start(s).unwrap()
}

/// A request with the test key.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    post_with(
        path,
        &[("authorization", &format!("Bearer {KEY}"))],
        body.as_bytes(),
    )
}

pub fn post_with(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST {path} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn chat(model: &str, stream: bool) -> String {
    format!(
        r#"{{"model":"{model}","stream":{stream},"max_tokens":4,"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw body bytes as framed on the wire.
    pub raw_body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error.code` of an OpenAI-shaped error body.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert!(
            v["error"]["message"].is_string(),
            "not an OpenAI error: {v}"
        );
        assert!(v["error"]["type"].is_string(), "not an OpenAI error: {v}");
        v["error"]["code"].as_str().unwrap_or_default().to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client connection.
pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads more bytes; 0 means the peer closed.
    fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 16 * 1024];
        match self.s.read(&mut tmp) {
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reads one complete response.
    pub fn response(&mut self) -> Response {
        self.try_response()
            .expect("connection closed before a complete response")
    }

    /// One complete response, or `None` if the connection closed first.
    pub fn try_response(&mut self) -> Option<Response> {
        let mut head = ResponseHead::new();
        let limits = http1::Limits::default();
        loop {
            if let Some(n) = head.parse(&self.buf, &limits, Method::Post).unwrap() {
                if head.is_interim() {
                    self.buf.drain(..n);
                    continue;
                }
                break;
            }
            if self.fill() == 0 {
                return None;
            }
        }
        let headers = head
            .headers
            .iter()
            .map(|h| {
                (
                    String::from_utf8_lossy(h.name.get(&self.buf)).to_lowercase(),
                    String::from_utf8_lossy(h.value.get(&self.buf)).into_owned(),
                )
            })
            .collect();
        let status = head.status;
        self.buf.drain(..head.head_len);
        let mut dec = BodyDecoder::new(head.body, u64::MAX).unwrap();
        let mut body = Vec::new();
        let mut raw_body = Vec::new();
        let mut pos = 0;
        loop {
            let step = dec.decode(&self.buf[pos..]).unwrap();
            body.extend_from_slice(&self.buf[pos + step.data.start..pos + step.data.end]);
            raw_body.extend_from_slice(&self.buf[pos..pos + step.consumed]);
            pos += step.consumed;
            if step.done {
                break;
            }
            if step.consumed == 0 {
                self.buf.drain(..pos);
                pos = 0;
                if self.fill() == 0 {
                    dec.finish_eof().expect("body truncated");
                    break;
                }
            }
        }
        self.buf.drain(..pos);
        Some(Response {
            status,
            headers,
            body,
            raw_body,
        })
    }

    /// Reads until `needle` has arrived; returns everything read so far.
    pub fn read_until(&mut self, needle: &[u8]) -> Vec<u8> {
        while memchr::memmem::find(&self.buf, needle).is_none() {
            assert!(
                self.fill() > 0,
                "closed before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&self.buf)
            );
        }
        self.buf.clone()
    }

    /// True when the peer has closed (after any buffered bytes).
    pub fn is_closed(&mut self) -> bool {
        self.fill() == 0
    }

    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }
}

/// One request on a fresh connection.
pub fn roundtrip(addr: SocketAddr, req: &[u8]) -> Response {
    let mut c = Client::connect(addr);
    c.send(req);
    c.response()
}
