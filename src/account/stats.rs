//! `GET /admin/stats`: what a person watching the gateway wants, as one JSON document — the
//! totals, the last ten seconds, a per-second series (ten minutes) and a per-minute one (a
//! day) with latency percentiles, spend per key over the last hour and day, per model and
//! deployment, every budget's bar, and each deployment's health. `tollgate top` draws it.
//!
//! Percentiles come from the bucketed histograms (interpolated within a bucket, as
//! Prometheus' `histogram_quantile` does), so they are as fine as `LATENCY_BOUNDS_US`.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use crate::calendar::{civil_from_days, day_of};
use crate::config::{Snapshot, Unit, Window};
use crate::json;
use crate::policy::books::BookView;
use crate::policy::route::{HealthSum, HealthView};
use crate::telemetry::history::{History, Point, deployment_label, summary};
use crate::telemetry::metrics::Totals;

/// What the stats are written from.
#[derive(Debug)]
pub struct Stats<'a> {
    pub snapshot: &'a Snapshot,
    pub totals: &'a Totals,
    pub history: &'a History,
    pub books: Vec<BookView>,
    pub health: &'a [Vec<HealthView>],
    pub now_unix: u64,
    pub started_unix: u64,
    /// The spend ledger, when on: today's spend per key comes from it (so it survives
    /// restarts); without it, from the history since midnight UTC.
    pub ledger: Option<&'a super::ledger::Ledger>,
    /// What each worker's cache shard holds, per model.
    pub cache_held: &'a [Vec<crate::cache::Held>],
}

fn usd(out: &mut String, micro: u64) {
    let _ = write!(out, "{}", micro as f64 / 1e6);
}

fn opt(out: &mut String, v: Option<f64>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{}", v.round());
        }
        None => out.push_str("null"),
    }
}

fn string(out: &mut String, s: &str) {
    let mut b = Vec::with_capacity(s.len() + 2);
    json::string(&mut b, s.as_bytes());
    out.push_str(&String::from_utf8_lossy(&b));
}

/// `{"t":…,"requests":…,…,"p50_us":…}` for one point.
fn point(out: &mut String, p: &Point) {
    let [p50, p95, p99, first, overhead] = summary(p);
    let _ = write!(
        out,
        "{{\"t\":{},\"requests\":{},\"errors\":{},\"server_errors\":{},\"cost_usd\":",
        p.t, p.requests, p.errors, p.server_errors
    );
    usd(out, p.cost_micro_usd);
    let _ = write!(
        out,
        ",\"input_tokens\":{},\"output_tokens\":{},\"p50_us\":",
        p.input_tokens, p.output_tokens
    );
    opt(out, p50);
    out.push_str(",\"p95_us\":");
    opt(out, p95);
    out.push_str(",\"p99_us\":");
    opt(out, p99);
    out.push_str(",\"first_byte_p50_us\":");
    opt(out, first);
    out.push_str(",\"overhead_p99_us\":");
    opt(out, overhead);
    out.push('}');
}

pub fn render(s: &Stats<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let t = s.totals;
    let _ = write!(
        out,
        "{{\"now\":{},\"started\":{},\"generation\":{},\"totals\":",
        s.now_unix, s.started_unix, s.snapshot.generation
    );
    let total = Point {
        t: s.started_unix,
        ..Point::of(t)
    };
    point(&mut out, &total);
    out.push_str(",\"last_10s\":");
    point(&mut out, &s.history.last_seconds(10));
    for (name, series) in [
        ("per_second", &s.history.seconds),
        ("per_minute", &s.history.minutes),
    ] {
        let _ = write!(out, ",\"{name}\":[");
        for (i, p) in series.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            point(&mut out, p);
        }
        out.push(']');
    }
    keys(&mut out, s);
    teams(&mut out, s);
    let since = |secs: u64| s.now_unix.saturating_sub(secs) / 60 * 60;
    let hour = s.history.deployments.since(since(3600));
    let day = s.history.deployments.since(since(86_400));
    out.push_str(",\"models\":[");
    for (i, (d, c)) in t.deployments.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"model\":");
        string(&mut out, &d.model);
        out.push_str(",\"deployment\":");
        string(&mut out, &d.deployment);
        let _ = write!(
            out,
            ",\"requests\":{},\"errors\":{},\"hedges_won\":{},\"hedges_lost\":{},\"cost_usd\":",
            c.responses.iter().sum::<u64>(),
            c.responses[3] + c.responses[4],
            c.hedges_won,
            c.hedges_lost
        );
        usd(&mut out, c.used.cost_micro_usd);
        let label = deployment_label(&d.model, &d.deployment);
        for (name, m) in [("cost_usd_hour", &hour), ("cost_usd_day", &day)] {
            let _ = write!(out, ",\"{name}\":");
            usd(&mut out, m.get(&label).copied().unwrap_or(0));
        }
        out.push('}');
    }
    out.push(']');
    quotas(&mut out, &s.books, s.now_unix);
    deployments(&mut out, s);
    cache(&mut out, s);
    guardrails(&mut out, s);
    out.push('}');
    out
}

