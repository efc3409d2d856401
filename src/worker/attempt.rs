//! The plan, forward and relay phases with failover: which deployments a request may try, in
//! what order, and what happens when one fails.
//!
//! The candidates are the requested model's usable deployments, best first by its strategy
//! (`policy::route`), then those of its fallback models the key may use. Each attempt is
//! admitted (budgets, rate limits — the first; later ones move the deployment's own rate
//! limits to the new deployment), translated for its deployment and forwarded.
//!
//! An attempt fails over — to the next candidate, at once, or to the same deployment again
//! after a backoff with full jitter — only while nothing has reached the client: on connect
//! errors, resets, timeouts (the response head, or the first body byte: the relay holds the
//! head back until the body starts), and 429/500/502/503/504/529 answers. Another attempt
//! needs one left (`routing.max_attempts`) and the failed deployment's retry budget. The last
//! failure goes to the client as it is (the provider's own error response, with its
//! `retry-after`). A 400 that says the prompt is too long, or that the content was refused,
//! diverts to the model's `context_fallback` / `policy_fallback`. After the first byte there
//! is no second attempt: the relay ends a stream with an SSE error event.
//!
//! Hedging (`hedge_after_ms` on the model): an attempt whose deployment has sent no first body
//! byte by then is also sent to the next candidate of the same model; the first to send one
//! wins and is relayed, the other is cancelled and charged an estimate of its prompt.
//!
//! Every attempt's outcome goes into the deployment's health (circuit breaker, EWMA) and the
//! audit record; the response says which deployment served (`x-tollgate-deployment`), after
//! how many attempts (`x-tollgate-attempts`), and which fallback model, if one did
//! (`x-tollgate-fallback`).

use std::time::{Duration, Instant};

use crate::net::ClientStream;

