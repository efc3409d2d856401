//! settle and finish: what the call consumed becomes its cost and the key's spend, the
//! reservations are settled or released, and the audit record goes out — after every request,
//! however it ended.

use super::*;
use crate::account::journal::{Entry, Payer};
use crate::config::Unit;
use crate::telemetry::record::TryOutcome;
use crate::usage::Observed;

pub(super) fn ctx_worker(ctx: &RequestCtx) -> u16 {
    (ctx.serial >> 48) as u16
}

/// Settle: what the call consumed → what it cost → the key's spend (coalesced per key, sent
/// to the coordinator on the next tick; never dropped). Runs after every request, however it
/// ended. A call is charged once a provider accepted it (a 2xx head): the usage it reported,
/// or, where that is missing (client gone, upstream cut, provider omitted it), an estimate
/// flagged `usage_estimated` — never zero. A call that never got that far costs nothing.
pub(super) fn settle(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &mut RequestCtx) {
    if ctx.log_hashes && ctx.body_read && ctx.model.is_some() {
        let d = ring::digest::digest(&ring::digest::SHA256, &c.buf[c.body.clone()]);
        let mut h = [0u8; 32];
        h.copy_from_slice(d.as_ref());
        ctx.prompt_sha256 = Some(h);
    }
    if !c.meter.is_metered() {
        return;
    }
    // A stream abandoned mid-way: read what the scanner still holds, forward nothing.
    c.meter.end(None, &mut w.scratch.borrow_mut());
    ctx.completion_sha256 = c.meter.digest();
    let o = &c.meter.observed;
    ctx.finish_reason = if ctx.attempt.cut_at_cap {
        InlineStr::new(b"cut_at_cap")
    } else {
        o.finish_reason
    };
    ctx.response_model = o.response_model;
    ctx.response_id = o.response_id;
    let (Some(key), Some(d)) = (ctx.key, ctx.deployment) else {
        return;
    };
    let (usage, estimated) = answered(snap, ctx, o);
    let cost = snap.deployment(d).price.cost(&usage);
    ctx.charged = true;
    ctx.usage = usage;
    ctx.usage_estimated = estimated;
    ctx.cost_micro_usd = cost;
    let last = true;
    charge(w, snap, ctx, key, Charge::new(usage, estimated, cost, last));
}

/// An attempt to deployment `d` given up on after it was sent: the provider may bill it all
/// the same, so it is charged, flagged estimated, into `abandoned_*` (on top of what the
/// request's answer costs). One past the first-token timeout is charged its reservation
/// estimate (as a call cut by a kill -9 is); one whose answer began (a 2xx head) and was cut
/// before its first byte reached the client, for what it sent. An answer that began on the
/// request's last attempt (`retried` false) is left to `settle`, as the request's own usage.
pub(super) fn abandoned(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    (f, d): (&Fields, DeploymentId),
    (how, retried): (TryOutcome, bool),
) {
    let Some(key) = ctx.key else { return };
    let metered = c.meter.is_metered();
    if metered && !retried {
        return;
    }
    let (usage, cost) = if how == TryOutcome::Timeout {
        super::admit::estimate(snap, c, ctx, f, d)
    } else if metered {
        c.meter.end(None, &mut w.scratch.borrow_mut());
        let (usage, _) = answered(snap, ctx, &c.meter.observed);
        (usage, snap.deployment(d).price.cost(&usage))
    } else {
        return;
    };
    c.meter.reset();
    ctx.abandoned_cost_micro_usd += cost;
    ctx.abandoned_tokens += usage.input_tokens + usage.output_tokens;
    let last = false; // the request's own charge, or its journal close, follows
    charge(w, snap, ctx, key, Charge::new(usage, true, cost, last));
}

