//! Budgets and rate limits, enforced by the real gateway (several workers) in front of the real
//! mock provider: caps hold under concurrency, the overshoot stays within its documented
//! bound, every exit settles or releases what admission reserved, and refusals look like
//! OpenAI's.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::time::{Duration, Instant};

use std::net::SocketAddr;
use support::*;

fn request(secret: &str, body: &str, fault: Option<&str>) -> Vec<u8> {
    let auth = format!("Bearer {secret}");
    let mut h = vec![("authorization", auth.as_str())];
    if let Some(f) = fault {
        h.push(("x-mock-fault", f));
    }
    post_with("/v1/chat/completions", &h, body.as_bytes())
}

fn body(model: &str, stream: bool, max_tokens: u32) -> String {
    format!(
        r#"{{"model":"{model}","stream":{stream},"max_tokens":{max_tokens},"messages":[{{"role":"user","content":"count to ten"}}]}}"#
    )
}

/// A call to the admin API with the admin key.
fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer {ADMIN}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    roundtrip(addr, req.as_bytes())
}

const ADMIN: &str = "sk-admin-secret";

fn admin_config() -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n",
        sha256_hex(ADMIN)
    )
}

fn quota(state: &serde_json::Value, name: &str) -> serde_json::Value {
    state["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("no quota {name} in {state}"))
        .clone()
}

fn cost_of(records: &[serde_json::Value], key: &str) -> (u64, u64, u64) {
    let mut cost = 0;
    let mut tokens = 0;
    let mut over = 0;
    for r in records.iter().filter(|r| r["key"] == key) {
        let c = r["cost_micro_usd"].as_u64().unwrap();
        let reserved = r["reserved_micro_usd"].as_u64().unwrap();
        cost += c + r["abandoned_cost_micro_usd"].as_u64().unwrap();
        tokens += r["gen_ai.usage.input_tokens"].as_u64().unwrap()
            + r["gen_ai.usage.output_tokens"].as_u64().unwrap()
            + r["abandoned_tokens"].as_u64().unwrap();
        over += c.saturating_sub(reserved);
    }
    (cost, tokens, over)
}

/// Sixteen clients on four connections each race one USD budget across two workers, with
/// streamed and plain requests of different sizes, until every one of them is refused. The
/// spend ends within the cap plus the estimation error of admitted calls (ARCHITECTURE.md, "Money"), the
/// coordinator's book agrees with the audit trail to the micro-dollar, and nothing stays
/// reserved.
#[test]
fn a_budget_holds_when_many_clients_race_it_across_workers() {
    let dir = test_dir("budget-race");
    let audit = dir.join("audit.log");
    let mock = start_mock(|_| {});
    let cap = 20_000; // $0.02
    let extra = format!(
        "{}{}",
        key_entry(
            "racer",
            "sk-racer",
            "budget = { usd = 0.02, period = \"daily\" }"
        ),
        audit_to(&audit)
    );
    let gw = start(&config_text(Some(mock.addr), 2, &extra));
    let addr = gw.local_addr();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for (served, i) in (0..).enumerate() {
                    let max_tokens = 4 + ((t * 7 + i * 13) % 60) as u32;
                    c.send(&request(
                        "sk-racer",
                        &body("up-chat", (t + i) % 2 == 0, max_tokens),
                        None,
                    ));
                    let r = c.response();
                    if r.status == 429 {
                        assert_eq!(r.error_code(), "insufficient_quota", "{}", r.text());
                        assert_eq!(r.json()["error"]["type"], "insufficient_quota");
                        let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                        assert!((1..=86_400).contains(&retry), "a daily budget: {retry}");
                        return served as u64;
                    }
                    assert_eq!(r.status, 200, "{}", r.text());
                    if i % 25 == 24 {
                        c = Client::connect(addr);
                    }
                }
                unreachable!()
            })
        })
        .collect();
    let served: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let b = gw.shutdown().quotas;
    assert!(b.iter().all(|b| b.reserved == 0), "{b:?}");
    let usd = b
        .iter()
        .find(|b| b.name == "key:racer/usd")
        .unwrap()
        .clone();
    let records = audit_records(&audit);
    let (spent, _, underestimate) = cost_of(&records, "racer");
    eprintln!(
        "budget race: {served} served, spent {spent} µ$ of {cap}, overshoot {} µ$, bound {underestimate} µ$",
        spent.saturating_sub(cap)
    );
    assert!(served > 100, "the budget allowed real use: {served}");
    assert!(
        spent <= cap + underestimate,
        "spent {spent} > cap {cap} + the estimation error of admitted calls {underestimate}"
    );
    assert_eq!(
        usd.spent as u64, spent,
        "the coordinator's book = the audit trail"
    );
    assert!(
        spent >= cap * 9 / 10,
        "leases stranded budget: only {spent} of {cap} could be spent"
    );
}

