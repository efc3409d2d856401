//! The admit phase: budgets and rate limits (ARCHITECTURE.md, "Money"), and the settling of what it
//! reserved once the call has ended.
//!
//! A request needs, of every quota that applies to it (its key's, its key's team's and the
//! chosen deployment's): one request of each requests-per-minute limit; its estimated tokens
//! (prompt bytes / 4 + its max tokens, or the key's default, or `quotas.default_output_tokens`)
//! of each token budget and tokens-per-minute limit; and that estimate at the deployment's
//! price of each USD budget. It is admitted only if the worker's allowance covers all of them
//! (reserved together, or none). Short, the worker asks the coordinator and the request waits
//! — woken when the coordinator's answer arrives, up to `quotas.lease_wait_ms` — for it.
//!
//! `settle::settle_quotas` runs after every request, however it ended: a call the provider accepted
//! settles its reservations with what it actually cost (the metered usage, or its estimate);
//! one that never reached a provider releases them. A request counts against an RPM limit once
//! it was sent upstream, whatever the answer.
//!
//! `cut_stream_at_cap` keys: a stream's reservation covers the output it was admitted with;
//! the relay's meter holds back events past it until [`extend_output`] reserves more (a step
//! ahead), and when the budgets cannot cover them the relay ends the stream at the cap with
//! a last chunk of its own (`finish_reason: "length"`; `cut_at_cap` in the audit record).

use std::fmt::Write as _;
use std::time::Instant;

use super::{Conn, Fields, RequestCtx, Route, Worker};
use crate::account::journal::{Entry, Estimate, Payer};
use crate::config::{DeploymentId, Quota, QuotaId, Snapshot, Unit, Window};
use crate::error::{ErrorKind, GatewayError};
use crate::json::uint;
use crate::policy::quota::Reserve;
use crate::usage::{ESTIMATE_BYTES_PER_TOKEN, Usage, estimate_tokens};

/// Which deployment an attempt goes to, and the one an earlier attempt was admitted on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hop {
    pub from: Option<DeploymentId>,
    pub to: DeploymentId,
}

/// What admission decided for one attempt.
#[derive(Debug)]
pub(super) enum Admission {
    Admitted,
    /// The target deployment's own rate limit has no room: another deployment may serve.
    Refused(GatewayError),
}

/// The admit phase for one attempt: the first reserves against every quota that applies (the
/// key's and team's refusals are final, `Err`); a later one moves the deployment's own limits
/// from the deployment the request was admitted on to the new one.
pub(super) async fn admit(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    hop: Hop,
) -> Result<Admission, GatewayError> {
    let refused = match hop.from {
        None => match reserve(w, snap, c, ctx, f, hop.to).await {
            Ok(()) => None,
            // The key's own limits: final. The deployment's: try another.
            Err(e) if !ctx.attempt.refused_by_deployment || c.cands.len() == 1 => return Err(e),
            Err(e) => Some(e),
        },
        Some(_) => switch_deployment(w, snap, c, ctx, f, hop).await.err(),
    };
    ctx.attempt.refused_by_deployment = false;
    Ok(refused.map_or(Admission::Admitted, Admission::Refused))
}

/// The first admission: reserves the request's estimate against every quota of its key, its
/// team and deployment `d`.
async fn reserve(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    d: DeploymentId,
) -> Result<(), GatewayError> {
    let Some(key) = ctx.key else { return Ok(()) };
    let k = &snap.keys[key.0 as usize];
    let dep = snap.deployment(d);
    c.reserved.clear();
    if k.quotas.is_empty() && dep.quotas.is_empty() {
        return Ok(());
    }
    let (usage, cost) = estimate(snap, c, ctx, f, d);
    for &q in k.quotas.iter().chain(&dep.quotas) {
        let quota = &snap.quotas[q.0 as usize];
        let amount = match quota.unit {
            Unit::MicroUsd => cost,
            Unit::Tokens => usage.input_tokens + usage.output_tokens,
            Unit::Requests => 1,
        };
        if quota.window == Window::Minute && amount > quota.cap {
            return Err(GatewayError::new(
                kind_of(quota),
                format!(
                    "Request too large for {}: the limit is {} per minute, this request needs \
                     {amount}. Reduce max_tokens or the prompt.",
                    quota.scope, quota.cap,
                ),
            ));
        }
        c.reserved.push((q, amount as i64));
    }
    let generation = snap.generation;
    if let Err(why) = reserve_waiting(w, snap, generation, &c.reserved).await {
        c.reserved.clear();
        ctx.attempt.refused_by_deployment = why.is_some_and(|(q, _)| dep.quotas.contains(&q));
        return Err(not_admitted(w, snap, ctx, &k.quotas, why));
    }
    ctx.reserved_under = Some(generation);
    if k.quotas
        .iter()
        .any(|q| snap.quotas[q.0 as usize].unit == Unit::MicroUsd)
    {
        ctx.reserved_micro_usd = cost;
    }
    if k.cut_stream_at_cap
        && f.stream
        && matches!(
            ctx.route,
            Route::ChatCompletions | Route::Completions | Route::Messages
        )
    {
        ctx.attempt.output_allowed = Some(usage.output_tokens);
    }
    rate_headers(w, snap, ctx, k.quotas.as_slice());
    Ok(())
}

