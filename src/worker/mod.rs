//! One worker: all per-core state ([`Worker`]) and the keep-alive loop that runs the request
//! path, phase by phase, in this order (ARCHITECTURE.md, "The request path"):
//!
//! ```text
//! read_head → route → authenticate → read_body → parse_fields → plan → admit → translate
//! → forward → relay → settle (+ settle_quotas) → finish (always runs)
//! ```
//!
//! `admit` ([`admit`]) follows `plan` because a reservation is priced at the chosen
//! deployment and that deployment's own rate limits apply. Plan through relay run in
//! [`attempt`]'s failover loop: admit → translate → forward → relay per attempt, until one
//! answers the client.
//!
//! Ownership: a worker thread owns its listener, its connections, its upstream pool and its
//! counters outright (`Rc`/`RefCell`/`Cell`; no borrow is held across an `.await`). The only
//! shared things are the immutable `Arc<Snapshot>` — swapped in a slot on reload, each request
//! holding the one it started with — and the rings to the coordinator.
//!
//! Buffers: each connection reuses one read buffer whose start is always the current
//! request. A chunked request body is de-chunked in place, so the body is one contiguous range
//! of that buffer whatever its framing. Bytes after the current request (pipelining) stay put
//! and are parsed next, so pipelined requests are answered in order.
//!
//! Errors: every phase returns [`GatewayError`]; the loop turns it into the one OpenAI-shaped
//! response (or, once a stream has started, the relay ends it with an SSE error event), keeps
//! the connection only if the request was read completely, and `finish` records it.

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use crate::net::ClientStream;
use simd_json::prelude::*;

use crate::account::{
    Control, Counters, DisabledKeys, Outbox, ROUTE_REPORT, Rings, SpendBook, Wake, WorkerEvent,
};
use crate::config::{DeploymentId, KeyId, ModelId, ProviderKind, QuotaId, Snapshot};
use crate::dialect::Dialect;
use crate::error::{ErrorKind, GatewayError};
use crate::http1::{
    self, BodyDecoder, BodyKind, Method, RequestHead, ResponseHead, Version, write,
};
use crate::json::Scratch;
use crate::json::scan::{Members, member};
use crate::net::io::read_more;
use crate::net::latch::Latch;
use crate::policy::quota::{LeaseMsg, QuotaControl, Quotas};
use crate::policy::route::{Router, session_hash};
use crate::stream::Meter;
use crate::telemetry::record::{AuditRecord, Route, Tries};
use crate::translate::{Pair, request};
use crate::upstream::dns::AddrTable;
use crate::upstream::pool::{Checkout, Pool, PoolKey};
use crate::upstream::{self, Upstream};
use crate::usage::{InlineStr, Usage, settle_usage};

/// Bytes the read buffers grow by per body read.
const READ_SPARE_BYTES: usize = 16 * 1024;
/// Room for a request head: what an idle keep-alive connection holds (small heads fit; a
/// bigger one grows the buffer up to the head limit).
const HEAD_READ_BYTES: usize = 4 * 1024;
/// Buffers that grew past this for one big request are shrunk back before the next.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;
/// Limits on a provider's response head (generous: providers send many headers).
const UPSTREAM_HEAD_LIMITS: http1::Limits = http1::Limits {
    max_head_bytes: 64 * 1024,
    max_headers: http1::MAX_HEADERS_HARD,
};
/// How often a worker drains its control ring, flushes its outbox and evicts idle upstreams.
pub const TICK: Duration = Duration::from_millis(10);
/// How often a worker reports its counters.
pub const COUNTER_INTERVAL: Duration = Duration::from_millis(250);

mod admit;
mod attempt;
mod relay;