/// One keep-alive connection on one of two workers gets the whole requests-per-minute limit,
/// then OpenAI's 429 with its headers.
#[test]
fn a_single_connection_reaches_the_full_rpm() {
    let extra = key_entry("one", "sk-one", "rpm = 40");
    let gw = start(&config_text(None, 2, &extra));
    let mut c = Client::connect(gw.local_addr());
    let started = Instant::now();
    let mut ok = 0u64;
    let refused = loop {
        c.send(&request("sk-one", &body("mock-chat", false, 4), None));
        let r = c.response();
        if r.status != 200 {
            break r;
        }
        assert_eq!(r.header("x-ratelimit-limit-requests"), Some("40"));
        ok += 1;
        assert!(ok < 1000, "the limit never applied");
    };
    let elapsed = started.elapsed().as_secs_f64();
    // The bucket refills 40 per minute while the test runs.
    let refill = (elapsed * 40.0 / 60.0).ceil() as u64;
    assert!(
        (40..=40 + refill).contains(&ok),
        "{ok} admitted in {elapsed:.2} s"
    );
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.error_code(), "rate_limit_exceeded");
    assert_eq!(refused.json()["error"]["type"], "requests");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=2).contains(&retry),
        "one request drains in 1.5 s: {retry}"
    );
    assert!(refused.header("retry-after-ms").is_some());
    assert_eq!(refused.header("x-ratelimit-limit-requests"), Some("40"));
    assert_eq!(refused.header("x-ratelimit-remaining-requests"), Some("0"));
    assert!(refused.header("x-ratelimit-reset-requests").is_some());
    gw.shutdown();
}

/// A team's limit applies over its keys' own (larger) limits, across keys and workers.
#[test]
fn a_team_limit_caps_its_keys_together() {
    let extra = format!(
        "[[teams]]\nname = \"ml\"\nrpm = 12\n{}{}",
        key_entry("a", "sk-a", "team = \"ml\"\nrpm = 100"),
        key_entry("b", "sk-b", "team = \"ml\"\nrpm = 100"),
    );
    let gw = start(&config_text(None, 2, &extra));
    let addr = gw.local_addr();
    let started = Instant::now();
    let mut ok = 0u64;
    for i in 0..40 {
        let secret = if i % 2 == 0 { "sk-a" } else { "sk-b" };
        let r = roundtrip(addr, &request(secret, &body("mock-chat", false, 4), None));
        match r.status {
            200 => ok += 1,
            429 => assert!(r.text().contains("team:ml"), "{}", r.text()),
            s => panic!("{s}: {}", r.text()),
        }
    }
    let refill = (started.elapsed().as_secs_f64() * 12.0 / 60.0).ceil() as u64;
    assert!((12..=12 + refill).contains(&ok), "{ok} admitted");
    // The keys' own limits saw only what the team let through.
    let b = gw.shutdown().quotas;
    let spent = |name: &str| b.iter().find(|b| b.name == name).unwrap().consumed;
    assert_eq!(
        spent("key:a/rpm") + spent("key:b/rpm"),
        spent("team:ml/rpm")
    );
    assert_eq!(spent("team:ml/rpm"), ok as i64);
}