/// A cache hit's admission (`worker/cache.rs`): one request of each of the key's and its
/// team's requests-per-minute limits; unless `over_budget_ok`, a sliver of each budget, to
/// learn that it is not spent — settled at once at what the hit is charged (`charge`
/// micro-USD, no tokens). Tokens-per-minute limits are not touched: a hit generates no
/// tokens. Refused like any request (the same 429s).
pub(super) async fn admit_hit(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    over_budget_ok: bool,
    charge: u64,
) -> Result<(), GatewayError> {
    let Some(key) = ctx.key else { return Ok(()) };
    let k = &snap.keys[key.0 as usize];
    c.reserved.clear();
    for &q in &k.quotas {
        let quota = &snap.quotas[q.0 as usize];
        let amount = match (quota.unit, quota.window) {
            (Unit::Requests, _) => 1,
            (_, Window::Minute) => continue,
            _ if over_budget_ok => continue,
            (Unit::MicroUsd, _) => charge.max(1),
            (Unit::Tokens, _) => 1,
        };
        c.reserved.push((q, amount as i64));
    }
    if c.reserved.is_empty() {
        return Ok(());
    }
    let generation = snap.generation;
    if let Err(why) = reserve_waiting(w, snap, generation, &c.reserved).await {
        c.reserved.clear();
        return Err(not_admitted(w, snap, ctx, &k.quotas, why));
    }
    let reserved = &c.reserved;
    w.with_quotas(generation, |q| {
        for &(id, estimate) in reserved {
            let actual = match snap.quotas[id.0 as usize].unit {
                Unit::Requests => 1,
                Unit::MicroUsd => charge.min(i64::MAX as u64) as i64,
                Unit::Tokens => 0,
            };
            q.settle(id, estimate, actual);
        }
    });
    c.reserved.clear();
    rate_headers(w, snap, ctx, k.quotas.as_slice());
    Ok(())
}

/// The answer to a request that was not admitted: the quota that refused it (and when to
/// retry), or `None` when the coordinator did not answer in time.
fn not_admitted(
    w: &Worker,
    snap: &Snapshot,
    ctx: &mut RequestCtx,
    key_quotas: &[QuotaId],
    why: Option<(QuotaId, u64)>,
) -> GatewayError {
    match why {
        Some((quota, retry_ms)) => {
            rate_headers(w, snap, ctx, key_quotas);
            retry_headers(&mut ctx.extra_head, retry_ms);
            refusal(&snap.quotas[quota.0 as usize], retry_ms)
        }
        None => {
            retry_headers(&mut ctx.extra_head, 1000);
            GatewayError::new(
                ErrorKind::Overloaded,
                "The gateway could not confirm this key's remaining budget or rate limit in \
                 time; retry shortly.",
            )
        }
    }
}

/// Before the call goes to deployment `d`, the journal records it with its estimate — again
/// on a later attempt only when that deployment's estimate is higher (`account::journal`).
pub(super) fn journal_open(
    w: &Worker,
    snap: &Snapshot,
    c: &Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    d: DeploymentId,
) {
    let mut journal = w.journal.borrow_mut();
    let (Some(j), Some(key)) = (&mut *journal, ctx.key) else {
        return;
    };
    let (usage, cost) = estimate(snap, c, ctx, f, d);
    if ctx.journal_open.is_some_and(|recorded| recorded >= cost) {
        return;
    }
    ctx.journal_open = Some(cost);
    let k = &snap.keys[key.0 as usize];
    j.write(&Entry::Open {
        serial: ctx.serial,
        t: ctx.start_unix_us / 1_000_000,
        payer: Payer {
            key: &k.id,
            team: k.team.as_deref(),
        },
        estimate: Estimate {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_micro_usd: cost,
        },
    });
}

