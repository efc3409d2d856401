//! Metrics: `GET /metrics` on the admin listener — its access rules and formats, checked by
//! Prometheus' own `promtool` — and a real Prometheus server (Debian's `prometheus` package;
//! `.ci/run` installs it) scraping the gateway during a mixed run, whose PromQL answers must be
//! what the audit records and the mock provider's ledger say.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const ADMIN: &str = "sk-admin-metrics";

fn admin_config(public: bool) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\nmetrics_public = {public}\n",
        sha256_hex(ADMIN)
    )
}

fn scrape(admin: SocketAddr, headers: &str) -> Response {
    let req = format!("GET /metrics HTTP/1.1\r\nhost: admin\r\n{headers}\r\n");
    roundtrip(admin, req.as_bytes())
}

fn chat_as(key: &str, model: &str, stream: bool) -> Vec<u8> {
    post_with(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {key}"))],
        chat(model, stream).as_bytes(),
    )
}

/// `promtool check metrics` on a scrape's text: the format and Prometheus' naming rules.
fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every sample line's series (name and labels) is there once.
fn series_are_unique(text: &str) {
    let mut seen = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').unwrap().0;
        assert!(seen.insert(series), "{series} twice");
    }
}

#[test]
fn metrics_need_the_admin_key_unless_public_and_speak_both_formats() {
    let ledger = test_dir("metrics-ledger");
    let text = config_text(
        None,
        1,
        &format!(
            "{}[ledger]\ndir = {:?}\n",
            admin_config(false),
            ledger.to_str().unwrap()
        ),
    );
    let gw = start(&text);
    let (addr, admin) = (gw.local_addr(), gw.admin_addr().unwrap());
    let r = roundtrip(
        addr,
        &post("/v1/chat/completions", &chat("mock-chat", false)),
    );
    assert_eq!(r.status, 200);
    let r = scrape(admin, "");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = scrape(admin, "authorization: Bearer sk-test-key\r\n");
    assert_eq!(r.status, 401, "a client key is not the admin key");

    let bearer = format!("authorization: Bearer {ADMIN}\r\n");
    // Workers hand their counts over every 250 ms.
    let counted = "tollgate_requests_total{key=\"test\",team=\"\",status_class=\"2xx\"} 1\n";
    wait_for(
        || scrape(admin, &bearer).text().contains(counted),
        "the request in the metrics",
    );
    // The client's connection has closed: counted as closed, none open.
    wait_for(
        || {
            scrape(admin, &bearer)
                .text()
                .contains("tollgate_connections_open 0\n")
        },
        "the closed connection in the metrics",
    );
    let text_format = scrape(admin, &bearer);
    assert_eq!(text_format.status, 200);
    assert_eq!(
        text_format.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = text_format.text();
    promtool_accepts(&body);
    series_are_unique(&body);
    assert!(
        body.contains("# TYPE tollgate_requests_total counter\n"),
        "{body}"
    );
    assert!(!body.contains("# EOF"));
    assert!(
        body.contains("tollgate_connections_accepted_total 1\n"),
        "{body}"
    );
    assert!(
        body.contains("tollgate_tls_handshakes_total 0\n"),
        "a plain listener"
    );
    // The ledger is on: its lag is there, a number of seconds.
    let lag: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("tollgate_ledger_sync_age_seconds "))
        .expect("the ledger's lag")
        .parse()
        .unwrap();
    assert!(lag.is_finite() && lag >= 0.0);
    let om = scrape(
        admin,
        &format!("{bearer}accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n"),
    );
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = om.text();
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE tollgate_requests counter\n"), "{om}");
    assert!(
        om.contains("tollgate_requests_total{key=\"test\",team=\"\",status_class=\"2xx\"} 1\n")
    );
    // The admin routes are no more public than before.
    let r = roundtrip(
        admin,
        b"POST /metrics HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 401);
    gw.shutdown();

    // Public metrics: no key needed for them, and none configured at all is fine.
    let text = config_text(
        None,
        1,
        "[admin]\nlisten = \"127.0.0.1:0\"\nmetrics_public = true\n",
    );
    let gw = start(&text);
    let admin = gw
        .admin_addr()
        .expect("the listener runs for public metrics alone");
    let r = scrape(admin, "");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = roundtrip(admin, b"GET /admin/quotas HTTP/1.1\r\nhost: a\r\n\r\n");
    assert_eq!(r.status, 401, "only the metrics are public");
    gw.shutdown();
}

/// A Prometheus server on a free port, scraping `target` every second with the admin key.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start_prometheus(dir: &std::path::Path, target: SocketAddr) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: tollgate\n    authorization:\n      \
             credentials: {ADMIN}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let addr = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian's prometheus package; .ci/run installs it)");
    let p = Prometheus { child, addr };
    wait_for(
        || http_get(p.addr, "/-/ready").0 == 200,
        "Prometheus to be ready",
    );
    p
}

