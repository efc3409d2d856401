//! `[cluster]`: several gateway instances sharing budgets, rate limits and circuits through a
//! real `redis-server` (installed by `.ci/run`), started here on a free port.
//!
//! Every instance runs in this process with its own coordinator, workers and admin API, as
//! separate processes would; what they share is only Redis.

#![allow(
    clippy::disallowed_types,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::*;

/// A real Redis on a free port, persisting every write (`appendfsync always`), so a kill and
/// a restart lose nothing it acknowledged.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(name: &str) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis {
            child: None,
            port,
            dir: test_dir(name),
        };
        r.spawn();
        r
    }

    /// Starts the server and returns once it says it accepts connections.
    fn spawn(&mut self) {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                self.dir.to_str().unwrap(),
                "--daemonize",
                "no",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package; .ci/run installs it)");
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut log = Vec::new();
        for line in out.lines() {
            let line = line.unwrap();
            let ready = line.contains("Ready to accept connections");
            log.push(line);
            if ready {
                break;
            }
        }
        assert!(
            log.last().is_some_and(|l| l.contains("Ready")),
            "redis did not start: {log:?}"
        );
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap()
    }

    /// A hash's fields as numbers.
    fn hash(&self, key: &str) -> std::collections::HashMap<String, i64> {
        let mut c = self.conn();
        let v: std::collections::HashMap<String, String> =
            redis::cmd("HGETALL").arg(key).query(&mut c).unwrap();
        v.into_iter()
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

const ADMIN: &str = "sk-admin-secret";

/// An instance's config: `extra` (keys, limits) and the cluster table.
fn instance(
    redis: &Redis,
    name: &str,
    upstream: SocketAddr,
    workers: usize,
    extra: &str,
) -> String {
    config_text(
        Some(upstream),
        workers,
        &format!(
            "{extra}[admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n\
             [quotas]\nlease_wait_ms = 5000\n\
             [cluster]\nredis = \"{}\"\ninstance = \"{name}\"\n",
            sha256_hex(ADMIN),
            redis.url()
        ),
    )
}

fn admin(addr: SocketAddr, path: &str) -> Response {
    roundtrip(
        addr,
        format!("GET {path} HTTP/1.1\r\nhost: a\r\nauthorization: Bearer {ADMIN}\r\n\r\n")
            .as_bytes(),
    )
}

fn request(secret: &str, max_tokens: u32, stream: bool) -> Vec<u8> {
    post_with(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {secret}"))],
        format!(
            r#"{{"model":"up-chat","max_tokens":{max_tokens},"stream":{stream},"messages":[{{"role":"user","content":"hello there"}}]}}"#
        )
        .as_bytes(),
    )
}

/// (cost µ$, underestimate µ$, requests) of one key in an audit file.
fn audit_cost(path: &Path, key: &str) -> (u64, u64, u64) {
    let mut out = (0, 0, 0);
    for r in audit_records(path) {
        if r["key"] != key {
            continue;
        }
        let cost = r["cost_micro_usd"].as_u64().unwrap_or(0);
        let est = r["reserved_micro_usd"].as_u64().unwrap_or(0);
        out.0 += cost;
        out.1 += cost.saturating_sub(est);
        out.2 += 1;
    }
    out
}

/// Three instances race one key's daily budget with concurrent clients (plain and streamed
/// calls of different sizes) until every instance refuses it for the day. The total spend ends
/// within the cap plus the estimation error of the admitted calls (`policy::shared`: no
/// instance died, so that is the whole bound); the provider billed exactly what the three
/// ledgers hold together; Redis's day total equals it to the micro-dollar; and the admin API
/// shows the global figures beside the local ones.
#[test]
fn three_instances_racing_one_budget_stay_within_the_bound() {
    let redis = Redis::start("cluster-race");
    let mock = start_mock(|_| {});
    let cap = 20_000; // $0.02
    let key = key_entry(
        "racer",
        "sk-racer",
        "budget = { usd = 0.02, period = \"daily\" }",
    );
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| test_dir(&format!("cluster-race-{i}")))
        .collect();
    let gws: Vec<_> = (0..3)
        .map(|i| {
            let extra = format!("{key}{}", audit_to(&dirs[i].join("audit.log")));
            start(&instance(&redis, &format!("i{i}"), mock.addr, 2, &extra))
        })
        .collect();
    let threads: Vec<_> = (0..18)
        .map(|t| {
            let addr = gws[t % 3].local_addr();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut served = 0u64;
                let mut short = 0;
                for i in 0.. {
                    let max_tokens = 4 + ((t * 7 + i * 13) % 60) as u32;
                    c.send(&request("sk-racer", max_tokens, (t + i) % 2 == 0));
                    let r = c.response();
                    if r.status == 429 {
                        assert_eq!(r.error_code(), "insufficient_quota", "{}", r.text());
                        // A short retry: other instances hold leases they may give back.
                        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                        // Bounded: a budget that never reads as spent fails below, not here.
                        short += 1;
                        if retry > 1 || short > 3_000 {
                            return served;
                        }
                        continue;
                    }
                    short = 0;
                    assert_eq!(r.status, 200, "{}", r.text());
                    served += 1;
                }
                unreachable!()
            })
        })
        .collect();
    let served: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // The global view before shutdown.
    let state = admin(gws[0].admin_addr().unwrap(), "/admin/quotas").json();
    let q = state["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "key:racer/usd")
        .unwrap()
        .clone();
    assert!(q["global"]["spent"].as_i64().unwrap() > 0, "{q}");
    assert!(q["instance_lease"].is_i64(), "{q}");
    // Every instance's spend today, as Redis said at this instance's last flush: at least
    // this instance's own.
    let shared_seen = state["shared_spend_today"]["key:racer"]["cost_micro_usd"]
        .as_u64()
        .unwrap_or_else(|| panic!("{state}"));
    assert!(
        shared_seen >= state["spend"]["racer"]["cost_micro_usd"].as_u64().unwrap(),
        "{state}"
    );
    let mut ledger = (0, 0);
    for gw in gws {
        let p = gw.shutdown();
        assert!(p.quotas.iter().all(|b| b.reserved == 0), "{:?}", p.quotas);
        let s = &p.spend["racer"];
        ledger.0 += s.requests;
        ledger.1 += s.input_tokens + s.output_tokens;
    }
    let (mut spent, mut under) = (0, 0);
    for d in &dirs {
        let (c, u, _) = audit_cost(&d.join("audit.log"), "racer");
        spent += c;
        under += u;
    }
    eprintln!(
        "3 instances: {served} served, spent {spent} µ$ of {cap}, overshoot {} µ$, bound {under} µ$",
        spent.saturating_sub(cap)
    );
    assert!(served > 100, "the budget allowed real use: {served}");
    assert!(
        spent <= cap + under,
        "spent {spent} > cap {cap} + the estimation error of admitted calls {under}"
    );
    assert!(
        spent >= cap * 9 / 10,
        "leases stranded budget: only {spent} of {cap} could be spent"
    );
    let billed = mock.ledger().total;
    assert_eq!(
        ledger,
        (
            billed.billed,
            billed.prompt_tokens + billed.completion_tokens
        ),
        "the provider billed what the three ledgers hold"
    );
    let day = SystemTime_day();
    let shared = redis.hash(&format!("tollgate:spend:key:racer:{day}"));
    assert_eq!(shared["cost_micro_usd"] as u64, spent, "{shared:?}");
    assert!(shared_seen <= spent);
    assert_eq!(shared["requests"] as u64, ledger.0, "{shared:?}");
    let q = redis.hash(&format!("tollgate:q:key:racer/usd@{day}"));
    assert_eq!(q["spent"] as u64, spent, "{q:?}");
}