/// The request's estimate on deployment `d` — what admission reserves, the journal records
/// before the call goes out, and an attempt given up on is charged: input tokens from the
/// body's bytes, output tokens from `max_tokens` (or the configured default), and their cost.
pub(super) fn estimate(
    snap: &Snapshot,
    c: &Conn,
    ctx: &RequestCtx,
    f: &Fields,
    d: DeploymentId,
) -> (Usage, u64) {
    let input = (c.body.len() as u64).div_ceil(4);
    let output = if ctx.route == Route::Embeddings {
        0
    } else {
        f.max_tokens
            .map_or(snap.quota_settings.default_output_tokens, u64::from)
    };
    let usage = Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    };
    let cost = snap.deployment(d).price.cost(&usage);
    (usage, cost)
}

/// A failover from deployment `from` to `to`: `from`'s own rate limits keep the request (it
/// was sent) as one request and release its tokens; `to`'s are reserved, waiting like
/// admission. Refused: `to` is at its limit (the error says which).
async fn switch_deployment(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    hop: Hop,
) -> Result<(), GatewayError> {
    let (Some(from), to) = (hop.from, hop.to) else {
        return Ok(());
    };
    let (old, new) = (&snap.deployment(from).quotas, &snap.deployment(to).quotas);
    if from == to || (old.is_empty() && new.is_empty()) {
        return Ok(());
    }
    let generation = ctx.reserved_under.unwrap_or(snap.generation);
    let reserved = &mut c.reserved;
    w.with_quotas(generation, |q| {
        reserved.retain(|&(id, amount)| {
            if !old.contains(&id) {
                return true;
            }
            if snap.quotas[id.0 as usize].unit == Unit::Requests {
                q.settle(id, amount, 1);
            } else {
                q.release(id, amount);
            }
            false
        });
    });
    let (usage, _) = estimate(snap, c, ctx, f, to);
    let need: Vec<(QuotaId, i64)> = new
        .iter()
        .map(|&id| {
            let amount = match snap.quotas[id.0 as usize].unit {
                Unit::Requests => 1,
                _ => usage.input_tokens + usage.output_tokens,
            };
            (id, amount as i64)
        })
        .collect();
    match reserve_waiting(w, snap, generation, &need).await {
        Ok(()) => {
            c.reserved.extend_from_slice(&need);
            ctx.reserved_under = Some(generation);
            Ok(())
        }
        Err(Some((quota, retry_ms))) => Err(refusal(&snap.quotas[quota.0 as usize], retry_ms)),
        Err(None) => Err(GatewayError::new(
            ErrorKind::Overloaded,
            "The gateway could not confirm a deployment's rate limit in time; retry shortly.",
        )),
    }
}

/// Reserves `need` (all or nothing), waiting up to `quotas.lease_wait` for the coordinator
/// when the worker's allowance is short. `Err(Some((quota, retry_ms)))`: refused;
/// `Err(None)`: no answer in time (or the snapshot's quotas are gone).
async fn reserve_waiting(
    w: &Worker,
    snap: &Snapshot,
    generation: u64,
    need: &[(QuotaId, i64)],
) -> Result<(), Option<(QuotaId, u64)>> {
    let deadline = Instant::now() + snap.quota_settings.lease_wait;
    let mut fresh = false;
    loop {
        let now = Instant::now();
        match w.with_quotas(generation, |q| q.reserve(need, now)) {
            Some(Reserve::Granted) => return Ok(()),
            // A refusal remembered from earlier: read what the coordinator sent since (a
            // period reset, an admin reset) before answering with it.
            Some(Reserve::Refused { .. }) if !fresh => {
                fresh = true;
                w.poll_control();
            }
            Some(Reserve::Refused { quota, retry_ms }) => return Err(Some((quota, retry_ms))),
            Some(Reserve::Short) if now < deadline => {
                // Until the coordinator answers: the doorbell task reads the answer and wakes
                // this (registered before the ask goes out, so an answer cannot slip past).
                let answered = w.control_read.notified();
                w.flush_quotas();
                let _ = monoio::time::timeout(deadline - now, answered).await;
            }
            _ => return Err(None),
        }
    }
}

