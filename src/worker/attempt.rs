//! One attempt's steps, called in order by the driver (`conn::serve_request`): translate and
//! forward (hedged or not), judge the response head, relay, judge how the relay ended — and
//! the failure an attempt leaves for the failover decision (`policy::failover`).
//!
//! An attempt fails over only while nothing has reached the client: on connect errors,
//! resets, timeouts (the response head, or the first body byte: the relay holds the head back
//! until the body starts), and 429/500/502/503/504/529 answers. A 400 that says the prompt is
//! too long, or that the content was refused, diverts to the model's `context_fallback` /
//! `policy_fallback`. After the first byte there is no second attempt: the relay ends a stream
//! with an error event.
//!
//! Hedging (`hedge_after_ms` on the model): an attempt whose deployment has sent no first body
//! byte by then is also sent to the next candidate of the same model; the first to send one
//! wins and is relayed, the other is cancelled and charged an estimate of its prompt.
//!
//! Every attempt's outcome goes into the deployment's health (circuit breaker, EWMA) and the
//! audit record; the response says which deployment served (`x-tollgate-deployment`), after
//! how many attempts (`x-tollgate-attempts`), and which fallback model, if one did
//! (`x-tollgate-fallback`).

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use super::{Conn, Exchange, Fields, Hedge, RequestCtx, Worker, forward, translate};
use crate::account::WorkerEvent;
use crate::config::{DeploymentId, ModelId, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::http1::{BodyDecoder, BodyKind};
use crate::policy::route::Outcome;
use crate::telemetry::record::TryOutcome;
use crate::upstream::Upstream;

/// Statuses worth another attempt elsewhere.
fn retryable_status(s: u16) -> bool {
    matches!(s, 429 | 500 | 502 | 503 | 504 | 529)
}

/// What a failed attempt leaves for the failover decision and, when no attempt follows, for
/// the client.
pub(super) struct Failure {
    pub err: GatewayError,
    pub how: TryOutcome,
    /// The provider's answer, relayed to the client if no other attempt follows.
    pub answer: Option<Box<Upstream>>,
}

impl Failure {
    /// The deployment's own rate limit refused the attempt: nothing was sent.
    pub(super) fn refused(err: GatewayError) -> Self {
        Failure {
            err,
            how: TryOutcome::RateLimited,
            answer: None,
        }
    }
}

/// A hedged attempt: `first` at once, `second` too if `first` has sent no first body byte
/// `after` it was sent.
#[derive(Clone, Copy, Debug)]
pub(super) struct HedgePlan {
    first: DeploymentId,
    second: DeploymentId,
    after: Duration,
}

/// Whether candidate `(m, d)` is hedged: the model has `hedge_after_ms` and another of its
/// deployments is among the candidates after this one.
pub(super) fn hedge_plan(
    snap: &Snapshot,
    c: &Conn,
    (m, d): (ModelId, DeploymentId),
) -> Option<HedgePlan> {
    let after = snap.models[m.0 as usize].hedge_after?;
    let at = c.cands.iter().position(|&x| x == (m, d))?;
    let second = c.cands[at + 1..]
        .iter()
        .find(|&&(m2, d2)| m2 == m && d2 != d)?
        .1;
    Some(HedgePlan {
        first: d,
        second,
        after,
    })
}

/// forward (the request `translate` built) to deployment `d`, and read the response head.
pub(super) async fn forward_one(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    d: DeploymentId,
) -> Result<Upstream, Failure> {
    let sent = Instant::now();
    ctx.attempt.sent_at = Some(sent);
    w.with_router(snap.generation, |r| {
        r.start(d, &snap.routing, ctx.attempt.retrying, sent)
    });
    let call = super::call_of(c, ctx, f);
    let attempts = Cell::new(ctx.attempts);
    let addrs = w.addrs.borrow().clone();
    let egress = w.egress(&addrs, &attempts);
    let r = forward(&egress, snap, &mut c.ex, &mut c.buf, &call, d).await;
    ctx.attempts = attempts.get();
    match r {
        Ok((up, us)) => {
            ctx.upstream_us = us;
            Ok(up)
        }
        Err(err) => Err(forward_failed(w, snap, d, err)),
    }
}

/// A forward to `d` that failed before any response head.
pub(super) fn forward_failed(
    w: &Worker,
    snap: &Snapshot,
    d: DeploymentId,
    err: GatewayError,
) -> Failure {
    let how = match err.kind {
        ErrorKind::UpstreamConnect | ErrorKind::UpstreamTls => TryOutcome::Connect,
        ErrorKind::UpstreamTimeout => TryOutcome::Timeout,
        _ => TryOutcome::Reset,
    };
    report(w, snap, d, Outcome::Failure { retry_after: None });
    Failure {
        err,
        how,
        answer: None,
    }
}

/// Judges the response head of candidate `(m, d)` before anything reaches the client: a
/// status worth another attempt, or a 400 the model has a targeted fallback for, is a failure.
pub(super) async fn judge_head(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    (m, d): (ModelId, DeploymentId),
    mut up: Upstream,
) -> Result<Upstream, Failure> {
    let status = c.ex.uhead.status;
    if retryable_status(status) {
        let retry_after = retry_after(c);
        report(w, snap, d, Outcome::Failure { retry_after });
        // The answer is kept: the client gets it if no attempt follows.
        return Err(Failure {
            err: GatewayError::new(
                ErrorKind::UpstreamProtocol,
                format!("the provider answered {status}"),
            ),
            how: TryOutcome::Status(status),
            answer: Some(Box::new(up)),
        });
    }
    let model = &snap.models[m.0 as usize];
    if status == 400
        && (model.context_fallback.is_some() || model.policy_fallback.is_some())
        && let Some(how) = classify_400(snap, c, &mut up).await
    {
        report(w, snap, d, Outcome::Neutral);
        return Err(Failure {
            err: GatewayError::new(ErrorKind::UpstreamProtocol, "the provider answered 400"),
            how,
            answer: Some(Box::new(up)),
        });
    }
    Ok(up)
}

/// How the relay of deployment `d`'s answer ended: done (served, or failed past the point of
/// retrying — the client got bytes, or left), or a failure another attempt may still answer
/// (nothing reached the client). `mark` is where this attempt's response headers start.
pub(super) fn judge_relay(
    w: &Worker,
    snap: &Snapshot,
    ctx: &mut RequestCtx,
    d: DeploymentId,
    mark: usize,
    relayed: Result<(), GatewayError>,
) -> Result<Result<(), GatewayError>, Failure> {
    match relayed {
        Ok(()) => {
            let sent = ctx.attempt.sent_at.unwrap_or(ctx.started);
            let ttft_us = ctx
                .attempt
                .first_byte_at
                .map_or(0, |t| t.saturating_duration_since(sent).as_micros() as u64);
            report(w, snap, d, Outcome::Success { ttft_us });
            ctx.tries.push(d, TryOutcome::Served);
            Ok(Ok(()))
        }
        // Nothing reached the client: a stall or reset before the first byte fails over.
        Err(err) if !ctx.response_started && err.retry => {
            ctx.extra_head.truncate(mark);
            report(w, snap, d, Outcome::Failure { retry_after: None });
            let how = if err.kind == ErrorKind::UpstreamTimeout {
                TryOutcome::Timeout
            } else {
                TryOutcome::Reset
            };
            Err(Failure {
                err,
                how,
                answer: None,
            })
        }
        Err(err) => {
            // The provider answered: a client gone or a guardrail's block is not its failure.
            let outcome =
                if err.kind == ErrorKind::ClientClosed || err.kind == ErrorKind::GuardrailBlocked {
                    Outcome::Neutral
                } else {
                    Outcome::Failure { retry_after: None }
                };
            report(w, snap, d, outcome);
            ctx.tries.push(d, TryOutcome::Served);
            Ok(Err(err))
        }
    }
}

/// Whether deployment `d`'s circuit lets a request through now.
pub(super) fn usable(w: &Worker, snap: &Snapshot, d: DeploymentId) -> bool {
    let now = Instant::now();
    w.with_router(snap.generation, |r| r.usable(d, now))
        .unwrap_or(true)
}

/// Spends one of deployment `d`'s retries; false when its retry budget is spent.
pub(super) fn take_retry(w: &Worker, snap: &Snapshot, d: DeploymentId) -> bool {
    w.with_router(snap.generation, |r| r.take_retry(d))
        .unwrap_or(true)
}

/// Exponential backoff with full jitter: uniform in [0, min(base × 2^(n−1), max)].
pub(super) fn backoff(w: &Worker, snap: &Snapshot, n: u32) -> Duration {
    let r = &snap.routing;
    let ceiling = r
        .backoff
        .saturating_mul(1 << n.saturating_sub(1).min(16))
        .min(r.backoff_max);
    let x = w
        .with_router(snap.generation, |r| r.random())
        .unwrap_or(u64::MAX / 2);
    Duration::from_nanos(((ceiling.as_nanos() * u128::from(x >> 11)) >> 53) as u64)
}

/// Reports attempt `d`'s outcome to the deployment's health (breaker, EWMA); a breaker change
/// goes to the coordinator for the other workers.
fn report(w: &Worker, snap: &Snapshot, d: DeploymentId, outcome: Outcome) {
    let change = w
        .with_router(snap.generation, |r| {
            r.finish(d, outcome, &snap.routing, Instant::now())
        })
        .flatten();
    if let Some(change) = change {
        w.emit(WorkerEvent::Breaker {
            worker: w.id,
            generation: snap.generation,
            deployment: d,
            change,
        });
    }
}

/// The provider's `retry-after` (seconds, or `retry-after-ms`).
fn retry_after(c: &Conn) -> Option<Duration> {
    let h = &c.ex.uhead;
    let num = |v: &[u8]| std::str::from_utf8(v).ok()?.trim().parse::<f64>().ok();
    if let Some(ms) = h.header(&c.ex.ubuf, "retry-after-ms").and_then(num) {
        return Some(Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 86_400.0)));
    }
    h.header(&c.ex.ubuf, "retry-after")
        .and_then(num)
        .map(|s| Duration::from_secs_f64(s.clamp(0.0, 86_400.0)))
}

