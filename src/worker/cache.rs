//! The cache phase (ARCHITECTURE.md, "The cache"): after parse_fields, before plan. A request
//! to a model with a cache is normalised and hashed (`cache::key`); the worker owning the
//! hash is asked — itself, or another over the rings — and answers with the entry (a hit: the
//! answer is rendered here, in the client's dialect and form, and nothing goes upstream), with
//! "lead" (no entry: this request calls the provider, and [`store`] hands its answer to the
//! owner), or later (an identical request is in flight: this one waits for its answer).
//! With a semantic cache, a leader first embeds its last user turn through the gateway itself
//! ([`embed`]) and asks the owner of the request's rest for the nearest stored answer.
//!
//! Request directives: `Cache-Control: no-store` or `x-tollgate-cache: bypass` (neither
//! looked up nor stored), `Cache-Control: no-cache` or `x-tollgate-cache: refresh` (a fresh
//! answer, stored). Responses say `x-tollgate-cache: hit|miss|refresh|bypass`; a hit also
//! its `age` (seconds) and, semantic, `x-tollgate-cache-similarity`.

use std::collections::HashMap;

use super::admit::admit_hit;
use super::*;
use crate::cache::{
    Entry, Hashing, Limits, Op, PeerMsg, Peers, Reply, Shard, StreamForm, Tag, Waiter, key, owner,
};
use crate::config::cache::{CachePolicy, CacheScope};
use crate::telemetry::record::{CacheNote, CacheOutcome};

/// A stream or JSON body larger than this is not stored.
const RECORD_MAX_BYTES: usize = 8 << 20;

/// One worker's side of the cache: its shard, its ends of the rings to the other workers,
/// and the requests waiting for an answer from an owner.
#[derive(Debug)]
pub struct CacheDesk {
    shard: RefCell<Shard>,
    peers: RefCell<Peers>,
    /// Tickets asked and not yet answered (`None`), or answered.
    pending: RefCell<HashMap<u32, Option<Reply>>>,
    next_ticket: Cell<u32>,
    hashing: Hashing,
    /// Fired when answers arrived.
    answered: Notify,
    inbox: RefCell<Vec<PeerMsg>>,
    outbox: RefCell<Vec<(Waiter, Reply)>>,
    /// What was last reported of the shard.
    reported: RefCell<Vec<crate::cache::Held>>,
}

impl CacheDesk {
    pub fn new(peers: Peers, hashing: Hashing) -> Self {
        CacheDesk {
            shard: RefCell::default(),
            peers: RefCell::new(peers),
            pending: RefCell::default(),
            next_ticket: Cell::new(0),
            hashing,
            answered: Notify::default(),
            inbox: RefCell::default(),
            outbox: RefCell::default(),
            reported: RefCell::default(),
        }
    }

    /// What this worker's shard holds, per model.
    pub fn held(&self) -> Vec<crate::cache::Held> {
        self.shard.borrow().held()
    }

    pub fn purge(&self, p: &crate::cache::Purge) -> u64 {
        self.shard.borrow_mut().purge(p)
    }
}

/// What a request that leads a fill needs at the end to store its answer.
#[derive(Debug)]
pub(super) struct FillTicket {
    key: u128,
    limits: Limits,
    scope: Box<str>,
    op: Op,
    /// The semantic index to add the answer to: the rest's hash and the prompt's vector.
    semantic: Option<(u128, Arc<[f32]>)>,
    /// `[cluster] cache`: the entry's name in Redis, and the largest entry written there.
    shared: Option<([u8; 32], usize)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Directive {
    Normal,
    Refresh,
    Bypass,
}

impl Worker {
    /// Tells the coordinator what the shard holds, when that changed (or `always`).
    pub(super) fn report_cache(&self, always: bool) {
        let held = self.cache.held();
        if always || *self.cache.reported.borrow() != held {
            self.cache.reported.replace(held.clone());
            self.emit(WorkerEvent::CacheHeld {
                worker: self.id,
                held,
            });
        }
    }

