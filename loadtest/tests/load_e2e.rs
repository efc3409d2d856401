//! The load generator against the real mock: counts that agree with the mock's ledger, the
//! open-loop schedule, stream checks, A/B slices, the CLI and its JSON, and every bundled
//! scenario file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use support::*;
use tollgate_loadtest::load::scenario::Scenario;
use tollgate_loadtest::load::{LoadArgs, execute};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

fn args(list: &[&str]) -> LoadArgs {
    let mut v = vec!["tollgate-load", "--quiet"];
    v.extend_from_slice(list);
    Cli::parse_from(v).load
}

#[test]
fn closed_loop_counts_agree_with_the_ledger_and_keys_rotate() {
    let mock = MockProc::spawn(&[]);
    let cfg = args(&[
        "--target",
        &mock.url,
        "--concurrency",
        "4",
        "--threads",
        "2",
        "--duration",
        "400ms",
        "--warmup",
        "0s",
        "--keys",
        "sk-1,sk-2",
    ])
    .resolve()
    .unwrap();
    let s = execute(&cfg).unwrap();
    let t = &s.targets[0];
    assert!(t.requests > 50, "{}", t.requests);
    assert_eq!(t.ok, t.requests, "{:?}", t.errors);
    let ledger = run(stats(mock.addr));
    assert_eq!(
        ledger["total"]["requests"], t.requests,
        "every request the generator counted reached the mock, and no more"
    );
    let (a, b) = (
        ledger["keys"]["sk-1"]["requests"].as_u64().unwrap(),
        ledger["keys"]["sk-2"]["requests"].as_u64().unwrap(),
    );
    assert!(a.abs_diff(b) <= 4, "keys rotate evenly: {a} vs {b}");
    assert_eq!(t.latency_us.count, t.requests);
    assert!(t.latency_us.p50 > 0.0, "{:?}", t.latency_us);
}

#[test]
fn open_loop_sends_exactly_the_scheduled_requests() {
    let mock = MockProc::spawn(&[]);
    let cfg = args(&[
        "--target",
        &mock.url,
        "--mode",
        "open",
        "--rate",
        "300",
        "--duration",
        "500ms",
        "--warmup",
        "200ms",
        "--concurrency",
        "8",
    ])
    .resolve()
    .unwrap();
    let s = execute(&cfg).unwrap();
    let t = &s.targets[0];
    // A constant schedule has exactly rate × duration tickets in each phase.
    assert_eq!(t.requests, 150);
    assert_eq!(t.ok, 150);
    assert_eq!(run(stats(mock.addr))["total"]["requests"], 150 + 60);
    assert!(t.send_lag_us.is_some());

    // Poisson arrivals: the same mean rate, a random count.
    let cfg = args(&[
        "--target",
        &mock.url,
        "--mode",
        "open",
        "--rate",
        "400",
        "--arrival",
        "poisson",
        "--duration",
        "500ms",
        "--warmup",
        "0s",
    ])
    .resolve()
    .unwrap();
    let n = execute(&cfg).unwrap().targets[0].requests;
    assert!((120..=280).contains(&n), "{n} arrivals for a mean of 200");
}