/// Guardrail matches by rule, detector, side and action (never the values).
fn guardrails(out: &mut String, s: &Stats<'_>) {
    out.push_str(",\"guardrails\":[");
    for (i, ((rule, det, side, action), n)) in s.totals.guard.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"rule\":");
        string(out, rule);
        out.push_str(",\"detector\":");
        string(out, det);
        let _ = write!(
            out,
            ",\"where\":\"{side}\",\"action\":\"{action}\",\"matches\":{n}}}"
        );
    }
    out.push(']');
}

/// The response cache per model: what it did, what it saved, what it holds.
fn cache(out: &mut String, s: &Stats<'_>) {
    use crate::telemetry::record::CacheOutcome;
    let held = crate::cache::Held::per_model(s.cache_held);
    out.push_str(",\"cache\":[");
    for (i, (model, c)) in s.totals.cache.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"model\":");
        string(out, model);
        for (o, n) in CacheOutcome::ALL.iter().zip(c.outcomes).skip(1) {
            let _ = write!(out, ",\"{}\":{n}", o.name());
        }
        let (entries, bytes) = held.get(model.as_str()).copied().unwrap_or_default();
        let _ = write!(
            out,
            ",\"waits\":{},\"saved_tokens\":{},\"entries\":{entries},\"bytes\":{bytes},\"saved_usd\":",
            c.waited, c.saved_tokens
        );
        usd(out, c.saved_micro_usd);
        out.push('}');
    }
    out.push(']');
}

/// Spend per key label: the last hour, the last 24 hours, and today (UTC).
struct Windows {
    hour: BTreeMap<String, u64>,
    day: BTreeMap<String, u64>,
    today: BTreeMap<String, u64>,
}

fn windows(s: &Stats<'_>) -> Windows {
    let since = |secs: u64| s.now_unix.saturating_sub(secs) / 60 * 60;
    let hour = s.history.key_spend_since(since(3600));
    let day = s.history.key_spend_since(since(86_400));
    let today = match s.ledger {
        Some(l) => s
            .snapshot
            .keys
            .iter()
            .map(|k| {
                let spent = l.net_spent(&format!("key:{}", k.id), day_of(s.now_unix));
                (k.id.clone(), spent.cost_micro_usd)
            })
            .collect(),
        None => s.history.key_spend_since(s.now_unix / 86_400 * 86_400),
    };
    Windows { hour, day, today }
}

/// Keys by spend since start, most first, with their last hour's, day's and today's.
fn keys(out: &mut String, s: &Stats<'_>) {
    let w = windows(s);
    let mut rows: Vec<_> = s.totals.keys.iter().collect();
    rows.sort_by(|a, b| {
        b.1.used
            .cost_micro_usd
            .cmp(&a.1.used.cost_micro_usd)
            .then(a.0.cmp(b.0))
    });
    out.push_str(",\"keys\":[");
    for (i, ((key, team), k)) in rows.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"key\":");
        string(out, key);
        out.push_str(",\"team\":");
        string(out, team);
        let _ = write!(
            out,
            ",\"requests\":{},\"errors\":{},\"input_tokens\":{},\"output_tokens\":{},\"cost_usd\":",
            k.responses.iter().sum::<u64>(),
            k.responses[3] + k.responses[4],
            k.used.input_tokens,
            k.used.output_tokens
        );
        usd(out, k.used.cost_micro_usd);
        spend_windows(out, &w, &[key]);
        out.push('}');
    }
    out.push(']');
}

