//! The scrape: every metric family `GET /metrics` serves, written by the coordinator from what
//! it already holds — the workers' merged counts ([`Totals`]), its counter totals, the books of
//! every budget and rate limit, the deployments' health reports — and the process's own
//! figures from `/proc`. Nothing here reads a worker.
//!
//! | family | labels | from |
//! | --- | --- | --- |
//! | `gen_ai_client_token_usage` (histogram, tokens) | `gen_ai_operation_name`, `gen_ai_provider_name`, `gen_ai_request_model`, `gen_ai_response_model`, `gen_ai_token_type`, `deployment` | charged calls |
//! | `gen_ai_server_request_duration_seconds`, `gen_ai_server_time_to_first_token_seconds`, `gen_ai_server_time_per_output_token_seconds` (histograms) | the same but the token type | charged calls |
//! | `tollgate_requests_total` | `key`, `team`, `status_class` | every authenticated request |
//! | `tollgate_responses_total` | `status_class` | every response, with or without a key |
//! | `tollgate_cost_usd_total`, `tollgate_tokens_total` (`type`: input, output, cache_read, cache_write, reasoning), `tollgate_charged_requests_total`, `tollgate_estimated_requests_total` | `key`, `team` | charged calls |
//! | `tollgate_deployment_requests_total`, `tollgate_deployment_cost_usd_total`, `tollgate_deployment_tokens_total`, `tollgate_deployment_hedges_won_total`, `_lost_total` | `model`, `deployment` | per deployment |
//! | `tollgate_cache_requests_total` (`result`: hit, semantic_hit, miss, refresh, bypass), `tollgate_cache_waits_total`, `tollgate_cache_saved_usd_total`, `tollgate_cache_saved_tokens_total` | `model` | requests to models with a cache |
//! | `tollgate_cache_key_requests_total` | `key`, `team`, `result` | the same, per key (the tenant scope) |
//! | `tollgate_cache_entries`, `tollgate_cache_bytes` | `model` | what the workers' shards hold (reported when it changes) |
//! | `tollgate_guardrail_matches_total` | `rule`, `detector`, `where` (request, response), `action` (redact, block, log) | keys with guardrails |
//! | `tollgate_errors_total` | `kind`: the error code clients see (429s: `insufficient_quota`, and `rate_limit_requests` / `rate_limit_tokens` apart) | the gateway's own errors |
//! | `tollgate_gateway_overhead_seconds` (histogram) | — | time to the first byte minus the provider's time to its response head |
//! | `tollgate_quota_limit`, `_used`, `_remaining`, `_reserved` | `quota`, `scope`, `unit`, `window` | the books (`used`: this period, or in the bucket) |
//! | `tollgate_deployment_circuit_open`, `_inflight`, `_ewma_ttft_seconds`, `_failures_total`, `_retries_total` | `model`, `deployment` | health reports (every 250 ms) |
//! | connections accepted, refused and open, TLS handshakes completed and failed, bytes, upstream connections, audit records written and dropped, connections cut at drain, trace spans exported and dropped, the ledger's sync age | — | counters |
//! | `process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`, `process_start_time_seconds` | — | `/proc/self` |
//!
//! USD figures are the integer micro-dollars the gateway keeps, divided by 10⁶ only here.

use std::time::SystemTime;

use super::Counters;
use crate::calendar::Period;
use crate::config::{Snapshot, Unit, Window};
use crate::error::ErrorKind;
use crate::policy::books::BookView;
use crate::policy::route::{HealthSum, HealthView};
use crate::telemetry::exposition::{Exposition, Kind};
use crate::telemetry::metrics::{
    Classes, DURATION_BOUNDS_US, OPERATIONS, OVERHEAD_BOUNDS_US, TOKEN_BOUNDS, TPOT_BOUNDS_US,
    TTFT_BOUNDS_US, Totals, Use,
};