#[allow(non_snake_case, reason = "reads as the clock it is")]
fn SystemTime_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400
}

/// Three instances, one key limited to 600 requests a minute, clients asking three times that
/// for a minute: the instances together admit no more than the bucket allows — its cap at once,
/// then `cap` per minute (Redis's clock) — and not much less.
#[test]
fn a_requests_per_minute_limit_holds_across_three_instances() {
    let redis = Redis::start("cluster-rpm");
    let mock = start_mock(|_| {});
    let key = key_entry("rated", "sk-rated", "rpm = 600");
    let gws: Vec<_> = (0..3)
        .map(|i| start(&instance(&redis, &format!("r{i}"), mock.addr, 1, &key)))
        .collect();
    let admitted = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run = Duration::from_secs(60);
    // 1800 a minute: 30 a second, 10 per instance, paced by each client's own schedule.
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let addr = gws[t].local_addr();
            let admitted = admitted.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut refused = 0;
                for i in 0u32.. {
                    let due = started + Duration::from_millis(u64::from(i) * 100);
                    if due >= started + run {
                        return refused;
                    }
                    // Pacing the load (not waiting for readiness): the schedule is the test.
                    while Instant::now() < due {
                        std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
                    }
                    c.send(&request("sk-rated", 5, false));
                    let r = c.response();
                    match r.status {
                        200 => {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                        429 => {
                            assert_eq!(r.error_code(), "rate_limit_exceeded", "{}", r.text());
                            refused += 1;
                        }
                        s => panic!("{s}: {}", r.text()),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    let refused: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::Relaxed);
    let bound = 600.0 * (1.0 + elapsed / 60.0);
    eprintln!(
        "rpm 600 × 3 instances for {elapsed:.1} s: {admitted} admitted (bound {bound:.0}), \
         {refused} refused"
    );
    assert!(
        (admitted as f64) <= bound,
        "{admitted} admitted > {bound:.0}"
    );
    assert!(
        admitted as f64 >= bound * 0.8,
        "only {admitted} of {bound:.0} could be admitted"
    );
    assert!(refused > 0);
    for gw in gws {
        gw.shutdown();
    }
}

/// Polls `/metrics` of `addr` until `line` is there.
fn wait_metric(addr: SocketAddr, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = admin(addr, "/metrics").text();
        if m.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "never `{line}`:\n{m}");
        std::thread::yield_now();
    }
}

