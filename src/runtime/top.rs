//! `tollgate top`: a live terminal view of a running gateway, drawn from its admin API's
//! `GET /admin/stats` (the same document a dashboard reads): request rate, errors, latency
//! percentiles and the gateway's own time over the last ten seconds, spend per key (last hour
//! and today), budgets, deployment health. Redrawn every interval; `--once` prints one frame
//! (for scripts and tests).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Stats {
    pub now: u64,
    pub started: u64,
    pub generation: u64,
    pub totals: Point,
    pub last_10s: Point,
    pub keys: Vec<Key>,
    pub quotas: Vec<Quota>,
    pub deployments: Vec<Deployment>,
}

#[derive(Debug, Deserialize)]
pub struct Point {
    pub requests: u64,
    pub errors: u64,
    pub server_errors: u64,
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub p50_us: Option<f64>,
    pub p95_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub first_byte_p50_us: Option<f64>,
    pub overhead_p99_us: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Key {
    pub key: String,
    pub team: String,
    pub requests: u64,
    pub errors: u64,
    pub cost_usd: f64,
    pub cost_usd_hour: f64,
    pub cost_usd_day: f64,
}

#[derive(Debug, Deserialize)]
pub struct Quota {
    pub name: String,
    pub unit: String,
    pub cap: f64,
    pub used: f64,
    pub reserved: f64,
    pub remaining: f64,
}

#[derive(Debug, Deserialize)]
pub struct Deployment {
    pub model: String,
    pub deployment: String,
    pub state: String,
    pub inflight: u64,
    pub failures: u64,
    pub ewma_ttft_us: Option<f64>,
}

/// Fetches the stats from `admin` (`host:port`) with `key` as the bearer token, if any.
pub fn fetch(admin: &str, key: Option<&str>) -> Result<Stats, String> {
    let mut s = TcpStream::connect(admin).map_err(|e| format!("connecting to {admin}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let auth = key.map_or(String::new(), |k| format!("authorization: Bearer {k}\r\n"));
    write!(
        s,
        "GET /admin/stats HTTP/1.0\r\nhost: {admin}\r\n{auth}\r\n"
    )
    .map_err(|e| format!("asking {admin}: {e}"))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .map_err(|e| format!("reading from {admin}: {e}"))?;
    let split = memchr::memmem::find(&answer, b"\r\n\r\n").ok_or("not an HTTP response")?;
    let status = answer.get(9..12).unwrap_or_default();
    if status != b"200" {
        return Err(format!(
            "{admin} answered {}: {}",
            String::from_utf8_lossy(status),
            String::from_utf8_lossy(&answer[split + 4..])
        ));
    }
    crate::json::Scratch::default()
        .parse(&answer[split + 4..])
        .ok_or_else(|| "the stats are not the JSON this version reads".to_owned())
}

fn ms(us: Option<f64>) -> String {
    match us {
        Some(u) if u >= 1000.0 => format!("{:.1} ms", u / 1000.0),
        Some(u) => format!("{u:.0} µs"),
        None => "–".to_owned(),
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 10_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 10_000 => format!("{:.1}k", n as f64 / 1e3),
        n => n.to_string(),
    }
}

/// One screen of `s`, at most `rows` keys.
pub fn frame(admin: &str, s: &Stats, rows: usize) -> String {
    let mut o = String::new();
    let up = s.now.saturating_sub(s.started);
    let _ = writeln!(
        o,
        "tollgate {admin} — up {}h{:02}m{:02}s — config generation {}",
        up / 3600,
        up / 60 % 60,
        up % 60,
        s.generation
    );
    let l = &s.last_10s;
    let _ = writeln!(
        o,
        "last 10 s: {:.1} req/s, {:.1} errors/s ({:.1} 5xx), ${:.6}/s",
        l.requests as f64 / 10.0,
        l.errors as f64 / 10.0,
        l.server_errors as f64 / 10.0,
        l.cost_usd / 10.0
    );
    let _ = writeln!(
        o,
        "latency p50 {}  p95 {}  p99 {}  first byte p50 {}  tollgate's own p99 {}",
        ms(l.p50_us),
        ms(l.p95_us),
        ms(l.p99_us),
        ms(l.first_byte_p50_us),
        ms(l.overhead_p99_us)
    );
    let t = &s.totals;
    let _ = writeln!(
        o,
        "since start: {} requests, {} errors, ${:.6}, {} input / {} output tokens",
        t.requests,
        t.errors,
        t.cost_usd,
        count(t.input_tokens),
        count(t.output_tokens)
    );
    let _ = writeln!(
        o,
        "\n{:<20} {:<14} {:>10} {:>8} {:>12} {:>12} {:>12}",
        "KEY", "TEAM", "REQUESTS", "ERRORS", "SPEND", "LAST HOUR", "TODAY"
    );
    for k in s.keys.iter().take(rows) {
        let _ = writeln!(
            o,
            "{:<20} {:<14} {:>10} {:>8} {:>12} {:>12} {:>12}",
            k.key,
            k.team,
            k.requests,
            k.errors,
            format!("${:.6}", k.cost_usd),
            format!("${:.6}", k.cost_usd_hour),
            format!("${:.6}", k.cost_usd_day)
        );
    }
    if !s.quotas.is_empty() {
        let _ = writeln!(
            o,
            "\n{:<32} {:>14} {:>14} {:>12} {:>14}",
            "BUDGET / LIMIT", "USED", "CAP", "RESERVED", "LEFT"
        );
        for q in &s.quotas {
            let v = |x: f64| {
                if q.unit == "usd" {
                    format!("${x:.4}")
                } else {
                    format!("{x:.0}")
                }
            };
            let _ = writeln!(
                o,
                "{:<32} {:>14} {:>14} {:>12} {:>14}",
                q.name,
                v(q.used),
                v(q.cap),
                v(q.reserved),
                v(q.remaining)
            );
        }
    }
    let _ = writeln!(
        o,
        "\n{:<16} {:<32} {:<13} {:>9} {:>10} {:>9}",
        "MODEL", "DEPLOYMENT", "STATE", "IN FLIGHT", "EWMA TTFT", "FAILURES"
    );
    for d in &s.deployments {
        let _ = writeln!(
            o,
            "{:<16} {:<32} {:<13} {:>9} {:>10} {:>9}",
            d.model,
            d.deployment,
            d.state,
            d.inflight,
            ms(d.ewma_ttft_us),
            d.failures
        );
    }
    o
}

/// Draws `admin`'s stats every `every` (or once), until interrupted.
#[allow(
    clippy::disallowed_methods,
    reason = "a command-line loop on its own thread, no runtime"
)]
pub fn run(admin: &str, key: Option<&str>, every: Duration, once: bool) -> Result<(), String> {
    let mut out = std::io::stdout();
    loop {
        let s = fetch(admin, key)?;
        let f = frame(admin, &s, 20);
        if once {
            print!("{f}");
            return Ok(());
        }
        // Home, clear, frame.
        let _ = write!(out, "\x1b[H\x1b[2J{f}");
        let _ = out.flush();
        std::thread::sleep(every);
    }
}
