#![allow(
    clippy::disallowed_types,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]
//! The gateway's life: config files and `tollgate check`, `hash-key`, reload (in-process and
//! by SIGHUP under load), the access log, and SIGTERM draining an in-flight stream.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tollgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_file_in_config_loads_and_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        if path.file_name().is_some_and(|f| f == "prices.toml") {
            // The bundled price table, not a config: compiled into every config (checked by
            // config::tests); here, that the binary carries this very file.
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                tollgate::config::validate::PRICES
            );
            continue;
        }
        n += 1;
        tollgate::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new(BIN)
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("config OK\n"));
    }
    assert!(n >= 1);
    // The embedded default is the file itself.
    assert_eq!(
        std::fs::read_to_string(dir.join("tollgate.toml")).unwrap(),
        tollgate::config::DEFAULT_CONFIG
    );
}

#[test]
fn check_names_the_key_path_of_a_mistake() {
    let dir = temp_dir("check");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[providers]]\nname = \"m\"\nkind = \"mock\"\n[[models]]\nname = \"a\"\n\
         [[models.deployments]]\nprovider = \"m\"\nwieght = 2\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:8: models[0].deployments[0].wieght: unknown field"),
        "{err}"
    );
}

#[test]
fn hash_key_prints_the_sha256_the_config_stores() {
    let out = Command::new(BIN)
        .args(["hash-key", "sk-tollgate-demo"])
        .output()
        .unwrap();
    let hash = String::from_utf8(out.stdout).unwrap();
    assert_eq!(hash.trim(), sha256_hex("sk-tollgate-demo"));
    assert!(tollgate::config::DEFAULT_CONFIG.contains(hash.trim()));
}

#[test]
fn reload_in_process_keeps_connections_and_warm_upstreams_and_audits() {
    let mock = start_mock(|_| {});
    let dir = temp_dir("reload");
    let log = dir.join("audit.jsonl");
    let base = config_text(
        Some(mock.addr),
        1,
        &format!("[audit]\noutput = {:?}\n", log.to_str().unwrap()),
    );
    let mut gw = start(&base);
    let mut c = Client::connect(gw.local_addr());
    c.send(&post("/v1/chat/completions", &chat("up-chat", false)));
    assert_eq!(c.response().status, 200);
    c.send(&post("/v1/chat/completions", &chat("new-chat", false)));
    assert_eq!(c.response().status, 404);

    let next = format!(
        "{base}[[models]]\nname = \"new-chat\"\n[[models.deployments]]\nprovider = \"up\"\nprice = \"gpt-4o-mini\"\n"
    );
    gw.reload(snapshot(&next)).unwrap();
    assert_eq!(gw.generation(), 1);
    // Same client connection, new config; the upstream connection from before is reused.
    c.send(&post("/v1/chat/completions", &chat("new-chat", false)));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.text());
    c.send(&post("/v1/chat/completions", &chat("up-chat", false)));
    assert_eq!(c.response().status, 200);
    drop(c);
    let p = gw.shutdown();
    assert_eq!(p.totals.requests, 4);
    assert_eq!(
        p.totals.upstream_connects, 1,
        "reload dropped the warm upstream connection"
    );
    assert_eq!(p.totals.upstream_reuses, 2);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1]["http.response.status_code"], 404);
    assert_eq!(lines[1]["error.type"], "model_not_found");
    assert_eq!(lines[1]["error_side"], "downstream");
    assert_eq!(lines[2]["gen_ai.request.model"], "new-chat");
    assert_eq!(lines[2]["gen_ai.provider.name"], "up");
    assert_eq!(lines[2]["key"], "test");
    assert!(lines[2]["duration_us"].as_u64().unwrap() > 0);
}

/// The real binary, with its stderr collected.
struct Proc {
    child: Child,
    addr: SocketAddr,
    /// The admin API's address, when the config turns it on.
    admin: Option<SocketAddr>,
    stderr: Arc<Mutex<String>>,
    lines: Mutex<std::sync::mpsc::Receiver<String>>,
}