/// What a scrape is written from.
#[derive(Debug)]
pub struct Scrape<'a> {
    pub snapshot: &'a Snapshot,
    pub totals: &'a Totals,
    pub counters: &'a Counters,
    pub books: Vec<BookView>,
    /// Per deployment of the current snapshot, per worker.
    pub health: &'a [Vec<HealthView>],
    pub audit_written: u64,
    pub audit_dropped: u64,
    pub cut_connections: u64,
    pub started: SystemTime,
    pub traces: &'a crate::telemetry::export::TraceStats,
    /// Seconds since the spend ledger last reached the disk (`None`: no ledger).
    pub ledger_sync_age: Option<f64>,
    /// What each worker's cache shard holds, per model.
    pub cache_held: &'a [Vec<crate::cache::Held>],
    /// `[cluster]`: the link to Redis and its counters.
    pub cluster: Option<(
        crate::policy::shared::LinkView,
        &'a super::cluster::LinkStats,
    )>,
}

/// A health family: name, kind, help, and its value from one deployment's summed reports.
type HealthFamily = (&'static str, Kind, &'static str, fn(&HealthSum) -> f64);
/// A quota family: name, help, and its value from one book.
type BookFamily = (&'static str, &'static str, fn(&BookView) -> i64);

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const USD: f64 = 1e6;
const SECONDS: f64 = 1e6;

/// The scrape's content type and text.
pub fn render(s: &Scrape<'_>, openmetrics: bool) -> (&'static str, String) {
    let mut e = Exposition::new(openmetrics);
    gen_ai(&mut e, s.totals);
    keys(&mut e, s.totals);
    deployments(&mut e, s);
    cache(&mut e, s);
    guardrails(&mut e, s.totals);
    quotas(&mut e, &s.books);
    gateway(&mut e, s);
    process(&mut e, s.started);
    (e.content_type(), e.finish())
}

/// Guardrail matches by rule, detector, side and the rule's action (never the values).
fn guardrails(e: &mut Exposition, t: &Totals) {
    e.family(
        "tollgate_guardrail_matches",
        Kind::Counter,
        "Guardrail matches, by rule, detector, side (request or response) and the rule's action.",
    );
    for ((rule, det, side, action), n) in &t.guard {
        let l = [
            ("rule", rule.as_str()),
            ("detector", det.as_str()),
            ("where", *side),
            ("action", *action),
        ];
        e.sample("tollgate_guardrail_matches_total", &l, *n as f64);
    }
}

/// The response cache: what it did per model and per key, what it saved, what it holds.
fn cache(e: &mut Exposition, s: &Scrape<'_>) {
    use crate::telemetry::record::CacheOutcome;
    let t = s.totals;
    let results = || CacheOutcome::ALL.iter().enumerate().skip(1);
    e.family(
        "tollgate_cache_requests",
        Kind::Counter,
        "Requests to a model with a response cache, by what the cache did.",
    );
    for (model, c) in &t.cache {
        for (i, o) in results() {
            let l = [("model", model.as_str()), ("result", o.name())];
            e.sample("tollgate_cache_requests_total", &l, c.outcomes[i] as f64);
        }
    }
    e.family(
        "tollgate_cache_key_requests",
        Kind::Counter,
        "The same, per key.",
    );
    for ((key, team), k) in &t.keys {
        if k.cache.outcomes.iter().all(|&n| n == 0) {
            continue;
        }
        for (i, o) in results() {
            let l = [
                ("key", key.as_str()),
                ("team", team.as_str()),
                ("result", o.name()),
            ];
            e.sample(
                "tollgate_cache_key_requests_total",
                &l,
                k.cache.outcomes[i] as f64,
            );
        }
    }
    type Saved = (
        &'static str,
        &'static str,
        fn(&crate::telemetry::metrics::CacheCounts) -> f64,
    );
    let saved: [Saved; 3] = [
        (
            "tollgate_cache_waits",
            "Requests that waited for an identical one in flight (single-flight) instead of calling the provider.",
            |c| c.waited as f64,
        ),
        (
            "tollgate_cache_saved_usd",
            "What the calls answered from the cache cost when they were made, less what the hits were charged.",
            |c| c.saved_micro_usd as f64 / USD,
        ),
        (
            "tollgate_cache_saved_tokens",
            "Input and output tokens of the calls answered from the cache.",
            |c| c.saved_tokens as f64,
        ),
    ];
    for (name, help, f) in saved {
        e.family(name, Kind::Counter, help);
        for (model, c) in &t.cache {
            e.sample(&format!("{name}_total"), &[("model", model.as_str())], f(c));
        }
    }
    let held = crate::cache::Held::per_model(s.cache_held);
    e.family(
        "tollgate_cache_entries",
        Kind::Gauge,
        "Answers the cache holds.",
    );
    for (model, (n, _)) in &held {
        e.sample("tollgate_cache_entries", &[("model", model)], *n as f64);
    }
    e.family(
        "tollgate_cache_bytes",
        Kind::Gauge,
        "Bytes the cache's answers take.",
    );
    for (model, (_, b)) in &held {
        e.sample("tollgate_cache_bytes", &[("model", model)], *b as f64);
    }
}