    fn workers(&self) -> usize {
        self.cache.peers.borrow().workers()
    }

    /// Reads what the other workers sent (asks, answers, fills) and answers what can be
    /// answered now. Called by the doorbell task and each tick.
    pub fn poll_peers(&self) {
        let desk = &self.cache;
        let mut inbox = std::mem::take(&mut *desk.inbox.borrow_mut());
        desk.peers.borrow_mut().drain(|m| inbox.push(m));
        let now = Instant::now();
        let mut woke = false;
        for m in inbox.drain(..) {
            match m {
                PeerMsg::Ask {
                    who,
                    key,
                    refresh,
                    limits,
                } => {
                    let mut out = desk.outbox.borrow_mut();
                    let r =
                        desk.shard
                            .borrow_mut()
                            .ask((key, refresh), who, &limits, now, &mut out);
                    if let Some(r) = r {
                        out.push((who, r));
                    }
                    drop(out);
                    woke |= self.deliver(key);
                }
                PeerMsg::Near {
                    who,
                    model,
                    rest,
                    vector,
                    threshold,
                    limits,
                } => {
                    let r = self.nearest(&model, rest, &vector, threshold, &limits);
                    desk.outbox.borrow_mut().push((who, r));
                    woke |= self.deliver(rest);
                }
                PeerMsg::Answer { ticket, key, reply } => {
                    woke |= self.answered(ticket, key, reply);
                }
                PeerMsg::Fill { key, entry, limits } => {
                    let mut out = desk.outbox.borrow_mut();
                    desk.shard
                        .borrow_mut()
                        .fill(key, entry, &limits, now, &mut out);
                    drop(out);
                    woke |= self.deliver(key);
                }
                PeerMsg::AddVector {
                    rest,
                    vector,
                    entry,
                    limits,
                } => desk
                    .shard
                    .borrow_mut()
                    .add_vector(rest, &vector, entry, &limits),
            }
        }
        *desk.inbox.borrow_mut() = inbox;
        desk.peers.borrow_mut().flush();
        if woke {
            desk.answered.notify_all();
        }
    }

    fn nearest(&self, model: &str, rest: u128, v: &[f32], threshold: f32, l: &Limits) -> Reply {
        let fresh_after = unix_us(self).saturating_sub(l.ttl.as_micros() as u64);
        match self
            .cache
            .shard
            .borrow()
            .nearest(model, rest, v, threshold, fresh_after)
        {
            Some((e, s)) => Reply::Hit(e, s),
            None => Reply::GoAhead,
        }
    }

    /// Hands the shard's answers to whoever asked. True when one is for this worker.
    fn deliver(&self, key: u128) -> bool {
        let mut out = std::mem::take(&mut *self.cache.outbox.borrow_mut());
        let mut here = false;
        for (who, reply) in out.drain(..) {
            if who.worker == self.id {
                here |= self.answered(who.ticket, key, reply);
            } else {
                self.cache.peers.borrow_mut().send(
                    who.worker,
                    PeerMsg::Answer {
                        ticket: who.ticket,
                        key,
                        reply,
                    },
                );
            }
        }
        *self.cache.outbox.borrow_mut() = out;
        here
    }

    /// An answer for one of this worker's tickets. One that nobody waits for any more (the
    /// request gave up waiting) and that made it the leader gives the lead back at once.
    fn answered(&self, ticket: u32, key: u128, reply: Reply) -> bool {
        let mut pending = self.cache.pending.borrow_mut();
        if let Some(slot) = pending.get_mut(&ticket) {
            *slot = Some(reply);
            return true;
        }
        drop(pending);
        if matches!(reply, Reply::Lead) {
            // `limits` only bound a stored entry: none is stored here.
            self.fill(key, None, &NO_LIMITS);
        }
        false
    }