impl Proc {
    fn spawn(config: &Path) -> Proc {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .env("TEST_UPSTREAM_KEY", UPSTREAM_KEY)
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        let admin = std::fs::read_to_string(config)
            .unwrap()
            .contains("key_sha256")
            .then(|| {
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                line.trim()
                    .rsplit("http://")
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|_| panic!("unexpected admin line {line:?}"))
            });
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in err.lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Proc {
            child,
            addr,
            admin,
            stderr,
            lines: Mutex::new(rx),
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the gateway to log a line containing `needle` (it logs each reload outcome
    /// on stderr); returns that line and the ones after it up to the next blank read.
    fn wait_for_log(&self, needle: &str) -> String {
        let rx = self.lines.lock().unwrap();
        let mut seen = String::new();
        loop {
            let line = rx
                .recv_timeout(IO_TIMEOUT)
                .unwrap_or_else(|_| panic!("never logged {needle:?}; got:\n{seen}"));
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                // A multi-line message follows on the next lines; take what is already there.
                while let Ok(more) = rx.recv_timeout(std::time::Duration::from_millis(50)) {
                    seen.push_str(&more);
                    seen.push('\n');
                }
                return seen;
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sighup_reloads_under_load_without_a_failed_request() {
    let mock = start_mock(|c| c.workers = 2);
    let dir = temp_dir("sighup");
    let path = dir.join("gw.toml");
    let base = config_text(Some(mock.addr), 2, "");
    std::fs::write(&path, &base).unwrap();
    let gw = Proc::spawn(&path);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..4)
        .map(|i| {
            let (stop, ok, failed, addr) = (stop.clone(), ok.clone(), failed.clone(), gw.addr);
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    // Alternate streams and JSON; reconnect now and then.
                    if n.is_multiple_of(50) {
                        c = Client::connect(addr);
                    }
                    c.send(&post(
                        "/v1/chat/completions",
                        &chat("up-chat", (n + i).is_multiple_of(2)),
                    ));
                    match c.try_response() {
                        Some(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(r) => {
                            failed
                                .lock()
                                .unwrap()
                                .push(format!("{}: {}", r.status, r.text()))
                        }
                        None => failed.lock().unwrap().push("connection closed".into()),
                    }
                }
            })
        })
        .collect();

    // A valid change: a new model appears.
    std::fs::write(
        &path,
        format!(
            "{base}[[models]]\nname = \"new-chat\"\n[[models.deployments]]\nprovider = \"up\"\nprice = \"gpt-4o-mini\"\n"
        ),
    )
    .unwrap();
    gw.signal("-HUP");
    gw.wait_for_log("config reloaded (generation 1)");
    let r = roundtrip(
        gw.addr,
        &post("/v1/chat/completions", &chat("new-chat", false)),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // A broken change: the gateway says exactly what is wrong and keeps the running config.
    std::fs::write(&path, format!("{base}[limits]\nmax_body_bytez = 1\n")).unwrap();
    gw.signal("-HUP");
    let log = gw.wait_for_log("reload failed");
    assert!(
        log.contains("limits.max_body_bytez: unknown field, did you mean `max_body_bytes`?"),
        "{log}"
    );
    let r = roundtrip(
        gw.addr,
        &post("/v1/chat/completions", &chat("new-chat", false)),
    );
    assert_eq!(r.status, 200);

    let before = ok.load(Ordering::Relaxed);
    // Let the load run across a few more requests after both reloads (stopping at once on a
    // failure, or at the deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while ok.load(Ordering::Relaxed) < before + 200
        && failed.lock().unwrap().is_empty()
        && std::time::Instant::now() < deadline
    {
        // A short wait that leaves the cores to the load (not a spin).
        std::thread::park_timeout(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }
    let failed = failed.lock().unwrap();
    let after = ok.load(Ordering::Relaxed) - before;
    assert!(
        failed.is_empty() && after >= 200,
        "{after} more served after the reloads (want 200 within 30 s); {} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}

#[test]
fn sigterm_drains_an_in_flight_stream_then_exits_zero() {
    let mock = start_mock(|_| {});
    let dir = temp_dir("sigterm");
    let path = dir.join("gw.toml");
    std::fs::write(&path, config_text(Some(mock.addr), 2, "")).unwrap();
    let mut gw = Proc::spawn(&path);

    // A stream that takes ~20 × 25 ms; an idle keep-alive connection beside it.
    let mut idle = Client::connect(gw.addr);
    idle.send(&post("/v1/chat/completions", &chat("up-chat", false)));
    assert_eq!(idle.response().status, 200);
    let mut c = Client::connect(gw.addr);
    c.send(&post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("x-mock-itl-ms", "25"),
        ],
        br#"{"model":"up-chat","stream":true,"max_tokens":20,"messages":[]}"#,
    ));
    c.read_until(b"\"content\":\"The\"");
    gw.signal("-TERM");
    // The stream finishes completely.
    let r = c.response();
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(text.matches("\"content\":").count(), 21, "{text}");
    // The idle connection was closed rather than kept.
    assert!(idle.is_closed());
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(gw.stderr.lock().unwrap().contains("draining"));
    // (Its port is free again: another test's server may have it by now, so a connection
    // attempt proves nothing either way.)
}

/// One client's request for `model` with key `secret`: non-streaming, so the body the mock
/// counts is the body sent (public and upstream model names are the same).
fn kill_request(model: &str, secret: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{model}","max_tokens":16,"messages":[{{"role":"user","content":"how much is left of the budget today?"}}]}}"#
    );
    // The provider takes 10 ms: at each kill, most clients' calls are in flight (recorded
    // by the journal, perhaps billed by the provider, never settled).
    post_with(
        "/v1/chat/completions",
        &[
            ("authorization", &format!("Bearer {secret}")),
            ("x-mock-ttft-ms", "10"),
        ],
        body.as_bytes(),
    )
}

/// Sends requests on fresh connections until the gateway goes away; counts complete 200s.
fn kill_client(
    addr: SocketAddr,
    req: Vec<u8>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        loop {
            let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                return;
            };
            if s.write_all(&req).is_err() {
                return;
            }
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse::<usize>().ok());
                    if len.is_some_and(|n| body.len() >= n) {
                        break;
                    }
                }
            }
            if got.starts_with(b"HTTP/1.1 200") {
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// `kill -9` under load, 20 times, restarting each time (ARCHITECTURE.md, "Persistence";
/// `account::journal`): for every key and team, the spend the ledger holds is never below
/// what the provider billed, and above it by at most the estimates of the calls that were in
/// flight at the kills (two clients per key: at most two per key per kill).
#[test]
fn kill_9_twenty_times_under_load_loses_no_spend() {
    const KILLS: u64 = 20;
    const PER_KEY: usize = 2;
    let dir = test_dir("kill9");
    let mock = start_mock(|_| {});
    let admin_key = "sk-admin-k9";
    let keys = [("a", "t1"), ("b", "t1"), ("c", "t2")];
    let mut extra = format!(
        "[ledger]\ndir = {:?}\n[admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n\
         [[teams]]\nname = \"t1\"\n[[teams]]\nname = \"t2\"\n",
        dir.join("ledger").to_str().unwrap(),
        sha256_hex(admin_key)
    );
    for (k, team) in keys {
        extra.push_str(&key_entry(
            k,
            &format!("sk-{k}"),
            &format!("team = \"{team}\""),
        ));
        extra.push_str(&format!(
            "[[models]]\nname = \"m-{k}\"\n[[models.deployments]]\nprovider = \"up\"\n\
             model = \"m-{k}\"\nprice = \"free\"\n"
        ));
    }
    let config = dir.join("tollgate.toml");
    std::fs::write(&config, config_text(Some(mock.addr), 2, &extra)).unwrap();
    // What one call may be charged at if it is in flight at a kill: its estimate.
    let estimate = |k: &str| {
        let req = kill_request(&format!("m-{k}"), "x");
        let body = req.len() - (req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4);
        body.div_ceil(4) as u64 + 16
    };
    // Ledger vs provider, per key: (ledger tokens, billed tokens, ledger requests, billed).
    let billed = |k: &str| {
        let l = mock.ledger();
        let c = l.models.get(&format!("m-{k}")).copied().unwrap_or_default();
        (c.prompt_tokens + c.completion_tokens, c.billed)
    };
    let mut kills = 0;
    let mut total_done = 0;
    eprintln!(
        "| kills so far | key a: ledger / billed tokens | key b | key c |\n|---|---|---|---|"
    );
    loop {
        let gw = Proc::spawn(&config);
        // What the restarted gateway recovered, against what the provider billed so far.
        let req = format!(
            "GET /admin/quotas HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {admin_key}\r\n\r\n"
        );
        let state = roundtrip(gw.admin.unwrap(), req.as_bytes()).json();
        let mut row = format!("| {kills} |");
        for (k, _) in keys {
            let s = &state["spend"][k];
            let ledger =
                s["input_tokens"].as_u64().unwrap_or(0) + s["output_tokens"].as_u64().unwrap_or(0);
            let requests = s["requests"].as_u64().unwrap_or(0);
            let (truth, truth_requests) = billed(k);
            assert!(
                ledger >= truth && requests >= truth_requests,
                "after {kills} kill(s), key {k}: the ledger holds {ledger} tokens / {requests} \
                 requests, the provider billed {truth} / {truth_requests}"
            );
            row.push_str(&format!(
                " {ledger} / {truth} (+{}, {} estimated) |",
                ledger - truth,
                s["estimated_requests"].as_u64().unwrap_or(0)
            ));
            let slack = kills * PER_KEY as u64 * estimate(k);
            assert!(
                ledger - truth <= slack,
                "after {kills} kill(s), key {k}: {} tokens over the bill, more than the {slack} \
                 in flight could explain",
                ledger - truth
            );
        }
        eprintln!("{row}");
        let stderr = gw.stderr.lock().unwrap().clone();
        assert!(!stderr.contains("DAMAGED"), "{stderr}");
        if kills == KILLS {
            drop(gw);
            break;
        }
        // Load: two clients per key, until 60 more calls completed; then kill -9.
        let done = Arc::new(AtomicU64::new(0));
        let clients: Vec<_> = keys
            .iter()
            .flat_map(|(k, _)| {
                let req = kill_request(&format!("m-{k}"), &format!("sk-{k}"));
                (0..PER_KEY).map(move |_| req.clone())
            })
            .map(|req| kill_client(gw.addr, req, done.clone()))
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while done.load(Ordering::Relaxed) < 60 && std::time::Instant::now() < deadline {
            std::thread::park_timeout(std::time::Duration::from_millis(1));
        }
        let mut gw = gw;
        gw.child.kill().unwrap(); // SIGKILL
        gw.child.wait().unwrap();
        for c in clients {
            c.join().unwrap();
        }
        assert!(
            done.load(Ordering::Relaxed) >= 60,
            "the load never got going"
        );
        total_done += done.load(Ordering::Relaxed);
        kills += 1;
    }
    // Teams too: the ledger itself, opened here after the last restart's clean stop.
    let (ledger, rec) = tollgate::account::ledger::Ledger::open(&dir.join("ledger")).unwrap();
    assert!(rec.journal_damaged.is_empty(), "{rec:?}");
    let totals = ledger.totals();
    for team in ["t1", "t2"] {
        let members: Vec<_> = keys
            .iter()
            .filter(|(_, t)| *t == team)
            .map(|(k, _)| *k)
            .collect();
        let truth: u64 = members.iter().map(|k| billed(k).0).sum();
        let slack: u64 = members
            .iter()
            .map(|k| KILLS * PER_KEY as u64 * estimate(k))
            .sum();
        let s = totals
            .get(&format!("team:{team}"))
            .copied()
            .unwrap_or_default();
        let got = s.input_tokens + s.output_tokens;
        assert!(
            got >= truth && got - truth <= slack,
            "team {team}: ledger {got} tokens, billed {truth}, slack {slack}"
        );
    }
    let over: u64 = keys
        .iter()
        .map(|(k, _)| {
            let s = totals[&format!("key:{k}")];
            s.input_tokens + s.output_tokens - billed(k).0
        })
        .sum();
    eprintln!(
        "kill -9 x{KILLS}: {total_done} calls completed; the ledger is over the provider's bill \
         by {over} tokens (calls in flight at the kills, charged at their estimate); nothing lost"
    );
}

/// A listener that answers every HTTP request 200 and keeps every byte it was sent (an OTLP
/// collector whose input the test can search).
fn capturing_server() -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let keep = keep.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    // One request: its head, then its content-length of body.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                buf.extend_from_slice(&chunk[..n]);
                                keep.lock().unwrap().extend_from_slice(&chunk[..n]);
                                continue;
                            }
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap_or(0));
                    while buf.len() < end + 4 + len {
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                buf.extend_from_slice(&chunk[..n]);
                                keep.lock().unwrap().extend_from_slice(&chunk[..n]);
                            }
                        }
                    }
                    buf.drain(..end + 4 + len);
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The forms a leaked secret would most likely take: as is, base64 (both alphabets, with and
/// without padding), hex, percent-encoded, and its long middle (a key cut at either end).
fn encodings(secret: &str) -> Vec<Vec<u8>> {
    fn b64(b: &[u8], alphabet: &[u8; 64]) -> String {
        let mut out = String::new();
        for c in b.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for i in 0..=c.len() {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
    let std64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let url64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = secret.as_bytes();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let pct: String = b.iter().map(|x| format!("%{x:02X}")).collect();
    let mut forms = vec![
        b.to_vec(),
        b64(b, std64).into_bytes(),
        b64(b, url64).into_bytes(),
        hex.to_ascii_uppercase().into_bytes(),
        hex.into_bytes(),
        pct.into_bytes(),
    ];
    if secret.len() >= 16 {
        forms.push(secret.as_bytes()[3..secret.len() - 3].to_vec());
    }
    forms
}

/// Provider keys, virtual keys and the admin key never appear in anything the gateway writes:
/// stdout, stderr, the audit file, the ledger and its journals, the metrics, the admin API's
/// answers, exported traces, and the bodies of its answers and errors — however the traffic
/// went (served, refused, failed upstream, streamed) — in any obvious encoding.
#[test]
fn secrets_never_appear_in_anything_the_gateway_writes() {
    let dir = test_dir("secrets");
    let failing = start_mock(|m| m.faults = vec!["status=500@1.0".parse().unwrap()]);
    let mock = start_mock(|_| {});
    let (otlp, traced) = capturing_server();
    let admin_key = "sk-admin-Zq8cUu2nWb0s";
    let client_key = "sk-client-Yt7bVv3mXa9r";
    let extra = format!(
        "[ledger]\ndir = {:?}\n[audit]\noutput = {:?}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n\
         [tracing]\nendpoint = \"http://{otlp}/v1/traces\"\nsample = 1.0\n\
         [[models]]\nname = \"broken\"\n[[models.deployments]]\nprovider = \"down\"\n\
         model = \"up-model\"\nprice = \"free\"\n\
         [[providers]]\nname = \"down\"\nkind = \"openai_compatible\"\n\
         base_url = \"http://{}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n{}",
        dir.join("ledger").to_str().unwrap(),
        dir.join("audit.jsonl").to_str().unwrap(),
        sha256_hex(admin_key),
        failing.addr,
        key_entry("client", client_key, "log_content = \"sha256\"")
    );
    let config = dir.join("tollgate.toml");
    std::fs::write(&config, config_text(Some(mock.addr), 2, &extra)).unwrap();
    let gw = Proc::spawn(&config);
    let admin = gw.admin.unwrap();
    let mut written: Vec<(String, Vec<u8>)> = Vec::new();
    let with_key = |k: &str, body: &str| {
        post_with(
            "/v1/chat/completions",
            &[("authorization", &format!("Bearer {k}"))],
            body.as_bytes(),
        )
    };
    let asks = [
        with_key(client_key, &chat("up-chat", false)),
        with_key(client_key, &chat("up-chat", true)),
        with_key(client_key, &chat("broken", false)),
        with_key(client_key, &chat("nonexistent", false)),
        with_key(KEY, &chat("up-chat", false)),
        // A near miss of a real key, and the admin key where a client key goes.
        with_key(&client_key[..client_key.len() - 1], &chat("up-chat", false)),
        with_key(admin_key, &chat("up-chat", false)),
        post_with(
            "/v1/messages",
            &[
                ("x-api-key", client_key),
                ("anthropic-version", "2023-06-01"),
            ],
            br#"{"model":"up-chat","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#,
        ),
    ];
    for (i, req) in asks.iter().enumerate() {
        let r = roundtrip(gw.addr, req);
        written.push((format!("answer {i} ({})", r.status), r.raw_body.clone()));
        for (k, v) in &r.headers {
            written.push((format!("answer {i} header {k}"), v.clone().into_bytes()));
        }
    }
    for path in ["/admin/quotas", "/admin/stats", "/metrics", "/admin/keys"] {
        for auth in [Some(admin_key), None] {
            let req = match auth {
                Some(k) => {
                    format!("GET {path} HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {k}\r\n\r\n")
                }
                None => format!("GET {path} HTTP/1.1\r\nhost: a\r\n\r\n"),
            };
            let r = roundtrip(admin, req.as_bytes());
            if auth.is_none() && path.starts_with("/admin") {
                assert_eq!(r.status, 401, "{path} without the admin key");
            }
            written.push((format!("admin {path} ({})", r.status), r.raw_body.clone()));
        }
    }
    // Stop cleanly: every audit line, ledger record and span is out.
    gw.signal("-TERM");
    let mut gw = gw;
    gw.child.wait().unwrap();
    written.push((
        "stderr".into(),
        gw.stderr.lock().unwrap().clone().into_bytes(),
    ));
    written.push(("traces".into(), traced.lock().unwrap().clone()));
    let mut files = vec![dir.join("audit.jsonl")];
    let mut stack = vec![dir.join("ledger")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    for f in files {
        written.push((
            f.display().to_string(),
            std::fs::read(&f).unwrap_or_default(),
        ));
    }
    // (stdout is the listening lines, read by Proc::spawn; they hold addresses only.)
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert!(
        audit.lines().count() >= asks.len(),
        "the audit trail is there to search"
    );
    assert!(
        !traced.lock().unwrap().is_empty(),
        "spans were exported to search"
    );
    for secret in [UPSTREAM_KEY, KEY, client_key, admin_key] {
        for form in encodings(secret) {
            for (what, bytes) in &written {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "{secret:?} (as {:?}) appears in {what}",
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }
}

/// A provider answering with a redirect is not followed: the client gets the provider's
/// answer or an error, and the redirect's target never sees a connection.
#[test]
fn upstream_redirects_are_never_followed() {
    use std::io::{Read, Write};
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    target.set_nonblocking(true).unwrap();
    let redirector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirector_addr = redirector.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in redirector.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let body = b"{\"error\":{\"message\":\"moved\"}}";
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{target_addr}/v1/chat/completions\r\n\
                     content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = s.write_all(body);
        }
    });
    let gw = start(&config_text(Some(redirector_addr), 1, ""));
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("up-chat", false)),
    );
    assert_ne!(r.status, 200, "{}", r.text());
    assert!(r.status == 307 || r.status >= 500, "{}", r.status);
    gw.shutdown();
    assert!(
        matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the redirect was followed"
    );
}

/// A provider that sends more than `[upstream] max_response_bytes`: refused with a clear error
/// before anything reached the client (a huge Content-Length), or cut with an error event
/// once a stream has started; the gateway keeps serving.
#[test]
fn a_provider_sending_too_much_is_cut_with_a_clear_error() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 16 * 1024];
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if String::from_utf8_lossy(&got).contains("\"stream\":true") {
                    // An endless stream: one chunk of events after another.
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                          transfer-encoding: chunked\r\n\r\n",
                    );
                    let event = b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more \"}}]}\n\n";
                    loop {
                        let mut chunk = format!("{:x}\r\n", event.len() * 8).into_bytes();
                        for _ in 0..8 {
                            chunk.extend_from_slice(event);
                        }
                        chunk.extend_from_slice(b"\r\n");
                        if s.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                          content-length: 10000000000\r\n\r\n{\"id\":",
                    );
                }
            });
        }
    });
    let gw = start(&config_text(
        Some(upstream),
        1,
        "[upstream]\nmax_response_bytes = 65536\n",
    ));
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("up-chat", false)),
    );
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("max_response_bytes"), "{}", r.text());
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("up-chat", true)),
    );
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.len() <= 65536 + 4096, "{} bytes relayed", text.len());
    assert!(
        text.contains("max_response_bytes"),
        "no error event: {}",
        &text[text.len().saturating_sub(400)..]
    );
    // Everyone else is still served.
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("mock-chat", false)),
    );
    assert_eq!(r.status, 200);
    gw.shutdown();
}