/// Every way a request can end gives back or settles what admission reserved: success (plain
/// and streamed), provider error, upstream reset before the head, upstream timeout, client
/// gone mid-stream, unreachable provider. Afterwards nothing is reserved, and the books equal
/// the audit trail: USD to the micro-dollar, tokens to the token.
#[test]
fn every_exit_settles_or_releases_its_reservation() {
    let dir = test_dir("budget-exits");
    let audit = dir.join("audit.log");
    let mock = start_mock(|_| {});
    // A provider nobody listens on (the port was bound and released).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let extra = format!(
        "{}{}[upstream]\nhead_timeout_ms = 300\nbody_idle_timeout_ms = 300\n\
         [routing]\nmax_attempts = 1\nbreaker_failures = 1000\n\
         [[providers]]\nname = \"dead\"\nkind = \"openai_compatible\"\n\
         base_url = \"http://{dead}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n\
         [[models]]\nname = \"dead-chat\"\n[[models.deployments]]\nprovider = \"dead\"\n\
         price = \"free\"\nrpm = 1000\n",
        key_entry(
            "exits",
            "sk-exits",
            "budget = { usd = 100.0, tokens = 100000000 }\nrpm = 1000\ntpm = 1000000"
        ),
        audit_to(&audit)
    );
    let gw = start(&config_text(Some(mock.addr), 2, &extra));
    let addr = gw.local_addr();
    let send = |body: &str, fault: Option<&str>| roundtrip(addr, &request("sk-exits", body, fault));
    assert_eq!(send(&body("up-chat", false, 8), None).status, 200);
    assert_eq!(send(&body("up-chat", true, 8), None).status, 200);
    assert_eq!(
        send(&body("up-chat", false, 8), Some("status=500")).status,
        500
    );
    assert_eq!(send(&body("up-chat", false, 8), Some("reset")).status, 502);
    assert_eq!(
        send(&body("up-chat", false, 8), Some("stall=5000")).status,
        504
    );
    let r = send(&body("up-chat", true, 8), Some("stall=5000,stall-after=1"));
    assert!(r.text().contains("upstream_timeout"), "{}", r.text());
    assert_eq!(send(&body("dead-chat", false, 8), None).status, 502);
    // A client that leaves mid-stream.
    let mut c = Client::connect(addr);
    c.send(&post_with(
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer sk-exits"),
            ("x-mock-itl-ms", "20"),
        ],
        body("up-chat", true, 200).as_bytes(),
    ));
    c.read_until(b"data: ");
    drop(c);
    let b = gw.shutdown().quotas;
    assert!(b.iter().all(|b| b.reserved == 0), "{b:?}");
    let records = audit_records(&audit);
    assert_eq!(records.len(), 8, "one record per request");
    let (cost, tokens, _) = cost_of(&records, "exits");
    let get = |name: &str| b.iter().find(|b| b.name == name).unwrap().clone();
    assert_eq!(get("key:exits/usd").spent as u64, cost);
    assert_eq!(get("key:exits/tokens").spent as u64, tokens);
    assert_eq!(get("key:exits/tpm").consumed as u64, tokens);
    // Requests that reached a provider count against the RPM limits; the rest were released.
    let sent = records
        .iter()
        .filter(|r| r["attempts"].as_u64() > Some(0))
        .count() as i64;
    assert_eq!(get("key:exits/rpm").consumed, sent);
    assert_eq!(get("deployment:dead-chat#0/rpm").consumed, 1);
}

/// Past the soft threshold, responses carry the warning header.
#[test]
fn past_the_soft_threshold_responses_carry_a_warning() {
    let extra = key_entry(
        "soft",
        "sk-soft",
        "budget = { usd = 10.0, warn_at = 0.000001 }",
    );
    let gw = start(&config_text(None, 1, &extra));
    let addr = gw.local_addr();
    let first = roundtrip(
        addr,
        &request("sk-soft", &body("mock-chat", false, 4), None),
    );
    assert_eq!(first.status, 200);
    assert!(first.header("x-tollgate-budget-warning").is_none());
    // The coordinator sees the spend on its next tick and tells the workers.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = roundtrip(
            addr,
            &request("sk-soft", &body("mock-chat", false, 4), None),
        );
        assert_eq!(r.status, 200);
        if let Some(w) = r.header("x-tollgate-budget-warning") {
            assert!(w.contains("key:soft"), "{w}");
            break;
        }
        assert!(Instant::now() < deadline, "no warning header");
    }
    gw.shutdown();
}