    /// Hands a leader's result to the owner of `key`.
    fn fill(&self, key: u128, entry: Option<Arc<Entry>>, limits: &Limits) {
        let to = owner(key, self.workers());
        if to == self.id {
            let mut out = self.cache.outbox.borrow_mut();
            self.cache
                .shard
                .borrow_mut()
                .fill(key, entry, limits, Instant::now(), &mut out);
            drop(out);
            if self.deliver(key) {
                self.cache.answered.notify_all();
            }
        } else {
            self.cache.peers.borrow_mut().send(
                to,
                PeerMsg::Fill {
                    key,
                    entry,
                    limits: *limits,
                },
            );
        }
    }

    /// Asks the owner of `hash` and waits (up to `wait`) for its answer; `None` when none
    /// came in time.
    async fn ask(
        &self,
        hash: u128,
        wait: Duration,
        msg: impl FnOnce(Waiter) -> PeerMsg,
    ) -> Option<Reply> {
        let desk = &self.cache;
        let ticket = desk.next_ticket.get().wrapping_add(1);
        desk.next_ticket.set(ticket);
        let who = Waiter {
            worker: self.id,
            ticket,
        };
        let to = owner(hash, self.workers());
        desk.pending.borrow_mut().insert(ticket, None);
        if to == self.id {
            // The owner is this worker: the message is handled here, now.
            desk.inbox.borrow_mut().push(msg(who));
            self.poll_peers();
        } else {
            desk.peers.borrow_mut().send(to, msg(who));
        }
        self.wait_ticket(ticket, Instant::now() + wait).await
    }

    /// Waits for `ticket`'s answer until `deadline`.
    async fn wait_ticket(&self, ticket: u32, deadline: Instant) -> Option<Reply> {
        let desk = &self.cache;
        loop {
            // Registered before looking, so an answer cannot slip in between.
            let answered = desk.answered.notified();
            if desk
                .pending
                .borrow()
                .get(&ticket)
                .is_some_and(Option::is_some)
            {
                return desk.pending.borrow_mut().remove(&ticket).flatten();
            }
            let now = Instant::now();
            if now >= deadline {
                desk.pending.borrow_mut().remove(&ticket);
                return None;
            }
            let _ = monoio::time::timeout(deadline - now, answered).await;
        }
    }

    /// `[cluster] cache`: asks Redis (through the coordinator) for the entry named `key`,
    /// waiting up to `wait`.
    async fn ask_shared(&self, key: [u8; 32], wait: Duration) -> Option<Arc<Entry>> {
        let desk = &self.cache;
        let ticket = desk.next_ticket.get().wrapping_add(1);
        desk.next_ticket.set(ticket);
        desk.pending.borrow_mut().insert(ticket, None);
        self.emit(WorkerEvent::SharedGet {
            worker: self.id,
            ticket,
            key,
        });
        self.outbox.borrow_mut().flush();
        self.wake.wake();
        match self.wait_ticket(ticket, Instant::now() + wait).await {
            Some(Reply::Hit(e, _)) => Some(e),
            _ => None,
        }
    }

