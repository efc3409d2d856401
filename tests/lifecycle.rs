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

/// `kill -9` under load: the restarted gateway recovers from its ledger what the workers and
/// the coordinator had handed to the operating system — never more than the provider billed,
/// and losing at most what was still in the rings (requests settled in the last tick or two
/// before the kill, plus those in flight). The loss is printed; ARCHITECTURE.md ("Persistence") and the ledger
/// module document the window.
#[test]
fn kill_9_under_load_loses_at_most_the_last_ticks_of_spend() {
    let dir = test_dir("kill9");
    let mock = start_mock(|_| {});
    let admin_key = "sk-admin-k9";
    let extra = format!(
        "[ledger]\ndir = {:?}\n[admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n",
        dir.join("ledger").to_str().unwrap(),
        sha256_hex(admin_key)
    );
    let config = dir.join("tollgate.toml");
    std::fs::write(&config, config_text(Some(mock.addr), 2, &extra)).unwrap();
    let gw = Proc::spawn(&config);
    let addr = gw.addr;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || {
                let req = post("/v1/chat/completions", &chat("up-chat", false));
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
                        return;
                    };
                    use std::io::{Read, Write};
                    if s.write_all(&req).is_err() {
                        return;
                    }
                    let mut buf = vec![0u8; 8192];
                    let mut got = Vec::new();
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                        // Complete once the head is in and the body has its content-length.
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
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < 2_000 && std::time::Instant::now() < deadline {
        std::thread::park_timeout(std::time::Duration::from_millis(5));
    }
    let loaded = done.load(Ordering::Relaxed);
    let mut gw = gw;
    gw.child.kill().unwrap(); // SIGKILL
    gw.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    assert!(
        loaded >= 2_000,
        "only {loaded} responses completed in 60 s before the kill"
    );
    let completed = done.load(Ordering::Relaxed);
    let truth = mock.ledger().keys.values().fold((0, 0), |(r, t), c| {
        (r + c.billed, t + c.prompt_tokens + c.completion_tokens)
    });

    // Restart and read what the ledger recovered.
    let gw = Proc::spawn(&config);
    let admin_addr = gw.admin.unwrap();
    let req = format!(
        "GET /admin/quotas HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {admin_key}\r\n\r\n"
    );
    let state = roundtrip(admin_addr, req.as_bytes()).json();
    let s = &state["spend"]["test"];
    let recovered = (
        s["requests"].as_u64().unwrap(),
        s["input_tokens"].as_u64().unwrap() + s["output_tokens"].as_u64().unwrap(),
    );
    eprintln!(
        "kill -9: {completed} responses completed; provider billed {} requests / {} tokens; \
         ledger recovered {} / {}; lost {} requests / {} tokens",
        truth.0,
        truth.1,
        recovered.0,
        recovered.1,
        truth.0 - recovered.0,
        truth.1 - recovered.1
    );
    assert!(
        recovered.0 <= truth.0 && recovered.1 <= truth.1,
        "never more than billed"
    );
    assert!(
        recovered.0 * 10 >= completed * 8,
        "most of the completed requests' spend survived: {} of {completed}",
        recovered.0
    );
    drop(gw);
}
