//! The response cache through the gateway, over real sockets to the real mock provider: who may
//! be served whose answer (every pair of keys, teams and models), what makes two requests the
//! same, single-flight across workers, hits on every worker, the client's directives, budgets
//! and rate limits on hits, purging, a cut stream never stored, the metrics, and the semantic
//! cache with embeddings asked of the gateway itself.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::net::SocketAddr;

use support::*;

const ADMIN: &str = "sk-admin-secret";

/// Keys: `a1`, `a2` (team `t1`), `b1` (team `t2`), `solo` (no team).
const KEYS: [(&str, &str, Option<&str>); 4] = [
    ("a1", "sk-a1", Some("t1")),
    ("a2", "sk-a2", Some("t1")),
    ("b1", "sk-b1", Some("t2")),
    ("solo", "sk-solo", None),
];

/// Models on the mock: `team-m` (cache scope team, the default), `key-m` (scope key),
/// `global-m` (scope global), `plain-m` (no cache), `embed` (embeddings), `sem-m` (semantic).
fn config(mock: SocketAddr, workers: usize, audit: &std::path::Path, extra: &str) -> String {
    let model = |name: &str, cache: &str| {
        format!(
            "[[models]]\nname = \"{name}\"\n{cache}\n[[models.deployments]]\nprovider = \"oai\"\n\
             model = \"up-{name}\"\nprice = {{ input = 1.0, output = 2.0 }}\n"
        )
    };
    let mut t = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = {workers}\npin_workers = false\n\
         drain_timeout_ms = 10000\n\
         [routing]\nmax_attempts = 1\n\
         [admin]\nlisten = \"127.0.0.1:0\"\nkey_sha256 = \"{}\"\n\
         [[providers]]\nname = \"oai\"\nkind = \"openai\"\nbase_url = \"http://{mock}/v1\"\n\
         api_key_env = \"TEST_UPSTREAM_KEY\"\n",
        sha256_hex(ADMIN)
    );
    t.push_str(&model("team-m", "cache = { ttl = \"1h\" }"));
    t.push_str(&model("key-m", "cache = { ttl = \"1h\", scope = \"key\" }"));
    t.push_str(&model(
        "global-m",
        "cache = { ttl = \"1h\", scope = \"global\" }",
    ));
    t.push_str(&model("plain-m", ""));
    t.push_str(&model("embed", ""));
    t.push_str(&model(
        "sem-m",
        "cache = { ttl = \"1h\", semantic = { embeddings = \"embed\", threshold = 0.9 } }",
    ));
    t.push_str("[[teams]]\nname = \"t1\"\n[[teams]]\nname = \"t2\"\n");
    for (id, secret, team) in KEYS {
        let team = team.map(|t| format!("team = \"{t}\"")).unwrap_or_default();
        t.push_str(&key_entry(id, secret, &team));
    }
    t.push_str(&audit_to(audit));
    t.push_str(extra);
    t
}

fn mock() -> tollgate_loadtest::mock::MockHandle {
    start_mock(|m| {
        m.api_keys = vec![UPSTREAM_KEY.into()];
        m.embedding_dims = 256;
    })
}

fn ask(secret: &str, model: &str, body_tail: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{model}","max_tokens":5,"messages":[{{"role":"user","content":"hello there"}}]{body_tail}}}"#
    );
    let auth = format!("Bearer {secret}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(headers);
    post_with("/v1/chat/completions", &h, body.as_bytes())
}

fn cache_of(r: &Response) -> String {
    r.header("x-tollgate-cache").unwrap_or("none").to_owned()
}

fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> Response {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer {ADMIN}\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    roundtrip(addr, req.as_bytes())
}