/// What an answer the provider accepted consumed: its reported usage, or an estimate
/// (`settle_usage`). An answer that is not a stream was generated whole before it was sent,
/// so one cut before its usage (at the end of the body) is estimated at its output cap,
/// `max_tokens` (or the default): the provider bills all of it.
fn answered(snap: &Snapshot, ctx: &RequestCtx, o: &Observed) -> (Usage, bool) {
    let (mut usage, estimated) = settle_usage(o, ctx.attempt.upstream_body_bytes);
    if estimated && !ctx.stream && !o.output_reported && ctx.route != Route::Embeddings {
        let cap = ctx
            .max_tokens
            .map_or(snap.quota_settings.default_output_tokens, u64::from);
        usage.output_tokens = usage.output_tokens.max(cap);
    }
    (usage, estimated)
}

/// A charge to a key (see [`charge`]).
pub(super) struct Charge {
    usage: Usage,
    estimated: bool,
    cost: u64,
    /// The request's final charge: it closes the call's record in the journal.
    last: bool,
}

impl Charge {
    pub(super) fn new(usage: Usage, estimated: bool, cost: u64, last: bool) -> Self {
        Charge {
            usage,
            estimated,
            cost,
            last,
        }
    }
}

/// Adds a charge to the key's spend sums (sent on the next tick) and, in the same step, to
/// the worker's journal — so the journal position sent with the sums is exactly what they
/// cover (`account::journal`, "Marks").
pub(super) fn charge(w: &Worker, snap: &Snapshot, ctx: &mut RequestCtx, key: KeyId, c: Charge) {
    let direct = w
        .spend
        .borrow_mut()
        .charge(ctx.generation, key, &c.usage, c.estimated, c.cost);
    if let Some(e) = direct {
        w.emit(e);
    }
    if let Some(j) = &mut *w.journal.borrow_mut() {
        let k = &snap.keys[key.0 as usize];
        let mut spend = crate::account::Spend::default();
        spend.charge(&c.usage, c.estimated, c.cost);
        j.write(&Entry::Charge {
            serial: ctx.serial,
            t: ctx.start_unix_us / 1_000_000,
            payer: Payer {
                key: &k.id,
                team: k.team.as_deref(),
            },
            spend,
            last: c.last,
        });
    }
    if c.last {
        ctx.journal_open = None;
    }
}

/// A call the journal holds open that ended without a final charge (it failed before a
/// provider accepted it): closed, so a restart does not charge its estimate.
pub(super) fn journal_close(w: &Worker, ctx: &mut RequestCtx) {
    if ctx.journal_open.take().is_some()
        && let Some(j) = &mut *w.journal.borrow_mut()
    {
        j.write(&Entry::Close { serial: ctx.serial });
    }
}

/// Settles or releases what the request reserved. Runs after every request.
pub(super) fn settle_quotas(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &mut RequestCtx) {
    let Some(generation) = ctx.reserved_under.take() else {
        return;
    };
    // A hedged request's cancelled half was charged too.
    let tokens = ctx.usage.input_tokens + ctx.usage.output_tokens + ctx.abandoned_tokens;
    let cost = ctx.cost_micro_usd + ctx.abandoned_cost_micro_usd;
    let charged = ctx.charged || ctx.abandoned_cost_micro_usd > 0 || ctx.abandoned_tokens > 0;
    let sent = ctx.attempts > 0;
    let reserved = &c.reserved;
    w.with_quotas(generation, |q| {
        for &(id, estimate) in reserved {
            let quota = &snap.quotas[id.0 as usize];
            let actual = match quota.unit {
                Unit::MicroUsd if charged => Some(cost),
                Unit::Tokens if charged => Some(tokens),
                Unit::Requests if sent => Some(1),
                _ => None,
            };
            match actual {
                Some(a) => q.settle(id, estimate, a.min(i64::MAX as u64) as i64),
                None => q.release(id, estimate),
            }
        }
    });
    c.reserved.clear();
}