/// The admin API: its own listener and key; live books; a runtime disable and a period reset
/// that take effect at once and survive a restart (they are in the ledger); spend recovered
/// after a graceful stop.
#[test]
fn the_admin_api_shows_books_and_its_changes_survive_a_restart() {
    let dir = test_dir("budget-admin");
    let ledger = dir.join("ledger");
    let extra = format!(
        "{}{}{}[ledger]\ndir = {:?}\n",
        key_entry(
            "adm",
            "sk-adm",
            "budget = { usd = 0.0002, period = \"monthly\" }"
        ),
        key_entry("other", "sk-other", ""),
        admin_config(),
        ledger.to_str().unwrap()
    );
    let text = config_text(None, 2, &extra);
    let gw = start(&text);
    let (addr, a) = (gw.local_addr(), gw.admin_addr().unwrap());
    assert_ne!(a.port(), addr.port(), "a separate listener");
    // The admin key is required, and a client key is not one.
    let r = roundtrip(
        a,
        b"GET /admin/quotas HTTP/1.1\r\nhost: a\r\nauthorization: Bearer sk-adm\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (401, "invalid_api_key")
    );
    // Spend until the budget refuses.
    let mut served = 0;
    loop {
        let r = roundtrip(addr, &request("sk-adm", &body("mock-chat", false, 4), None));
        if r.status == 429 {
            break;
        }
        assert_eq!(r.status, 200);
        served += 1;
    }
    // Workers report spend on their 10 ms tick: ask until all of it has arrived (each admin
    // call is a round trip to the coordinator).
    let deadline = Instant::now() + Duration::from_secs(5);
    let state = loop {
        let state = admin(a, "GET", "/admin/quotas", "").json();
        if state["spend"]["adm"]["requests"].as_u64() == Some(served) {
            break state;
        }
        assert!(Instant::now() < deadline, "spend never arrived: {state}");
    };
    let q = quota(&state, "key:adm/usd");
    assert_eq!(
        (q["cap"].as_i64(), q["window"].as_str()),
        (Some(200), Some("monthly"))
    );
    let spent = q["spent"].as_i64().unwrap();
    assert!(spent > 150 && spent <= 200, "{q}");
    assert_eq!(q["remaining"].as_i64().unwrap(), 200 - spent);
    // Disable another key at runtime.
    let r = admin(a, "POST", "/admin/keys/other/disable", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = roundtrip(
        addr,
        &request("sk-other", &body("mock-chat", false, 4), None),
    );
    assert_eq!((r.status, r.error_code().as_str()), (401, "key_disabled"));
    assert_eq!(
        admin(a, "POST", "/admin/keys/nobody/disable", "").status,
        404
    );
    gw.shutdown();

    // Restart: the spend is back, the key is still disabled.
    let gw = start(&text);
    let (addr, a) = (gw.local_addr(), gw.admin_addr().unwrap());
    let state = admin(a, "GET", "/admin/quotas", "").json();
    assert_eq!(quota(&state, "key:adm/usd")["spent"].as_i64(), Some(spent));
    assert_eq!(state["disabled_keys"], serde_json::json!(["other"]));
    let r = roundtrip(addr, &request("sk-adm", &body("mock-chat", false, 4), None));
    assert_eq!(r.status, 429, "the recovered spend still caps the key");
    let r = roundtrip(
        addr,
        &request("sk-other", &body("mock-chat", false, 4), None),
    );
    assert_eq!(r.status, 401);
    // Reset the period and re-enable the key.
    let r = admin(a, "POST", "/admin/reset", r#"{"scope":"key:adm"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        admin(a, "POST", "/admin/reset", r#"{"scope":"key:nope"}"#).status,
        404
    );
    assert_eq!(admin(a, "POST", "/admin/reset", "not json").status, 400);
    assert_eq!(admin(a, "POST", "/admin/keys/other/enable", "").status, 200);
    let r = roundtrip(addr, &request("sk-adm", &body("mock-chat", false, 4), None));
    assert_eq!(
        r.status,
        200,
        "the reset takes effect at once: {}",
        r.text()
    );
    let r = roundtrip(
        addr,
        &request("sk-other", &body("mock-chat", false, 4), None),
    );
    assert_eq!(r.status, 200);
    gw.shutdown();

    // And the reset and the enable survive the next restart too.
    let gw = start(&text);
    let state = admin(gw.admin_addr().unwrap(), "GET", "/admin/quotas", "").json();
    let after = quota(&state, "key:adm/usd")["spent"].as_i64().unwrap();
    assert!(
        after > 0 && after < spent,
        "only the request after the reset counts: {after}"
    );
    assert_eq!(state["disabled_keys"], serde_json::json!([]));
    gw.shutdown();
}

/// The data of each SSE event of a body, parsed (`[DONE]` as the string "[DONE]").
fn sse_data(body: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| serde_json::Value::from(d)))
        .collect()
}