use super::relay::relay;
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use super::{Conn, Exchange, Fields, Hedge, RequestCtx, Worker, admit, forward, translate};
use crate::account::WorkerEvent;
use crate::config::{DeploymentId, ModelId, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::http1::{BodyDecoder, BodyKind};
use crate::policy::route::{Outcome, session_hash};
use crate::telemetry::record::{Route, TryOutcome};
use crate::upstream::Upstream;

/// Statuses worth another attempt elsewhere.
fn retryable_status(s: u16) -> bool {
    matches!(s, 429 | 500 | 502 | 503 | 504 | 529)
}

/// What a failed attempt leaves for the next one.
struct Failure {
    err: GatewayError,
    how: TryOutcome,
    /// The provider's answer, relayed to the client if no other attempt follows.
    answer: Option<Upstream>,
}

pub(super) async fn route_and_forward(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
) -> Result<(), GatewayError> {
    let now = Instant::now();
    // The header wins over the body's `prompt_cache_key` / `user`.
    let session = c
        .head
        .header(&c.buf, "x-tollgate-session")
        .filter(|s| !s.is_empty())
        .map(session_hash)
        .or(f.session);
    c.cands.clear();
    push_model(w, snap, c, ctx.route, f.model, session, now);
    for &fb in &snap.models[f.model.0 as usize].fallbacks {
        if allowed(snap, ctx, fb) {
            push_model(w, snap, c, ctx.route, fb, session, now);
        }
    }
    if c.cands.is_empty()
        && !snap.models[f.model.0 as usize]
            .deployments
            .iter()
            .any(|&d| speaks(snap, ctx.route, d))
    {
        return Err(GatewayError::new(
            ErrorKind::InvalidBody,
            format!(
                "The model `{}` is not served by a provider that can answer {} (Anthropic \
                 and Gemini providers answer chat completions only).",
                snap.models[f.model.0 as usize].name,
                if ctx.route == Route::Messages {
                    "Anthropic's Messages API"
                } else {
                    "this endpoint"
                }
            ),
        )
        .param("model"));
    }
    if c.cands.is_empty() {
        let mut deps = snap.models[f.model.0 as usize].deployments.clone();
        for &fb in &snap.models[f.model.0 as usize].fallbacks {
            deps.extend_from_slice(&snap.models[fb.0 as usize].deployments);
        }
        let wait = w
            .with_router(snap.generation, |r| r.soonest(&deps, now))
            .unwrap_or(Duration::from_secs(1));
        admit::retry_headers(&mut ctx.extra_head, (wait.as_millis() as u64).max(1));
        return Err(GatewayError::new(
            ErrorKind::NoHealthyDeployment,
            format!(
                "Every deployment of `{}` (and of its fallbacks) is cooling down after \
                 failures; retry shortly.",
                snap.models[f.model.0 as usize].name
            ),
        ));
    }
    let max = snap.routing.max_attempts as usize;
    let base = ctx.extra_head.len();
    let mut i = 0;
    let mut prev: Option<DeploymentId> = None;
    let mut same_in_a_row = 0u32;
    loop {
        let (m, d) = c.cands[i];
        if prev.is_none() {
            // A fresh admission writes its own rate-limit headers.
            ctx.extra_head.truncate(base);
        }
        // Admission: the first attempt reserves; later ones move the deployment's limits.
        let refused = match prev {
            None => match admit::admit(w, snap, c, ctx, f, d).await {
                Ok(()) => None,
                // The key's own limits: final. The deployment's: try another.
                Err(e) if !ctx.refused_by_deployment || c.cands.len() == 1 => return Err(e),
                Err(e) => Some(e),
            },
            Some(p) => admit::switch_deployment(w, snap, c, ctx, f, p, d)
                .await
                .err(),
        };
        ctx.refused_by_deployment = false;
        let admitted = refused.is_none();
        let step = match refused {
            None => {
                ctx.deployment = Some(d);
                let hedge_to = c.cands[i + 1..]
                    .iter()
                    .find(|&&(m2, d2)| m2 == m && d2 != d)
                    .map(|&(_, d2)| d2);
                attempt(w, snap, io, c, ctx, f, m, d, hedge_to, prev.is_some()).await
            }
            Some(err) => Err(Failure {
                err,
                how: TryOutcome::RateLimited,
                answer: None,
            }),
        };
        let failure = match step {
            Ok(r) => return r,
            Err(f) => f,
        };
        ctx.tries.push(d, failure.how);
        // A targeted fallback?
        let divert = match failure.how {
            TryOutcome::ContextLength => snap.models[m.0 as usize].context_fallback,
            TryOutcome::ContentPolicy => snap.models[m.0 as usize].policy_fallback,
            _ => None,
        }
        .filter(|&fb| allowed(snap, ctx, fb));
        if let Some(fb) = divert {
            let at = c.cands.len();
            push_model(w, snap, c, ctx.route, fb, session, Instant::now());
            let added: Vec<(ModelId, DeploymentId)> = c.cands.drain(at..).collect();
            c.cands.splice(i + 1..i + 1, added);
        }
        let next = if usize::from(ctx.tries.n) >= max {
            None
        } else if divert.is_some() {
            (i + 1 < c.cands.len()).then_some(i + 1)
        } else {
            next_candidate(w, snap, c, i)
        };
        let retry = next.filter(|_| {
            failure.how == TryOutcome::RateLimited
                || divert.is_some()
                || w.with_router(snap.generation, |r| r.take_retry(d))
                    .unwrap_or(true)
        });
        let Some(next) = retry else {
            // No attempt follows: the client gets this one's answer (or error).
            return match failure.answer {
                Some(mut up) => {
                    let n = usize::from(ctx.tries.n);
                    ctx.tries.list[n - 1] = Some((d, TryOutcome::Served));
                    write_route_headers(snap, ctx, f, m, d, n);
                    relay(w, snap, io, c, ctx, &mut up).await
                }
                None => {
                    let out = &mut ctx.extra_head;
                    out.extend_from_slice(b"x-tollgate-attempts: ");
                    out.extend_from_slice(itoa::Buffer::new().format(ctx.tries.n).as_bytes());
                    out.extend_from_slice(b"\r\n");
                    Err(failure.err)
                }
            };
        };
        drop(failure.answer);
        let same = c.cands[next].1 == d;
        same_in_a_row = if same { same_in_a_row + 1 } else { 0 };
        if same {
            monoio::time::sleep(backoff(w, snap, same_in_a_row)).await;
        }
        prev = if admitted { Some(d) } else { prev };
        i = next;
    }
}

/// One attempt on deployment `d`: `Ok` when it answered the client (or failed past the
/// point of retrying), `Err` with what to do next otherwise.
#[allow(clippy::too_many_arguments)]
async fn attempt(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    m: ModelId,
    d: DeploymentId,
    hedge_to: Option<DeploymentId>,
    retry: bool,
) -> Result<Result<(), GatewayError>, Failure> {
    c.meter.reset();
    ctx.status = 0;
    let result = match snap.models[m.0 as usize].hedge_after.zip(hedge_to) {
        Some((after, d2)) => hedged(w, snap, c, ctx, f, (d, d2), after, retry).await,
        None => {
            if let Err(e) = translate(w, snap, c, ctx, f, d) {
                return Ok(Err(e));
            }
            let sent = Instant::now();
            ctx.sent_at = Some(sent);
            w.with_router(snap.generation, |r| r.start(d, &snap.routing, retry, sent));
            let call = super::call_of(c, ctx, f);
            let attempts = Cell::new(ctx.attempts);
            let addrs = w.addrs.borrow().clone();
            let r = forward(&w.egress(&addrs, &attempts), snap, &mut c.ex, &mut c.buf, &call, d).await;
            ctx.attempts = attempts.get();
            r.map(|(up, us)| {
                ctx.upstream_us = us;
                (up, d)
            })
        }
    };
    let (mut up, d) = match result {
        Ok(x) => x,
        Err(err) => {
            let how = match err.kind {
                ErrorKind::UpstreamConnect | ErrorKind::UpstreamTls => TryOutcome::Connect,
                ErrorKind::UpstreamTimeout => TryOutcome::Timeout,
                _ => TryOutcome::Reset,
            };
            finish(w, snap, d, Outcome::Failure { retry_after: None });
            return Err(Failure {
                err,
                how,
                answer: None,
            });
        }
    };
    ctx.deployment = Some(d);
    let status = c.ex.uhead.status;
    if retryable_status(status) {
        let retry_after = retry_after(c);
        finish(w, snap, d, Outcome::Failure { retry_after });
        return Err(Failure {
            err: GatewayError::new(
                ErrorKind::UpstreamProtocol,
                format!("the provider answered {status}"),
            ),
            how: TryOutcome::Status(status),
            answer: Some(up),
        });
    }
    let model = &snap.models[m.0 as usize];
    if status == 400 && (model.context_fallback.is_some() || model.policy_fallback.is_some()) {
        let how = classify_400(snap, c, &mut up).await;
        if let Some(how) = how {
            finish(w, snap, d, Outcome::Neutral);
            return Err(Failure {
                err: GatewayError::new(ErrorKind::UpstreamProtocol, "the provider answered 400"),
                how,
                answer: Some(up),
            });
        }
    }
    let mark = ctx.extra_head.len();
    write_route_headers(snap, ctx, f, m, d, usize::from(ctx.tries.n) + 1);
    let r = relay(w, snap, io, c, ctx, &mut up).await;
    match r {
        Ok(()) => {
            let sent = ctx.sent_at.unwrap_or(ctx.started);
            let ttft_us = ctx
                .first_byte_at
                .map_or(0, |t| t.saturating_duration_since(sent).as_micros() as u64);
            finish(w, snap, d, Outcome::Success { ttft_us });
            ctx.tries.push(d, TryOutcome::Served);
            Ok(Ok(()))
        }
        // Nothing reached the client: a stall or reset before the first byte fails over.
        Err(err) if !ctx.response_started && err.retry => {
            ctx.extra_head.truncate(mark);
            finish(w, snap, d, Outcome::Failure { retry_after: None });
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
            let outcome = if err.kind == ErrorKind::ClientClosed {
                Outcome::Neutral
            } else {
                Outcome::Failure { retry_after: None }
            };
            finish(w, snap, d, outcome);
            ctx.tries.push(d, TryOutcome::Served);
            Ok(Err(err))
        }
    }
}

/// Appends model `m`'s usable deployments, best first, to the candidates.
fn push_model(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    route: Route,
    m: ModelId,
    session: Option<u64>,
    now: Instant,
) {
    c.order.clear();
    let ordered = w.with_router(snap.generation, |r| {
        r.order(snap, m, session, now, &mut c.order);
    });
    if ordered.is_none() {
        // A request still on a replaced snapshot: its deployments in order, no health.
        c.order
            .extend_from_slice(&snap.models[m.0 as usize].deployments);
    }
    // Only providers that speak the client's API (no translation yet).
    c.cands.extend(
        c.order
            .iter()
            .filter(|&&d| speaks(snap, route, d))
            .map(|&d| (m, d)),
    );
}

/// The next candidate after `i` whose circuit lets a request through (wrapping around: a
/// model with one deployment retries it).
fn next_candidate(w: &Worker, snap: &Snapshot, c: &Conn, i: usize) -> Option<usize> {
    let n = c.cands.len();
    let now = Instant::now();
    (1..=n).map(|k| (i + k) % n).find(|&j| {
        w.with_router(snap.generation, |r| r.usable(c.cands[j].1, now))
            .unwrap_or(true)
    })
}

/// Whether deployment `d`'s provider can answer `route`: in the client's own dialect, or
/// through a translation (Chat Completions ⇄ Messages, Chat Completions → Gemini). The
/// built-in mock speaks every dialect.
fn speaks(snap: &Snapshot, route: Route, d: DeploymentId) -> bool {
    let Some(provider) = snap.provider(snap.deployment(d).provider).kind.dialect() else {
        return true;
    };
    match route {
        Route::Messages | Route::ChatCompletions => {
            let client = super::client_dialect(route);
            provider == client || crate::translate::Pair::between(client, provider).is_some()
        }
        _ => provider == crate::dialect::Dialect::OpenAi,
    }
}

fn allowed(snap: &Snapshot, ctx: &RequestCtx, m: ModelId) -> bool {
    ctx.key.is_none_or(|k| snap.keys[k.0 as usize].allows(m))
}

/// Exponential backoff with full jitter: uniform in [0, min(base × 2^(n−1), max)].
fn backoff(w: &Worker, snap: &Snapshot, n: u32) -> Duration {
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

fn finish(w: &Worker, snap: &Snapshot, d: DeploymentId, outcome: Outcome) {
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
fn write_route_headers(
    snap: &Snapshot,
    ctx: &mut RequestCtx,
    f: &Fields,
    m: ModelId,
    d: DeploymentId,
    attempts: usize,
) {
    let out = &mut ctx.extra_head;
    out.extend_from_slice(b"x-tollgate-deployment: ");
    out.extend_from_slice(snap.deployment(d).name.as_bytes());
    out.extend_from_slice(b"\r\nx-tollgate-attempts: ");
    out.extend_from_slice(itoa::Buffer::new().format(attempts).as_bytes());
    out.extend_from_slice(b"\r\n");
    match ctx.hedge {
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

/// A hedged forward: `d.0` at once, and `d.1` too if `d.0` has sent no first body byte after
/// `after`. The first to send one (or an error status) wins: its exchange ends up in `c.ex`;
/// the other is dropped — cancelled mid-flight — and, if it had been sent, charged an
/// estimate of its prompt (providers bill what they were sent). Fails only when `d.0` failed
/// and `d.1` failed too or had not been sent; `d.1`'s failure is recorded here.
#[allow(clippy::too_many_arguments)]
async fn hedged(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    (d, d2): (DeploymentId, DeploymentId),
    after: Duration,
    retry: bool,
) -> Result<(Upstream, DeploymentId), GatewayError> {
    // The hedge's request, whole (its tail copied out of the client's buffer).
    translate(w, snap, c, ctx, f, d2)?;
    c.hedge.pair = c.ex.pair;
    c.hedge.ureq.clear();
    c.hedge.ureq.extend_from_slice(&c.ex.ureq);
    if let Some(t) = c.ex.ureq_tail.clone() {
        c.hedge.ureq.extend_from_slice(&c.buf[t]);
    }
    c.hedge.ureq_tail = None;
    let hedge_body = ctx.upstream_body_bytes;
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
        ctx.hedge_cost_micro_usd += cost;
        ctx.hedge_tokens += usage.input_tokens;
        if let Some(key) = ctx.key {
            let direct = w
                .spend
                .borrow_mut()
                .charge(ctx.generation, key, &usage, true, cost);
            if let Some(e) = direct {
                w.emit(e);
            }
        }
        ctx.tries.push(loser, TryOutcome::HedgeLost);
        finish(w, snap, loser, Outcome::Neutral);
    };
    match outcome {
        Raced::First(Ok((up, us))) => {
            ctx.sent_at = Some(sent);
            ctx.upstream_us = us;
            if hedge_sent.get().is_some() {
                ctx.hedge = Hedge::PrimaryWon;
                charge_loser(w, ctx, d2, hedge_body);
            }
            Ok((up, d))
        }
        Raced::Second(Ok((up, us))) => {
            std::mem::swap(&mut c.ex, &mut c.hedge);
            ctx.sent_at = hedge_sent.get();
            ctx.upstream_us = us;
            ctx.hedge = Hedge::SecondWon;
            let primary_body = std::mem::replace(&mut ctx.upstream_body_bytes, hedge_body);
            charge_loser(w, ctx, d, primary_body);
            Ok((up, d2))
        }
        Raced::First(Err(e)) | Raced::Second(Err(e)) => {
            if hedge_sent.get().is_some() {
                finish(w, snap, d2, Outcome::Failure { retry_after: None });
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
