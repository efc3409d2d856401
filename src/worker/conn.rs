//! The phase driver: one request after another on a connection, every phase of a request
//! called in order from here (ARCHITECTURE.md, "The request path").

use super::admit::{Admission, Hop, admit};
use super::attempt::{
    Failure, attempts_header, forward_failed, forward_one, hedge_plan, hedged, judge_head,
    judge_relay, take_retry, usable, write_route_headers,
};
use super::plan::{divert, plan};
use super::relay::relay;
use super::*;
use crate::policy::auth::authenticate;
use crate::policy::failover::{Failed, Failover, Next};
use crate::telemetry::record::TryOutcome;

/// The connection loop: one request after another until the client closes, an error makes
/// the connection unusable, or the worker drains.
pub(super) async fn serve(w: &Rc<Worker>, mut io: ClientStream) {
    let mut c = Conn {
        buf: Vec::with_capacity(HEAD_READ_BYTES),
        head: RequestHead::new(),
        body: 0..0,
        next: 0,
        out: Vec::new(),
        ex: Exchange::default(),
        hedge: Exchange::default(),
        meter: Meter::default(),
        reserved: Vec::new(),
        cands: Vec::new(),
        order: Vec::new(),
    };
    loop {
        match read_head(w, &mut io, &mut c).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                // A head that could not be read: answer (best effort) and close.
                let mut ctx = RequestCtx::new(w, &c);
                respond_error(&mut io, &mut c, &mut ctx, &e).await;
                finish(w, &w.snapshot(), &ctx);
                return;
            }
        }
        // Until `read_body` says otherwise, the request is its head.
        c.body = c.head.head_len..c.head.head_len;
        c.next = c.head.head_len;
        let snap = w.snapshot();
        let mut ctx = RequestCtx::new(w, &c);
        ctx.generation = snap.generation;
        if let Some(t) = &snap.tracing {
            let parent = c.head.header(&c.buf, "traceparent");
            ctx.trace = Some(w.ids.borrow_mut().start(t, parent));
        }
        c.meter.reset();
        c.meter.guard = None;
        // Boxed: the request's phases (forward, relay, a hedge's two exchanges) need a large
        // state machine only while a request is served; a connection waiting for a head
        // holds ~6 KiB less without it (tests/lifecycle.rs, the slowloris test).
        let result = Box::pin(serve_request(w, &snap, &mut io, &mut c, &mut ctx)).await;
        if let Err(e) = result {
            ctx.error = Some(e.kind);
            if ctx.response_started {
                ctx.keep_alive &= ctx.response_ended;
            } else {
                ctx.keep_alive &= ctx.body_read;
                respond_error(&mut io, &mut c, &mut ctx, &e).await;
            }
        }
        settle(w, &snap, &mut c, &mut ctx);
        super::settle::journal_close(w, &mut ctx);
        settle_quotas(w, &snap, &mut c, &mut ctx);
        super::cache::store(w, &snap, &mut c, &mut ctx);
        ctx.guard = super::guard::note(&c);
        finish(w, &snap, &ctx);
        if !ctx.keep_alive {
            return;
        }
        c.buf.drain(..c.next);
        c.next = 0;
        for b in [
            &mut c.buf,
            &mut c.out,
            &mut c.ex.ureq,
            &mut c.ex.ubuf,
            &mut c.hedge.ureq,
            &mut c.hedge.ubuf,
        ] {
            if b.capacity() > KEEP_BUFFER_BYTES {
                b.shrink_to(HEAD_READ_BYTES);
            }
        }
    }
}