/// `cut_stream_at_cap`: a stream that would take its key past a token budget ends at the cap
/// with a proper last chunk (`finish_reason: "length"`, usage when asked for, `[DONE]`), the
/// connection stays usable, and the key is then refused. Another key with room left gets a
/// stream far longer than its reservation whole: the relay reserved more as it went.
#[test]
fn a_stream_is_cut_at_the_cap_with_a_proper_end() {
    let dir = test_dir("budget-cut");
    let audit = dir.join("audit.log");
    let mock = start_mock(|_| {});
    let cap = 600;
    let extra = format!(
        "{}{}{}[quotas]\ndefault_output_tokens = 20\n",
        key_entry(
            "capped",
            "sk-capped",
            &format!("budget = {{ tokens = {cap}, period = \"daily\" }}\ncut_stream_at_cap = true")
        ),
        key_entry(
            "roomy",
            "sk-roomy",
            "budget = { usd = 10.0 }\ncut_stream_at_cap = true"
        ),
        audit_to(&audit)
    );
    let gw = start(&config_text(Some(mock.addr), 2, &extra));
    let addr = gw.local_addr();
    let stream_req = |secret: &str, tokens: &str, include_usage: bool| {
        let body = format!(
            r#"{{"model":"up-chat","stream":true,{}"messages":[{{"role":"user","content":"write a lot"}}]}}"#,
            if include_usage {
                r#""stream_options":{"include_usage":true},"#
            } else {
                ""
            }
        );
        post_with(
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {secret}")),
                ("x-mock-tokens", tokens),
                // Four bytes per token: the gateway's content estimate is then exact.
                ("x-mock-token-bytes", "4"),
            ],
            body.as_bytes(),
        )
    };
    let content = |events: &[serde_json::Value]| -> String {
        events
            .iter()
            .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
            .collect()
    };

    let mut c = Client::connect(addr);
    c.send(&stream_req("sk-capped", "1000", true));
    let r = c.response();
    assert_eq!(r.status, 200, "{}", r.text());
    let events = sse_data(&r.body);
    let n = events.len();
    assert!(n >= 4, "{}", r.text());
    assert_eq!(events[n - 1], "[DONE]");
    let usage = &events[n - 2]["usage"];
    assert_eq!(events[n - 2]["choices"], serde_json::json!([]));
    assert_eq!(events[n - 3]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[n - 3]["object"], "chat.completion.chunk");
    assert_eq!(events[n - 3]["id"], events[0]["id"], "the provider's id");
    let text = content(&events);
    assert_eq!(text.len() % 4, 0);
    let delivered = text.len() as u64 / 4;
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    let charged = usage["completion_tokens"].as_u64().unwrap();
    eprintln!(
        "cut at the cap: prompt {prompt} + delivered {delivered} of {cap}; charged {charged}"
    );
    assert!(charged >= delivered, "{usage} vs {delivered} delivered");
    assert!(
        delivered < 1000 && prompt + delivered <= cap,
        "the client got no more than the cap: {prompt} + {delivered}"
    );
    assert!(
        prompt + delivered >= cap * 3 / 4,
        "most of the budget was usable: {prompt} + {delivered} of {cap}"
    );
    // The connection carries on; the key is out of budget now.
    c.send(&stream_req("sk-capped", "10", false));
    let r = c.response();
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "insufficient_quota");

    // Room left: extended as the stream goes, delivered whole (no usage asked for: none shown).
    let r = roundtrip(addr, &stream_req("sk-roomy", "3000", false));
    assert_eq!(r.status, 200);
    let events = sse_data(&r.body);
    assert_eq!(content(&events).len(), 3000 * 4);
    assert!(
        events
            .iter()
            .all(|e| e.get("usage").is_none_or(|u| u.is_null()))
    );
    assert!(
        events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "stop")
    );

    let b = gw.shutdown().quotas;
    assert!(b.iter().all(|b| b.reserved == 0), "{b:?}");
    let records = audit_records(&audit);
    let capped: Vec<_> = records.iter().filter(|r| r["key"] == "capped").collect();
    assert_eq!(capped[0]["gen_ai.response.finish_reasons"][0], "cut_at_cap");
    assert_eq!(capped[0]["gen_ai.usage.output_tokens"], charged);
    let spent = b
        .iter()
        .find(|b| b.name == "key:capped/tokens")
        .unwrap()
        .spent as u64;
    assert_eq!(
        spent,
        prompt + charged,
        "the book charges what the provider generated"
    );
    let roomy = records.iter().find(|r| r["key"] == "roomy").unwrap();
    assert_eq!(roomy["gen_ai.usage.output_tokens"], 3000);
    assert_eq!(roomy["gen_ai.response.finish_reasons"][0], "stop");
}

