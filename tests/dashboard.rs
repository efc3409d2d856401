//! The dashboard page, loaded in a real headless Chromium (Debian's `chromium`; `.ci/run`
//! installs it): it renders without console errors, shows what the audit records say, asks
//! for the admin key when it has none, updates as traffic arrives, and leaves a screenshot.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use support::*;

const ADMIN: &str = "sk-admin-dashboard";

/// The page's DOM after its script ran (virtual time lets its first fetch and render finish),
/// and what Chromium logged.
fn load(url: &str, screenshot: Option<&std::path::Path>) -> (String, String) {
    let dir = test_dir("dashboard-profile");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--window-size=1400,1100",
    ])
    .arg(format!("--user-data-dir={}", dir.display()));
    match screenshot {
        Some(p) => cmd.arg(format!("--screenshot={}", p.display())),
        None => cmd.arg("--dump-dom"),
    };
    let out = cmd
        .arg(url)
        .output()
        .expect("chromium (Debian's chromium package; .ci/run installs it)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn stats_requests(admin: SocketAddr) -> u64 {
    let r = roundtrip(
        admin,
        format!("GET /admin/stats HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {ADMIN}\r\n\r\n")
            .as_bytes(),
    );
    r.json()["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum()
}

fn wait_for_seconds(admin: SocketAddr, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stats_requests(admin) != n {
        assert!(
            Instant::now() < deadline,
            "the stats never held {n} requests"
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// The text of the element with `id` (its first text node).
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {dom}"));
    let start = at + dom[at..].find('>').unwrap() + 1;
    let end = start + dom[start..].find('<').unwrap();
    &dom[start..end]
}

fn no_console_errors(log: &str) {
    for line in log.lines() {
        assert!(
            !(line.contains("CONSOLE") && (line.contains("Uncaught") || line.contains("Error"))),
            "console error: {line}"
        );
    }
}

#[test]
fn the_dashboard_renders_what_the_audit_records_say_and_updates() {
    let dir = test_dir("dashboard");
    let audit = dir.join("audit.log");
    let extra = format!(
        "[[teams]]\nname = \"research\"\n{}{}[admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n{}",
        key_entry(
            "alice",
            "sk-alice",
            "team = \"research\"\nbudget = { usd = 5.0 }"
        ),
        key_entry("bob", "sk-bob", ""),
        sha256_hex(ADMIN),
        audit_to(&audit)
    ) + "[[models]]\nname = \"cached-chat\"\ncache = { ttl = \"1h\" }\n\
           [[models.deployments]]\nprovider = \"builtin\"\nmodel = \"mock-chat\"\n\
           [[guardrails]]\nname = \"pii\"\ndetectors = [\"email\"]\n"
        + &key_entry("carol", "sk-carol", "guardrails = [\"pii\"]");
    let gw = start(&config_text(None, 2, &extra));
    let (addr, admin) = (gw.local_addr(), gw.admin_addr().unwrap());
    let send = |key: &str, stream: bool| {
        let req = post_with(
            "/v1/chat/completions",
            &[("authorization", &format!("Bearer {key}"))],
            chat("mock-chat", stream).as_bytes(),
        );
        assert_eq!(roundtrip(addr, &req).status, 200);
    };
    for i in 0..5 {
        send("sk-alice", i % 2 == 0);
    }
    send("sk-bob", false);
    // The cache: a miss, then a hit.
    for want in ["miss", "hit"] {
        let req = post_with(
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-bob")],
            chat("cached-chat", false).as_bytes(),
        );
        let r = roundtrip(addr, &req);
        assert_eq!(r.header("x-tollgate-cache"), Some(want));
    }
    // Guardrails: two emails redacted in one request.
    let body = r#"{"model":"mock-chat","max_tokens":4,"messages":[{"role":"user","content":"a@x.io and b@x.io"}]}"#;
    let req = post_with(
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-carol")],
        body.as_bytes(),
    );
    assert_eq!(roundtrip(addr, &req).status, 200);
    wait_for_seconds(admin, 9);

    // Without the key the page says what it needs, and shows nothing.
    let (dom, log) = load(&format!("http://{admin}/dashboard"), None);
    no_console_errors(&log);
    assert!(text_of(&dom, "error").contains("admin key"), "{dom}");
    assert_eq!(text_of(&dom, "total"), "–");

    let url = format!("http://{admin}/dashboard#key={ADMIN}");
    let (dom, log) = load(&url, None);
    no_console_errors(&log);
    assert!(dom.contains("data-ready=\"1\""), "{dom}");
    assert_eq!(text_of(&dom, "error"), "");
    assert_eq!(text_of(&dom, "total"), "9");
    for want in [
        "alice",
        "research",
        "bob",
        "key:alice/usd",
        "healthy",
        "mock-chat",
        "cached-chat",
        "50.0%",
        "<td>pii</td><td>email</td><td>request</td><td>redact</td><td class=\"n\">2</td>",
    ] {
        assert!(dom.contains(want), "{want} not on the page");
    }
    // The charts were drawn (a path per series).
    assert!(dom.matches("<path class=\"l1\"").count() >= 3, "{dom}");
    // Alice's spend since start, as the audit records have it.
    let alice: u64 = audit_so_far(&audit, "alice");
    let shown = format!("${:.6}", alice as f64 / 1e6);
    assert!(dom.contains(&shown), "{shown} not on the page");

    // More traffic: the page shows it on its next load.
    for _ in 0..4 {
        send("sk-bob", true);
    }
    wait_for_seconds(admin, 13);
    let (dom, _) = load(&url, None);
    assert_eq!(text_of(&dom, "total"), "13");

    // Live: with traffic going on, one open page redraws from new stats (it polls every 2 s;
    // Chromium's virtual time lets several polls run).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let traffic = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let req = post_with(
                "/v1/chat/completions",
                &[("authorization", "Bearer sk-bob")],
                chat("mock-chat", false).as_bytes(),
            );
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(roundtrip(addr, &req).status, 200);
                sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::thread::park_timeout(Duration::from_millis(20));
            }
        })
    };
    let (dom, log) = load(&url, None);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    traffic.join().unwrap();
    no_console_errors(&log);
    let renders: u32 = dom
        .split("data-renders=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        renders >= 2,
        "the page polled and redrew: {renders} render(s)"
    );
    let shown: u64 = text_of(&dom, "total").parse().unwrap();
    assert!(
        shown > 12,
        "the page shows requests sent while it was open: {shown}"
    );

    let shot = dir.join("dashboard.png");
    let _ = load(&url, Some(&shot));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real image"
    );
    println!("dashboard screenshot: {}", shot.display());
    gw.shutdown();
}

/// µUSD the audit file has charged `key` so far (the writer flushes at its tick; what this
/// test compares is settled before the page loads).
fn audit_so_far(audit: &std::path::Path, key: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records = audit_records(audit);
        let mine: Vec<_> = records.iter().filter(|r| r["key"] == key).collect();
        if mine.len() == 5 || Instant::now() > deadline {
            return mine
                .iter()
                .filter_map(|r| r["cost_micro_usd"].as_u64())
                .sum();
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}
