//! Test support for the gateway: the in-process gateway on port 0, the real mock provider
//! (the same server `tollgate-mock` runs) on port 0, and a blocking raw-bytes HTTP client.
//!
//! Clients use blocking std sockets with a read timeout: the timeout only turns a hang into a
//! failure, nothing waits on it.

#![allow(dead_code, reason = "each test file uses a subset")]
#![allow(
    clippy::disallowed_types,
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
use tollgate::net::io::Driver;
use tollgate::runtime::Gateway;
use tollgate_loadtest::mock::{self, MockConfig, MockHandle};

/// The virtual key every test config accepts.
pub const KEY: &str = "sk-test-key";

/// A failing test should fail, not hang.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub fn sha256_hex(s: impl AsRef<[u8]>) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_ref())
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
    config::parse(text, "test", &|v| match v {
        "TEST_UPSTREAM_KEY" => Some(UPSTREAM_KEY.to_string()),
        // A Bedrock provider's SigV4 secret: the one the mock checks signatures with.
        "TEST_AWS_SECRET" => Some(mock::DEFAULT_AWS_SECRET.to_string()),
        _ => None,
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

/// The embedded default config (`config/tollgate.toml`) on a free port: one worker, audit
/// off.
pub fn start_default() -> Gateway {
    let mut snap = config::parse(config::DEFAULT_CONFIG, "default", &|_| None).unwrap();
    snap.server.listen = "127.0.0.1:0".parse().unwrap();
    snap.audit.output = config::AuditOutput::Off;
    snap.server.workers = 1;
    Gateway::start(snap).unwrap()
}

/// A `[[keys]]` entry: `id`, the hash of `secret`, then `extra` lines as they are.
pub fn key_entry(id: &str, secret: &str, extra: &str) -> String {
    format!(
        "[[keys]]\nid = \"{id}\"\nsha256 = \"{}\"\n{extra}\n",
        sha256_hex(secret)
    )
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
        loop {
            match self.s.read(&mut tmp) {
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    return n;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return 0,
                Err(e) => panic!("read: {e}"),
            }
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

/// A fresh directory for one test's files.
pub fn test_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Config lines that send the audit trail to `path`.
pub fn audit_to(path: &std::path::Path) -> String {
    format!("[audit]\noutput = {:?}\n", path.to_str().unwrap())
}

/// Every audit record in the file at `path` (read after the gateway has shut down).
pub fn audit_records(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The corpus of real provider captures (a copy of ../shared/corpus).
pub fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

/// The corpus `MANIFEST.toml`, as text (for a test's own typed view of it).
pub fn manifest_text() -> String {
    let path = corpus_dir().join("MANIFEST.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The corpus `MANIFEST.toml`, untyped (`manifest["file"]` is the array of captures).
pub fn manifest_json() -> serde_json::Value {
    let v: toml::Value = toml::from_str(&manifest_text()).unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_value(v).unwrap()
}

/// The bytes of the corpus capture at `path` (relative to the corpus, as the MANIFEST names it).
pub fn capture(path: &str) -> Vec<u8> {
    let full = corpus_dir().join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A provider that answers every request with a corpus capture, byte for byte: the file named
/// by the request's `x-replay` header (a path in the corpus), as a chunked body in pieces of
/// `x-replay-chunk` bytes (default 64), so events straddle reads. Keeps every request body it
/// received. Stands in for a real provider (not a part of tollgate).
pub struct Replay {
    pub addr: SocketAddr,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    /// Each request's head, lowercased.
    pub heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn start_replay() -> Replay {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, seen_heads) = (bodies.clone(), heads.clone());
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { return };
            let (seen, seen_heads) = (seen.clone(), seen_heads.clone());
            std::thread::spawn(move || replay_conn(s, &seen, &seen_heads));
        }
    });
    Replay {
        addr,
        bodies,
        heads,
    }
}

fn replay_conn(
    mut s: TcpStream,
    seen: &std::sync::Mutex<Vec<Vec<u8>>>,
    seen_heads: &std::sync::Mutex<Vec<String>>,
) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    loop {
        let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") else {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::trim)
                .map(str::to_owned)
        };
        let len: usize = header("content-length").map_or(0, |v| v.parse().unwrap());
        while buf.len() < end + 4 + len {
            match s.read(&mut tmp) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        }
        seen.lock()
            .unwrap()
            .push(buf[end + 4..end + 4 + len].to_vec());
        seen_heads.lock().unwrap().push(head.clone());
        buf.drain(..end + 4 + len);
        let file = header("x-replay").expect("x-replay header");
        let chunk: usize = header("x-replay-chunk").map_or(64, |v| v.parse().unwrap());
        let data = std::fs::read(corpus_dir().join(&file)).unwrap();
        let kind = if file.ends_with(".sse") {
            "text/event-stream"
        } else {
            "application/json"
        };
        let status: u16 = header("x-replay-status").map_or(200, |v| v.parse().unwrap());
        let mut out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        .into_bytes();
        for piece in data.chunks(chunk) {
            out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        if s.write_all(&out).is_err() {
            return;
        }
    }
}

/// Sends every MANIFEST capture whose path starts with `prefix` (and which `take` accepts)
/// through the gateway at `gw`, one connection, with the upstream a [`Replay`]:
/// `request(path, stream)` builds the client's request (it must carry `x-replay: path`). Checks
/// each answer is 200 and the capture byte for byte; returns `(path, expected)` per capture,
/// in order.
pub fn replay_captures(
    gw: SocketAddr,
    prefix: &str,
    take: impl Fn(&serde_json::Value) -> bool,
    request: impl Fn(&str, bool) -> Vec<u8>,
) -> Vec<(String, serde_json::Value)> {
    let manifest = manifest_json();
    let mut c = Client::connect(gw);
    let mut expected = Vec::new();
    for f in manifest["file"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        if !path.starts_with(prefix) || !take(f) {
            continue;
        }
        let stream = path.ends_with(".sse");
        c.send(&request(path, stream));
        let r = c.response();
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(
            sha256_hex(&r.body),
            f["expected"]["file_sha256"].as_str().unwrap(),
            "{path}: byte for byte"
        );
        expected.push((path.to_owned(), f["expected"].clone()));
    }
    expected
}

/// What a client that did not ask for usage should get of an OpenAI stream the gateway asked
/// usage for: the stream without its usage-only events (`choices` empty, `usage` an object)
/// and without the `"usage":null` member include_usage adds to the others — read
/// independently of the gateway, with serde_json on `\n\n`-separated events. Also returns
/// how many events were removed.
pub fn without_usage_chunks(bytes: &[u8]) -> (Vec<u8>, u32) {
    let text = std::str::from_utf8(bytes).unwrap();
    let mut out = String::new();
    let mut removed = 0;
    for ev in text.split_inclusive("\n\n") {
        let data = ev.trim_end().strip_prefix("data: ").unwrap_or("");
        let usage_only = serde_json::from_str::<serde_json::Value>(data).is_ok_and(|v| {
            v["choices"].as_array().is_some_and(Vec::is_empty) && v["usage"].is_object()
        });
        if usage_only {
            removed += 1;
        } else {
            out.push_str(&ev.replacen(",\"usage\":null", "", 1));
        }
    }
    (out.into_bytes(), removed)
}

/// Waits (up to 10 s) until `mock`'s ledger satisfies `done`, and returns it: the mock bills
/// a request that its client abandoned when its next write fails, which can be after the
/// gateway has finished with it.
pub fn ledger_when(
    mock: &MockHandle,
    done: impl Fn(&tollgate_loadtest::mock::Ledger) -> bool,
) -> tollgate_loadtest::mock::Ledger {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let l = mock.ledger();
        if done(&l) || std::time::Instant::now() > deadline {
            return l;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(2));
    }
}

/// AWS's binary event stream, decoded here on its own terms (lengths and both CRCs checked):
/// `(event type, payload)` per message.
pub fn eventstream_frames(mut b: &[u8]) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let be = |at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize;
        let (total, headers) = (be(0), be(4));
        assert_eq!(crc32fast::hash(&b[..8]) as usize, be(8), "prelude CRC");
        assert_eq!(
            crc32fast::hash(&b[..total - 4]) as usize,
            be(total - 4),
            "message CRC"
        );
        let mut h = &b[12..12 + headers];
        let mut event = String::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = std::str::from_utf8(&h[1..1 + n]).unwrap().to_owned();
            assert_eq!(h[1 + n], 7, "string headers only");
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = std::str::from_utf8(&h[4 + n..4 + n + len])
                .unwrap()
                .to_owned();
            if name == ":event-type" || name == ":exception-type" {
                event = value;
            }
            h = &h[4 + n + len..];
        }
        let payload = &b[12 + headers..total - 4];
        out.push((event, serde_json::from_slice(payload).unwrap()));
        b = &b[total..];
    }
    out
}