/// Everything one worker thread owns.
pub struct Worker {
    pub id: u16,
    snapshot: RefCell<Arc<Snapshot>>,
    addrs: RefCell<Arc<AddrTable>>,
    pool: Rc<RefCell<Pool>>,
    outbox: RefCell<Outbox>,
    counters: RefCell<Counters>,
    /// Set when the worker starts draining: stop accepting, close idle connections.
    pub drain: Latch,
    /// Set when the last connection closes after `drain`.
    pub idle: Latch,
    conns: Cell<usize>,
    serial: Cell<u64>,
    /// Deployment health, strategies' state, circuit breakers (current snapshot).
    router: RefCell<Router>,
    next_route_report: Cell<Instant>,
    /// simd-json's working memory, reused for every parse on this worker.
    scratch: RefCell<Scratch>,
    /// Spend per key, coalesced until it goes to the coordinator.
    spend: RefCell<SpendBook>,
    control: RefCell<rtrb::Consumer<Control>>,
    /// Rings the coordinator's doorbell when an ask cannot wait for its tick.
    wake: Arc<Wake>,
    /// Allowances of the budgets and rate limits of the snapshot new requests start with.
    quotas: RefCell<Quotas>,
    /// Those of earlier snapshots, while requests that started under them are in flight.
    retired: RefCell<Vec<Quotas>>,
    /// Keys an admin disabled at runtime.
    disabled: RefCell<Arc<DisabledKeys>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.id)
            .field("conns", &self.conns.get())
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(id: u16, snapshot: Arc<Snapshot>, addrs: Arc<AddrTable>, rings: Rings) -> Self {
        let pool = Pool::new(snapshot.upstream.pool_max_idle, snapshot.upstream.pool_idle);
        let mut spend = SpendBook::default();
        spend.set_generation(snapshot.generation);
        let quotas = Quotas::new(id, snapshot.generation, snapshot.quotas.len());
        let router = Router::new(&snapshot, 0x5eed ^ (u64::from(id) << 32));
        Worker {
            control: RefCell::new(rings.control),
            wake: rings.wake,
            quotas: RefCell::new(quotas),
            retired: RefCell::new(Vec::new()),
            disabled: RefCell::new(Arc::default()),
            id,
            snapshot: RefCell::new(snapshot),
            addrs: RefCell::new(addrs),
            pool: Rc::new(RefCell::new(pool)),
            outbox: RefCell::new(Outbox::new(rings.events)),
            counters: RefCell::new(Counters::default()),
            drain: Latch::default(),
            idle: Latch::default(),
            conns: Cell::new(0),
            serial: Cell::new(0),
            router: RefCell::new(router),
            next_route_report: Cell::new(Instant::now()),
            scratch: RefCell::new(Scratch::new(16 * 1024)),
            spend: RefCell::new(spend),
        }
    }

    /// The snapshot new requests start with.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    pub fn connections(&self) -> usize {
        self.conns.get()
    }

    fn count(&self, f: impl FnOnce(&mut Counters)) {
        f(&mut self.counters.borrow_mut());
    }

    fn emit(&self, e: WorkerEvent) {
        self.outbox.borrow_mut().push(e);
    }

    /// Applies one message from the coordinator.
    pub fn control(&self, msg: Control) {
        match msg {
            Control::Snapshot(s) => {
                let generation = s.generation;
                // Key ids are per snapshot: what was summed under the old one goes out now.
                self.flush_spend(true);
                self.spend.borrow_mut().set_generation(generation);
                self.pool
                    .borrow_mut()
                    .configure(s.upstream.pool_max_idle, s.upstream.pool_idle);
                // Deployment ids are per snapshot: health starts over with the new one.
                *self.router.borrow_mut() =
                    Router::new(&s, 0x5eed ^ (u64::from(self.id) << 32) ^ generation);
                let fresh = Quotas::new(self.id, generation, s.quotas.len());
                let mut old = std::mem::replace(&mut *self.quotas.borrow_mut(), fresh);
                old.retire();
                self.retired.borrow_mut().push(old);
                *self.snapshot.borrow_mut() = s;
                self.emit(WorkerEvent::Applied {
                    worker: self.id,
                    generation,
                });
            }
            Control::Addrs(a) => *self.addrs.borrow_mut() = a,
            Control::Breaker {
                generation,
                deployment,
                change,
            } => {
                let mut r = self.router.borrow_mut();
                if r.generation == generation {
                    r.remote(deployment, change);
                }
            }
            Control::Disabled(d) => {
                let version = d.version;
                *self.disabled.borrow_mut() = d;
                self.emit(WorkerEvent::DisabledApplied {
                    worker: self.id,
                    version,
                });
                self.outbox.borrow_mut().flush();
                self.wake.wake();
            }
            Control::Quota {
                generation,
                quota,
                msg,
            } => {
                let now = Instant::now();
                let applied = self.with_quotas(generation, |q| q.apply(quota, msg, now));
                if applied.is_none() && msg == QuotaControl::Reclaim {
                    // Nothing held under that snapshot any more; the coordinator still
                    // counts on an answer.
                    self.emit(WorkerEvent::Lease(LeaseMsg {
                        worker: self.id,
                        generation,
                        quota,
                        used: 0,
                        returned: 0,
                        want: 0,
                        reserved: 0,
                        reclaimed: true,
                    }));
                    self.wake.wake();
                }
            }
            Control::Drain => {
                self.drain.set();
                if self.conns.get() == 0 {
                    self.idle.set();
                }
            }
        }
    }

    /// Runs `f` on the router if it is snapshot `generation`'s.
    fn with_router<R>(&self, generation: u64, f: impl FnOnce(&mut Router) -> R) -> Option<R> {
        let mut r = self.router.borrow_mut();
        (r.generation == generation).then(|| f(&mut r))
    }

    /// Runs `f` on the quotas of snapshot `generation` (the current one, or one retired while
    /// its requests finish).
    fn with_quotas<R>(&self, generation: u64, f: impl FnOnce(&mut Quotas) -> R) -> Option<R> {
        let mut current = self.quotas.borrow_mut();
        if current.generation == generation {
            return Some(f(&mut current));
        }
        let mut retired = self.retired.borrow_mut();
        retired
            .iter_mut()
            .find(|q| q.generation == generation)
            .map(f)
    }

    /// Drains the control ring (the tick does, and so does a request waiting for a grant).
    pub fn poll_control(&self) {
        loop {
            let msg = self.control.borrow_mut().pop();
            match msg {
                Ok(m) => self.control(m),
                Err(_) => break,
            }
        }
        self.flush_quotas();
    }

    /// Quota messages out; asks and reclaim answers at once, with the coordinator woken.
    fn flush_quotas(&self) {
        let mut outbox = self.outbox.borrow_mut();
        let mut current = self.quotas.borrow_mut();
        let mut retired = self.retired.borrow_mut();
        let urgent = current.has_urgent() || retired.iter().any(Quotas::has_urgent);
        current.drain(|m| outbox.push(WorkerEvent::Lease(m)));
        for q in retired.iter_mut() {
            q.drain(|m| outbox.push(WorkerEvent::Lease(m)));
        }
        if urgent {
            outbox.flush();
            self.wake.wake();
        }
    }

    /// Sends the coalesced spend sums, unless the ring is backed up (then they keep
    /// coalescing here, so a stuck coordinator costs memory per key, not per request) or
    /// `always`.
    fn flush_spend(&self, always: bool) {
        let mut outbox = self.outbox.borrow_mut();
        if always || !outbox.is_backed_up() {
            self.spend.borrow_mut().drain(|e| outbox.push(e));
        }
    }

    /// Periodic housekeeping: spend and counters out, held events flushed, stale upstreams
    /// closed.
    pub fn tick(&self, now: Instant, report_counters: bool) -> bool {
        self.flush_spend(false);
        {
            let mut retired = self.retired.borrow_mut();
            for q in retired.iter_mut() {
                q.retire();
            }
        }
        self.flush_quotas();
        self.retired.borrow_mut().retain(|q| !q.is_idle());
        if report_counters {
            let mut c = std::mem::take(&mut *self.counters.borrow_mut());
            c.audit_records_dropped += self.outbox.borrow_mut().take_dropped();
            if !c.is_zero() {
                self.emit(WorkerEvent::Counters {
                    worker: self.id,
                    counters: c,
                });
            }
        }
        if now >= self.next_route_report.get() {
            self.next_route_report.set(now + ROUTE_REPORT);
            let r = self.router.borrow();
            let mut outbox = self.outbox.borrow_mut();
            for (i, view) in r.views().enumerate() {
                outbox.push(WorkerEvent::Route {
                    worker: self.id,
                    generation: r.generation,
                    deployment: DeploymentId(i as u32),
                    view,
                });
            }
        }
        self.pool.borrow_mut().evict(now);
        self.outbox.borrow_mut().flush()
    }

    /// The worker is stopping: report what is left and that it stopped.
    pub fn stopped(&self) {
        self.flush_spend(true);
        self.flush_quotas();
        self.tick(Instant::now(), true);
        self.emit(WorkerEvent::Stopped {
            worker: self.id,
            open: self.conns.get() as u64,
        });
    }

    /// An accepted connection: serve it, or refuse it when at the limit or draining.
    pub async fn accept(self: Rc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let max = self.snapshot.borrow().limits.max_connections;
        if self.conns.get() >= max || self.drain.is_set() {
            self.count(|c| c.connections_refused += 1);
            let e = GatewayError::new(
                ErrorKind::Overloaded,
                "The gateway is at its connection limit; retry shortly.",
            );
            let mut out = Vec::with_capacity(256);
            e.write_response(&mut out, true, b"", b"");
            let mut stream = stream;
            let _ = monoio::time::timeout(Duration::from_secs(1), stream.write_all(out)).await;
            return;
        }
        self.conns.set(self.conns.get() + 1);
        self.count(|c| c.connections_accepted += 1);
        let tls = self.snapshot.borrow().server.tls.clone();
        match tls {
            None => serve(&self, ClientStream::Plain(stream)).await,
            Some(cfg) => {
                // The handshake gets the head's time limit (a slow or silent client is cut).
                let limit = self.snapshot.borrow().limits.header_timeout;
                let acceptor = monoio_rustls::TlsAcceptor::from(cfg);
                match monoio::time::timeout(limit, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => serve(&self, ClientStream::Tls(Box::new(s))).await,
                    _ => self.count(|c| c.tls_handshakes_failed += 1),
                }
            }
        }
        self.conns.set(self.conns.get() - 1);
        if self.conns.get() == 0 && self.drain.is_set() {
            self.idle.set();
        }
    }
}

/// Per-connection buffers, reused across the requests of a keep-alive connection.
struct Conn {
    /// Downstream bytes; index 0 is the start of the current request.
    buf: Vec<u8>,
    head: RequestHead,
    /// The request body within `buf` (contiguous, de-chunked).
    body: Range<usize>,
    /// Where the next pipelined request starts in `buf`.
    next: usize,
    /// Response bytes staged for one write.
    out: Vec<u8>,
    /// The exchange with the provider (the winner's, when a request was hedged).
    ex: Exchange,
    /// A hedged request's second exchange.
    hedge: Exchange,
    /// The relay's tap: usage and ids read from the response as it passes.
    meter: Meter,
    /// What the request in flight reserved, per quota.
    reserved: Vec<(QuotaId, i64)>,
    /// The deployments the request may try, in order (`attempt`).
    cands: Vec<(ModelId, DeploymentId)>,
    /// Scratch for ordering one model's deployments.
    order: Vec<DeploymentId>,
}

/// One exchange with a provider: the request to send and its response as it arrives.
struct Exchange {
    /// Upstream request bytes.
    ureq: Vec<u8>,
    /// The end of the upstream request, sent from `Conn::buf` itself (a large body's tail
    /// after the last edited span): not copied into `ureq`.
    ureq_tail: Option<Range<usize>>,
    /// Upstream response bytes.
    ubuf: Vec<u8>,
    uhead: ResponseHead,
    /// The request was translated for a provider of another dialect: its answer is too.
    pair: Option<Pair>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            ureq: Vec::new(),
            ureq_tail: None,
            ubuf: Vec::new(),
            uhead: ResponseHead::new(),
            pair: None,
        }
    }
}