/// Every ordered pair of keys, on every model: the second is served the first's answer
/// exactly when they share the model's scope — the same key, the same team, or a global
/// scope — and never across models.
#[test]
fn no_answer_crosses_scopes_or_models() {
    let dir = test_dir("cache-isolation");
    let mock = mock();
    let gw = start(&config(mock.addr, 2, &dir.join("audit.log"), ""));
    let (a, adm) = (gw.local_addr(), gw.admin_addr().unwrap());
    let mut checked = 0;
    for (model, scope) in [("team-m", "team"), ("key-m", "key"), ("global-m", "global")] {
        for first in KEYS {
            for second in KEYS {
                assert_eq!(admin(adm, "POST", "/admin/cache/purge", "{}").status, 200);
                let r = roundtrip(a, &ask(first.1, model, "", &[]));
                assert_eq!(r.status, 200, "{}", r.text());
                assert_eq!(cache_of(&r), "miss");
                // Another model, the same body: never the first's answer.
                let other = if model == "global-m" {
                    "team-m"
                } else {
                    "global-m"
                };
                let r = roundtrip(a, &ask(first.1, other, "", &[]));
                assert_eq!(cache_of(&r), "miss", "{model} → {other}");
                let shared = match scope {
                    "global" => true,
                    "key" => first.0 == second.0,
                    _ => first.0 == second.0 || (first.2.is_some() && first.2 == second.2),
                };
                let r = roundtrip(a, &ask(second.1, model, "", &[]));
                assert_eq!(r.status, 200);
                let want = if shared { "hit" } else { "miss" };
                assert_eq!(
                    cache_of(&r),
                    want,
                    "{model} ({scope} scope): {} then {}",
                    first.0,
                    second.0
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 48);
    // A model without a cache says nothing and always calls the provider.
    let before = mock.ledger().total.requests;
    for _ in 0..2 {
        let r = roundtrip(a, &ask("sk-a1", "plain-m", "", &[]));
        assert_eq!(r.header("x-tollgate-cache"), None);
    }
    assert_eq!(mock.ledger().total.requests, before + 2);
    gw.shutdown();
}

/// Byte-different but JSON-equal requests hit; any parameter that changes the answer misses.
#[test]
fn the_key_is_the_request_s_meaning() {
    let dir = test_dir("cache-key");
    let mock = mock();
    let gw = start(&config(mock.addr, 1, &dir.join("audit.log"), ""));
    let a = gw.local_addr();
    let base = r#"{"model":"team-m","max_tokens":5,"temperature":0.5,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]}"#;
    let send = |body: &str, headers: &[(&str, &str)]| {
        let mut h = vec![("authorization", "Bearer sk-a1")];
        h.extend_from_slice(headers);
        roundtrip(a, &post_with("/v1/chat/completions", &h, body.as_bytes()))
    };
    let r = send(base, &[]);
    assert_eq!(cache_of(&r), "miss");
    let original = r.json();
    // The same meaning: member order, whitespace, escapes, number spelling, volatile members.
    for same in [
        r#"{ "messages" : [ {"content":"be brief","role":"system"}, {"role":"user","content":"hello th\u0065re"} ], "temperature": 5e-1, "max_tokens": 5.0, "model": "team-m" }"#.to_owned(),
        base.replace(r#""max_tokens":5"#, r#""max_tokens":5,"user":"u-42","metadata":{"run":"7"},"stream":false"#),
    ] {
        let r = send(&same, &[]);
        assert_eq!(cache_of(&r), "hit", "{same}");
        assert_eq!(r.json()["choices"], original["choices"]);
        assert_eq!(r.json()["usage"], original["usage"], "the original usage");
        assert!(r.header("age").is_some());
    }
    // Anything that changes the answer: another entry each.
    let different = [
        base.replace("be brief", "be verbose"),
        base.replace("0.5", "0.7"),
        base.replace(r#""max_tokens":5"#, r#""max_tokens":6"#),
        base.replace(r#""max_tokens":5"#, r#""max_tokens":5,"seed":3"#),
        base.replace(
            r#""max_tokens":5"#,
            r#""max_tokens":5,"response_format":{"type":"json_object"}"#,
        ),
        base.replace(
            r#""max_tokens":5"#,
            r#""max_tokens":5,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#,
        ),
        base.replace("hello there", "hello there!"),
    ];
    for d in &different {
        let r = send(d, &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(cache_of(&r), "miss", "{d}");
    }
    // Shapes the cache cannot hold are never looked up nor stored.
    let n2 = base.replace(r#""max_tokens":5"#, r#""max_tokens":5,"n":2"#);
    for _ in 0..2 {
        assert_eq!(cache_of(&send(&n2, &[])), "bypass");
    }
    // The client's directives.
    assert_eq!(
        cache_of(&send(base, &[("cache-control", "no-store")])),
        "bypass"
    );
    assert_eq!(
        cache_of(&send(base, &[("x-tollgate-cache", "bypass")])),
        "bypass"
    );
    let before = mock.ledger().total.requests;
    let r = send(base, &[("cache-control", "no-cache")]);
    assert_eq!(cache_of(&r), "refresh");
    assert_eq!(
        mock.ledger().total.requests,
        before + 1,
        "a refresh calls the provider"
    );
    let refreshed = r.json();
    let r = send(base, &[]);
    assert_eq!(cache_of(&r), "hit");
    assert_eq!(
        r.json()["id"],
        refreshed["id"],
        "and its answer is the one stored"
    );
    gw.shutdown();
    assert_eq!(
        mock.ledger().total.requests,
        1 + different.len() as u64 + 2 + 2 + 1,
        "every hit stayed off the provider"
    );
}

/// 100 identical requests at once, on two workers: one provider call, 100 identical answers.
/// Then the leader fails: the requests that waited for it go upstream themselves.
#[test]
fn concurrent_identical_misses_make_one_call() {
    let dir = test_dir("cache-flight");
    let audit = dir.join("audit.log");
    let mock = mock();
    // No pooled upstream connections: each call opens one, so the mock's count of connections
    // says when the leader's call has reached it.
    let gw = start(&config(
        mock.addr,
        2,
        &audit,
        "[upstream]\npool_max_idle = 0\n",
    ));
    let a = gw.local_addr();
    // The provider takes 300 ms to answer: every request arrives while the first is in flight.
    let slow = [("x-mock-ttft-ms", "300")];
    let answers: Vec<Response> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| roundtrip(a, &ask("sk-a1", "team-m", ",\"seed\":1", &slow))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = answers[0].json();
    for r in &answers {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["choices"], first["choices"]);
        assert_eq!(r.json()["id"], first["id"]);
    }
    let misses = answers.iter().filter(|r| cache_of(r) == "miss").count();
    assert_eq!(misses, 1, "one leader");
    assert_eq!(
        mock.ledger().total.requests,
        1,
        "one provider call for 100 requests"
    );
    // Answered on both workers (request ids name the worker).
    let workers: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|r| {
            r.header("x-request-id")
                .unwrap()
                .split('-')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(workers.len(), 2, "{workers:?}");

    // The leader fails (a 500 after a stall); those waiting for it call the provider.
    let failing = [("x-mock-fault", "stall=300,status=500")];
    let leader = std::thread::scope(|s| {
        let leader = s.spawn(|| roundtrip(a, &ask("sk-a1", "team-m", ",\"seed\":2", &failing)));
        // Once the provider has the leader's call, the others arrive.
        let l = ledger_when(&mock, |l| l.connections >= 2);
        assert_eq!(l.connections, 2, "the leader's call reached the provider");
        let waiters: Vec<_> = (0..10)
            .map(|_| s.spawn(|| roundtrip(a, &ask("sk-a1", "team-m", ",\"seed\":2", &[]))))
            .collect();
        for w in waiters {
            let r = w.join().unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
        }
        leader.join().unwrap()
    });
    assert_eq!(leader.status, 500);
    let l = ledger_when(&mock, |l| l.total.requests >= 12);
    assert_eq!(
        l.total.requests, 12,
        "the leader's failed call, then each waiter's own"
    );
    gw.shutdown();
    let records = audit_records(&audit);
    let waited = records.iter().filter(|r| r["cache_waited"] == true).count();
    assert!(waited >= 90, "{waited} recorded as waiting for the leader");
}

/// Clients that give up while waiting for the leader do not cancel it: its answer is stored
/// and serves the next request.
#[test]
fn a_waiter_leaving_does_not_cancel_the_leader() {
    let dir = test_dir("cache-leave");
    let mock = mock();
    let gw = start(&config(
        mock.addr,
        2,
        &dir.join("audit.log"),
        "[upstream]\npool_max_idle = 0\n",
    ));
    let a = gw.local_addr();
    let slow = [("x-mock-ttft-ms", "300")];
    std::thread::scope(|s| {
        let leader = s.spawn(|| roundtrip(a, &ask("sk-a1", "team-m", ",\"seed\":9", &slow)));
        let l = ledger_when(&mock, |l| l.connections >= 1);
        assert_eq!(l.connections, 1, "the leader's call reached the provider");
        // Waiters that send the request and hang up at once.
        for _ in 0..5 {
            let mut c = Client::connect(a);
            c.send(&ask("sk-a1", "team-m", ",\"seed\":9", &[]));
            drop(c);
        }
        let r = leader.join().unwrap();
        assert_eq!((r.status, cache_of(&r).as_str()), (200, "miss"));
    });
    let r = roundtrip(a, &ask("sk-a1", "team-m", ",\"seed\":9", &[]));
    assert_eq!(cache_of(&r), "hit");
    assert_eq!(mock.ledger().total.requests, 1);
    gw.shutdown();
}

/// One miss, then hits on every worker: the entry lives with its owner, whichever worker the
/// request lands on.
#[test]
fn hits_on_every_worker_after_one_miss() {
    let dir = test_dir("cache-workers");
    let mock = mock();
    let gw = start(&config(mock.addr, 2, &dir.join("audit.log"), ""));
    let a = gw.local_addr();
    assert_eq!(
        cache_of(&roundtrip(a, &ask("sk-b1", "team-m", "", &[]))),
        "miss"
    );
    let mut workers = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let r = roundtrip(a, &ask("sk-b1", "team-m", "", &[]));
        assert_eq!(cache_of(&r), "hit");
        workers.insert(
            r.header("x-request-id")
                .unwrap()
                .split('-')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        workers.len(),
        2,
        "connections landed on both workers: {workers:?}"
    );
    assert_eq!(mock.ledger().total.requests, 1);
    gw.shutdown();
}

/// A stream the provider cut is never stored; one that ended cleanly serves the next request.
#[test]
fn a_cut_stream_is_never_stored() {
    let dir = test_dir("cache-cut");
    let mock = mock();
    let gw = start(&config(mock.addr, 2, &dir.join("audit.log"), ""));
    let a = gw.local_addr();
    let stream = ",\"stream\":true";
    let r = roundtrip(
        a,
        &ask(
            "sk-a1",
            "team-m",
            stream,
            &[("x-mock-fault", "reset-after=3")],
        ),
    );
    assert_eq!(cache_of(&r), "miss");
    let r = roundtrip(
        a,
        &ask("sk-a1", "team-m", stream, &[("x-mock-fault", "truncate")]),
    );
    assert_eq!(cache_of(&r), "miss", "the cut stream was not stored");
    let r = roundtrip(a, &ask("sk-a1", "team-m", stream, &[]));
    assert_eq!(cache_of(&r), "miss", "nor the one that never said it ended");
    let r = roundtrip(a, &ask("sk-a1", "team-m", stream, &[]));
    assert_eq!(cache_of(&r), "hit");
    assert!(r.text().ends_with("data: [DONE]\n\n"), "{}", r.text());
    gw.shutdown();
}

/// Hits count against requests-per-minute limits but need no token allowance; a key past its
/// budget gets no hit unless the policy serves over budget; `charge` bills a fraction.
#[test]
fn hits_and_budgets() {
    let dir = test_dir("cache-budget");
    let audit = dir.join("audit.log");
    let mock = mock();
    let extra = "[[models]]\nname = \"over-m\"\n\
                 cache = { ttl = \"1h\", scope = \"global\", serve_over_budget = true, charge = 0.5 }\n\
                 [[models.deployments]]\nprovider = \"oai\"\nprice = { input = 1.0, output = 2.0 }\n";
    let mut text = config(mock.addr, 1, &audit, extra);
    // rpm 4 and a small tpm on `solo`: hits need no tokens, but count as requests.
    text = text.replace(
        "[[keys]]\nid = \"solo\"",
        "[[keys]]\nid = \"solo\"\nrpm = 4\ntpm = 60",
    );
    // b1's budget: 100 micro-dollars.
    text = text.replace(
        "[[keys]]\nid = \"b1\"",
        "[[keys]]\nid = \"b1\"\nbudget = { usd = 0.0001 }",
    );
    let gw = start(&text);
    let a = gw.local_addr();
    // solo: one miss (its tokens within tpm), then hits until rpm runs out.
    let r = roundtrip(a, &ask("sk-solo", "team-m", "", &[]));
    assert_eq!(
        (r.status, cache_of(&r).as_str()),
        (200, "miss"),
        "{}",
        r.text()
    );
    for _ in 0..3 {
        let r = roundtrip(a, &ask("sk-solo", "team-m", "", &[]));
        assert_eq!(
            (r.status, cache_of(&r).as_str()),
            (200, "hit"),
            "{}",
            r.text()
        );
    }
    let r = roundtrip(a, &ask("sk-solo", "team-m", "", &[]));
    assert_eq!(r.status, 429, "rpm applies to hits: {}", r.text());
    assert_eq!(r.error_code(), "rate_limit_exceeded");
    // b1: its miss is answered at length (500 tokens: $0.001), far past its budget...
    let long = [("x-mock-tokens", "500")];
    let r = roundtrip(a, &ask("sk-b1", "team-m", "", &long));
    assert_eq!(
        (r.status, cache_of(&r).as_str()),
        (200, "miss"),
        "{}",
        r.text()
    );
    // ...so its hits are refused like any request (once the spend reached the books).
    let mut refused = None;
    for _ in 0..2000 {
        let r = roundtrip(a, &ask("sk-b1", "team-m", "", &[]));
        if r.status != 200 {
            refused = Some(r);
            break;
        }
        assert_eq!(cache_of(&r), "hit");
        std::thread::park_timeout(std::time::Duration::from_millis(5));
    }
    let r = refused.expect("refused once over budget");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.error_code(), "insufficient_quota");
    // A model that serves hits over budget: b1 is served what a1 filled, charged half of it.
    let over = |secret: &str| {
        post_with(
            "/v1/chat/completions",
            &[("authorization", &format!("Bearer {secret}"))],
            br#"{"model":"over-m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
        )
    };
    assert_eq!(cache_of(&roundtrip(a, &over("sk-a1"))), "miss");
    let r = roundtrip(a, &over("sk-b1"));
    assert_eq!(
        (r.status, cache_of(&r).as_str()),
        (200, "hit"),
        "{}",
        r.text()
    );
    gw.shutdown();
    let records = audit_records(&audit);
    let over_m: Vec<_> = records
        .iter()
        .filter(|r| r["gen_ai.request.model"] == "over-m")
        .collect();
    let cost = over_m[0]["cost_micro_usd"].as_u64().unwrap();
    assert!(cost > 0);
    assert_eq!(over_m[1]["cache"], "hit");
    assert_eq!(over_m[1]["key"], "b1", "{}", over_m[1]);
    assert_eq!(
        over_m[1]["cost_micro_usd"].as_u64().unwrap(),
        cost / 2,
        "half charged"
    );
    assert_eq!(
        over_m[1]["cache_saved_micro_usd"].as_u64().unwrap(),
        cost - cost / 2
    );
}

/// Purging by model and by scope, through the admin API; what the metrics say.
#[test]
fn purge_and_metrics() {
    let dir = test_dir("cache-purge");
    let mock = mock();
    let gw = start(&config(mock.addr, 2, &dir.join("audit.log"), ""));
    let (a, adm) = (gw.local_addr(), gw.admin_addr().unwrap());
    for (k, m) in [("sk-a1", "team-m"), ("sk-b1", "team-m"), ("sk-a1", "key-m")] {
        assert_eq!(cache_of(&roundtrip(a, &ask(k, m, "", &[]))), "miss");
        assert_eq!(cache_of(&roundtrip(a, &ask(k, m, "", &[]))), "hit");
    }
    // Scope t1 on team-m goes; t2's and key-m's stay.
    let r = admin(
        adm,
        "POST",
        "/admin/cache/purge",
        r#"{"model":"team-m","scope":"team:t1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        cache_of(&roundtrip(a, &ask("sk-a1", "team-m", "", &[]))),
        "miss"
    );
    assert_eq!(
        cache_of(&roundtrip(a, &ask("sk-b1", "team-m", "", &[]))),
        "hit"
    );
    assert_eq!(
        cache_of(&roundtrip(a, &ask("sk-a1", "key-m", "", &[]))),
        "hit"
    );
    // A whole model.
    assert_eq!(
        admin(adm, "POST", "/admin/cache/purge", r#"{"model":"key-m"}"#).status,
        200
    );
    assert_eq!(
        cache_of(&roundtrip(a, &ask("sk-a1", "key-m", "", &[]))),
        "miss"
    );
    assert_eq!(
        admin(adm, "POST", "/admin/cache/purge", "{\"bad\":1}").status,
        400
    );
    // The metrics: every outcome, per model and key; what is held. Each worker reports on
    // its own tick, so poll until every worker's share is in (or give up and show the text).
    let wants = [
        r#"tollgate_cache_requests_total{model="key-m",result="miss"} 2"#,
        r#"tollgate_cache_entries{model="key-m"} 1"#,
        r#"tollgate_cache_requests_total{model="team-m",result="hit"} 3"#,
        r#"tollgate_cache_requests_total{model="team-m",result="miss"} 3"#,
        r#"tollgate_cache_key_requests_total{key="b1",team="t2",result="hit"} 2"#,
        r#"tollgate_cache_entries{model="team-m"} 2"#,
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let t = admin(adm, "GET", "/metrics", "").text();
        if wants.iter().all(|w| t.contains(w)) || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::park_timeout(std::time::Duration::from_millis(5));
    };
    let shown: Vec<&str> = text.lines().filter(|l| l.contains("cache")).collect();
    for want in wants {
        assert!(text.contains(want), "{want} in\n{}", shown.join("\n"));
    }
    assert!(text.contains("tollgate_cache_saved_usd_total{model=\"team-m\"}"));
    assert!(text.contains("tollgate_cache_bytes{model=\"team-m\"}"));
    gw.shutdown();
}

/// The semantic cache: the last user turn embedded through the gateway (the mock's vectors
/// share dimensions for shared words); a paraphrase is served with its similarity, a
/// different question or a different system prompt is not.
#[test]
fn semantic_hits_need_a_near_question_and_the_same_rest() {
    let dir = test_dir("cache-semantic");
    let audit = dir.join("audit.log");
    let mock = mock();
    let gw = start(&config(mock.addr, 2, &audit, ""));
    let a = gw.local_addr();
    let q = |system: &str, user: &str, stream: bool| {
        let body = format!(
            r#"{{"model":"sem-m","max_tokens":5,"stream":{stream},"messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{user}"}}]}}"#
        );
        roundtrip(
            a,
            &post_with(
                "/v1/chat/completions",
                &[("authorization", "Bearer sk-a1")],
                body.as_bytes(),
            ),
        )
    };
    let r = q("be brief", "What is the capital of France?", false);
    assert_eq!(cache_of(&r), "miss");
    let original = r.json();
    // The same words, another order and case: a semantic hit, served as a stream too.
    let r = q("be brief", "the capital of France: what is it", false);
    assert_eq!(cache_of(&r), "hit", "{}", r.text());
    let sim: f64 = r
        .header("x-tollgate-cache-similarity")
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.9..1.0001).contains(&sim), "{sim}");
    assert_eq!(r.json()["choices"], original["choices"]);
    let r = q("be brief", "What is the capital of France", true);
    assert_eq!(cache_of(&r), "hit");
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    // A different question; the same question under another system prompt.
    assert_eq!(
        cache_of(&q(
            "be brief",
            "How do I bake sourdough bread at home?",
            false
        )),
        "miss"
    );
    assert_eq!(
        cache_of(&q("be verbose", "What is the capital of France?", false)),
        "miss"
    );
    let r = q("be brief", "the capital of France: what is it", false);
    assert_eq!(cache_of(&r), "hit");
    assert_eq!(
        r.header("x-tollgate-cache-similarity"),
        None,
        "an exact hit"
    );
    gw.shutdown();
    let records = audit_records(&audit);
    let embeddings = records
        .iter()
        .filter(|r| r["gen_ai.request.model"] == "embed")
        .count();
    assert_eq!(
        embeddings, 5,
        "each exact miss embedded its question, metered like any call"
    );
    let semantic: Vec<_> = records
        .iter()
        .filter(|r| r["cache"] == "semantic_hit")
        .collect();
    assert_eq!(semantic.len(), 2);
    assert!(
        semantic
            .iter()
            .all(|r| r["cache_similarity"].as_f64().unwrap() >= 0.9)
    );
    // The exact repeat of a paraphrase was stored under its own key too: no embedding.
    assert_eq!(records.iter().filter(|r| r["cache"] == "hit").count(), 1);
}