/// Phrases providers use when a prompt does not fit the model's context.
const CONTEXT_MARKERS: &[&[u8]] = &[
    b"context_length_exceeded",
    b"maximum context length",
    b"prompt is too long",
    b"input is too long",
];
/// And when they refuse content.
const POLICY_MARKERS: &[&[u8]] = &[
    b"content_policy_violation",
    b"content_filter",
    b"content policy",
];

/// Reads a 400's body (up to 64 KiB, within the head timeout) and says whether it is a
/// context-length or content-policy refusal. The body stays in `c.ex.ubuf` for the relay.
async fn classify_400(snap: &Snapshot, c: &mut Conn, up: &mut Upstream) -> Option<TryOutcome> {
    const MAX: usize = 64 * 1024;
    let deadline = Instant::now() + snap.upstream.head;
    loop {
        let body = &c.ex.ubuf[c.ex.uhead.head_len..];
        let complete = match c.ex.uhead.body {
            BodyKind::Length(n) => body.len() as u64 >= n,
            BodyKind::Chunked => body.ends_with(b"0\r\n\r\n"),
            _ => true,
        };
        if complete || body.len() > MAX {
            let has = |ms: &[&[u8]]| ms.iter().any(|m| memchr::memmem::find(body, m).is_some());
            return if has(CONTEXT_MARKERS) {
                Some(TryOutcome::ContextLength)
            } else if has(POLICY_MARKERS) {
                Some(TryOutcome::ContentPolicy)
            } else {
                None
            };
        }
        if read_before(&mut c.ex, up, deadline).await != Some(true) {
            return None;
        }
    }
}