/// Fail-open: Redis killed under load; both instances keep serving on their local shares; Redis
/// restarted (its append-only file kept what it acknowledged); the spend settled meanwhile is
/// flushed: Redis's day total equals both ledgers' together, which equal what the provider
/// billed. No request hung.
#[test]
fn failing_open_keeps_serving_and_reconciles_when_redis_returns() {
    let mut redis = Redis::start("cluster-open");
    let mock = start_mock(|_| {});
    let key = key_entry(
        "open",
        "sk-open",
        "budget = { usd = 100.0, period = \"daily\" }\nrpm = 100000",
    );
    let gws: Vec<_> = (0..2)
        .map(|i| start(&instance(&redis, &format!("o{i}"), mock.addr, 1, &key)))
        .collect();
    let admins: Vec<SocketAddr> = gws.iter().map(|g| g.admin_addr().unwrap()).collect();
    for a in &admins {
        wait_metric(*a, "tollgate_cluster_up 1");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = gws
        .iter()
        .map(|g| {
            let (addr, stop, served) = (g.local_addr(), stop.clone(), served.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    c.send(&request("sk-open", 8, false));
                    let r = c.response();
                    assert_eq!(r.status, 200, "failing open serves: {}", r.text());
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let until = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while served.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "traffic stalled");
            std::thread::yield_now();
        }
    };
    until(200);
    redis.kill();
    for a in &admins {
        wait_metric(*a, "tollgate_cluster_up 0");
    }
    let at_kill = served.load(Ordering::Relaxed);
    until(at_kill + 300);
    redis.spawn();
    for a in &admins {
        wait_metric(*a, "tollgate_cluster_up 1");
    }
    let at_return = served.load(Ordering::Relaxed);
    until(at_return + 100);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let mut ledger = (0, 0);
    for gw in gws {
        let p = gw.shutdown();
        let s = &p.spend["open"];
        ledger.0 += s.requests;
        ledger.1 += s.cost_micro_usd;
    }
    let billed = mock.ledger().total.billed;
    assert_eq!(
        ledger.0, billed,
        "the ledgers hold what the provider billed"
    );
    let shared = redis.hash(&format!("tollgate:spend:key:open:{}", SystemTime_day()));
    assert_eq!(
        (shared["requests"] as u64, shared["cost_micro_usd"] as u64),
        ledger,
        "redis holds every instance's spend, the outage's included"
    );
    let q = redis.hash(&format!("tollgate:q:key:open/usd@{}", SystemTime_day()));
    assert_eq!(q["spent"] as u64, ledger.1, "{q:?}");
}

/// Fail-closed: with Redis gone, a request that needs allowance the instance does not hold
/// gets a 503 after `lease_wait_ms` (none hangs); when Redis returns, requests are served
/// again.
#[test]
fn failing_closed_answers_503_and_recovers() {
    let mut redis = Redis::start("cluster-closed");
    let mock = start_mock(|_| {});
    let key = key_entry("closed", "sk-closed", "rpm = 100000");
    let text = instance(&redis, "c0", mock.addr, 1, &key)
        .replace("[cluster]\n", "[cluster]\nfail = \"closed\"\n")
        .replace("lease_wait_ms = 5000", "lease_wait_ms = 100");
    let gw = start(&text);
    let (addr, a) = (gw.local_addr(), gw.admin_addr().unwrap());
    let mut c = Client::connect(addr);
    for _ in 0..20 {
        c.send(&request("sk-closed", 8, false));
        assert_eq!(c.response().status, 200);
    }
    redis.kill();
    wait_metric(a, "tollgate_cluster_up 0");
    // What the instance still holds leased is spent; then every request gets 503s.
    let mut saw = None;
    for i in 0..100_000 {
        c.send(&request("sk-closed", 8, false));
        let r = c.response();
        if r.status == 503 {
            assert!(r.text().contains("could not confirm"), "{}", r.text());
            saw = Some(i);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(saw.is_some(), "no 503 while redis was down");
    for _ in 0..5 {
        c.send(&request("sk-closed", 8, false));
        assert_eq!(c.response().status, 503);
    }
    redis.spawn();
    wait_metric(a, "tollgate_cluster_up 1");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        c.send(&request("sk-closed", 8, false));
        let r = c.response();
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        assert!(Instant::now() < deadline, "never recovered");
    }
    gw.shutdown();
}

/// A circuit opened on one instance is published; the other instance skips the dead
/// deployment without having sent it a request.
#[test]
fn a_circuit_opened_on_one_instance_is_skipped_by_the_others() {
    let redis = Redis::start("cluster-health");
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let fine = start_mock(|_| {});
    let mut routed = String::new();
    for (i, a) in [dead, fine.addr].iter().enumerate() {
        routed.push_str(&format!(
            "[[providers]]\nname = \"p{i}\"\nkind = \"openai_compatible\"\n\
             base_url = \"http://{a}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n"
        ));
    }
    routed.push_str("[[models]]\nname = \"m\"\n");
    for i in 0..2 {
        routed.push_str(&format!(
            "[[models.deployments]]\nprovider = \"p{i}\"\nmodel = \"up-model\"\nprice = \"free\"\n"
        ));
    }
    routed.push_str("[routing]\nbreaker_failures = 1\ncooldown_ms = 60000\n");
    let gws: Vec<_> = (0..2)
        .map(|i| start(&instance(&redis, &format!("h{i}"), fine.addr, 1, &routed)))
        .collect();
    let r = roundtrip(
        gws[0].local_addr(),
        &post("/v1/chat/completions", &chat("m", false)),
    );
    assert_eq!(r.header("x-tollgate-deployment"), Some("m#1"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = admin(gws[1].admin_addr().unwrap(), "/admin/deployments").json();
        let d0 = v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "m#0")
            .unwrap()
            .clone();
        if d0["state"] == "cooling_down" {
            assert_eq!(d0["failures"], 0, "instance 1 never called it: {d0}");
            break;
        }
        assert!(Instant::now() < deadline, "never shared: {v}");
        std::thread::yield_now();
    }
    // Instance 1's first request goes straight to the healthy deployment.
    let r = roundtrip(
        gws[1].local_addr(),
        &post("/v1/chat/completions", &chat("m", false)),
    );
    assert_eq!(r.header("x-tollgate-deployment"), Some("m#1"));
    assert_eq!(
        r.header("x-tollgate-attempts"),
        Some("1"),
        "no failed attempt first"
    );
    for gw in gws {
        gw.shutdown();
    }
}

/// Mistakes in `[cluster]` are refused naming the field; the password comes from the
/// environment and never shows in the config's debug output.
#[test]
fn bad_cluster_settings_are_refused_naming_the_field() {
    let base = config_text(None, 1, "");
    let cases = [
        ("redis = \"localhost:6379\"", "cluster.redis", "not a URL"),
        ("redis = \"http://h:1\"", "cluster.redis", "scheme"),
        (
            "redis = \"redis://u:pw@h:1/0\"",
            "cluster.redis",
            "password_env",
        ),
        (
            "redis = \"redis://h:1/0\"\npassword_env = \"NOPE\"",
            "cluster.password_env",
            "not set",
        ),
        (
            "redis = \"redis://h:1/0\"\nfail = \"maybe\"",
            "cluster.fail",
            "open",
        ),
        (
            "redis = \"redis://h:1/0\"\nflush_ms = 1000\ninstance_ttl_ms = 2000",
            "cluster.instance_ttl_ms",
            "four flush",
        ),
    ];
    for (extra, path, what) in cases {
        let err =
            tollgate::config::parse(&format!("{base}[cluster]\n{extra}\n"), "test", &|_| None)
                .err()
                .unwrap_or_else(|| panic!("accepted: {extra}"))
                .to_string();
        assert!(err.contains(path) && err.contains(what), "{extra}: {err}");
    }
    let ok = tollgate::config::parse(
        &format!(
            "{base}[cluster]\nredis = \"rediss://cache.internal:6380/2\"\nusername = \"gw\"\n\
             password_env = \"RPW\"\n"
        ),
        "test",
        &|v| (v == "RPW").then(|| "p@ss word".to_string()),
    )
    .unwrap();
    let c = ok.cluster.as_ref().unwrap();
    assert_eq!(c.url, "rediss://gw:p%40ss%20word@cache.internal:6380/2");
    assert!(!format!("{c:?}").contains("word"), "{c:?}");
}

/// `[cluster] cache = true`: an answer filled on one instance is served by another from Redis
/// (the provider is called once), in the other form too (a stream from a JSON fill), and is
/// then held in that instance's own cache; the audit record says where the hit came from.
#[test]
fn a_cache_entry_filled_on_one_instance_is_a_hit_on_another() {
    let redis = Redis::start("cluster-cache");
    let mock = start_mock(|_| {});
    let model = "[[models]]\nname = \"cached\"\ncache = { ttl = \"1h\", scope = \"global\" }\n\
                 [[models.deployments]]\nprovider = \"up\"\nmodel = \"up-model\"\n";
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| test_dir(&format!("cluster-cache-{i}")))
        .collect();
    let gws: Vec<_> = (0..2)
        .map(|i| {
            let extra = format!("{model}{}", audit_to(&dirs[i].join("audit.log")));
            start(
                &instance(&redis, &format!("k{i}"), mock.addr, 2, &extra)
                    .replace("[cluster]\n", "[cluster]\ncache = true\n"),
            )
        })
        .collect();
    let ask = |gw: &tollgate::runtime::Gateway, stream: bool| {
        roundtrip(
            gw.local_addr(),
            &post(
                "/v1/chat/completions",
                &format!(
                    r#"{{"model":"cached","stream":{stream},"max_tokens":12,"messages":[{{"role":"user","content":"shared?"}}]}}"#
                ),
            ),
        )
    };
    let first = ask(&gws[0], false);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-tollgate-cache"), Some("miss"));
    let text = first.json()["choices"][0]["message"]["content"].clone();
    assert_eq!(mock.ledger().total.requests, 1);
    // The fill reaches Redis with instance 0's next flush.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("tollgate:cache:*")
            .query(&mut redis.conn())
            .unwrap();
        if keys.len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never stored: {keys:?}");
        std::thread::yield_now();
    }
    let hit = ask(&gws[1], false);
    assert_eq!(
        hit.header("x-tollgate-cache"),
        Some("hit"),
        "{}",
        hit.text()
    );
    assert_eq!(hit.json()["choices"][0]["message"]["content"], text);
    let streamed = ask(&gws[1], true);
    assert_eq!(streamed.header("x-tollgate-cache"), Some("hit"));
    assert!(
        streamed.text().contains("data: [DONE]"),
        "{}",
        streamed.text()
    );
    assert_eq!(
        mock.ledger().total.requests,
        1,
        "the provider was called once"
    );
    for gw in gws {
        gw.shutdown();
    }
    let records = audit_records(&dirs[1].join("audit.log"));
    assert_eq!(records.len(), 2);
    assert_eq!(
        records.iter().filter(|r| r["cache_shared"] == true).count(),
        1,
        "the first hit came from redis, the second from the instance's own cache: {records:?}"
    );
}