/// An HTTP/1.0 GET (no chunking, the server closes): status and body.
fn http_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let _ = write!(s, "GET {target} HTTP/1.0\r\nhost: prometheus\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// Polls `done` until it holds (at most 60 s; Prometheus scrapes every second).
fn wait_for(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// A PromQL instant query's vector, as (labels, value) pairs.
fn query(p: &Prometheus, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut q = String::new();
    for b in promql.bytes() {
        if b.is_ascii_alphanumeric() {
            q.push(b as char);
        } else {
            q.push_str(&format!("%{b:02X}"));
        }
    }
    let (status, body) = http_get(p.addr, &format!("/api/v1/query?query={q}"));
    assert_eq!(status, 200, "{promql}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{promql}: {body}"))
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            (labels, r["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect()
}

/// A query with one result (no labels asked for).
fn scalar(p: &Prometheus, promql: &str) -> f64 {
    let r = query(p, promql);
    assert_eq!(r.len(), 1, "{promql}: {r:?}");
    r[0].1
}

/// `sum by (label) (…)` as a map.
fn by(p: &Prometheus, label: &str, promql: &str) -> BTreeMap<String, f64> {
    query(p, promql)
        .into_iter()
        .map(|(l, v)| (l.get(label).cloned().unwrap_or_default(), v))
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_what_the_audit_records_and_the_provider_ledger_say() {
    let dir = test_dir("metrics-prometheus");
    let audit = dir.join("audit.log");
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let provider = format!(
        "[[providers]]\nname = \"oai\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n\
         api_key_env = \"TEST_UPSTREAM_KEY\"\n\
         [[models]]\nname = \"gpt-x\"\n[[models.deployments]]\nprovider = \"oai\"\n\
         model = \"gpt-upstream\"\nprice = {{ input = 2.5, output = 10.0 }}\n",
        mock.addr
    );
    let extra = format!(
        "[[teams]]\nname = \"research\"\n{}{}{}{provider}{}{}",
        key_entry(
            "alice",
            "sk-alice",
            "team = \"research\"\nbudget = { usd = 5.0 }"
        ),
        key_entry("bob", "sk-bob", "team = \"research\""),
        key_entry("carol", "sk-carol", "rpm = 2"),
        admin_config(false),
        audit_to(&audit)
    );
    let gw = start(&config_text(None, 2, &extra));
    let (addr, admin) = (gw.local_addr(), gw.admin_addr().unwrap());
    let prom = start_prometheus(&dir, admin);

    // A mixed run: JSON and streams through a provider and the built-in mock, a rate limit
    // that refuses, a wrong key, an unknown model.
    let sent = std::cell::Cell::new(0);
    let send = |req: Vec<u8>| {
        sent.set(sent.get() + 1);
        roundtrip(addr, &req).status
    };
    for i in 0..8 {
        assert_eq!(send(chat_as("sk-alice", "gpt-x", i % 3 == 0)), 200);
    }
    for i in 0..4 {
        assert_eq!(send(chat_as("sk-bob", "mock-chat", i % 2 == 0)), 200);
    }
    let mut refused = 0;
    for _ in 0..5 {
        refused += u64::from(send(chat_as("sk-carol", "gpt-x", false)) == 429);
    }
    assert!(refused >= 3, "rpm = 2 refused {refused} of 5");
    assert_eq!(send(chat_as("sk-nobody", "gpt-x", false)), 401);
    assert_eq!(send(chat_as("sk-alice", "no-such-model", false)), 404);
    let first = sent.get();
    wait_for(
        || {
            query(&prom, "sum(tollgate_responses_total)")
                .first()
                .map(|r| r.1)
                == Some(first as f64)
        },
        "the first phase in Prometheus",
    );
    // A second phase, so that rates have two different samples.
    for _ in 0..4 {
        assert_eq!(send(chat_as("sk-alice", "gpt-x", false)), 200);
    }
    let total = sent.get();
    wait_for(
        || {
            query(&prom, "sum(tollgate_responses_total)")
                .first()
                .map(|r| r.1)
                == Some(total as f64)
        },
        "the second phase in Prometheus",
    );

    // The books settle through their own messages: wait until the scraped budget has the
    // spend the scraped cost has.
    wait_for(
        || {
            let used = query(
                &prom,
                "tollgate_quota_used{scope=\"key:alice\",unit=\"usd\"}",
            );
            let cost = query(&prom, "sum(tollgate_cost_usd_total{key=\"alice\"})");
            matches!((used.first(), cost.first()), (Some(u), Some(c)) if (u.1 - c.1).abs() < 1e-9)
        },
        "alice's budget to show her spend",
    );

    // What Prometheus says, before the gateway stops.
    let requests = by(&prom, "key", "sum by (key) (tollgate_requests_total)");
    let cost = by(&prom, "key", "sum by (key) (tollgate_cost_usd_total)");
    let output = by(
        &prom,
        "key",
        "sum by (key) (tollgate_tokens_total{type=\"output\"})",
    );
    let team_requests = scalar(&prom, "sum(tollgate_requests_total{team=\"research\"})");
    let provider_in = scalar(
        &prom,
        "sum(tollgate_deployment_tokens_total{model=\"gpt-x\",type=\"input\"})",
    );
    let provider_out = scalar(
        &prom,
        "sum(gen_ai_client_token_usage_sum{gen_ai_request_model=\"gpt-x\",gen_ai_token_type=\"output\"})",
    );
    let calls = scalar(&prom, "sum(gen_ai_server_request_duration_seconds_count)");
    let p99 = scalar(
        &prom,
        "histogram_quantile(0.99, sum by (le) (gen_ai_server_request_duration_seconds_bucket))",
    );
    let rate = scalar(&prom, "sum(rate(tollgate_responses_total[5m]))");
    let limited = scalar(&prom, "tollgate_errors_total{kind=\"rate_limit_requests\"}");
    let wrong_key = scalar(&prom, "tollgate_errors_total{kind=\"invalid_api_key\"}");
    let budget_used = scalar(
        &prom,
        "tollgate_quota_used{scope=\"key:alice\",unit=\"usd\"}",
    );
    let up = scalar(&prom, "up{job=\"tollgate\"}");
    gw.shutdown();

    // What the audit trail and the provider say.
    let records = audit_records(&audit);
    assert_eq!(records.len(), total);
    let mut want_requests = BTreeMap::<String, f64>::new();
    let mut want_cost = BTreeMap::<String, f64>::new();
    let mut want_output = BTreeMap::<String, f64>::new();
    for r in &records {
        let Some(key) = r["key"].as_str() else {
            continue;
        };
        *want_requests.entry(key.to_owned()).or_default() += 1.0;
        if let Some(c) = r["cost_micro_usd"].as_u64() {
            *want_cost.entry(key.to_owned()).or_default() += c as f64 / 1e6;
            *want_output.entry(key.to_owned()).or_default() +=
                r["gen_ai.usage.output_tokens"].as_u64().unwrap() as f64;
        }
    }
    assert_eq!(requests, want_requests);
    assert_eq!(output, want_output);
    assert_eq!(
        cost.keys().collect::<Vec<_>>(),
        want_cost.keys().collect::<Vec<_>>()
    );
    for (k, c) in &cost {
        assert!(
            (c - want_cost[k]).abs() < 1e-9,
            "{k}: {c} vs {}",
            want_cost[k]
        );
    }
    assert_eq!(team_requests, want_requests["alice"] + want_requests["bob"]);
    let ledger = mock.ledger();
    assert_eq!(provider_in, ledger.total.prompt_tokens as f64);
    assert_eq!(provider_out, ledger.total.completion_tokens as f64);
    // Charged: the calls a provider answered (here, every 200).
    let charged = records
        .iter()
        .filter(|r| r["http.response.status_code"] == 200)
        .count();
    assert_eq!(calls, charged as f64);
    assert!(p99.is_finite() && p99 > 0.0, "p99 {p99}");
    let slowest = records
        .iter()
        .filter(|r| r["http.response.status_code"] == 200)
        .map(|r| r["duration_us"].as_u64().unwrap())
        .max()
        .unwrap() as f64
        / 1e6;
    // The p99 lies in the bucket of the slowest call, or below it.
    let bound = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12]
        .into_iter()
        .find(|&b| slowest <= b)
        .unwrap_or(f64::INFINITY);
    assert!(p99 <= bound, "p99 {p99}, slowest call {slowest} s");
    assert!(rate > 0.0);
    let status_429 = records
        .iter()
        .filter(|r| r["http.response.status_code"] == 429)
        .count();
    assert_eq!(limited, status_429 as f64);
    assert_eq!(limited, refused as f64);
    assert_eq!(wrong_key, 1.0);
    assert!((budget_used - want_cost["alice"]).abs() < 1e-9);
    assert_eq!(up, 1.0);
}

fn stats(admin: SocketAddr) -> serde_json::Value {
    let r = roundtrip(
        admin,
        format!("GET /admin/stats HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {ADMIN}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn the_stats_document_and_tollgate_top_show_what_the_audit_records_say() {
    let dir = test_dir("metrics-stats");
    let audit = dir.join("audit.log");
    let extra = format!(
        "[[teams]]\nname = \"research\"\n{}{}{}{}",
        key_entry(
            "alice",
            "sk-alice",
            "team = \"research\"\nbudget = { usd = 5.0 }"
        ),
        key_entry("bob", "sk-bob", ""),
        admin_config(false),
        audit_to(&audit)
    );
    let gw = start(&config_text(None, 2, &extra));
    let (addr, admin) = (gw.local_addr(), gw.admin_addr().unwrap());
    for _ in 0..6 {
        assert_eq!(
            roundtrip(addr, &chat_as("sk-alice", "mock-chat", false)).status,
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            roundtrip(addr, &chat_as("sk-bob", "mock-chat", true)).status,
            200
        );
    }
    assert_eq!(
        roundtrip(addr, &chat_as("sk-nobody", "mock-chat", false)).status,
        401
    );
    // The history is sampled every second: wait until its seconds hold every request.
    let mut s = stats(admin);
    wait_for(
        || {
            s = stats(admin);
            let seconds: u64 = s["per_second"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["requests"].as_u64().unwrap())
                .sum();
            seconds == 10
        },
        "the stats history to hold the run",
    );
    let top = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["top", "--once", "--admin", &admin.to_string()])
        .env("TOLLGATE_ADMIN_KEY", ADMIN)
        .output()
        .unwrap();
    let refused = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["top", "--once", "--admin", &admin.to_string()])
        .env_remove("TOLLGATE_ADMIN_KEY")
        .output()
        .unwrap();
    gw.shutdown();

    let records = audit_records(&audit);
    let cost = |key: &str| -> f64 {
        records
            .iter()
            .filter(|r| r["key"] == key)
            .filter_map(|r| r["cost_micro_usd"].as_u64())
            .sum::<u64>() as f64
            / 1e6
    };
    assert_eq!(s["totals"]["requests"], 10);
    assert_eq!(s["totals"]["errors"], 1);
    assert!(s["totals"]["p50_us"].as_f64().unwrap() > 0.0);
    let keys = s["keys"].as_array().unwrap();
    let names: Vec<&str> = keys.iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"], "by spend, most first");
    for k in keys {
        let key = k["key"].as_str().unwrap();
        let want = cost(key);
        for f in ["cost_usd", "cost_usd_hour", "cost_usd_day"] {
            assert!(
                (k[f].as_f64().unwrap() - want).abs() < 1e-9,
                "{key} {f}: {k}"
            );
        }
    }
    assert_eq!(keys[0]["team"], "research");
    assert_eq!(keys[0]["requests"], 6);
    // Today (UTC), from the history here (no ledger configured).
    assert!((keys[0]["cost_usd_today"].as_f64().unwrap() - cost("alice")).abs() < 1e-9);
    let teams = s["teams"].as_array().unwrap();
    assert_eq!(teams.len(), 1, "bob has no team");
    assert_eq!(
        (teams[0]["team"].as_str(), teams[0]["requests"].as_u64()),
        (Some("research"), Some(6))
    );
    assert!((teams[0]["cost_usd_hour"].as_f64().unwrap() - cost("alice")).abs() < 1e-9);
    let budget = s["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["scope"] == "key:alice")
        .unwrap();
    assert!((budget["used"].as_f64().unwrap() - cost("alice")).abs() < 1e-9);
    assert_eq!(budget["cap"], 5.0);
    // A monthly budget (the default period) starts over on the 1st.
    let resets = budget["resets"].as_str().unwrap();
    assert!(resets.len() == 10 && resets.ends_with("-01"), "{resets}");
    // Per model and deployment: the last hour's spend is everything spent.
    let model = &s["models"][0];
    assert_eq!(model["model"], "mock-chat");
    let all = cost("alice") + cost("bob");
    for f in ["cost_usd", "cost_usd_hour", "cost_usd_day"] {
        assert!(
            (model[f].as_f64().unwrap() - all).abs() < 1e-9,
            "{f}: {model}"
        );
    }
    let deployments = s["deployments"].as_array().unwrap();
    assert_eq!(deployments[0]["state"], "healthy");
    assert_eq!(deployments[0]["requests"], 9);

    let frame = String::from_utf8_lossy(&top.stdout);
    assert!(
        top.status.success(),
        "{frame}{}",
        String::from_utf8_lossy(&top.stderr)
    );
    for want in [
        "since start: 10 requests, 1 errors",
        "alice",
        "research",
        "key:alice/usd",
        "healthy",
    ] {
        assert!(frame.contains(want), "{want} not in:\n{frame}");
    }
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}

#[test]
fn keys_past_the_label_cap_are_counted_as_other() {
    let extra = format!(
        "{}{}{}metrics_max_keys = 1\n",
        key_entry("second", "sk-second", ""),
        key_entry("third", "sk-third", ""),
        admin_config(false)
    );
    let gw = start(&config_text(None, 1, &extra));
    let (addr, admin) = (gw.local_addr(), gw.admin_addr().unwrap());
    for key in [KEY, "sk-second", "sk-third"] {
        assert_eq!(
            roundtrip(addr, &chat_as(key, "mock-chat", false)).status,
            200
        );
    }
    let bearer = format!("authorization: Bearer {ADMIN}\r\n");
    // The first key in config order keeps its id; the two past the cap share `other`.
    let own = "tollgate_requests_total{key=\"test\",team=\"\",status_class=\"2xx\"} 1\n";
    let other = "tollgate_requests_total{key=\"other\",team=\"\",status_class=\"2xx\"} 2\n";
    wait_for(
        || {
            let t = scrape(admin, &bearer).text();
            t.contains(own) && t.contains(other)
        },
        "the capped key labels",
    );
    let t = scrape(admin, &bearer).text();
    assert!(
        !t.contains("key=\"second\"") && !t.contains("key=\"third\""),
        "{t}"
    );
    gw.shutdown();
}
