//! The admit phase: budgets and rate limits (DESIGN.md §3), and the settling of what it
//! reserved once the call has ended.
//!
//! A request needs, of every quota that applies to it (its key's, its key's team's and the
//! chosen deployment's): one request of each requests-per-minute limit; its estimated tokens
//! (prompt bytes / 4 + its max tokens, or the key's default, or `quotas.default_output_tokens`)
//! of each token budget and tokens-per-minute limit; and that estimate at the deployment's
//! price of each USD budget. It is admitted only if the worker's allowance covers all of them
//! (reserved together, or none). Short, the worker asks the coordinator and the request waits
//! — polling the control ring every millisecond, up to `quotas.lease_wait_ms` — for the answer.
//!
//! [`settle_quotas`] runs after every request, however it ended: a call the provider accepted
//! settles its reservations with what it actually cost (the metered usage, or its estimate);
//! one that never reached a provider releases them. A request counts against an RPM limit once
//! it was sent upstream, whatever the answer.

use std::fmt::Write as _;
use std::time::Instant;

use super::{Conn, Fields, RequestCtx, Route, Worker};
use crate::config::{DeploymentId, Quota, QuotaId, Snapshot, Unit, Window};
use crate::error::{ErrorKind, GatewayError};
use crate::policy::quota::Reserve;
use crate::usage::Usage;

pub(super) async fn admit(
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
    let input = (c.body.len() as u64).div_ceil(4);
    let output = if ctx.route == Route::Embeddings {
        0
    } else {
        f.max_tokens
            .map_or(snap.quota_settings.default_output_tokens, u64::from)
    };
    let cost = dep.price.cost(&Usage {
        input_tokens: input,
        output_tokens: output,
        ..Usage::default()
    });
    for &q in k.quotas.iter().chain(&dep.quotas) {
        let quota = &snap.quotas[q.0 as usize];
        let amount = match quota.unit {
            Unit::MicroUsd => cost,
            Unit::Tokens => input + output,
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
    let deadline = Instant::now() + snap.quota_settings.lease_wait;
    loop {
        let now = Instant::now();
        let r = w.with_quotas(generation, |q| q.reserve(&c.reserved, now));
        match r {
            Some(Reserve::Granted) => break,
            Some(Reserve::Refused { quota, retry_ms }) => {
                c.reserved.clear();
                rate_headers(w, snap, ctx, k.quotas.as_slice());
                retry_headers(&mut ctx.extra_head, retry_ms);
                return Err(refusal(&snap.quotas[quota.0 as usize], retry_ms));
            }
            Some(Reserve::Short) if now < deadline => {
                w.flush_quotas();
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                w.poll_control();
            }
            _ => {
                c.reserved.clear();
                retry_headers(&mut ctx.extra_head, 1000);
                return Err(GatewayError::new(
                    ErrorKind::Overloaded,
                    "The gateway could not confirm this key's remaining budget or rate limit \
                     in time; retry shortly.",
                ));
            }
        }
    }
    ctx.reserved_under = Some(generation);
    if k.quotas
        .iter()
        .any(|q| snap.quotas[q.0 as usize].unit == Unit::MicroUsd)
    {
        ctx.reserved_micro_usd = cost;
    }
    rate_headers(w, snap, ctx, k.quotas.as_slice());
    Ok(())
}

/// Settles or releases what the request reserved. Runs after every request.
pub(super) fn settle_quotas(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &mut RequestCtx) {
    let Some(generation) = ctx.reserved_under.take() else {
        return;
    };
    let tokens = ctx.usage.input_tokens + ctx.usage.output_tokens;
    let sent = ctx.attempts > 0;
    let reserved = &c.reserved;
    w.with_quotas(generation, |q| {
        for &(id, estimate) in reserved {
            let quota = &snap.quotas[id.0 as usize];
            let actual = match quota.unit {
                Unit::MicroUsd if ctx.charged => Some(ctx.cost_micro_usd),
                Unit::Tokens if ctx.charged => Some(tokens),
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

fn period_name(p: crate::account::ledger::Period) -> &'static str {
    use crate::account::ledger::Period;
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
fn retry_headers(out: &mut Vec<u8>, retry_ms: u64) {
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
            let what = match quota.unit {
                Unit::Requests if !seen_requests => {
                    seen_requests = true;
                    "requests"
                }
                Unit::Tokens if !seen_tokens => {
                    seen_tokens = true;
                    "tokens"
                }
                _ => continue,
            };
            let remaining = (q.remaining(id).max(0) as u64).min(quota.cap);
            let reset_ms = (quota.cap - remaining) * 60_000 / quota.cap.max(1);
            let _ = write!(
                Buf(out),
                "x-ratelimit-limit-{what}: {}\r\nx-ratelimit-remaining-{what}: {remaining}\r\n\
                 x-ratelimit-reset-{what}: {}\r\n",
                quota.cap,
                duration(reset_ms)
            );
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

/// OpenAI's duration format: `120ms`, `1s`, `8.5s`, `6m0s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        if ms.is_multiple_of(1000) {
            format!("{}s", ms / 1000)
        } else {
            let s = format!("{}.{:03}", ms / 1000, ms % 1000);
            format!("{}s", s.trim_end_matches('0'))
        }
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
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
        assert_eq!(duration(360_000), "6m0s");
        assert_eq!(duration(61_500), "1m1s");
    }
}