#[test]
fn streams_are_timed_and_checked() {
    let mock = MockProc::spawn(&[]);
    let dir = std::env::temp_dir().join(format!("tollgate-load-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("streams.toml");
    std::fs::write(
        &scenario,
        r#"
concurrency = 2
duration = "300ms"
warmup = "0s"

[[request]]
name = "good"
path = "/v1/messages"
dialect = "anthropic"
prompt_bytes = 200
stream = true
max_tokens = 6
headers = { "x-mock-itl-ms" = "1" }

[[request]]
name = "cut"
path = "/v1/chat/completions"
prompt_bytes = 200
stream = true
max_tokens = 6
headers = { "x-mock-fault" = "truncate" }
"#,
    )
    .unwrap();
    let cfg = args(&[
        "--target",
        &mock.url,
        "--scenario",
        scenario.to_str().unwrap(),
    ])
    .resolve()
    .unwrap();
    let s = execute(&cfg).unwrap();
    let t = &s.targets[0];
    let cut = t.errors.get("stream_incomplete").copied().unwrap_or(0);
    assert!(cut > 0 && t.ok > 0, "{:?}", t.errors);
    assert_eq!(t.ok + cut, t.requests);
    assert_eq!(t.streams, t.requests);
    assert_eq!(t.streams_ended, t.ok);
    let ttft = t.ttft_us.unwrap();
    assert_eq!(
        ttft.count, t.requests,
        "every stream had a first content token"
    );
    let gap = t.gap_us.unwrap();
    assert!(
        gap.max >= 1000.0,
        "the 1 ms inter-token gap is visible: {gap:?}"
    );
}

#[test]
fn ab_mode_alternates_slices_between_two_targets() {
    let a = MockProc::spawn(&[]);
    let b = MockProc::spawn(&["--ttft-ms", "5"]);
    let cfg = args(&[
        "--target",
        &a.url,
        "--target-b",
        &b.url,
        "--duration",
        "600ms",
        "--slice",
        "100ms",
        "--warmup",
        "100ms",
    ])
    .resolve()
    .unwrap();
    let s = execute(&cfg).unwrap();
    assert_eq!(s.targets.len(), 2);
    let (ta, tb) = (&s.targets[0], &s.targets[1]);
    assert!(ta.ok > 0 && tb.ok > 0);
    assert!(
        tb.latency_us.p50 >= 5000.0,
        "B waits 5 ms before answering: {:?}",
        tb.latency_us
    );
    let d = s.added_latency_us.unwrap();
    assert_eq!(d.p50, tb.latency_us.p50 - ta.latency_us.p50);
    // Each mock saw its arm's measured requests plus its warm-up slice.
    assert!(run(stats(a.addr))["total"]["requests"].as_u64().unwrap() >= ta.requests);
    assert!(run(stats(b.addr))["total"]["requests"].as_u64().unwrap() >= tb.requests);
}

#[test]
fn cli_writes_json_summary_with_watched_cpu() {
    let mock = MockProc::spawn(&[]);
    let out = std::env::temp_dir().join(format!("tollgate-load-{}.json", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_tollgate-load"))
        .args([
            "--target",
            &mock.url,
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--concurrency",
            "2",
        ])
        .args([
            "--watch-pid",
            &mock.pid().to_string(),
            "--json",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("p99.9") && table.contains(&mock.url),
        "{table}"
    );
    let v = json(&std::fs::read(&out).unwrap());
    let t = &v["targets"][0];
    for k in [
        "requests",
        "ok",
        "errors",
        "throughput_rps",
        "latency_us",
        "ttfb_us",
    ] {
        assert!(t.get(k).is_some(), "missing {k}");
    }
    for q in ["p50", "p90", "p99", "p999", "max"] {
        assert!(t["latency_us"][q].as_f64().unwrap() > 0.0);
    }
    assert_eq!(t["watched_cpu"]["pid"], mock.pid());
    assert!(
        t["watched_cpu"]["cpu_seconds"].as_f64().unwrap() > 0.0,
        "the watched mock spent CPU serving the load: {}",
        t["watched_cpu"]
    );

    // Bad flags and bad scenarios are refused with a message that names the problem.
    let bad = Command::new(env!("CARGO_BIN_EXE_tollgate-load"))
        .args(["--target", "ftp://x:1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("http://"));
}

#[test]
fn refused_connections_are_counted_not_fatal() {
    // Port 1 on loopback: nothing listens.
    let cfg = args(&[
        "--target",
        "http://127.0.0.1:1",
        "--duration",
        "100ms",
        "--warmup",
        "0s",
    ])
    .resolve()
    .unwrap();
    let s = execute(&cfg).unwrap();
    let t = &s.targets[0];
    assert_eq!(t.ok, 0);
    assert!(t.errors.get("connect").copied().unwrap_or(0) > 0);
}

#[test]
fn every_bundled_scenario_loads_and_resolves() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            assert!(!sc.requests.is_empty(), "{}", path.display());
            for r in &sc.requests {
                r.render("127.0.0.1:8081", Some("k"))
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            }
            let cfg = args(&[
                "--scenario",
                path.to_str().unwrap(),
                "--target",
                "http://127.0.0.1:8081",
            ]);
            cfg.resolve()
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 4, "scenarios found: {n}");
}

#[test]
fn plot_draws_both_arms_over_time_and_by_percentile() {
    let a = MockProc::spawn(&[]);
    let b = MockProc::spawn(&["--ttft-ms", "4"]);
    let out = std::env::temp_dir().join(format!("tollgate-load-plot-{}.svg", std::process::id()));
    let cfg = args(&[
        "--target",
        &a.url,
        "--target-b",
        &b.url,
        "--duration",
        "1200ms",
        "--slice",
        "200ms",
        "--warmup",
        "100ms",
        "--plot",
        out.to_str().unwrap(),
    ])
    .resolve()
    .unwrap();
    let s = execute(&cfg).unwrap();
    assert!(s.targets.iter().all(|t| t.ok > 0));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    // Per arm: p50 and p99 over time, and the percentile curve.
    for colour in ["#2f5fd0", "#d07a1f"] {
        let lines = svg.matches(&format!("stroke=\"{colour}\"")).count();
        assert_eq!(lines, 3, "{colour}: {svg}");
    }
    assert!(svg.contains("99.99%") && svg.contains("A 127.0.0.1") && svg.contains("B 127.0.0.1"));
    // B answers 4 ms later: its curve lies above A's at the median (a larger y is lower).
    let curve = |colour: &str| -> Vec<(f64, f64)> {
        let line = svg
            .lines()
            .rfind(|l| l.starts_with("<polyline") && l.contains(colour) && !l.contains("dasharray"))
            .unwrap();
        let pts = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"/>");
        pts.split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect()
    };
    let (ca, cb) = (curve("#2f5fd0"), curve("#d07a1f"));
    assert!(
        cb[20].1 < ca[20].1,
        "B is slower at the median: {:?} vs {:?}",
        cb[20],
        ca[20]
    );
}