/// 10,000 slowloris clients at once (each sends half a head and then nothing): the gateway
/// keeps serving well-behaved clients on the same worker, its memory stays bounded, and the
/// slow ones are cut at `header_timeout_ms`.
#[test]
fn ten_thousand_slowloris_clients_do_not_stop_the_well_behaved() {
    use std::io::{Read, Write};
    const SLOW: usize = 10_000;
    let dir = test_dir("slowloris");
    let mock = start_mock(|_| {});
    let config = dir.join("tollgate.toml");
    std::fs::write(
        &config,
        config_text(
            Some(mock.addr),
            1,
            "[limits]\nheader_timeout_ms = 600000\nmax_connections = 12000\n",
        ),
    )
    .unwrap();
    let gw = Proc::spawn(&config);
    let rss = || {
        std::fs::read_to_string(format!("/proc/{}/status", gw.child.id()))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap()
    };
    let idle_kib = rss();
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            .unwrap();
        slow.push(s);
    }
    // Every slow connection was accepted and read (a request on a new one is served after
    // them: the worker's accept queue is FIFO).
    let req = post("/v1/chat/completions", &chat("up-chat", false));
    for i in 0..200 {
        let r = roundtrip(gw.addr, &req);
        assert_eq!(r.status, 200, "well-behaved request {i}: {}", r.text());
    }
    let loaded_kib = rss();
    eprintln!(
        "slowloris: {SLOW} held connections; gateway RSS {idle_kib} KiB idle, {loaded_kib} KiB \
         with them ({:.1} KiB each); 200 well-behaved requests all served",
        (loaded_kib.saturating_sub(idle_kib)) as f64 / SLOW as f64
    );
    assert!(
        loaded_kib < idle_kib + 256 * 1024,
        "memory grew by {} KiB for {SLOW} slow connections",
        loaded_kib - idle_kib
    );
    // None of them got an answer: they are still waiting for their heads' ends.
    let mut one = slow.pop().unwrap();
    one.set_nonblocking(true).unwrap();
    let mut b = [0u8; 16];
    assert!(matches!(one.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock));
    drop(slow);
    drop(gw);
}