/// Every phase of one request after its head, in order (ARCHITECTURE.md, "The request path").
/// Returns with the response written, or the error for the connection loop to answer.
async fn serve_request(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    // route
    ctx.route = route(c.head.method, c.head.path(&c.buf))?;
    if matches!(ctx.route, Route::Health | Route::Ready) {
        read_body(snap, io, c, ctx).await?;
        let (status, body) = health(ctx.route, !w.drain.is_set());
        return respond_json(io, c, ctx, status, body).await;
    }
    // authenticate
    let now_s = ctx.start_unix_us / 1_000_000;
    let key = authenticate(snap, &c.head, &c.buf, now_s, |k| {
        w.disabled.borrow().is_disabled(snap.generation, k)
    })?;
    ctx.key = Some(key);
    ctx.log_hashes = snap.keys[key.0 as usize].log_content_sha256;
    // read_body
    read_body(snap, io, c, ctx).await?;
    if ctx.route == Route::Models {
        let k = &snap.keys[key.0 as usize];
        let lists = k.models_json.as_ref().unwrap_or(&snap.models_json);
        // Gemini's path, or a key sent Google's way, gets Google's shape (google-genai lists
        // on `/v1/models` too); the Anthropic SDK always sends its API version and gets
        // Anthropic's.
        let body = if super::respond::google_style(c) {
            &lists.gemini
        } else if c.head.header(&c.buf, "anthropic-version").is_some() {
            &lists.anthropic
        } else {
            &lists.openai
        };
        return respond_json(io, c, ctx, 200, body).await;
    }
    if ctx.route == Route::StoredResponse {
        return super::stored::stored_response(w, snap, io, c, ctx, key).await;
    }
    // guard: a key with guardrails has its request's text checked — redacted in the body
    // that goes on, or refused (a key without pays this one branch)
    if snap.keys[key.0 as usize].guard.is_some() {
        super::guard::guard_request(snap, c, key)?;
    }
    // parse_fields
    let f = parse_fields(w, snap, c, ctx)?;
    // cache: a hit answers here; a miss may lead the fill of the entry (a model without a
    // cache pays this one branch)
    if snap.models[f.model.0 as usize].cache.is_some()
        && super::cache::lookup(w, snap, io, c, ctx, &f).await?
    {
        return Ok(());
    }
    // plan
    plan(w, snap, c, ctx, &f)?;
    let mut failover = Failover::new(snap.routing.max_attempts);
    let headers_before = ctx.extra_head.len();
    loop {
        let (m, d) = c.cands[failover.index()];
        if ctx.trace.is_some_and(|t| t.sampled) {
            ctx.tries.begin(since_start(ctx));
        }
        let failure = 'attempt: {
            // admit: the first attempt reserves; a later one moves the deployment's limits
            if failover.admitted_on().is_none() {
                ctx.extra_head.truncate(headers_before);
            }
            let hop = Hop {
                from: failover.admitted_on(),
                to: d,
            };
            if let Admission::Refused(err) = admit(w, snap, c, ctx, &f, hop).await? {
                break 'attempt Failure::refused(err);
            }
            ctx.deployment = Some(d);
            ctx.attempt.retrying = hop.from.is_some();
            // on record before the provider is called: a kill from here on loses nothing
            super::admit::journal_open(w, snap, c, ctx, &f, d);
            c.meter.reset();
            ctx.status = 0;
            // translate → forward; a hedged attempt does both for two deployments and keeps
            // the first to answer
            let (up, served_by) = match hedge_plan(snap, c, (m, d)) {
                None => {
                    translate(w, snap, c, ctx, &f, d)?;
                    match forward_one(w, snap, c, ctx, &f, d).await {
                        Ok(up) => (up, d),
                        Err(failure) => break 'attempt failure,
                    }
                }
                Some(hedging) => match hedged(w, snap, c, ctx, &f, hedging).await {
                    Ok(answered) => answered,
                    Err(err) => break 'attempt forward_failed(w, snap, d, err),
                },
            };
            ctx.deployment = Some(served_by);
            // the response head: a status worth another attempt fails over here
            let mut up = match judge_head(w, snap, c, (m, served_by), up).await {
                Ok(up) => up,
                Err(failure) => break 'attempt failure,
            };
            // relay
            let mark = ctx.extra_head.len();
            write_route_headers(snap, ctx, &f, (m, served_by), usize::from(ctx.tries.n) + 1);
            let relayed = relay(w, snap, io, c, ctx, &mut up).await;
            match judge_relay(w, snap, ctx, served_by, mark, relayed) {
                Ok(done) => return done,
                Err(failure) => break 'attempt failure,
            }
        };
        // failover: the next candidate, or this failure goes to the client
        if ctx.trace.is_some_and(|t| t.sampled) {
            ctx.tries.end(since_start(ctx));
        }
        ctx.tries.push(d, failure.how);
        let diverted = divert(w, snap, c, ctx, (m, failover.index()), failure.how);
        let failed = Failed {
            tries: usize::from(ctx.tries.n),
            rate_limited: failure.how == TryOutcome::RateLimited,
            diverted,
            admitted: failure.how != TryOutcome::RateLimited,
        };
        let usable = |i: usize| usable(w, snap, c.cands[i].1);
        let take_retry = |d| take_retry(w, snap, d);
        let next = failover.next(failed, &c.cands, usable, take_retry);
        // An attempt given up on after it was sent may be billed all the same.
        let tried = ctx.deployment.unwrap_or(d);
        let retried = matches!(next, Next::Try { .. });
        super::settle::abandoned(w, snap, c, ctx, (&f, tried), (failure.how, retried));
        match next {
            Next::Try { backoff, .. } => {
                // The failed answer's connection is dropped before any wait.
                drop(failure);
                if let Some(n) = backoff {
                    monoio::time::sleep(super::attempt::backoff(w, snap, n)).await;
                }
            }
            Next::Stop => {
                // The last failure goes to the client as it is: the provider's own answer
                // (relayed), or the gateway's error.
                let n = usize::from(ctx.tries.n);
                return match failure.answer {
                    Some(mut up) => {
                        ctx.tries.list[n - 1] = Some((d, TryOutcome::Served));
                        write_route_headers(snap, ctx, &f, (m, d), n);
                        relay(w, snap, io, c, ctx, &mut up).await
                    }
                    None => {
                        attempts_header(ctx);
                        Err(failure.err)
                    }
                };
            }
        }
    }
}

/// µs since the request started (a traced attempt's start or end).
fn since_start(ctx: &RequestCtx) -> u32 {
    u32::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u32::MAX)
}

/// `/healthz` is always 200; `/readyz` is 503 once the worker drains.
fn health(route: Route, ready: bool) -> (u16, &'static [u8]) {
    match (route, ready) {
        (Route::Health, _) => (200, b"{\"status\":\"ok\"}"),
        (_, true) => (200, b"{\"status\":\"ready\"}"),
        (_, false) => (503, b"{\"status\":\"draining\"}"),
    }
}