/// Always runs, whatever happened: the audit record is formatted into the worker's batch
/// and the counters are updated.
pub(super) fn finish(w: &Worker, snap: &Snapshot, ctx: &RequestCtx) {
    let status = ctx.status;
    w.count(|c| {
        c.requests += 1;
        c.bytes_in += ctx.request_bytes;
        c.bytes_out += ctx.response_bytes;
        match status {
            200..=399 => c.responses_2xx += 1,
            400..=499 => c.responses_4xx += 1,
            _ => c.responses_5xx += 1,
        }
    });
    let record = AuditRecord {
        generation: ctx.generation,
        worker: w.id,
        serial: ctx.serial & SERIAL_MASK,
        start_unix_us: ctx.start_unix_us,
        method: ctx.method,
        route: ctx.route,
        status,
        key: ctx.key,
        model: ctx.model,
        deployment: ctx.deployment,
        stream: ctx.stream,
        attempts: ctx.attempts,
        tries: ctx.tries,
        max_tokens: ctx.max_tokens,
        request_bytes: ctx.request_bytes,
        response_bytes: ctx.response_bytes,
        duration_us: ctx.started.elapsed().as_micros() as u64,
        upstream_us: ctx.upstream_us,
        ttft_us: ctx.ttft_us,
        error: ctx.error,
        charged: ctx.charged,
        usage: ctx.usage,
        usage_estimated: ctx.usage_estimated,
        cost_micro_usd: ctx.cost_micro_usd,
        reserved_micro_usd: ctx.reserved_micro_usd,
        abandoned_cost_micro_usd: ctx.abandoned_cost_micro_usd,
        abandoned_tokens: ctx.abandoned_tokens,
        finish_reason: ctx.finish_reason,
        response_model: ctx.response_model,
        response_id: ctx.response_id,
        prompt_sha256: ctx.prompt_sha256,
        completion_sha256: ctx.completion_sha256,
        cache: ctx.cache,
        guard: ctx.guard,
    };
    w.audit.borrow_mut().record(&record, snap);
    // Counted only where something can read them (the admin listener serves `/metrics`).
    if snap.admin.listen.is_some() {
        w.metrics.borrow_mut().record(&record);
    }
    if let Some(t) = ctx.trace.filter(|t| t.sampled) {
        w.traces.borrow_mut().record(&record, &t, snap);
    }
}

/// The low 48 bits of a request serial count requests; the high 16 name the worker.
pub(super) const SERIAL_MASK: u64 = (1 << 48) - 1;

impl RequestCtx {
    pub(super) fn new(w: &Worker, c: &Conn) -> Self {
        let n = w.serial.get() + 1;
        w.serial.set(n);
        let started = Instant::now();
        let (at, unix_us) = w.wall.get();
        let start_unix_us = unix_us + started.saturating_duration_since(at).as_micros() as u64;
        RequestCtx {
            serial: (u64::from(w.id) << 48) | (n & SERIAL_MASK),
            started,
            start_unix_us,
            generation: 0,
            method: c.head.method,
            route: Route::Unknown,
            version: c.head.version,
            key: None,
            model: None,
            deployment: None,
            stream: false,
            body_read: c.head.body == BodyKind::Empty,
            response_started: false,
            response_ended: false,
            keep_alive: c.head.keep_alive && !w.drain.is_set(),
            write_timeout: w.snapshot.borrow().limits.body_timeout,
            status: 0,
            request_bytes: c.head.head_len as u64,
            response_bytes: 0,
            upstream_us: 0,
            ttft_us: 0,
            error: None,
            attempts: 0,
            max_tokens: None,
            log_hashes: false,
            charged: false,
            usage: Usage::default(),
            usage_estimated: false,
            cost_micro_usd: 0,
            reserved_micro_usd: 0,
            abandoned_cost_micro_usd: 0,
            abandoned_tokens: 0,
            finish_reason: InlineStr::default(),
            response_model: InlineStr::default(),
            response_id: InlineStr::default(),
            prompt_sha256: None,
            completion_sha256: None,
            // Room for the route and rate-limit headers without growing.
            extra_head: Vec::with_capacity(512),
            reserved_under: None,
            tries: Tries::default(),
            trace: None,
            attempt: AttemptState::default(),
            session: None,
            cache: Default::default(),
            guard: Default::default(),
            cache_fill: None,
            journal_open: None,
        }
    }
}