    /// Redis's answer to a shared get: an entry that reads back is a hit.
    pub(super) fn shared_answer(&self, ticket: u32, bytes: Option<Vec<u8>>) {
        let mut pending = self.cache.pending.borrow_mut();
        if let Some(slot) = pending.get_mut(&ticket) {
            *slot = Some(
                match bytes.as_deref().and_then(crate::cache::wire::decode) {
                    Some(e) => Reply::Hit(Arc::new(e), 1.0),
                    None => Reply::GoAhead,
                },
            );
            drop(pending);
            self.cache.answered.notify_all();
        }
    }
}

/// Now, µs since the Unix epoch (from the worker's clock pair, as a request's start).
fn unix_us(w: &Worker) -> u64 {
    let (at, unix) = w.wall.get();
    unix + Instant::now().saturating_duration_since(at).as_micros() as u64
}

const NO_LIMITS: Limits = Limits {
    max_entries: 0,
    max_bytes: 0,
    ttl: Duration::ZERO,
    max_waiters: 0,
    lead_timeout: Duration::ZERO,
    max_vectors: 0,
};

/// The cache phase; see the module docs. `Ok(true)`: the request was answered from the
/// cache.
pub(super) async fn lookup(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
) -> Result<bool, GatewayError> {
    let Some(key_id) = ctx.key else {
        return Ok(false);
    };
    let model = &snap.models[f.model.0 as usize];
    let k = &snap.keys[key_id.0 as usize];
    let Some(policy) = model.cache.as_ref().and_then(|p| p.with(k.cache.as_ref())) else {
        return Ok(false);
    };
    let Some(op) = op_of(ctx.route) else {
        return Ok(false);
    };
    let directive = directive(c);
    // An answer the key's guardrails must see (redact, block, restore) is never served from
    // nor stored into the cache, whose entries hold the provider's answer as it came.
    if directive == Directive::Bypass || c.meter.guards_answers() {
        return Ok(bypass(ctx));
    }
    let scope = scope_name(policy.scope, k);
    // Normalise and hash (no borrow held past here).
    let semantic = policy.semantic.as_ref();
    let (hash, rest, text, shared) = {
        let mut scratch = w.scratch.borrow_mut();
        let mut norm = key::Normalised::default();
        let done = match scratch.tape(&c.buf[c.body.clone()]) {
            Ok(tape) => {
                let r = key::normalise(op, tape.as_value(), semantic.is_some(), &mut norm);
                let empty: simd_json::Tape<'static> = tape.reset();
                scratch.keep_tape(empty);
                r
            }
            Err(_) => Err(key::NotCached::Invalid),
        };
        if done.is_err() {
            return Ok(bypass(ctx));
        }
        let h = &w.cache.hashing;
        let op_b = [op as u8];
        let hash = h.hash(&[scope.as_bytes(), model.name.as_bytes(), &op_b, &norm.whole]);
        let rest = semantic.and(norm.last_user_text.as_ref()).map(|_| {
            h.hash(&[
                scope.as_bytes(),
                model.name.as_bytes(),
                &op_b,
                b"rest",
                &norm.rest,
            ])
        });
        // The shared level needs a name every instance computes alike (`hash` is seeded
        // per process).
        let shared = shared_of(snap).map(|max| {
            let mut d = ring::digest::Context::new(&ring::digest::SHA256);
            for p in [scope.as_bytes(), model.name.as_bytes(), &op_b, &norm.whole] {
                d.update(&(p.len() as u64).to_le_bytes());
                d.update(p);
            }
            let mut k = [0u8; 32];
            k.copy_from_slice(d.finish().as_ref());
            (k, max)
        });
        (hash, rest, norm.last_user_text, shared)
    };
    let tag = Tag {
        scope: &scope,
        model: &model.name,
        op,
    };
    let limits = limits_of(&policy, w.workers());
    let refresh = directive == Directive::Refresh;
    let asked = w
        .ask(hash, policy.wait, |who| PeerMsg::Ask {
            who,
            key: hash,
            refresh,
            limits,
        })
        .await;
    let mut fill = match asked {
        Some(Reply::Hit(e, _)) if e.is_for(&tag) => {
            serve_hit(w, snap, io, c, ctx, f, &policy, &e, None).await?;
            return Ok(true);
        }
        Some(Reply::Lead) => Some(FillTicket {
            key: hash,
            limits,
            scope: scope.clone().into(),
            op,
            semantic: None,
            shared,
        }),
        _ => None,
    };
    // Missed here, this request leads: another instance may have filled it.
    if let (Some(ticket), false) = (&fill, refresh)
        && let Some((key, _)) = ticket.shared
        && let Some(e) = w.ask_shared(key, policy.wait).await
        && e.is_for(&tag)
    {
        w.fill(hash, Some(e.clone()), &limits);
        let served = serve_hit(w, snap, io, c, ctx, f, &policy, &e, None).await;
        ctx.cache.shared = true;
        served?;
        return Ok(true);
    }
    // Semantic: only a leader looks (a waiter was answered by its leader or goes upstream).
    if let (Some(sem), Some(rest), Some(text), Some(ticket), false) =
        (semantic, rest, text, fill.as_mut(), refresh)
        && let Some(vector) = embed(w, snap, c, sem.embeddings, &text, policy.wait).await
    {
        let vector: Arc<[f32]> = vector.into();
        let near = w
            .ask(rest, policy.wait, |who| PeerMsg::Near {
                who,
                model: model.name.as_str().into(),
                rest,
                vector: vector.clone(),
                threshold: sem.threshold,
                limits,
            })
            .await;
        if let Some(Reply::Hit(e, similarity)) = near
            && e.is_for(&tag)
        {
            // The exact key is answered by the same entry from now on.
            w.fill(hash, Some(e.clone()), &limits);
            serve_hit(w, snap, io, c, ctx, f, &policy, &e, Some(similarity)).await?;
            return Ok(true);
        }
        ticket.semantic = Some((rest, vector));
    }
    ctx.cache.outcome = if refresh {
        CacheOutcome::Refresh
    } else {
        CacheOutcome::Miss
    };
    write::header(
        &mut ctx.extra_head,
        "x-tollgate-cache",
        if refresh { b"refresh" } else { b"miss" },
    );
    ctx.cache_fill = fill;
    Ok(false)
}

fn bypass(ctx: &mut RequestCtx) -> bool {
    ctx.cache.outcome = CacheOutcome::Bypass;
    write::header(&mut ctx.extra_head, "x-tollgate-cache", b"bypass");
    false
}

/// The client dialect and operation of a route the cache serves.
fn op_of(route: Route) -> Option<Op> {
    match route {
        Route::ChatCompletions => Some(Op::Chat),
        Route::Messages => Some(Op::Messages),
        Route::Responses => Some(Op::Responses),
        Route::GenerateContent | Route::StreamGenerateContent => Some(Op::Gemini),
        Route::Converse | Route::ConverseStream => Some(Op::Bedrock),
        _ => None,
    }
}

/// What the client asked of the cache.
fn directive(c: &Conn) -> Directive {
    let has = |v: &[u8], word: &[u8]| {
        v.split(|&b| b == b',')
            .any(|d| d.trim_ascii().eq_ignore_ascii_case(word))
    };
    if let Some(v) = c.head.header(&c.buf, "x-tollgate-cache") {
        let v = v.trim_ascii();
        if has(v, b"bypass") || has(v, b"no-store") || has(v, b"off") {
            return Directive::Bypass;
        }
        if has(v, b"refresh") || has(v, b"no-cache") {
            return Directive::Refresh;
        }
    }
    match c.head.header(&c.buf, "cache-control") {
        Some(v) if has(v, b"no-store") => Directive::Bypass,
        Some(v) if has(v, b"no-cache") || has(v, b"max-age=0") => Directive::Refresh,
        _ => Directive::Normal,
    }
}

/// The tenant an entry belongs to.
fn scope_name(scope: CacheScope, k: &crate::config::Key) -> String {
    match (scope, &k.team) {
        (CacheScope::Global, _) => "global".to_owned(),
        (CacheScope::Team, Some(t)) => format!("team:{t}"),
        (CacheScope::Team | CacheScope::Key, _) => format!("key:{}", k.id),
    }
}

/// This worker's share of the model's bounds.
fn limits_of(p: &CachePolicy, workers: usize) -> Limits {
    let n = workers.max(1) as u64;
    Limits {
        max_entries: p.max_entries.div_ceil(n),
        max_bytes: p.max_bytes.div_ceil(n),
        ttl: p.ttl,
        max_waiters: p.max_waiters,
        lead_timeout: p.wait,
        max_vectors: p.semantic.as_ref().map_or(0, |s| s.max_entries),
    }
}

/// Answers from entry `e`: admission (requests-per-minute, and the budget unless hits are
/// served over it), what the key is charged, the answer in the client's dialect and form.
#[allow(
    clippy::too_many_arguments,
    reason = "the phase's state, as every phase takes it"
)]
async fn serve_hit(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    policy: &CachePolicy,
    e: &Entry,
    similarity: Option<f32>,
) -> Result<(), GatewayError> {
    let charge = (u128::from(e.cost_micro_usd) * u128::from(policy.charge_ppm) / 1_000_000) as u64;
    admit_hit(w, snap, c, ctx, policy.serve_over_budget, charge).await?;
    let (usage, _) = settle_usage(&e.observed, 0);
    ctx.cache = CacheNote {
        outcome: if similarity.is_some() {
            CacheOutcome::SemanticHit
        } else {
            CacheOutcome::Hit
        },
        // Stored after this request started: it waited for the identical one in flight.
        waited: e.stored_us >= ctx.start_unix_us,
        similarity: similarity.unwrap_or(1.0),
        saved_micro_usd: e.cost_micro_usd.saturating_sub(charge),
        saved_tokens: usage.input_tokens + usage.output_tokens,
        shared: false,
    };
    ctx.usage = usage;
    ctx.cost_micro_usd = charge;
    ctx.charged = charge > 0;
    ctx.finish_reason = e.observed.finish_reason;
    ctx.response_model = e.observed.response_model;
    ctx.response_id = e.observed.response_id;
    if charge > 0
        && let Some(key) = ctx.key
    {
        let last = true;
        let c = super::settle::Charge::new(Usage::default(), false, charge, last);
        super::settle::charge(w, snap, ctx, key, c);
    }
    let client = client_dialect(ctx.route);
    let created = ctx.start_unix_us / 1_000_000;
    let gemini_array = ctx.route == Route::StreamGenerateContent
        && !crate::dialect::gemini::wants_sse(c.head.query(&c.buf));
    let mut body = Vec::with_capacity(e.text.len() * 2 + 1024);
    let content_type: &[u8] = if f.stream {
        e.write_stream(
            client,
            StreamForm {
                client_usage: f.include_usage,
                gemini_array,
                created,
            },
            &mut body,
        );
        if client == crate::dialect::Dialect::Bedrock {
            crate::dialect::bedrock::STREAM_CONTENT_TYPE
        } else if gemini_array {
            b"application/json; charset=UTF-8"
        } else {
            b"text/event-stream"
        }
    } else {
        e.write_json(client, created, &mut body);
        b"application/json"
    };
    ctx.status = 200;
    let out = &mut c.out;
    out.clear();
    write::status_line(out, 200);
    write::header(out, "content-type", content_type);
    write::header_u64(out, "content-length", body.len() as u64);
    write::header(out, "x-tollgate-cache", b"hit");
    let age = created.saturating_sub(e.stored_us / 1_000_000);
    write::header_u64(out, "age", age);
    if let Some(s) = similarity {
        write::header(
            out,
            "x-tollgate-cache-similarity",
            format!("{s:.4}").as_bytes(),
        );
    }
    request_id_header(out, ctx);
    if !ctx.keep_alive {
        write::header(out, "connection", b"close");
    }
    write::end_head(out);
    out.extend_from_slice(&body);
    let first = Instant::now();
    send(io, c, ctx).await?;
    ctx.ttft_us = (first.saturating_duration_since(ctx.started).as_micros() as u64).max(1);
    Ok(())
}