/// What is known about the request in flight; `finish` turns it into the audit record.
struct RequestCtx {
    serial: u64,
    started: Instant,
    start_unix_us: u64,
    generation: u64,
    method: Method,
    route: Route,
    version: Version,
    key: Option<KeyId>,
    model: Option<ModelId>,
    deployment: Option<DeploymentId>,
    stream: bool,
    /// The request was read to its end: the connection can carry another one.
    body_read: bool,
    /// Response bytes have reached the client: no JSON error can be sent any more.
    response_started: bool,
    keep_alive: bool,
    /// How long one write to the client may take (`limits.body_timeout`).
    write_timeout: Duration,
    status: u16,
    request_bytes: u64,
    response_bytes: u64,
    upstream_us: u64,
    /// Request start → first response body byte written to the client.
    ttft_us: u64,
    error: Option<ErrorKind>,
    attempts: u8,
    max_tokens: Option<u32>,
    /// The gateway asked the upstream for usage the client did not ask for: the usage-only
    /// chunk is removed from the stream.
    inject_usage: bool,
    /// Bytes of the request body as the provider receives it (the input estimate's basis).
    upstream_body_bytes: u64,
    /// The audit record carries SHA-256s of prompt and completion (per-key policy).
    log_hashes: bool,
    charged: bool,
    usage: Usage,
    usage_estimated: bool,
    cost_micro_usd: u64,
    reserved_micro_usd: u64,
    /// A hedged request's cancelled half: its estimated cost and tokens (charged too).
    hedge_cost_micro_usd: u64,
    hedge_tokens: u64,
    finish_reason: InlineStr<24>,
    response_model: InlineStr<64>,
    response_id: InlineStr<64>,
    prompt_sha256: Option<[u8; 32]>,
    completion_sha256: Option<[u8; 32]>,
    /// Header lines every response to this request carries (`x-ratelimit-*`, a budget
    /// warning, `retry-after` on a refusal).
    extra_head: Vec<u8>,
    /// The snapshot generation whose quotas hold this request's reservations (`Conn::reserved`).
    reserved_under: Option<u64>,
    /// `cut_stream_at_cap`: the output tokens the stream's reservation covers so far (the relay
    /// asks for more, or ends the stream, when the content passes them).
    output_allowed: Option<u64>,
    /// The client asked for a usage chunk (`stream_options.include_usage`).
    client_usage: bool,
    /// The relay ended the stream at the key's budget cap.
    cut_at_cap: bool,
    /// The current attempt was sent upstream then.
    sent_at: Option<Instant>,
    /// Its first body byte went to the client then.
    first_byte_at: Option<Instant>,
    /// Each deployment tried and how it went.
    tries: Tries,
    /// Admission was refused by the deployment's own rate limit (another may serve).
    refused_by_deployment: bool,
    /// Whether the request was hedged, and which half won.
    hedge: Hedge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hedge {
    None,
    PrimaryWon,
    SecondWon,
}

/// The few request-body fields the gateway reads.
#[derive(Debug)]
struct Fields {
    model: ModelId,
    /// The `model` string literal's contents (between the quotes) within the body.
    model_span: Range<usize>,
    stream: bool,
    include_usage: bool,
    /// The request's max tokens, or the key's default when it set none.
    max_tokens: Option<u32>,
    /// The key's default, when the request set no max tokens: added to the upstream body.
    default_max_tokens: Option<u32>,
    /// The body's sticky-routing session (`prompt_cache_key`, else `user`), hashed.
    session: Option<u64>,
}

/// The connection loop: one request after another until the client closes, an error makes
/// the connection unusable, or the worker drains.
async fn serve(w: &Rc<Worker>, mut io: ClientStream) {
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
                finish(w, &ctx);
                return;
            }
        }
        // Until `read_body` says otherwise, the request is its head.
        c.body = c.head.head_len..c.head.head_len;
        c.next = c.head.head_len;
        let snap = w.snapshot();
        let mut ctx = RequestCtx::new(w, &c);
        ctx.generation = snap.generation;
        c.meter.reset();
        let result = handle(w, &snap, &mut io, &mut c, &mut ctx).await;
        if let Err(e) = result {
            ctx.error = Some(e.kind);
            if ctx.response_started {
                ctx.keep_alive = false;
            } else {
                ctx.keep_alive &= ctx.body_read;
                respond_error(&mut io, &mut c, &mut ctx, &e).await;
            }
        }
        settle(w, &snap, &mut c, &mut ctx);
        admit::settle_quotas(w, &snap, &mut c, &mut ctx);
        finish(w, &ctx);
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

/// The phases after the head, in order. Returns with the response written (or an error for
/// the loop to answer).
async fn handle(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    ctx.route = route(c.head.method, c.head.path(&c.buf))?;
    match ctx.route {
        Route::Health | Route::Ready => {
            read_body(snap, io, c, ctx).await?;
            let ready = !w.drain.is_set();
            let body: &[u8] = match (ctx.route, ready) {
                (Route::Health, _) => b"{\"status\":\"ok\"}",
                (_, true) => b"{\"status\":\"ready\"}",
                (_, false) => b"{\"status\":\"draining\"}",
            };
            let status = if ready || ctx.route == Route::Health {
                200
            } else {
                503
            };
            return respond_json(io, c, ctx, status, body).await;
        }
        _ => {}
    }
    let key = authenticate(snap, &c.head, &c.buf)?;
    ctx.key = Some(key);
    let k = &snap.keys[key.0 as usize];
    if !k.enabled {
        return Err(GatewayError::new(
            ErrorKind::KeyDisabled,
            "This API key has been disabled.",
        ));
    }
    if w.disabled.borrow().is_disabled(snap.generation, key) {
        return Err(GatewayError::new(
            ErrorKind::KeyDisabled,
            "This API key has been disabled by an administrator.",
        ));
    }
    if k.expires_unix
        .is_some_and(|t| ctx.start_unix_us / 1_000_000 >= t)
    {
        return Err(GatewayError::new(
            ErrorKind::KeyExpired,
            "This API key has expired.",
        ));
    }
    ctx.log_hashes = snap.keys[key.0 as usize].log_content_sha256;
    read_body(snap, io, c, ctx).await?;
    if ctx.route == Route::Models {
        let k = &snap.keys[key.0 as usize];
        let body = k.models_json.as_deref().unwrap_or(&snap.models_json);
        return respond_json(io, c, ctx, 200, body).await;
    }
    let fields = parse_fields(w, snap, c, ctx)?;
    attempt::route_and_forward(w, snap, io, c, ctx, &fields).await
}

// ------------------------------------------------------------------------------ read head

/// Reads until `c.buf` holds a complete request head. `Ok(false)`: the connection ended
/// cleanly between requests (client closed, idle timeout, or the worker is draining).
async fn read_head(w: &Worker, io: &mut ClientStream, c: &mut Conn) -> Result<bool, GatewayError> {
    let limits = w.snapshot.borrow().limits.clone();
    let mut deadline = None;
    loop {
        if !c.buf.is_empty() {
            if c.head.parse(&c.buf, &limits.head)?.is_some() {
                return Ok(true);
            }
            deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
        }
        let buf = std::mem::take(&mut c.buf);
        let (res, buf) = match deadline {
            // Between requests: wait up to the idle timeout, or until the worker drains.
            None => {
                monoio::select! {
                    r = monoio::time::timeout(limits.idle_timeout, read_more(io, buf, HEAD_READ_BYTES)) => match r {
                        Ok(r) => r,
                        Err(_) => return Ok(false),
                    },
                    _ = w.drain.wait() => return Ok(false),
                }
            }
            // Inside a head: the whole head must arrive by the header deadline (slowloris).
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                match monoio::time::timeout(left, read_more(io, buf, HEAD_READ_BYTES)).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(GatewayError::new(
                            ErrorKind::RequestTimeout,
                            format!(
                                "The request head did not arrive within {} ms.",
                                limits.header_timeout.as_millis()
                            ),
                        ));
                    }
                }
            }
        };
        c.buf = buf;
        match res {
            Ok(0) | Err(_) => return Ok(false),
            Ok(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------- route

fn route(method: Method, path: &[u8]) -> Result<Route, GatewayError> {
    let (route, want) = match path {
        b"/v1/chat/completions" => (Route::ChatCompletions, Method::Post),
        b"/v1/completions" => (Route::Completions, Method::Post),
        b"/v1/messages" => (Route::Messages, Method::Post),
        b"/v1/embeddings" => (Route::Embeddings, Method::Post),
        b"/v1/models" => (Route::Models, Method::Get),
        b"/healthz" => (Route::Health, Method::Get),
        b"/readyz" => (Route::Ready, Method::Get),
        _ => {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                format!(
                    "Unknown request URL: {}. Please check the URL for typos.",
                    String::from_utf8_lossy(path)
                ),
            ));
        }
    };
    if method != want {
        return Err(GatewayError::new(
            ErrorKind::MethodNotAllowed,
            format!("{} requires {:?}.", String::from_utf8_lossy(path), want),
        ));
    }
    Ok(route)
}