/// `cut_stream_at_cap`: the stream's content has passed the output its reservation covers
/// (`RequestCtx::output_allowed`). Reserves more output against the key's and its team's
/// budgets — a step ahead, else just what was read, else whatever the worker's allowance
/// still holds — and lets the meter forward the deferred events that fit. False: not all of
/// them fit, and the relay ends the stream.
pub(super) async fn extend_output(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> bool {
    let (Some(generation), Some(allowed), Some(d)) = (
        ctx.reserved_under,
        ctx.attempt.output_allowed,
        ctx.deployment,
    ) else {
        return false;
    };
    let price = snap.deployment(d).price;
    let usd = |tokens: u64| {
        price.cost(&Usage {
            output_tokens: tokens,
            ..Usage::default()
        })
    };
    // The budgets (not the rates) among what the request reserved, each with its amount for
    // `tokens` more output.
    let budgets = |tokens: u64| {
        c.reserved.iter().filter_map(move |&(id, _)| {
            let q = &snap.quotas[id.0 as usize];
            match (q.window, q.unit) {
                (Window::Period(_), Unit::MicroUsd) => Some((id, usd(tokens) as i64)),
                (Window::Period(_), Unit::Tokens) => Some((id, tokens as i64)),
                _ => None,
            }
        })
    };
    let need = estimate_tokens(c.meter.observed.content_bytes)
        .saturating_sub(allowed)
        .max(1);
    let step = need.max(allowed / 2).max(EXTEND_MIN_TOKENS);
    let mut extra: Vec<(QuotaId, i64)> = Vec::with_capacity(c.reserved.len());
    let mut got = 0;
    for ask in [step, need] {
        extra.clear();
        extra.extend(budgets(ask));
        if reserve_waiting(w, snap, generation, &extra).await.is_ok() {
            got = ask;
            break;
        }
    }
    if got == 0 {
        // Refused: the last of the budgets, as far as this worker holds it.
        let fit = w
            .with_quotas(generation, |q| {
                budgets(need)
                    .map(|(id, _)| {
                        let left = q.available(id) as u64;
                        match snap.quotas[id.0 as usize].unit {
                            Unit::MicroUsd if price.output > 0 => {
                                let mut t = (u128::from(left) * 1_000_000
                                    / u128::from(price.output))
                                    as u64;
                                while t > 0 && usd(t) > left {
                                    t -= 1;
                                }
                                t
                            }
                            Unit::MicroUsd => u64::MAX,
                            _ => left,
                        }
                    })
                    .min()
                    .unwrap_or(0)
                    .min(need)
            })
            .unwrap_or(0);
        extra.clear();
        extra.extend(budgets(fit));
        if fit > 0 && w.with_quotas(generation, |q| q.reserve_local(&extra)) == Some(true) {
            got = fit;
        }
    }
    if got == 0 {
        return false;
    }
    for &(id, more) in &extra {
        if let Some(r) = c.reserved.iter_mut().find(|r| r.0 == id) {
            r.1 += more;
        }
    }
    let allowed = allowed + got;
    ctx.attempt.output_allowed = Some(allowed);
    c.meter
        .raise_limit(allowed * ESTIMATE_BYTES_PER_TOKEN, &mut c.out)
}

/// The least output a stream's reservation is extended by.
const EXTEND_MIN_TOKENS: u64 = 64;

fn kind_of(q: &Quota) -> ErrorKind {
    match (q.window, q.unit) {
        (Window::Period(_), _) => ErrorKind::QuotaExceeded,
        (Window::Minute, Unit::Requests) => ErrorKind::RateLimitRequests,
        (Window::Minute, _) => ErrorKind::RateLimitTokens,
    }
}

fn refusal(q: &Quota, retry_ms: u64) -> GatewayError {
    let message = match q.window {
        Window::Period(p) => format!(
            "You exceeded your current quota: the {} budget of {} ({} per {}) is used up.",
            unit_name(q.unit),
            q.scope,
            amount(q.unit, q.cap),
            period_name(p),
        ),
        Window::Minute => format!(
            "Rate limit reached for {} on {} per min: Limit {}. Please try again in {}.",
            q.scope,
            unit_name(q.unit),
            q.cap,
            duration(retry_ms),
        ),
    };
    GatewayError::new(kind_of(q), message)
}

fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::MicroUsd => "USD",
        Unit::Tokens => "tokens",
        Unit::Requests => "requests",
    }
}