/// Reads more of the response into `ex.ubuf` before `deadline`: `Some(true)` when bytes
/// arrived, `Some(false)` at the end of the stream or on an error, `None` when time ran out.
async fn read_before(ex: &mut Exchange, up: &mut Upstream, deadline: Instant) -> Option<bool> {
    let left = deadline.saturating_duration_since(Instant::now());
    let buf = std::mem::take(&mut ex.ubuf);
    match monoio::time::timeout(left, up.read_more(buf, 16 * 1024)).await {
        Ok((res, buf)) => {
            ex.ubuf = buf;
            Some(matches!(res, Ok(n) if n > 0))
        }
        Err(_) => None,
    }
}

/// `x-tollgate-deployment`, `x-tollgate-attempts` and (when a fallback model serves)
/// `x-tollgate-fallback`.
pub(super) fn write_route_headers(
    snap: &Snapshot,
    ctx: &mut RequestCtx,
    f: &Fields,
    (m, d): (ModelId, DeploymentId),
    attempts: usize,
) {
    let out = &mut ctx.extra_head;
    out.extend_from_slice(b"x-tollgate-deployment: ");
    out.extend_from_slice(snap.deployment(d).name.as_bytes());
    out.extend_from_slice(b"\r\nx-tollgate-attempts: ");
    out.extend_from_slice(itoa::Buffer::new().format(attempts).as_bytes());
    out.extend_from_slice(b"\r\n");
    match ctx.attempt.hedge {
        Hedge::None => {}
        Hedge::PrimaryWon => out.extend_from_slice(b"x-tollgate-hedge: primary\r\n"),
        Hedge::SecondWon => out.extend_from_slice(b"x-tollgate-hedge: hedge\r\n"),
    }
    if m != f.model {
        out.extend_from_slice(b"x-tollgate-fallback: ");
        out.extend_from_slice(snap.models[m.0 as usize].name.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// `x-tollgate-attempts` on an error the gateway answers itself after every attempt failed.
pub(super) fn attempts_header(ctx: &mut RequestCtx) {
    let out = &mut ctx.extra_head;
    out.extend_from_slice(b"x-tollgate-attempts: ");
    out.extend_from_slice(itoa::Buffer::new().format(ctx.tries.n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A hedged forward: `d.0` at once, and `d.1` too if `d.0` has sent no first body byte after
/// `after`. The first to send one (or an error status) wins: its exchange ends up in `c.ex`;
/// the other is dropped — cancelled mid-flight — and, if it had been sent, charged an
/// estimate of its prompt (providers bill what they were sent). Fails only when `d.0` failed
/// and `d.1` failed too or had not been sent; `d.1`'s failure is recorded here.
pub(super) async fn hedged(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    HedgePlan {
        first: d,
        second: d2,
        after,
    }: HedgePlan,
) -> Result<(Upstream, DeploymentId), GatewayError> {
    let retry = ctx.attempt.retrying;
    // The hedge's request, whole (its tail copied out of the client's buffer).
    translate(w, snap, c, ctx, f, d2)?;
    c.hedge.pair = c.ex.pair;
    c.hedge.ureq.clear();
    c.hedge.ureq.extend_from_slice(&c.ex.ureq);
    if let Some(t) = c.ex.ureq_tail.clone() {
        c.hedge.ureq.extend_from_slice(&c.buf[t]);
    }
    c.hedge.ureq_tail = None;
    let hedge_body = ctx.attempt.upstream_body_bytes;
    translate(w, snap, c, ctx, f, d)?;
    let call = super::call_of(c, ctx, f);
    let attempts = Cell::new(ctx.attempts);
    let addrs = w.addrs.borrow().clone();
    let egress = w.egress(&addrs, &attempts);
    let hedge_sent: Cell<Option<Instant>> = Cell::new(None);
    let ttft = snap.upstream.ttft;
    let sent = Instant::now();
    w.with_router(snap.generation, |r| r.start(d, &snap.routing, retry, sent));
    let outcome = {
        let Conn { ex, hedge, buf, .. } = &mut *c;
        let mut spare = Vec::new();
        let primary = pin!(async {
            let (mut up, us) = forward(&egress, snap, ex, buf, &call, d).await?;
            first_byte(ex, &mut up, sent + ttft).await?;
            Ok::<_, GatewayError>((up, us))
        });
        let second = pin!(async {
            monoio::time::sleep(after).await;
            let t = Instant::now();
            hedge_sent.set(Some(t));
            w.with_router(snap.generation, |r| r.start(d2, &snap.routing, true, t));
            let (mut up, us) = forward(&egress, snap, hedge, &mut spare, &call, d2).await?;
            first_byte(hedge, &mut up, t + ttft).await?;
            Ok::<_, GatewayError>((up, us))
        });
        race(primary, second, &hedge_sent).await
    };
    ctx.attempts = attempts.get();
    let charge_loser = |w: &Worker, ctx: &mut RequestCtx, loser: DeploymentId, body: u64| {
        let usage = crate::usage::Usage {
            input_tokens: crate::usage::estimate_tokens(body).max(1),
            ..crate::usage::Usage::default()
        };
        let cost = snap.deployment(loser).price.cost(&usage);
        ctx.abandoned_cost_micro_usd += cost;
        ctx.abandoned_tokens += usage.input_tokens;
        if let Some(key) = ctx.key {
            let last = false; // the winner's charge follows
            let c = super::settle::Charge::new(usage, true, cost, last);
            super::settle::charge(w, snap, ctx, key, c);
        }
        ctx.tries.push(loser, TryOutcome::HedgeLost);
        report(w, snap, loser, Outcome::Neutral);
    };
    match outcome {
        Raced::First(Ok((up, us))) => {
            ctx.attempt.sent_at = Some(sent);
            ctx.upstream_us = us;
            if hedge_sent.get().is_some() {
                ctx.attempt.hedge = Hedge::PrimaryWon;
                charge_loser(w, ctx, d2, hedge_body);
            }
            Ok((up, d))
        }
        Raced::Second(Ok((up, us))) => {
            std::mem::swap(&mut c.ex, &mut c.hedge);
            ctx.attempt.sent_at = hedge_sent.get();
            ctx.upstream_us = us;
            ctx.attempt.hedge = Hedge::SecondWon;
            let primary_body = std::mem::replace(&mut ctx.attempt.upstream_body_bytes, hedge_body);
            charge_loser(w, ctx, d, primary_body);
            Ok((up, d2))
        }
        Raced::First(Err(e)) | Raced::Second(Err(e)) => {
            if hedge_sent.get().is_some() {
                report(w, snap, d2, Outcome::Failure { retry_after: None });
                ctx.tries.push(d2, TryOutcome::Timeout);
            }
            Err(e)
        }
    }
}

/// Which of a hedged pair settled the race.
enum Raced<T> {
    First(T),
    Second(T),
}

/// Waits for the first of `a` and `b` to succeed. A failure of one leaves the race to the
/// other — unless `b` has not started (`b_started` unset): then `a`'s failure ends it.
/// Returns the last failure when both failed.
async fn race<T, E>(
    mut a: std::pin::Pin<&mut impl Future<Output = Result<T, E>>>,
    mut b: std::pin::Pin<&mut impl Future<Output = Result<T, E>>>,
    b_started: &Cell<Option<Instant>>,
) -> Raced<Result<T, E>> {
    let mut a_err: Option<E> = None;
    let mut b_err: Option<E> = None;
    std::future::poll_fn(|cx| {
        if a_err.is_none()
            && let Poll::Ready(r) = a.as_mut().poll(cx)
        {
            match r {
                Ok(t) => return Poll::Ready(Raced::First(Ok(t))),
                Err(e) => a_err = Some(e),
            }
        }
        if b_err.is_none()
            && let Poll::Ready(r) = b.as_mut().poll(cx)
        {
            match r {
                Ok(t) => return Poll::Ready(Raced::Second(Ok(t))),
                Err(e) => b_err = Some(e),
            }
        }
        match (a_err.is_some(), b_err.is_some()) {
            (true, true) => Poll::Ready(Raced::Second(Err(b_err
                .take()
                .unwrap_or_else(|| unreachable!("checked above"))))),
            (true, false) if b_started.get().is_none() => Poll::Ready(Raced::First(Err(a_err
                .take()
                .unwrap_or_else(|| unreachable!("checked above"))))),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Reads until a 2xx response's body has its first byte (or has ended): what a hedged pair
/// races for. Other statuses need no wait.
async fn first_byte(
    ex: &mut Exchange,
    up: &mut Upstream,
    deadline: Instant,
) -> Result<(), GatewayError> {
    if !(200..300).contains(&ex.uhead.status) {
        return Ok(());
    }
    loop {
        if let Ok(mut dec) = BodyDecoder::new(ex.uhead.body, u64::MAX) {
            let mut pos = ex.uhead.head_len;
            loop {
                match dec.decode(&ex.ubuf[pos..]) {
                    Ok(s) if s.done || !s.data.is_empty() => return Ok(()),
                    Ok(s) if s.consumed > 0 => pos += s.consumed,
                    Ok(_) => break,
                    // The relay reports it.
                    Err(_) => return Ok(()),
                }
            }
        } else {
            return Ok(());
        }
        match read_before(ex, up, deadline).await {
            Some(true) => {}
            // End of stream or an error: the relay reports it.
            Some(false) => return Ok(()),
            None => {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamTimeout,
                    "the provider sent no first token in time",
                )
                .retryable(true));
            }
        }
    }
}