/// Budget periods roll over in a running gateway at UTC midnight (daily), Monday (weekly) and
/// the reset day (monthly), not for `total`; the refusal before it says how long until then;
/// and a restart recovers the new period's spend only. The accounting's wall clock is set by
/// the test.
#[test]
fn budget_periods_roll_over_in_a_running_gateway() {
    use std::sync::atomic::Ordering;
    use tollgate::calendar::{WallClock, days_from_civil};
    use tollgate::runtime::Gateway;
    let dir = test_dir("budget-rollover");
    let ledger = dir.join("ledger");
    // Sunday 2026-11-22, 23:59:00 UTC; a minute later it is Monday the 23rd.
    let midnight = days_from_civil(2026, 11, 23) as u64 * 86_400;
    let (clock, time) = WallClock::manual(midnight - 60);
    let budget = |period: &str| format!("budget = {{ tokens = 200, {period} }}");
    let extra = format!(
        "{}{}{}{}{}[ledger]\ndir = {:?}\n",
        key_entry("day", "sk-day", &budget("period = \"daily\"")),
        key_entry("week", "sk-week", &budget("period = \"weekly\"")),
        key_entry(
            "month",
            "sk-month",
            &budget("period = \"monthly\", reset_day = 23")
        ),
        key_entry("ever", "sk-ever", &budget("period = \"total\"")),
        admin_config(),
        ledger.to_str().unwrap()
    );
    let text = config_text(None, 2, &extra);
    let gw = Gateway::start_with_clock(snapshot(&text), clock.clone()).unwrap();
    let (addr, a) = (gw.local_addr(), gw.admin_addr().unwrap());
    let keys = ["day", "week", "month", "ever"];
    let mut served = 0;
    for k in keys {
        loop {
            let r = roundtrip(
                addr,
                &request(&format!("sk-{k}"), &body("mock-chat", false, 20), None),
            );
            if r.status == 429 {
                assert_eq!(r.error_code(), "insufficient_quota");
                let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
                match k {
                    // Until midnight (the weekly and monthly periods end there too).
                    "day" | "week" | "month" => assert_eq!(retry, 60, "{k}"),
                    // A total budget does not come back: a day, as a retry hint.
                    _ => assert_eq!(retry, 86_400),
                }
                break;
            }
            assert_eq!(r.status, 200, "{}", r.text());
            served += 1;
        }
    }
    // All spend reported before the clock moves (workers report on their 10 ms tick).
    let deadline = Instant::now() + Duration::from_secs(5);
    let before = loop {
        let state = admin(a, "GET", "/admin/quotas", "").json();
        let n: u64 = keys
            .iter()
            .map(|k| state["spend"][k]["requests"].as_u64().unwrap_or(0))
            .sum();
        if n == served {
            break state;
        }
        assert!(Instant::now() < deadline, "spend never arrived: {state}");
    };
    for k in keys {
        let spent = quota(&before, &format!("key:{k}/tokens"))["spent"]
            .as_i64()
            .unwrap();
        assert!(spent > 150, "{k}: {spent}");
    }

    time.store(midnight + 30, Ordering::Relaxed);
    // The admin API answers as of now: the periods have rolled over.
    let after = admin(a, "GET", "/admin/quotas", "").json();
    for k in ["day", "week", "month"] {
        assert_eq!(quota(&after, &format!("key:{k}/tokens"))["spent"], 0, "{k}");
        let r = roundtrip(
            addr,
            &request(&format!("sk-{k}"), &body("mock-chat", false, 20), None),
        );
        assert_eq!(r.status, 200, "{k} after the rollover: {}", r.text());
    }
    assert_eq!(
        quota(&after, "key:ever/tokens")["spent"],
        quota(&before, "key:ever/tokens")["spent"]
    );
    let r = roundtrip(
        addr,
        &request("sk-ever", &body("mock-chat", false, 20), None),
    );
    assert_eq!(r.status, 429);
    let now_spent = |state: &serde_json::Value, k: &str| {
        quota(state, &format!("key:{k}/tokens"))["spent"]
            .as_i64()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let today = loop {
        let state = admin(a, "GET", "/admin/quotas", "").json();
        if ["day", "week", "month"]
            .iter()
            .all(|k| now_spent(&state, k) > 0)
        {
            break state;
        }
        assert!(Instant::now() < deadline, "spend never arrived: {state}");
    };
    gw.shutdown();

    // A restart in the new period recovers the new period's spend, not the old one's.
    let gw = Gateway::start_with_clock(snapshot(&text), clock).unwrap();
    let state = admin(gw.admin_addr().unwrap(), "GET", "/admin/quotas", "").json();
    for k in keys {
        assert_eq!(now_spent(&state, k), now_spent(&today, k), "{k}");
    }
    gw.shutdown();
}