fn period_name(p: crate::calendar::Period) -> &'static str {
    use crate::calendar::Period;
    match p {
        Period::Daily => "day",
        Period::Weekly => "week",
        Period::Monthly { .. } => "month",
        Period::Total => "all time",
    }
}

fn amount(u: Unit, v: u64) -> String {
    match u {
        Unit::MicroUsd => format!("${}.{:06}", v / 1_000_000, v % 1_000_000),
        _ => v.to_string(),
    }
}

/// `retry-after` (whole seconds, as HTTP has it) and `retry-after-ms` (which the OpenAI SDKs
/// prefer).
pub(super) fn retry_headers(out: &mut Vec<u8>, retry_ms: u64) {
    let _ = write!(
        Buf(out),
        "retry-after: {}\r\nretry-after-ms: {retry_ms}\r\n",
        retry_ms.div_ceil(1000).max(1)
    );
}

/// OpenAI's rate-limit headers for the key's own (else its team's) RPM and TPM limits, and
/// the budget warning when a budget of the key or its team is past its soft threshold.
fn rate_headers(w: &Worker, snap: &Snapshot, ctx: &mut RequestCtx, quotas: &[QuotaId]) {
    let generation = ctx.reserved_under.unwrap_or(snap.generation);
    let mut seen_requests = false;
    let mut seen_tokens = false;
    let mut warned: Option<&Quota> = None;
    let out = &mut ctx.extra_head;
    w.with_quotas(generation, |q| {
        for &id in quotas {
            let quota = &snap.quotas[id.0 as usize];
            if quota.is_budget() {
                if warned.is_none() && q.warned(id) {
                    warned = Some(quota);
                }
                continue;
            }
            let what: &[u8] = match quota.unit {
                Unit::Requests if !seen_requests => {
                    seen_requests = true;
                    b"requests"
                }
                Unit::Tokens if !seen_tokens => {
                    seen_tokens = true;
                    b"tokens"
                }
                _ => continue,
            };
            let remaining = (q.remaining(id).max(0) as u64).min(quota.cap);
            let reset_ms = (quota.cap - remaining) * 60_000 / quota.cap.max(1);
            for (name, value) in [
                (&b"x-ratelimit-limit-"[..], Some(quota.cap)),
                (b"x-ratelimit-remaining-", Some(remaining)),
                (b"x-ratelimit-reset-", None),
            ] {
                out.extend_from_slice(name);
                out.extend_from_slice(what);
                out.extend_from_slice(b": ");
                match value {
                    Some(n) => uint(out, n),
                    None => write_duration(out, reset_ms),
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    });
    if let Some(q) = warned {
        let _ = write!(
            Buf(out),
            "x-tollgate-budget-warning: {} is past {} of its {} budget\r\n",
            q.scope,
            amount(q.unit, q.warn.unwrap_or(0)),
            amount(q.unit, q.cap),
        );
    }
}

/// [`write_duration`] as a string (for messages).
fn duration(ms: u64) -> String {
    let mut out = Vec::new();
    write_duration(&mut out, ms);
    String::from_utf8(out).unwrap_or_default()
}

/// OpenAI's duration format: `120ms`, `1s`, `8.5s`, `6m0s`.
fn write_duration(out: &mut Vec<u8>, ms: u64) {
    if ms < 1000 {
        uint(out, ms);
        out.extend_from_slice(b"ms");
    } else if ms < 60_000 {
        uint(out, ms / 1000);
        let frac = ms % 1000;
        if frac != 0 {
            let digits = [frac / 100, frac / 10 % 10, frac % 10].map(|d| b'0' + d as u8);
            let keep = if frac.is_multiple_of(100) {
                1
            } else if frac.is_multiple_of(10) {
                2
            } else {
                3
            };
            out.push(b'.');
            out.extend_from_slice(&digits[..keep]);
        }
        out.push(b's');
    } else {
        uint(out, ms / 60_000);
        out.push(b'm');
        uint(out, ms % 60_000 / 1000);
        out.push(b's');
    }
}

/// `fmt::Write` into a byte buffer.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_openais() {
        assert_eq!(duration(120), "120ms");
        assert_eq!(duration(1000), "1s");
        assert_eq!(duration(8500), "8.5s");
        assert_eq!(duration(8050), "8.05s");
        assert_eq!(duration(8005), "8.005s");
        assert_eq!(duration(360_000), "6m0s");
        assert_eq!(duration(61_500), "1m1s");
    }
}