/// A leader hands its answer to the owner: by the relay once the provider's body ended (before
/// the client's last byte), or after the request however it ended. Stored when the provider
/// answered 200 in full (a stream that ended cleanly, said why it ended, and was not cut);
/// otherwise nothing is, and the waiters go upstream themselves.
pub(super) fn store(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &mut RequestCtx) {
    let Some(fill) = ctx.cache_fill.take() else {
        return;
    };
    let o = &c.meter.observed;
    let clean = ctx.error.is_none()
        && ctx.status == 200
        && !ctx.attempt.cut_at_cap
        && o.finished
        && !o.error_event;
    let model = ctx.model.map(|m| snap.models[m.0 as usize].name.as_str());
    let entry = match (clean, model, c.meter.recorded()) {
        (true, Some(model), Some((dialect, stream, body))) => {
            let tag = Tag {
                scope: &fill.scope,
                model,
                op: fill.op,
            };
            let mut scratch = w.scratch.borrow_mut();
            Entry::from_body(&tag, dialect, stream, body, o, &mut scratch)
        }
        _ => None,
    };
    // A JSON answer the client got as the provider sent it is replayed as it was.
    let verbatim = match (c.ex.pair, c.meter.recorded()) {
        (None, Some((_, false, body))) => Some(Box::from(body)),
        _ => None,
    };
    let entry = entry.map(|mut e| {
        e.verbatim = verbatim;
        // What the call costs (settle has not run yet when the relay stores).
        e.cost_micro_usd = ctx.deployment.map_or(0, |d| {
            snap.deployment(d)
                .price
                .cost(&settle_usage(o, ctx.attempt.upstream_body_bytes).0)
        });
        e.stored_us = unix_us(w);
        Arc::new(e)
    });
    if let (Some(e), Some((rest, vector))) = (&entry, &fill.semantic) {
        let to = owner(*rest, w.workers());
        if to == w.id {
            w.cache
                .shard
                .borrow_mut()
                .add_vector(*rest, vector, e.clone(), &fill.limits);
        } else {
            w.cache.peers.borrow_mut().send(
                to,
                PeerMsg::AddVector {
                    rest: *rest,
                    vector: vector.clone(),
                    entry: e.clone(),
                    limits: fill.limits,
                },
            );
        }
    }
    if let (Some(e), Some((key, max))) = (&entry, fill.shared) {
        let mut bytes = Vec::with_capacity(e.bytes());
        crate::cache::wire::encode(e, &mut bytes);
        if bytes.len() <= max {
            w.emit(WorkerEvent::SharedPut {
                key,
                bytes,
                ttl_ms: fill.limits.ttl.as_millis() as u64,
            });
        }
    }
    w.fill(fill.key, entry, &fill.limits);
}

