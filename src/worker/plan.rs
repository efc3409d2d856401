//! The plan phase: the deployments a request may try, in order — the requested model's usable
//! deployments, best first by its strategy (`policy::route`), then those of its fallback models
//! the key may use — and, after a context-length or content-policy refusal, the targeted
//! fallback's deployments inserted next.

use std::time::{Duration, Instant};

use super::{Conn, Fields, RequestCtx, Worker, admit};
use crate::config::{DeploymentId, ModelId, Snapshot};
use crate::dialect::Dialect;
use crate::error::{ErrorKind, GatewayError};
use crate::policy::route::session_hash;
use crate::telemetry::record::{Route, TryOutcome};

/// Fills `c.cands`. Fails when no provider of the model can answer the client's API, or when
/// every candidate is cooling down after failures (with `retry-after` set to the soonest
/// reopening); one whose provider only asked to wait is a last resort.
pub(super) fn plan(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
) -> Result<(), GatewayError> {
    let now = Instant::now();
    // The header wins over the body's `prompt_cache_key` / `user`.
    ctx.session = c
        .head
        .header(&c.buf, "x-tollgate-session")
        .filter(|s| !s.is_empty())
        .map(session_hash)
        .or(f.session);
    c.cands.clear();
    push_model(w, snap, c, ctx, f.model, now);
    for &fb in &snap.models[f.model.0 as usize].fallbacks {
        if allowed(snap, ctx, fb) {
            push_model(w, snap, c, ctx, fb, now);
        }
    }
    if c.cands.is_empty() {
        last_resort(w, snap, c, ctx, f.model);
    }
    if !c.cands.is_empty() {
        return Ok(());
    }
    let model = &snap.models[f.model.0 as usize];
    if !model
        .deployments
        .iter()
        .any(|&d| speaks(snap, ctx.route, d))
    {
        return Err(GatewayError::new(
            ErrorKind::InvalidBody,
            format!(
                "The model `{}` is not served by a provider that can answer {}.",
                model.name, "this endpoint (only OpenAI Chat Completions providers answer it)"
            ),
        )
        .param("model"));
    }
    let mut deps = model.deployments.clone();
    for &fb in &model.fallbacks {
        deps.extend_from_slice(&snap.models[fb.0 as usize].deployments);
    }
    let wait = w
        .with_router(snap.generation, |r| r.soonest(&deps, now))
        .unwrap_or(Duration::from_secs(1));
    admit::retry_headers(&mut ctx.extra_head, (wait.as_millis() as u64).max(1));
    Err(GatewayError::new(
        ErrorKind::NoHealthyDeployment,
        format!(
            "Every deployment of `{}` (and of its fallbacks) is cooling down after failures; \
             retry shortly.",
            model.name
        ),
    ))
}

/// After a refusal of the kind model `m` has a targeted fallback for (context length, content
/// policy), inserts that fallback's deployments right after candidate `at`. True when it did.
pub(super) fn divert(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &RequestCtx,
    (m, at): (ModelId, usize),
    how: TryOutcome,
) -> bool {
    let fallback = match how {
        TryOutcome::ContextLength => snap.models[m.0 as usize].context_fallback,
        TryOutcome::ContentPolicy => snap.models[m.0 as usize].policy_fallback,
        _ => None,
    };
    let Some(fb) = fallback.filter(|&fb| allowed(snap, ctx, fb)) else {
        return false;
    };
    let end = c.cands.len();
    push_model(w, snap, c, ctx, fb, Instant::now());
    let added: Vec<(ModelId, DeploymentId)> = c.cands.drain(end..).collect();
    c.cands.splice(at + 1..at + 1, added);
    true
}

/// Appends model `m`'s usable deployments, best first, to the candidates.
fn push_model(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &RequestCtx,
    m: ModelId,
    now: Instant,
) {
    c.order.clear();
    let ordered = w.with_router(snap.generation, |r| {
        r.order(snap, m, ctx.session, now, &mut c.order);
    });
    if ordered.is_none() {
        // A request still on a replaced snapshot: its deployments in order, no health.
        c.order
            .extend_from_slice(&snap.models[m.0 as usize].deployments);
    }
    c.cands.extend(
        c.order
            .iter()
            .filter(|&&d| speaks(snap, ctx.route, d))
            .map(|&d| (m, d)),
    );
}

/// No deployment is usable: those of model `m` and its fallbacks whose providers only asked
/// to wait (`retry-after`) are tried all the same, in order — the provider, not the gateway,
/// says whether it can take the request (`policy::route`, "Asked to wait").
fn last_resort(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &RequestCtx, m: ModelId) {
    let model = &snap.models[m.0 as usize];
    let models = std::iter::once(m).chain(
        model
            .fallbacks
            .iter()
            .copied()
            .filter(|&fb| allowed(snap, ctx, fb)),
    );
    for m in models {
        for &d in &snap.models[m.0 as usize].deployments {
            let waiting = w.with_router(snap.generation, |r| r.last_resort(d));
            if waiting == Some(true) && speaks(snap, ctx.route, d) {
                c.cands.push((m, d));
            }
        }
    }
}

/// Whether deployment `d` can answer `route`: the model APIs (Chat Completions, Responses,
/// Messages, generateContent) in the client's own dialect or through a translation; the
/// others (legacy completions, embeddings) only an OpenAI Chat deployment. The built-in mock
/// speaks every dialect.
fn speaks(snap: &Snapshot, route: Route, d: DeploymentId) -> bool {
    let Some(provider) = snap.deployment(d).dialect_for(super::client_dialect(route)) else {
        return true;
    };
    match route {
        Route::Messages
        | Route::ChatCompletions
        | Route::Responses
        | Route::GenerateContent
        | Route::StreamGenerateContent
        | Route::Converse
        | Route::ConverseStream => {
            let client = super::client_dialect(route);
            provider == client || crate::translate::Pair::between(client, provider).is_some()
        }
        _ => provider == Dialect::OpenAi,
    }
}

/// Whether the request's key may use model `m`.
fn allowed(snap: &Snapshot, ctx: &RequestCtx, m: ModelId) -> bool {
    ctx.key.is_none_or(|k| snap.keys[k.0 as usize].allows(m))
}