/// `,"cost_usd_hour":…,"cost_usd_day":…,"cost_usd_today":…` summed over `keys`.
fn spend_windows(out: &mut String, w: &Windows, keys: &[&String]) {
    for (name, m) in [
        ("cost_usd_hour", &w.hour),
        ("cost_usd_day", &w.day),
        ("cost_usd_today", &w.today),
    ] {
        let _ = write!(out, ",\"{name}\":");
        usd(out, keys.iter().filter_map(|k| m.get(*k)).sum());
    }
}

/// Teams: their keys' requests and spend, summed.
fn teams(out: &mut String, s: &Stats<'_>) {
    let w = windows(s);
    let mut teams: BTreeMap<&str, (u64, u64, u64, Vec<&String>)> = BTreeMap::new();
    for ((key, team), k) in &s.totals.keys {
        if team.is_empty() {
            continue;
        }
        let t = teams.entry(team.as_str()).or_default();
        t.0 += k.responses.iter().sum::<u64>();
        t.1 += k.responses[3] + k.responses[4];
        t.2 += k.used.cost_micro_usd;
        t.3.push(key);
    }
    out.push_str(",\"teams\":[");
    for (i, (team, (requests, errors, cost, keys))) in teams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"team\":");
        string(out, team);
        let _ = write!(
            out,
            ",\"requests\":{requests},\"errors\":{errors},\"cost_usd\":"
        );
        usd(out, *cost);
        spend_windows(out, &w, keys);
        out.push('}');
    }
    out.push(']');
}

/// Each budget's and rate limit's bar, and when a budget's period starts over.
fn quotas(out: &mut String, books: &[BookView], now_unix: u64) {
    out.push_str(",\"quotas\":[");
    for (i, b) in books.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (unit, per) = match b.unit {
            Unit::MicroUsd => ("usd", 1e6),
            Unit::Tokens => ("tokens", 1.0),
            Unit::Requests => ("requests", 1.0),
        };
        let cap = b.cap.min(i64::MAX as u64) as i64;
        let remaining = cap
            .saturating_sub(b.spent)
            .saturating_sub(b.reserved)
            .max(0);
        out.push_str("{\"name\":");
        string(out, &b.name);
        out.push_str(",\"scope\":");
        string(out, &b.scope);
        let _ = write!(
            out,
            ",\"unit\":\"{unit}\",\"cap\":{},\"used\":{},\"reserved\":{},\"remaining\":{},\"resets\":",
            cap as f64 / per,
            b.spent as f64 / per,
            b.reserved as f64 / per,
            remaining as f64 / per
        );
        // The UTC day a budget's period starts over; a rate limit refills all along.
        match b.window {
            Window::Period(p) => match p.next_start(day_of(now_unix)) {
                Some(d) => {
                    let (y, m, dd) = civil_from_days(i64::from(d));
                    let _ = write!(out, "\"{y:04}-{m:02}-{dd:02}\"");
                }
                None => out.push_str("null"),
            },
            Window::Minute => out.push_str("null"),
        }
        out.push('}');
    }
    out.push(']');
}

/// Each deployment's health, summed over workers.
fn deployments(out: &mut String, s: &Stats<'_>) {
    let snap = s.snapshot;
    let now = std::time::Instant::now();
    out.push_str(",\"deployments\":[");
    for (i, (d, h)) in snap.deployments.iter().zip(s.health).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let p = snap.provider(d.provider);
        out.push_str("{\"model\":");
        string(out, &snap.models[d.model.0 as usize].name);
        out.push_str(",\"deployment\":");
        string(out, &format!("{}/{}", p.name, d.upstream_model));
        let sum = HealthSum::of(h, now);
        let _ = write!(
            out,
            ",\"state\":\"{}\",\"open_on_workers\":{},\"inflight\":{},\"requests\":{},\
             \"failures\":{},\"retries\":{},\"ewma_ttft_us\":",
            if sum.open_on > 0 {
                "cooling_down"
            } else {
                "healthy"
            },
            sum.open_on,
            sum.inflight,
            sum.requests,
            sum.failures,
            sum.retries,
        );
        opt(out, sum.ewma_ttft_us);
        out.push('}');
    }
    out.push(']');
}