/// `[cluster] cache`: the largest entry shared, when the second level is on.
fn shared_of(snap: &Snapshot) -> Option<usize> {
    snap.cluster.as_ref().and_then(|c| c.cache)
}

/// Is this leader's answer worth recording (the relay keeps the provider's body)?
pub(super) fn recording(ctx: &RequestCtx) -> Option<usize> {
    ctx.cache_fill.as_ref().map(|_| RECORD_MAX_BYTES)
}

/// The embedding of `text` by model `model`, asked of this gateway itself over loopback with
/// the client's own key — so the call is routed, metered, budgeted and failed over like any
/// other — and scaled to unit length. `None` when it fails (the request goes on without the
/// semantic cache).
async fn embed(
    w: &Worker,
    snap: &Snapshot,
    c: &Conn,
    model: crate::config::ModelId,
    text: &str,
    wait: Duration,
) -> Option<Vec<f32>> {
    let key = crate::policy::auth::presented_key(&c.head, &c.buf)?;
    let name = &snap.models[model.0 as usize].name;
    let call = super::embed::request(snap, w.listen, key, name, text)?;
    let answer = monoio::time::timeout(wait, super::embed::call(snap, call))
        .await
        .ok()??;
    let mut scratch = w.scratch.borrow_mut();
    super::embed::vector(&answer, &mut scratch)
}