/// The OpenTelemetry GenAI histograms.
fn gen_ai(e: &mut Exposition, t: &Totals) {
    let families: [(&str, &str); 4] = [
        (
            "gen_ai_client_token_usage",
            "Tokens per call, input and output (OpenTelemetry GenAI).",
        ),
        (
            "gen_ai_server_request_duration_seconds",
            "Time from the request's start to its last byte, for calls a provider answered \
             (OpenTelemetry GenAI).",
        ),
        (
            "gen_ai_server_time_to_first_token_seconds",
            "Time from the request's start to the first byte of its answer (OpenTelemetry GenAI).",
        ),
        (
            "gen_ai_server_time_per_output_token_seconds",
            "Time per output token after the first (OpenTelemetry GenAI).",
        ),
    ];
    for (f, (name, help)) in families.iter().enumerate() {
        e.family(name, Kind::Histogram, help);
        for (d, counts) in &t.deployments {
            for (op, g) in OPERATIONS.iter().zip(&counts.ops) {
                if g.duration.count() == 0 {
                    continue;
                }
                let mut labels = vec![
                    ("gen_ai_operation_name", *op),
                    ("gen_ai_provider_name", d.provider),
                    ("gen_ai_request_model", d.model.as_str()),
                    ("gen_ai_response_model", d.upstream_model.as_str()),
                    ("deployment", d.deployment.as_str()),
                ];
                match f {
                    0 => {
                        for (ty, h) in [("input", &g.input_tokens), ("output", &g.output_tokens)] {
                            labels.push(("gen_ai_token_type", ty));
                            e.histogram(name, &labels, (h, TOKEN_BOUNDS, 1.0));
                            labels.pop();
                        }
                    }
                    1 => e.histogram(name, &labels, (&g.duration, DURATION_BOUNDS_US, SECONDS)),
                    2 if g.ttft.count() > 0 => {
                        e.histogram(name, &labels, (&g.ttft, TTFT_BOUNDS_US, SECONDS));
                    }
                    3 if g.tpot.count() > 0 => {
                        e.histogram(name, &labels, (&g.tpot, TPOT_BOUNDS_US, SECONDS));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Requests, cost and tokens per key (and its team).
fn keys(e: &mut Exposition, t: &Totals) {
    e.family(
        "tollgate_requests",
        Kind::Counter,
        "Requests by virtual key (its configured id; `other` past admin.metrics_max_keys) and \
         status class.",
    );
    for ((key, team), k) in &t.keys {
        classes(
            e,
            "tollgate_requests_total",
            &[("key", key), ("team", team)],
            &k.responses,
        );
    }
    use_families(
        e,
        "",
        t.keys.iter().map(|((key, team), k)| {
            (
                vec![("key", key.as_str()), ("team", team.as_str())],
                &k.used,
            )
        }),
    );
    e.family(
        "tollgate_responses",
        Kind::Counter,
        "Every response, by status class (requests refused before a key was known included).",
    );
    classes(e, "tollgate_responses_total", &[], &t.responses);
}

/// Cost, tokens, charged and estimated calls, under `tollgate_{prefix}…`.
fn use_families<'a>(
    e: &mut Exposition,
    prefix: &str,
    rows: impl Iterator<Item = (Vec<(&'a str, &'a str)>, &'a Use)> + Clone,
) {
    let name = |n: &str| format!("tollgate_{prefix}{n}");
    e.family(
        &name("cost_usd"),
        Kind::Counter,
        "What calls cost, in USD (list prices).",
    );
    for (l, u) in rows.clone() {
        e.sample(&name("cost_usd_total"), &l, u.cost_micro_usd as f64 / USD);
    }
    e.family(
        &name("tokens"),
        Kind::Counter,
        "Tokens by type: input (cache reads and writes included), output (reasoning included), \
         cache_read, cache_write, reasoning.",
    );
    for (mut l, u) in rows.clone() {
        for (ty, n) in [
            ("input", u.input_tokens),
            ("output", u.output_tokens),
            ("cache_read", u.cache_read_tokens),
            ("cache_write", u.cache_write_tokens),
            ("reasoning", u.reasoning_tokens),
        ] {
            l.push(("type", ty));
            e.sample(&name("tokens_total"), &l, n as f64);
            l.pop();
        }
    }
    e.family(
        &name("charged_requests"),
        Kind::Counter,
        "Calls a provider accepted (charged).",
    );
    for (l, u) in rows.clone() {
        e.sample(&name("charged_requests_total"), &l, u.charged as f64);
    }
    e.family(
        &name("estimated_requests"),
        Kind::Counter,
        "Charged calls whose usage was estimated (the provider reported none).",
    );
    for (l, u) in rows {
        e.sample(&name("estimated_requests_total"), &l, u.estimated as f64);
    }
}

fn classes(e: &mut Exposition, name: &str, labels: &[(&str, &str)], c: &Classes) {
    let mut l = labels.to_vec();
    for (class, n) in CLASSES.iter().zip(c) {
        if *n > 0 {
            l.push(("status_class", class));
            e.sample(name, &l, *n as f64);
            l.pop();
        }
    }
}

/// Per deployment: requests, use, and health.
fn deployments(e: &mut Exposition, s: &Scrape<'_>) {
    let t = s.totals;
    e.family(
        "tollgate_deployment_requests",
        Kind::Counter,
        "Requests a deployment served, by status class.",
    );
    for (d, c) in &t.deployments {
        let l = [
            ("model", d.model.as_str()),
            ("deployment", d.deployment.as_str()),
        ];
        classes(e, "tollgate_deployment_requests_total", &l, &c.responses);
    }
    use_families(
        e,
        "deployment_",
        t.deployments.iter().map(|(d, c)| {
            (
                vec![
                    ("model", d.model.as_str()),
                    ("deployment", d.deployment.as_str()),
                ],
                &c.used,
            )
        }),
    );
    for (name, help, won) in [
        (
            "tollgate_deployment_hedges_won",
            "Hedged requests this deployment answered first.",
            true,
        ),
        (
            "tollgate_deployment_hedges_lost",
            "Hedged requests this deployment lost (its call cancelled, charged an estimate).",
            false,
        ),
    ] {
        e.family(name, Kind::Counter, help);
        for (d, c) in &t.deployments {
            let l = [
                ("model", d.model.as_str()),
                ("deployment", d.deployment.as_str()),
            ];
            let n = if won { c.hedges_won } else { c.hedges_lost };
            e.sample(&format!("{name}_total"), &l, n as f64);
        }
    }
    let snap = s.snapshot;
    let rows: Vec<(String, String, &Vec<HealthView>)> = snap
        .deployments
        .iter()
        .zip(s.health)
        .map(|(d, h)| {
            let p = snap.provider(d.provider);
            (
                snap.models[d.model.0 as usize].name.clone(),
                format!("{}/{}", p.name, d.upstream_model),
                h,
            )
        })
        .collect();
    let now = std::time::Instant::now();
    let gauges: [HealthFamily; 5] = [
        (
            "tollgate_deployment_circuit_open",
            Kind::Gauge,
            "Workers on which the deployment's circuit is open (cooling down after failures).",
            |h| h.open_on as f64,
        ),
        (
            "tollgate_deployment_inflight",
            Kind::Gauge,
            "Calls to the deployment in flight.",
            |h| h.inflight as f64,
        ),
        (
            "tollgate_deployment_ewma_ttft_seconds",
            Kind::Gauge,
            "The deployment's time to first byte, an exponentially weighted average (the mean \
             over workers that saw calls).",
            |h| h.ewma_ttft_us.map_or(0.0, |t| t / SECONDS),
        ),
        (
            "tollgate_deployment_failures",
            Kind::Counter,
            "Calls to the deployment that failed (connect, reset, timeout, 5xx, 429), since the \
             config was loaded.",
            |h| h.failures as f64,
        ),
        (
            "tollgate_deployment_retries",
            Kind::Counter,
            "Calls to the deployment that were another attempt of a request (retries and \
             failovers), since the config was loaded.",
            |h| h.retries as f64,
        ),
    ];
    for (name, kind, help, value) in gauges {
        e.family(name, kind, help);
        let sample = if kind == Kind::Counter {
            format!("{name}_total")
        } else {
            name.to_owned()
        };
        for (model, deployment, h) in &rows {
            let l = [
                ("model", model.as_str()),
                ("deployment", deployment.as_str()),
            ];
            e.sample(&sample, &l, value(&HealthSum::of(h, now)));
        }
    }
}

/// Every budget and rate limit, as the books stand.
fn quotas(e: &mut Exposition, books: &[BookView]) {
    let fields: [BookFamily; 4] = [
        (
            "tollgate_quota_limit",
            "A budget's or rate limit's cap (USD, tokens or requests).",
            |b| b.cap.min(i64::MAX as u64) as i64,
        ),
        (
            "tollgate_quota_used",
            "Spent this period (a budget) or in the window (a rate limit).",
            |b| b.spent,
        ),
        (
            "tollgate_quota_reserved",
            "Held by calls in flight (estimates until they settle).",
            |b| b.reserved,
        ),
        (
            "tollgate_quota_remaining",
            "What is left: the cap less what is used and reserved (never below zero).",
            |b| {
                (b.cap.min(i64::MAX as u64) as i64)
                    .saturating_sub(b.spent)
                    .saturating_sub(b.reserved)
                    .max(0)
            },
        ),
    ];
    for (name, help, value) in fields {
        e.family(name, Kind::Gauge, help);
        for b in books {
            let (unit, per) = match b.unit {
                Unit::MicroUsd => ("usd", USD),
                Unit::Tokens => ("tokens", 1.0),
                Unit::Requests => ("requests", 1.0),
            };
            let window = match b.window {
                Window::Minute => "minute",
                Window::Period(Period::Daily) => "daily",
                Window::Period(Period::Weekly) => "weekly",
                Window::Period(Period::Monthly { .. }) => "monthly",
                Window::Period(Period::Total) => "total",
            };
            let l = [
                ("quota", b.name.as_str()),
                ("scope", b.scope.as_str()),
                ("unit", unit),
                ("window", window),
            ];
            e.sample(name, &l, value(b) as f64 / per);
        }
    }
}

/// The gateway's own counters.
fn gateway(e: &mut Exposition, s: &Scrape<'_>) {
    let t = s.totals;
    e.family(
        "tollgate_errors",
        Kind::Counter,
        "Requests that ended in one of the gateway's own errors, by kind (the error code \
         clients see).",
    );
    for (k, n) in ErrorKind::ALL.iter().zip(t.errors) {
        // The two rate limits share the code clients see; here each is its own.
        let kind = match k {
            ErrorKind::RateLimitRequests => "rate_limit_requests",
            ErrorKind::RateLimitTokens => "rate_limit_tokens",
            k => k.label(),
        };
        e.sample("tollgate_errors_total", &[("kind", kind)], n as f64);
    }
    e.family(
        "tollgate_gateway_overhead_seconds",
        Kind::Histogram,
        "Time inside tollgate before a response's first byte reached the client, excluding the \
         wait for the provider's response head.",
    );
    e.histogram(
        "tollgate_gateway_overhead_seconds",
        &[],
        (&t.overhead, OVERHEAD_BOUNDS_US, SECONDS),
    );
    let c = s.counters;
    let traced = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let counters: [(&str, &str, u64); 16] = [
        (
            "tollgate_tls_handshakes",
            "Client TLS handshakes completed.",
            c.tls_handshakes,
        ),
        (
            "tollgate_trace_spans_exported",
            "Spans the collector accepted.",
            traced(&s.traces.exported),
        ),
        (
            "tollgate_trace_spans_dropped",
            "Spans lost: the exporter's queue was full, or the collector failed every retry.",
            traced(&s.traces.dropped),
        ),
        (
            "tollgate_trace_exports_failed",
            "Export requests the collector did not accept after their retries.",
            traced(&s.traces.failed_exports),
        ),
        (
            "tollgate_connections_accepted",
            "Client connections accepted.",
            c.connections_accepted,
        ),
        (
            "tollgate_connections_refused",
            "Client connections refused at the connection limit or while draining.",
            c.connections_refused,
        ),
        (
            "tollgate_tls_handshakes_failed",
            "Client TLS handshakes that failed or timed out.",
            c.tls_handshakes_failed,
        ),
        (
            "tollgate_bytes_received",
            "Request bytes read from clients.",
            c.bytes_in,
        ),
        (
            "tollgate_bytes_sent",
            "Response bytes written to clients.",
            c.bytes_out,
        ),
        (
            "tollgate_upstream_connections_opened",
            "Connections opened to providers.",
            c.upstream_connects,
        ),
        (
            "tollgate_upstream_connections_reused",
            "Requests sent on a pooled provider connection.",
            c.upstream_reuses,
        ),
        (
            "tollgate_upstream_extra_attempts",
            "Upstream attempts beyond a request's first (retries, failovers).",
            t.extra_tries,
        ),
        (
            "tollgate_audit_records_written",
            "Audit records written.",
            s.audit_written,
        ),
        (
            "tollgate_audit_records_dropped",
            "Audit records lost (the writer's queue full, or its output failing).",
            s.audit_dropped,
        ),
        (
            "tollgate_connections_cut_at_drain",
            "Connections still open when a drain's deadline passed.",
            s.cut_connections,
        ),
        (
            "tollgate_metrics_unattributed_buffers",
            "Worker metrics buffers counted under a config no longer known (in the totals, not \
             per key or deployment).",
            t.unattributed,
        ),
    ];
    for (name, help, n) in counters {
        e.family(name, Kind::Counter, help);
        e.sample(&format!("{name}_total"), &[], n as f64);
    }
    e.family(
        "tollgate_connections_open",
        Kind::Gauge,
        "Client connections open (as of the workers' last report, every 250 ms).",
    );
    let open = c.connections_accepted.saturating_sub(c.connections_closed);
    e.sample("tollgate_connections_open", &[], open as f64);
    if let Some(age) = s.ledger_sync_age {
        e.family(
            "tollgate_ledger_sync_age_seconds",
            Kind::Gauge,
            "Seconds since the spend ledger last reached the disk (its lag; ledger.sync_ms \
             bounds it while the disk keeps up).",
        );
        e.sample("tollgate_ledger_sync_age_seconds", &[], age);
    }
    if let Some((v, st)) = s.cluster {
        cluster(e, &v, st);
    }
    e.family(
        "tollgate_config_generation",
        Kind::Gauge,
        "The config snapshot in force (0 at start, one more per reload).",
    );
    e.sample(
        "tollgate_config_generation",
        &[],
        s.snapshot.generation as f64,
    );
}

/// `[cluster]`: how the instance stands with Redis.
fn cluster(
    e: &mut Exposition,
    v: &crate::policy::shared::LinkView,
    st: &super::cluster::LinkStats,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let gauges = [
        (
            "tollgate_cluster_up",
            "1 while Redis answers (budgets and limits are global), 0 while it does not.",
            u64::from(v.up),
        ),
        (
            "tollgate_cluster_failing_open",
            "1 while Redis is unreachable and this instance spends its local shares.",
            u64::from(v.failing_open),
        ),
        (
            "tollgate_cluster_instances",
            "Instances alive in Redis at the last contact.",
            u64::from(v.instances),
        ),
        (
            "tollgate_cluster_unsynced",
            "Settled use not yet in Redis, summed over quotas (in their own units).",
            v.unsynced.max(0) as u64,
        ),
    ];
    for (name, help, n) in gauges {
        e.family(name, Kind::Gauge, help);
        e.sample(name, &[], n as f64);
    }
    let counters = [
        (
            "tollgate_cluster_redis_commands",
            "Commands sent to Redis (a script call is one): leases and flushes, never one per \
             request.",
            st.ops.load(Relaxed),
        ),
        (
            "tollgate_cluster_batches",
            "Round trips to Redis.",
            st.batches.load(Relaxed),
        ),
        (
            "tollgate_cluster_failures",
            "Round trips to Redis that failed.",
            st.failures.load(Relaxed),
        ),
        (
            "tollgate_cluster_outages",
            "Times Redis became unreachable.",
            v.outages,
        ),
        (
            "tollgate_cluster_lapses",
            "Times this instance was silent long enough to be counted as gone.",
            v.lapses,
        ),
    ];
    for (name, help, n) in counters {
        e.family(name, Kind::Counter, help);
        e.sample(&format!("{name}_total"), &[], n as f64);
    }
}

/// The process's memory, CPU time, descriptors and start time, from `/proc/self`.
fn process(e: &mut Exposition, started: SystemTime) {
    // x86-64 and aarch64 Linux: 4 KiB pages, 100 clock ticks a second.
    let page = 4096.0;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok());
    // utime and stime (fields 14 and 15), after the parenthesised command name.
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let mut f = rest.split_whitespace().skip(11);
            let user: f64 = f.next()?.parse().ok()?;
            let system: f64 = f.next()?.parse().ok()?;
            Some((user + system) / 100.0)
        });
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as f64)
        .ok();
    let start = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor());
    let rows: [(&str, Kind, &str, Option<f64>); 4] = [
        (
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory.",
            rss.map(|p| p * page),
        ),
        (
            "process_cpu_seconds",
            Kind::Counter,
            "CPU time, user and system.",
            cpu,
        ),
        (
            "process_open_fds",
            Kind::Gauge,
            "Open file descriptors.",
            fds,
        ),
        (
            "process_start_time_seconds",
            Kind::Gauge,
            "When the process started, in seconds since the Unix epoch.",
            Some(start),
        ),
    ];
    for (name, kind, help, v) in rows {
        if let Some(v) = v {
            e.family(name, kind, help);
            let sample = if kind == Kind::Counter {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            e.sample(&sample, &[], v);
        }
    }
}