/// Fail-open holds a budget: two instances (`instances = 2`) share a $0.01 daily budget;
/// Redis is killed after a first call on each, and both are driven until they refuse. Each
/// spent only its lease and its half of what was free, so together they stay within the cap
/// plus the estimation error of the calls they admitted; Redis back, its totals equal the
/// ledgers.
#[test]
fn failing_open_spends_only_the_shares() {
    let mut redis = Redis::start("cluster-shares");
    let mock = start_mock(|_| {});
    let cap = 10_000;
    let key = key_entry(
        "shared",
        "sk-shared",
        "budget = { usd = 0.01, period = \"daily\" }",
    );
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| test_dir(&format!("cluster-shares-{i}")))
        .collect();
    let gws: Vec<_> = (0..2)
        .map(|i| {
            let extra = format!("{key}{}", audit_to(&dirs[i].join("audit.log")));
            start(
                &instance(&redis, &format!("s{i}"), mock.addr, 1, &extra)
                    .replace("[cluster]\n", "[cluster]\ninstances = 2\n"),
            )
        })
        .collect();
    for gw in &gws {
        let r = roundtrip(gw.local_addr(), &request("sk-shared", 8, false));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    redis.kill();
    for gw in &gws {
        wait_metric(gw.admin_addr().unwrap(), "tollgate_cluster_failing_open 1");
    }
    let threads: Vec<_> = gws
        .iter()
        .map(|gw| {
            let addr = gw.local_addr();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut served = 0u64;
                loop {
                    c.send(&request("sk-shared", 8, served.is_multiple_of(2)));
                    let r = c.response();
                    if r.status == 429 {
                        assert_eq!(r.error_code(), "insufficient_quota", "{}", r.text());
                        return served;
                    }
                    assert_eq!(r.status, 200, "{}", r.text());
                    served += 1;
                }
            })
        })
        .collect();
    let served: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    redis.spawn();
    for gw in &gws {
        wait_metric(gw.admin_addr().unwrap(), "tollgate_cluster_up 1");
    }
    for gw in gws {
        gw.shutdown();
    }
    let (mut spent, mut under) = (0, 0);
    for d in &dirs {
        let (c, u, _) = audit_cost(&d.join("audit.log"), "shared");
        spent += c;
        under += u;
    }
    eprintln!(
        "fail-open shares: {served} served during the outage, spent {spent} µ$ of {cap}, bound {}",
        cap + under
    );
    assert!(served > 10, "the shares allowed real use: {served}");
    assert!(
        spent <= cap + under,
        "spent {spent} > cap {cap} + the estimation error of admitted calls {under}"
    );
    let shared = redis.hash(&format!("tollgate:spend:key:shared:{}", SystemTime_day()));
    assert_eq!(shared["cost_micro_usd"] as u64, spent, "{shared:?}");
}