// --------------------------------------------------------------------------- authenticate

/// The virtual key from `Authorization: Bearer <key>` or `x-api-key: <key>`, looked up by its
/// SHA-256.
fn authenticate(snap: &Snapshot, head: &RequestHead, buf: &[u8]) -> Result<KeyId, GatewayError> {
    let key = head
        .header(buf, "authorization")
        .and_then(|v| {
            let v = v.trim_ascii();
            (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| v[7..].trim_ascii())
        })
        .or_else(|| head.header(buf, "x-api-key").map(<[u8]>::trim_ascii))
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        return Err(GatewayError::new(
            ErrorKind::MissingKey,
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>` or \
             `x-api-key: <key>`.",
        ));
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    snap.key_by_hash(&hash)
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidKey, "Incorrect API key provided."))
}

// ------------------------------------------------------------------------------ read body

/// Reads the request body into `c.buf` right after the head (de-chunking in place) and sets
/// `c.body` and `c.next`. Sends `100 Continue` first when the client asked for it.
async fn read_body(
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let start = c.head.head_len;
    let limits = &snap.limits;
    let too_large = || {
        GatewayError::new(
            ErrorKind::BodyTooLarge,
            format!(
                "The request body is larger than the {} bytes this gateway accepts.",
                limits.max_body_bytes
            ),
        )
    };
    let deadline = Instant::now() + limits.body_timeout;
    let mut decoder = match c.head.body {
        BodyKind::Empty | BodyKind::Close => {
            c.body = start..start;
            c.next = start;
            ctx.body_read = true;
            return Ok(());
        }
        BodyKind::Length(n) if n > limits.max_body_bytes => return Err(too_large()),
        kind => BodyDecoder::new(kind, limits.max_body_bytes)?,
    };
    if c.head.expect_continue && c.buf.len() == start {
        let (r, _) = io.write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]).await;
        r.map_err(client_gone)?;
    }
    if let BodyKind::Length(n) = c.head.body {
        c.buf
            .reserve((start + n as usize).saturating_sub(c.buf.len()));
    }
    // `read` is where undecoded bytes start; `end` is where decoded payload ends. The payload
    // is moved down over the chunk framing, so `end <= read` always holds.
    let mut read = start;
    let mut end = start;
    loop {
        loop {
            let step = decoder.decode(&c.buf[read..]).map_err(|e| match e {
                http1::BodyError::TooLarge(_) => too_large(),
                e => GatewayError::from(e),
            })?;
            if step.consumed == 0 && !step.done {
                break;
            }
            let data = read + step.data.start..read + step.data.end;
            if data.start != end {
                c.buf.copy_within(data.clone(), end);
            }
            end += data.len();
            read += step.consumed;
            if step.done {
                c.body = start..end;
                c.next = read;
                // Whatever follows the body (a pipelined request) moves down to `end`.
                if end != read {
                    c.buf.copy_within(read.., end);
                    let tail = c.buf.len() - read;
                    c.buf.truncate(end + tail);
                    c.next = end;
                }
                ctx.body_read = true;
                ctx.request_bytes = c.next as u64;
                return Ok(());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let buf = std::mem::take(&mut c.buf);
        match monoio::time::timeout(left, read_more(io, buf, READ_SPARE_BYTES)).await {
            Ok((Ok(0), _)) | Ok((Err(_), _)) => {
                return Err(GatewayError::new(
                    ErrorKind::BadRequest,
                    "The connection closed before the request body was complete.",
                ));
            }
            Ok((Ok(_), buf)) => c.buf = buf,
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "The request body did not arrive within {} ms.",
                        limits.body_timeout.as_millis()
                    ),
                ));
            }
        }
    }
}

// --------------------------------------------------------------------------- parse fields

/// Reads `model`, `stream`, `stream_options.include_usage` and `max_tokens` with simd-json
/// from a scratch copy (simd-json rewrites its input; the original bytes are forwarded), and
/// finds where the `model` string sits in the original body so `translate` can replace just
/// that span.
fn parse_fields(
    w: &Worker,
    snap: &Snapshot,
    c: &Conn,
    ctx: &mut RequestCtx,
) -> Result<Fields, GatewayError> {
    let body = &c.buf[c.body.clone()];
    let invalid = |msg: String| GatewayError::new(ErrorKind::InvalidBody, msg);
    let mut guard = w.scratch.borrow_mut();
    let read = if body.len() > FULL_PARSE_MAX_BYTES {
        match scan_request(body)? {
            Some(r) => r,
            None => read_request(body, &mut guard)?,
        }
    } else {
        read_request(body, &mut guard)?
    };
    drop(guard);
    let ReadFields {
        model,
        model_span,
        stream,
        include_usage,
        max_tokens,
        session,
    } = read;
    let model = String::from_utf8_lossy(&model).into_owned();
    let Some(id) = snap.model(model.as_bytes()) else {
        return Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .param("model"));
    };
    ctx.model = Some(id);
    ctx.stream = stream;
    // The key's policy: which models, how many tokens.
    let key = ctx.key.map(|k| &snap.keys[k.0 as usize]);
    if let Some(k) = key {
        if !k.allows(id) {
            return Err(GatewayError::new(
                ErrorKind::ModelNotAllowed,
                format!("This API key is not allowed to use the model `{model}`."),
            )
            .param("model"));
        }
        if let (Some(asked), Some(ceiling)) = (max_tokens, k.max_tokens)
            && asked > ceiling
        {
            return Err(invalid(format!(
                "max_tokens is {asked}, above this API key's limit of {ceiling}."
            ))
            .param("max_tokens"));
        }
    }
    let default_max_tokens = if max_tokens.is_none() && ctx.route != Route::Embeddings {
        key.and_then(|k| k.default_max_tokens)
    } else {
        None
    };
    ctx.max_tokens = max_tokens.or(default_max_tokens);
    Ok(Fields {
        model: id,
        model_span,
        stream,
        include_usage,
        max_tokens: max_tokens.or(default_max_tokens),
        default_max_tokens,
        session,
    })
}

/// Bodies up to this size are parsed whole (simd-json), which also validates them; larger
/// ones — long prompts — are read with [`scan_request`], which checks only the top-level
/// object and reads the few members the gateway needs, so a 100 KB prompt costs a scan, not
/// a DOM (ARCHITECTURE.md, "Performance budget": ≤ 15 µs more than a 1 KB one). A large body that is malformed inside
/// a member the gateway does not read is forwarded and refused by the provider.
const FULL_PARSE_MAX_BYTES: usize = 16 * 1024;

/// The request fields the gateway reads, borrowed from the body.
struct ReadFields<'a> {
    /// The model name (unescaped).
    model: std::borrow::Cow<'a, [u8]>,
    model_span: Range<usize>,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u32>,
    /// A sticky-routing session: the hash of `prompt_cache_key`, else of `user`.
    session: Option<u64>,
}

/// Reads the fields with simd-json from a scratch copy (simd-json rewrites its input; the
/// original bytes are forwarded).
fn read_request<'a>(body: &'a [u8], scratch: &mut Scratch) -> Result<ReadFields<'a>, GatewayError> {
    let invalid = |msg: String| GatewayError::new(ErrorKind::InvalidBody, msg);
    let Scratch {
        bytes: json,
        buffers,
    } = scratch;
    json.clear();
    json.extend_from_slice(body);
    let base = json.as_ptr() as usize;
    let v = simd_json::to_borrowed_value_with_buffers(json, buffers).map_err(|e| {
        invalid(format!(
            "We could not parse the JSON body of your request ({e}). The body must be a \
             JSON object."
        ))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(invalid("The request body must be a JSON object.".into()));
    };
    let Some(model) = obj.get("model").and_then(|m| m.as_str()) else {
        return Err(
            invalid("You must provide a model parameter (a string).".into()).param("model"),
        );
    };
    // simd-json leaves an unescaped string where it found it and unescapes in place, so the
    // string's offset in the scratch copy is where its raw contents start in the original.
    let start = (model.as_ptr() as usize).wrapping_sub(base);
    let model_span = raw_string_span(body, start).ok_or_else(|| {
        GatewayError::new(ErrorKind::Internal, "could not locate `model` in the body")
    })?;
    let stream = match obj.get("stream") {
        None => false,
        Some(s) if s.is_null() => false,
        Some(s) => s
            .as_bool()
            .ok_or_else(|| invalid("`stream` must be a boolean.".into()).param("stream"))?,
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    let max_tokens = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(|m| m.as_u64())
        .map(|m| m.min(u64::from(u32::MAX)) as u32);
    let session = obj
        .get("prompt_cache_key")
        .and_then(|v| v.as_str())
        .or_else(|| obj.get("user").and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
        .map(|s| session_hash(s.as_bytes()));
    let model = if body[model_span.clone()] == *model.as_bytes() {
        std::borrow::Cow::Borrowed(&body[model_span.clone()])
    } else {
        std::borrow::Cow::Owned(model.as_bytes().to_vec())
    };
    Ok(ReadFields {
        model,
        model_span,
        stream,
        include_usage,
        max_tokens,
        session,
    })
}

/// Reads the fields from the top-level members only (see [`FULL_PARSE_MAX_BYTES`]). `None`
/// when a member needs the full parser (an escaped model name).
fn scan_request(body: &[u8]) -> Result<Option<ReadFields<'_>>, GatewayError> {
    let invalid = |msg: &str| GatewayError::new(ErrorKind::InvalidBody, msg.to_owned());
    let malformed = || {
        invalid("We could not parse the JSON body of your request. The body must be a JSON object.")
    };
    let mut model = None;
    let (mut stream, mut include_usage) = (false, false);
    let (mut max_tokens, mut max_completion_tokens) = (None, None);
    let (mut cache_key, mut user) = (None, None);
    for m in Members::new(body) {
        let m = m.map_err(|()| malformed())?;
        let v = &body[m.value.clone()];
        match &body[m.key.clone()] {
            b"model" => {
                if v.first() != Some(&b'"') {
                    return Err(
                        invalid("You must provide a model parameter (a string).").param("model")
                    );
                }
                let raw = m.value.start + 1..m.value.end - 1;
                if body[raw.clone()].contains(&b'\\') {
                    return Ok(None);
                }
                model = Some(raw);
            }
            b"stream" => {
                stream = match v {
                    b"true" => true,
                    b"false" | b"null" => false,
                    _ => return Err(invalid("`stream` must be a boolean.").param("stream")),
                }
            }
            b"stream_options" if v.first() == Some(&b'{') => {
                include_usage = crate::json::scan::member(v, b"include_usage")
                    .is_some_and(|r| &v[r] == b"true");
            }
            b"max_tokens" => max_tokens = crate::json::scan::uint_at(v, 0),
            b"max_completion_tokens" => max_completion_tokens = crate::json::scan::uint_at(v, 0),
            key @ (b"prompt_cache_key" | b"user") if v.first() == Some(&b'"') && v.len() >= 2 => {
                let raw = &v[1..v.len() - 1];
                // Hashed as the full parser sees it: unescaped.
                if raw.contains(&b'\\') {
                    return Ok(None);
                }
                match key {
                    b"user" => user = Some(raw),
                    _ => cache_key = Some(raw),
                }
            }
            _ => {}
        }
    }
    let Some(model_span) = model else {
        return Err(invalid("You must provide a model parameter (a string).").param("model"));
    };
    Ok(Some(ReadFields {
        model: std::borrow::Cow::Borrowed(&body[model_span.clone()]),
        model_span,
        stream,
        include_usage,
        max_tokens: max_completion_tokens
            .or(max_tokens)
            .map(|m| m.min(u64::from(u32::MAX)) as u32),
        session: cache_key
            .or(user)
            .filter(|s| !s.is_empty())
            .map(session_hash),
    }))
}

/// The raw contents of the JSON string literal that starts at `start` in `body` (just after
/// its opening quote), up to its closing quote.
fn raw_string_span(body: &[u8], start: usize) -> Option<Range<usize>> {
    if start == 0 || start > body.len() || body[start - 1] != b'"' {
        return None;
    }
    let mut i = start;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', &body[i..])?;
        if body[j] == b'"' {
            return Some(start..j);
        }
        i = j + 2;
        if i > body.len() {
            return None;
        }
    }
}

// Plan (the deployments to try, in order) and the failover around forward and relay: `attempt`.

// ------------------------------------------------------------------------------ translate

/// Headers never forwarded upstream: hop-by-hop (RFC 9110 §7.6.1), framing the gateway
/// redoes, and the client's credentials.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "authorization",
    "x-api-key",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

fn api_suffix(route: Route) -> &'static [u8] {
    match route {
        Route::Completions => b"/completions",
        Route::Messages => b"/messages",
        Route::Embeddings => b"/embeddings",
        _ => b"/chat/completions",
    }
}

/// Builds the upstream request in `c.ex.ureq`: the client's body byte for byte except for a few
/// spans — the `model` value becomes the deployment's upstream model, and a streamed OpenAI
/// request that did not ask for usage gets `stream_options.include_usage = true` (so the call
/// can be metered exactly; the relay removes the extra chunk again) — and the provider
/// credential in place of the client's.
fn translate(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    d: DeploymentId,
) -> Result<(), GatewayError> {
    let dep = snap.deployment(d);
    let provider = snap.provider(dep.provider);
    c.ex.ureq_tail = None;
    c.ex.pair = provider
        .kind
        .dialect()
        .and_then(|p| Pair::between(client_dialect(ctx.route), p));
    if let Some(pair) = c.ex.pair {
        return translate_across(w, snap, c, ctx, f, d, pair);
    }
    let body = &c.buf[c.body.clone()];
    // (Anthropic's Messages API always reports usage.)
    let usage_splice =
        (f.stream && !f.include_usage && !matches!(ctx.route, Route::Embeddings | Route::Messages))
            .then(|| include_usage_splice(body))
            .flatten();
    ctx.inject_usage = usage_splice.is_some();
    ctx.client_usage = f.include_usage;
    let Some(ep) = &provider.endpoint else {
        // Built-in mock: answered in `forward` from the fields.
        ctx.upstream_body_bytes = body.len() as u64;
        return Ok(());
    };
    // The JSON literal replaces the quotes too.
    let model = f.model_span.start - 1..f.model_span.end + 1;
    let mut max_tokens = Vec::new();
    let mut max_tokens_at = body.len()..body.len();
    if let (Some(n), Some(at)) = (f.default_max_tokens, Members::open(body)) {
        // Chat Completions calls it max_completion_tokens (reasoning models refuse
        // max_tokens); the legacy Completions API, max_tokens.
        max_tokens.extend_from_slice(
            if matches!(ctx.route, Route::Completions | Route::Messages) {
                b"\"max_tokens\":"
            } else {
                b"\"max_completion_tokens\":"
            },
        );
        crate::json::uint(&mut max_tokens, u64::from(n));
        max_tokens.push(b',');
        max_tokens_at = at..at;
    }
    let mut splices: [(Range<usize>, &[u8]); 3] = [
        (model, &dep.upstream_model_json),
        usage_splice.unwrap_or((body.len()..body.len(), b"")),
        (max_tokens_at, &max_tokens),
    ];
    splices.sort_by_key(|(r, _)| r.start);
    let len = splices
        .iter()
        .fold(body.len(), |n, (r, with)| n - r.len() + with.len());
    ctx.upstream_body_bytes = len as u64;

    let head = &c.head;
    let out = &mut c.ex.ureq;
    out.clear();
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(ep.base_path.as_bytes());
    out.extend_from_slice(api_suffix(ctx.route));
    out.extend_from_slice(provider.query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    upstream_headers(out, snap, head, &c.buf, d, false);
    write::header_u64(out, "content-length", len as u64);
    write::end_head(out);
    let mut at = 0;
    for (r, with) in &splices {
        out.extend_from_slice(&body[at..r.start]);
        out.extend_from_slice(with);
        at = r.end;
    }
    if body.len() - at >= ZERO_COPY_TAIL_BYTES {
        // A long prompt: the rest goes out from the read buffer, not through a copy.
        c.ex.ureq_tail = Some(c.body.start + at..c.body.end);
    } else {
        out.extend_from_slice(&body[at..]);
    }
    Ok(())
}

/// The head lines after the request line: host, the provider's credential, the client's
/// headers minus hop-by-hop ones and its credentials (and, across dialects, minus the other
/// dialect's own headers), a content type, and `anthropic-version` for Anthropic.
fn upstream_headers(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    head: &RequestHead,
    buf: &[u8],
    d: DeploymentId,
    across: bool,
) {
    let provider = snap.provider(snap.deployment(d).provider);
    if let Some(ep) = &provider.endpoint {
        write::header(out, "host", ep.authority.as_bytes());
    }
    if let Some(cred) = &provider.credential {
        out.extend_from_slice(cred);
    }
    let connection = head.header(buf, "connection").unwrap_or_default();
    let mut content_type = false;
    let mut version = false;
    for h in &head.headers {
        let name = h.name.get(buf);
        if NOT_FORWARDED
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            || listed_in(connection, name)
            || (across
                && (name.eq_ignore_ascii_case(b"content-type")
                    || name.len() >= 10 && name[..10].eq_ignore_ascii_case(b"anthropic-")
                    || name.eq_ignore_ascii_case(b"openai-organization")
                    || name.eq_ignore_ascii_case(b"openai-project")))
        {
            continue;
        }
        content_type |= name.eq_ignore_ascii_case(b"content-type");
        version |= name.eq_ignore_ascii_case(b"anthropic-version");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    if !content_type {
        write::header(out, "content-type", b"application/json");
    }
    if provider.kind == ProviderKind::Anthropic && !version {
        write::header(out, "anthropic-version", ANTHROPIC_VERSION);
    }
}

/// The client's dialect on `route`.
pub(super) fn client_dialect(route: Route) -> Dialect {
    if route == Route::Messages {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    }
}

/// Builds the upstream request for a provider of another dialect: the body is rewritten
/// whole by [`crate::translate::request`] (a field it cannot carry over is a 400 naming it),
/// the path is the provider's own endpoint for the call.
fn translate_across(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    d: DeploymentId,
    pair: Pair,
) -> Result<(), GatewayError> {
    let dep = snap.deployment(d);
    let provider = snap.provider(dep.provider);
    ctx.inject_usage = false;
    ctx.client_usage = f.include_usage;
    let target = request::Target {
        model_json: &dep.upstream_model_json,
        default_max_tokens: f.max_tokens.unwrap_or(dep.default_max_tokens),
        compatible: provider.compatible,
    };
    let mut body = std::mem::take(&mut c.ex.ubuf);
    let r = request::translate(
        pair,
        &c.buf[c.body.clone()],
        &target,
        &mut w.scratch.borrow_mut(),
        &mut body,
    );
    if let Err(e) = r {
        body.clear();
        c.ex.ubuf = body;
        let what = match pair.provider() {
            Dialect::Anthropic => "Anthropic",
            Dialect::Gemini => "Gemini",
            Dialect::OpenAi => "an OpenAI-dialect provider",
        };
        return Err(GatewayError::new(
            ErrorKind::InvalidBody,
            format!(
                "This request goes to {what} and cannot be translated faithfully: {}.",
                e.message
            ),
        )
        .param(e.param));
    }
    ctx.upstream_body_bytes = body.len() as u64;
    let Some(ep) = &provider.endpoint else {
        return Err(GatewayError::new(
            ErrorKind::Internal,
            "a translated request needs a provider endpoint",
        ));
    };
    let out = &mut c.ex.ureq;
    out.clear();
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(ep.base_path.as_bytes());
    match pair.provider() {
        Dialect::Anthropic => out.extend_from_slice(b"/messages"),
        Dialect::OpenAi => out.extend_from_slice(b"/chat/completions"),
        Dialect::Gemini => {
            out.extend_from_slice(b"/models/");
            out.extend_from_slice(dep.upstream_model.as_bytes());
            out.extend_from_slice(if f.stream {
                b":streamGenerateContent?alt=sse".as_slice()
            } else {
                b":generateContent"
            });
        }
    }
    if pair.provider() == Dialect::OpenAi {
        out.extend_from_slice(provider.query.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    upstream_headers(out, snap, &c.head, &c.buf, d, true);
    write::header_u64(out, "content-length", body.len() as u64);
    write::end_head(out);
    out.extend_from_slice(&body);
    body.clear();
    c.ex.ubuf = body;
    Ok(())
}

/// The Messages API version sent to Anthropic when the client names none.
const ANTHROPIC_VERSION: &[u8] = b"2023-06-01";

/// A request body tail at least this long is written upstream straight from the read buffer
/// (one more write, one less copy of the bulk of a long prompt).
const ZERO_COPY_TAIL_BYTES: usize = 16 * 1024;

/// The edit that makes a request ask for usage: `(span of the body to replace, with what)`.
/// `None` when `stream_options` is present but not an object or null (the provider will
/// refuse the request; it is forwarded as the client wrote it).
fn include_usage_splice(body: &[u8]) -> Option<(Range<usize>, &'static [u8])> {
    const MEMBER: &[u8] = b"\"stream_options\":{\"include_usage\":true},";
    const OBJECT: &[u8] = b"{\"include_usage\":true}";
    let Some(opts) = member(body, b"stream_options") else {
        let at = Members::open(body)?;
        return Some((at..at, MEMBER));
    };
    let value = &body[opts.clone()];
    match value.first() {
        Some(b'n') => Some((opts, OBJECT)),
        Some(b'{') => match member(value, b"include_usage") {
            Some(v) => Some((opts.start + v.start..opts.start + v.end, b"true")),
            None if Members::new(value).next().is_none() => Some((opts, OBJECT)),
            None => {
                let at = opts.start + Members::open(value)?;
                Some((at..at, b"\"include_usage\":true,"))
            }
        },
        _ => None,
    }
}

/// True when `name` is one of the comma-separated tokens of a `Connection` header value.
fn listed_in(connection: &[u8], name: &[u8]) -> bool {
    !connection.is_empty()
        && connection
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
}

// -------------------------------------------------------------------------------- forward

/// What every attempt of a request sends, and what the built-in mock needs to answer it.
#[derive(Clone, Copy, Debug)]
struct Call {
    route: Route,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u32>,
    body_len: usize,
    serial: u64,
    created: u64,
}

impl Call {
    fn of(c: &Conn, ctx: &RequestCtx, f: &Fields) -> Call {
        Call {
            route: ctx.route,
            stream: f.stream,
            include_usage: f.include_usage || ctx.inject_usage,
            max_tokens: f.max_tokens,
            body_len: c.body.len(),
            serial: ctx.serial & SERIAL_MASK,
            created: ctx.start_unix_us / 1_000_000,
        }
    }
}

/// Sends `ex`'s request (its tail from `buf`) to deployment `d` and reads the response head
/// into `ex`; returns the connection and how long the head took (µs). Connections opened
/// count in `attempts`. A pooled connection that turns out to be dead before answering (the
/// provider closed it while idle) is replaced by a fresh one once; nothing has reached the
/// client, so that is safe.
async fn forward(
    w: &Worker,
    snap: &Snapshot,
    ex: &mut Exchange,
    buf: &mut Vec<u8>,
    call: &Call,
    attempts: &Cell<u8>,
    d: DeploymentId,
) -> Result<(Upstream, u64), GatewayError> {
    let dep = snap.deployment(d);
    let provider = snap.provider(dep.provider);
    let sent = Instant::now();
    ex.ubuf.clear();
    let Some(ep) = provider
        .endpoint
        .as_ref()
        .filter(|_| provider.kind != ProviderKind::Mock)
    else {
        let mut data = Vec::with_capacity(1024);
        let api = match call.route {
            Route::Completions => crate::mock::Api::Completions,
            Route::Messages => crate::mock::Api::Messages,
            Route::Embeddings => crate::mock::Api::Embeddings,
            _ => crate::mock::Api::Chat,
        };
        crate::mock::respond(
            &crate::mock::Ask {
                api: &api,
                model: &dep.upstream_model,
                body_len: call.body_len,
                stream: call.stream,
                include_usage: call.include_usage,
                max_tokens: call.max_tokens,
                worker: w.id,
                serial: call.serial,
                created: call.created,
            },
            &mut data,
        );
        let mut up = Upstream::Memory { data, pos: 0 };
        attempts.set(attempts.get().saturating_add(1));
        read_response_head(snap, ex, &mut up, sent).await?;
        return Ok((up, sent.elapsed().as_micros() as u64));
    };
    let Some(addr) = w.addrs.borrow().get(&ep.host, ep.port) else {
        return Err(GatewayError::new(
            ErrorKind::UpstreamConnect,
            format!("no address known for {}:{} (DNS)", ep.host, ep.port),
        ));
    };
    let key = PoolKey {
        host: ep.host.clone(),
        port: ep.port,
        tls: provider.tls.as_ref().map_or(crate::tls::PLAIN, |t| t.1),
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        attempts.set(attempts.get().saturating_add(1));
        let pooled = w
            .pool
            .borrow_mut()
            .take(&key.host, key.port, key.tls, Instant::now());
        let (stream, reused) = match pooled {
            Some(s) => {
                w.count(|c| c.upstream_reuses += 1);
                (s, true)
            }
            None => {
                w.count(|c| c.upstream_connects += 1);
                let tcp = upstream::connect(addr, snap.upstream.connect).await?;
                let stream = match &provider.tls {
                    None => upstream::Stream::Plain(tcp),
                    Some((cfg, _)) => {
                        upstream::connect_tls(tcp, &ep.host, cfg, snap.upstream.connect).await?
                    }
                };
                (stream, false)
            }
        };
        let mut up = Upstream::Tcp(Checkout::new(w.pool.clone(), key.clone(), stream, reused));
        let req = std::mem::take(&mut ex.ureq);
        let (mut res, req) = up.write_all(req).await;
        ex.ureq = req;
        if let (Ok(_), Some(tail)) = (&res, ex.ureq_tail.clone()) {
            let whole = std::mem::take(buf);
            let (r, slice) = up.write_all(monoio::buf::IoBuf::slice(whole, tail)).await;
            *buf = slice.into_inner();
            res = r;
        }
        let result = match res {
            Ok(_) => read_response_head(snap, ex, &mut up, sent).await,
            Err(e) => Err(GatewayError::io(
                ErrorKind::UpstreamConnect,
                "sending the request to the provider",
                e,
            )
            .retryable(true)),
        };
        match result {
            Ok(()) => return Ok((up, sent.elapsed().as_micros() as u64)),
            Err(e) if reused && e.retry && attempt == 1 && ex.ubuf.is_empty() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads until `ex.uhead` holds a final (non-1xx) response head. Errors from a connection
/// that produced no byte at all are marked retryable (a stale pooled connection).
async fn read_response_head(
    snap: &Snapshot,
    ex: &mut Exchange,
    up: &mut Upstream,
    sent: Instant,
) -> Result<(), GatewayError> {
    let deadline = sent
        + snap
            .upstream
            .head
            .min(snap.upstream.ttft)
            .min(snap.upstream.total);
    loop {
        if !ex.ubuf.is_empty() {
            match ex
                .uhead
                .parse(&ex.ubuf, &UPSTREAM_HEAD_LIMITS, Method::Post)
            {
                Ok(Some(n)) if ex.uhead.is_interim() => {
                    ex.ubuf.drain(..n);
                    continue;
                }
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) => {
                    return Err(GatewayError::new(
                        ErrorKind::UpstreamProtocol,
                        format!("the provider sent an invalid response head: {e}"),
                    ));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let buf = std::mem::take(&mut ex.ubuf);
        let (res, buf) = match monoio::time::timeout(left, up.read_more(buf, HEAD_READ_BYTES)).await
        {
            Ok(r) => r,
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamTimeout,
                    format!(
                        "the provider sent no response head within {} ms",
                        snap.upstream
                            .head
                            .min(snap.upstream.ttft)
                            .min(snap.upstream.total)
                            .as_millis()
                    ),
                ));
            }
        };
        ex.ubuf = buf;
        let nothing_yet = ex.ubuf.is_empty();
        match res {
            Ok(0) => {
                return Err(GatewayError::new(
                    ErrorKind::UpstreamProtocol,
                    "the provider closed the connection before sending a complete response head",
                )
                .retryable(nothing_yet));
            }
            Err(e) => {
                return Err(GatewayError::io(
                    ErrorKind::UpstreamProtocol,
                    "reading the provider's response",
                    e,
                )
                .retryable(nothing_yet));
            }
            Ok(_) => {}
        }
    }
}

fn ctx_worker(ctx: &RequestCtx) -> u16 {
    (ctx.serial >> 48) as u16
}

// --------------------------------------------------------------------------------- settle

/// Settle: what the call consumed → what it cost → the key's spend (coalesced per key, sent
/// to the coordinator on the next tick; never dropped). Runs after every request, however it
/// ended. A call is charged once a provider accepted it (a 2xx head): the usage it reported,
/// or, where that is missing (client gone, upstream cut, provider omitted it), an estimate
/// flagged `usage_estimated` — never zero. A call that never got that far costs nothing.
fn settle(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &mut RequestCtx) {
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
    ctx.finish_reason = if ctx.cut_at_cap {
        InlineStr::new(b"cut_at_cap")
    } else {
        o.finish_reason
    };
    ctx.response_model = o.response_model;
    ctx.response_id = o.response_id;
    let (Some(key), Some(d)) = (ctx.key, ctx.deployment) else {
        return;
    };
    let (usage, estimated) = settle_usage(o, ctx.upstream_body_bytes);
    let cost = snap.deployment(d).price.cost(&usage);
    ctx.charged = true;
    ctx.usage = usage;
    ctx.usage_estimated = estimated;
    ctx.cost_micro_usd = cost;
    let direct = w
        .spend
        .borrow_mut()
        .charge(ctx.generation, key, &usage, estimated, cost);
    if let Some(e) = direct {
        w.emit(e);
    }
}

// --------------------------------------------------------------------------------- finish

/// Always runs, whatever happened: the audit record goes to the coordinator and the
/// counters are updated.
fn finish(w: &Worker, ctx: &RequestCtx) {
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
    w.emit(WorkerEvent::Audit(AuditRecord {
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
        hedge_cost_micro_usd: ctx.hedge_cost_micro_usd,
        finish_reason: ctx.finish_reason,
        response_model: ctx.response_model,
        response_id: ctx.response_id,
        prompt_sha256: ctx.prompt_sha256,
        completion_sha256: ctx.completion_sha256,
    }));
}

/// The low 48 bits of a request serial count requests; the high 16 name the worker.
const SERIAL_MASK: u64 = (1 << 48) - 1;

impl RequestCtx {
    fn new(w: &Worker, c: &Conn) -> Self {
        let n = w.serial.get() + 1;
        w.serial.set(n);
        let start_unix_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        RequestCtx {
            serial: (u64::from(w.id) << 48) | (n & SERIAL_MASK),
            started: Instant::now(),
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
            inject_usage: false,
            upstream_body_bytes: 0,
            log_hashes: false,
            charged: false,
            usage: Usage::default(),
            usage_estimated: false,
            cost_micro_usd: 0,
            reserved_micro_usd: 0,
            hedge_cost_micro_usd: 0,
            hedge_tokens: 0,
            finish_reason: InlineStr::default(),
            response_model: InlineStr::default(),
            response_id: InlineStr::default(),
            prompt_sha256: None,
            completion_sha256: None,
            extra_head: Vec::new(),
            reserved_under: None,
            output_allowed: None,
            client_usage: false,
            cut_at_cap: false,
            sent_at: None,
            first_byte_at: None,
            tries: Tries::default(),
            refused_by_deployment: false,
            hedge: Hedge::None,
        }
    }
}

// ------------------------------------------------------------------------------ responses

async fn respond_json(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    status: u16,
    body: &[u8],
) -> Result<(), GatewayError> {
    ctx.status = status;
    let out = &mut c.out;
    out.clear();
    write::status_line(out, status);
    write::header(out, "content-type", b"application/json");
    write::header_u64(out, "content-length", body.len() as u64);
    request_id_header(out, ctx);
    if !ctx.keep_alive {
        write::header(out, "connection", b"close");
    }
    write::end_head(out);
    out.extend_from_slice(body);
    send(io, c, ctx).await
}

/// `x-request-id`: ties a response to its audit record.
/// `x-request-id`: ties a response to its audit record; then the request's other headers
/// (rate limits, budget warning).
fn request_id_header(out: &mut Vec<u8>, ctx: &RequestCtx) {
    out.extend_from_slice(b"x-request-id: ");
    crate::telemetry::log::request_id(out, ctx_worker(ctx), ctx.serial & SERIAL_MASK);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&ctx.extra_head);
}

/// Writes `e` as the response (best effort: the client may be gone).
async fn respond_error(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    e: &GatewayError,
) {
    ctx.status = e.status();
    ctx.error = Some(e.kind);
    c.out.clear();
    let mut id = Vec::with_capacity(32);
    crate::telemetry::log::request_id(&mut id, ctx_worker(ctx), ctx.serial & SERIAL_MASK);
    // A Messages API client gets Anthropic's error shape.
    let anthropic = ctx.route == Route::Messages;
    e.write_response_as(&mut c.out, !ctx.keep_alive, &id, &ctx.extra_head, anthropic);
    let _ = send(io, c, ctx).await;
}

/// The one way response bytes reach the client: writes all of `c.out` (leaving it empty for
/// reuse) within the body timeout, so a client that stops reading cannot pin the request,
/// counts the bytes, and marks the response started (no JSON error can follow any more).
async fn send(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let out = std::mem::take(&mut c.out);
    let n = out.len() as u64;
    let (res, mut out) = match monoio::time::timeout(ctx.write_timeout, io.write_all(out)).await {
        Ok(r) => r,
        Err(_) => {
            return Err(GatewayError::new(
                ErrorKind::ClientClosed,
                "the client stopped reading the response",
            ));
        }
    };
    out.clear();
    c.out = out;
    res.map_err(client_gone)?;
    ctx.response_started = true;
    ctx.response_bytes += n;
    Ok(())
}

fn client_gone(e: std::io::Error) -> GatewayError {
    GatewayError::io(ErrorKind::ClientClosed, "writing to the client", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_string_spans() {
        let b = br#"{"model":"gpt-4o","x":1}"#;
        assert_eq!(raw_string_span(b, 10), Some(10..16));
        let b = br#"{"model":"a\"b\\","x":1}"#;
        assert_eq!(&b[raw_string_span(b, 10).unwrap()], br#"a\"b\\"#);
        assert_eq!(raw_string_span(b, 0), None);
        assert_eq!(raw_string_span(br#"{"model":"abc"#, 10), None);
    }

    fn spliced(body: &str) -> Option<String> {
        let (r, with) = include_usage_splice(body.as_bytes())?;
        let mut out = body.as_bytes()[..r.start].to_vec();
        out.extend_from_slice(with);
        out.extend_from_slice(&body.as_bytes()[r.end..]);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_scan_reads_what_the_full_parse_reads() {
        let pad = "x".repeat(FULL_PARSE_MAX_BYTES);
        let mut scratch = Scratch::default();
        for body in [
            format!(r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{pad}"}}]}}"#),
            format!(
                r#" {{ "messages" : [{{"content":"{pad} \" }} ] , \\"}}], "model" : "m-1", "stream" : true, "stream_options":{{"include_usage":true}}, "max_tokens": 7 }}"#
            ),
            format!(
                r#"{{"model":"m","stream":null,"max_tokens":9,"max_completion_tokens":5,"x":"{pad}","stream_options":{{"include_usage":false}}}}"#
            ),
            format!(r#"{{"tools":[{{"model":"nested"}}],"model":"top","p":"{pad}"}}"#),
        ] {
            let full = read_request(body.as_bytes(), &mut scratch).unwrap();
            let scan = scan_request(body.as_bytes()).unwrap().unwrap();
            assert_eq!(full.model, scan.model, "{}", &body[..80.min(body.len())]);
            assert_eq!(full.model_span, scan.model_span);
            assert_eq!(
                (full.stream, full.include_usage, full.max_tokens),
                (scan.stream, scan.include_usage, scan.max_tokens)
            );
        }
        // Escaped model names go to the full parser; malformed tops and bad types are errors.
        assert!(scan_request(br#"{"model":"a\u0062"}"#).unwrap().is_none());
        for bad in [
            &br#"{"model":"m" "x":1}"#[..],
            b"[1]",
            br#"{"model":1}"#,
            br#"{"stream":"yes","model":"m"}"#,
        ] {
            assert!(
                scan_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn include_usage_is_spliced_into_every_shape_of_request() {
        let usage = |s: &str| -> serde_json::Value {
            serde_json::from_str::<serde_json::Value>(s).unwrap()["stream_options"].clone()
        };
        for (body, want) in [
            (
                r#"{"model":"m","stream":true}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#" { "model":"m","stream_options":null}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#"{"model":"m","stream_options":{}}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#"{"model":"m","stream_options":{"include_usage":false}}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#"{"model":"m","stream_options":{"continuous_usage_stats":true}}"#,
                r#"{"include_usage":true,"continuous_usage_stats":true}"#,
            ),
            (
                // A nested `stream_options` (a tool's schema) is not the request's.
                r#"{"tools":[{"parameters":{"stream_options":{}}}],"model":"m"}"#,
                r#"{"include_usage":true}"#,
            ),
        ] {
            let out = spliced(body).unwrap_or_else(|| panic!("{body}"));
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            assert_eq!(usage(&out), want, "{body} → {out}");
        }
        assert_eq!(spliced(r#"{"model":"m","stream_options":"x"}"#), None);
    }

    #[test]
    fn routes() {
        assert_eq!(
            route(Method::Post, b"/v1/chat/completions").unwrap(),
            Route::ChatCompletions
        );
        assert_eq!(
            route(Method::Get, b"/v1/chat/completions")
                .unwrap_err()
                .kind,
            ErrorKind::MethodNotAllowed
        );
        assert_eq!(
            route(Method::Get, b"/nope").unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[test]
    fn connection_tokens() {
        assert!(listed_in(b"keep-alive, X-Foo", b"x-foo"));
        assert!(!listed_in(b"", b"x-foo"));
    }
}
