//! One worker: all per-core state ([`Worker`]) and the keep-alive loop that runs the request
//! path, phase by phase, in this order (ARCHITECTURE.md, "The request path"):
//!
//! ```text
//! read_head → route → authenticate → read_body → parse_fields → cache → plan → admit
//! → translate → forward → relay → settle (+ settle_quotas) → finish (always runs)
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
use crate::http1::{self, BodyDecoder, BodyKind, Method, RequestHead, Version, write};
use crate::json::Scratch;
use crate::json::scan::{Members, member};
use crate::net::io::read_more;
use crate::net::latch::{Latch, Notify};
use crate::policy::quota::{LeaseMsg, QuotaControl, Quotas};
use crate::policy::route::{Router, session_hash};
use crate::stream::Meter;
use crate::telemetry::audit::AuditBatch;
use crate::telemetry::record::{AuditRecord, Route, Tries};
use crate::translate::{Pair, request};
use crate::upstream::dns::AddrTable;
use crate::upstream::pool::Pool;
use crate::usage::{InlineStr, Usage, settle_usage};

/// Bytes the read buffers grow by per body read.
const READ_SPARE_BYTES: usize = 16 * 1024;
/// Room for a request head: what an idle keep-alive connection holds (small heads fit; a
/// bigger one grows the buffer up to the head limit).
const HEAD_READ_BYTES: usize = 4 * 1024;
/// Buffers that grew past this for one big request are shrunk back before the next.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;
/// How often a worker drains its control ring, flushes its outbox and evicts idle upstreams.
pub const TICK: Duration = Duration::from_millis(10);
/// How often a worker reports its counters.
pub const COUNTER_INTERVAL: Duration = Duration::from_millis(250);

mod admit;
mod attempt;
mod cache;
mod conn;
mod embed;
mod fields;
mod guard;
mod plan;
mod read;
mod relay;
mod respond;
mod settle;
mod stored;
mod translate;

use crate::upstream::forward::{Call, Egress, Exchange, forward};
use conn::serve;
use fields::*;
use read::*;
use respond::*;
use settle::*;
use translate::*;

/// Everything one worker thread owns.
pub struct Worker {
    pub id: u16,
    /// The config new requests start with. A request holds the slot's `Rc` (a count in this
    /// worker's memory), never the shared `Arc` (a count every worker would write); a reload
    /// puts a new `Rc` in the slot, and the old snapshot goes when its last request ends.
    #[allow(
        clippy::redundant_allocation,
        reason = "one Rc per reload, so that requests count in worker-local memory"
    )]
    snapshot: RefCell<Rc<Arc<Snapshot>>>,
    /// Upstream addresses, held per request like the snapshot (an `Rc` count, not the `Arc`).
    #[allow(
        clippy::redundant_allocation,
        reason = "one Rc per address refresh, so that requests count in worker-local memory"
    )]
    addrs: RefCell<Rc<Arc<AddrTable>>>,
    /// Vertex AI access tokens, from the coordinator.
    tokens: RefCell<Arc<crate::upstream::gcp::Tokens>>,
    pool: Rc<RefCell<Pool>>,
    outbox: RefCell<Outbox>,
    /// This worker's audit lines, on their way to the writer thread.
    audit: RefCell<AuditBatch>,
    counters: RefCell<Counters>,
    /// Spans of sampled requests, on their way to the trace exporter.
    traces: RefCell<crate::telemetry::export::TraceBatch>,
    /// Trace and span ids, sampling decisions.
    ids: RefCell<crate::telemetry::trace::Ids>,
    /// Metrics counted here, on their way to the coordinator (`telemetry::metrics`).
    metrics: RefCell<crate::telemetry::metrics::WorkerDesk>,
    /// Set when the worker starts draining: stop accepting, close idle connections.
    pub drain: Latch,
    /// Set when the last connection closes after `drain`.
    pub idle: Latch,
    conns: Cell<usize>,
    serial: Cell<u64>,
    /// A monotonic instant and the wall clock (µs since the Unix epoch) read together at the
    /// last tick: a request's wall-clock start is derived from its monotonic one, one clock
    /// read instead of two (NTP slews the wall clock by at most ~0.5 ms/s, so between ticks
    /// the derived time drifts by microseconds at most).
    wall: Cell<(Instant, u64)>,
    /// Deployment health, strategies' state, circuit breakers (current snapshot).
    router: RefCell<Router>,
    next_route_report: Cell<Instant>,
    /// simd-json's working memory, reused for every parse on this worker.
    scratch: RefCell<Scratch>,
    /// Spend per key, coalesced until it goes to the coordinator.
    spend: RefCell<SpendBook>,
    /// Each call let through and each charge, where a kill cannot lose them
    /// (`account::journal`; with a ledger).
    journal: RefCell<Option<crate::account::journal::Writer>>,
    control: RefCell<rtrb::Consumer<Control>>,
    /// Readable when the coordinator pushed control messages (taken by the doorbell task).
    doorbell: RefCell<Option<std::os::unix::net::UnixStream>>,
    /// Fired each time the control ring has been read: requests waiting for allowance wake.
    control_read: Notify,
    /// Rings the coordinator's doorbell when an ask cannot wait for its tick.
    wake: Arc<Wake>,
    /// Allowances of the budgets and rate limits of the snapshot new requests start with.
    quotas: RefCell<Quotas>,
    /// Those of earlier snapshots, while requests that started under them are in flight.
    retired: RefCell<Vec<Quotas>>,
    /// Keys an admin disabled at runtime.
    disabled: RefCell<Arc<DisabledKeys>>,
    /// This worker's share of the response cache and its rings to the other workers.
    cache: cache::CacheDesk,
    /// The address the gateway listens on (the port bound).
    listen: std::net::SocketAddr,
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
            doorbell: RefCell::new(Some(rings.doorbell)),
            control_read: Notify::default(),
            wake: rings.wake,
            quotas: RefCell::new(quotas),
            retired: RefCell::new(Vec::new()),
            disabled: RefCell::new(Arc::default()),
            cache: cache::CacheDesk::new(rings.peers, rings.hashing),
            listen: rings.listen,
            journal: RefCell::new(rings.journal),
            id,
            snapshot: RefCell::new(Rc::new(snapshot)),
            addrs: RefCell::new(Rc::new(addrs)),
            tokens: RefCell::default(),
            pool: Rc::new(RefCell::new(pool)),
            outbox: RefCell::new(Outbox::new(rings.events)),
            audit: RefCell::new(AuditBatch::new(rings.audit)),
            counters: RefCell::new(Counters::default()),
            traces: RefCell::new(crate::telemetry::export::TraceBatch::new(rings.traces)),
            ids: RefCell::new(crate::telemetry::trace::Ids::new(
                wall_clock().1 ^ (u64::from(id) << 56),
            )),
            metrics: RefCell::new(crate::telemetry::metrics::WorkerDesk::new(
                rings.metrics,
                rings.metrics_back,
            )),
            drain: Latch::default(),
            idle: Latch::default(),
            conns: Cell::new(0),
            serial: Cell::new(0),
            wall: Cell::new(wall_clock()),
            router: RefCell::new(router),
            next_route_report: Cell::new(Instant::now()),
            scratch: RefCell::new(Scratch::new(16 * 1024)),
            spend: RefCell::new(spend),
        }
    }

    /// The snapshot new requests start with.
    pub fn snapshot(&self) -> Rc<Arc<Snapshot>> {
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
                *self.snapshot.borrow_mut() = Rc::new(s);
                self.emit(WorkerEvent::Applied {
                    worker: self.id,
                    generation,
                });
            }
            Control::Addrs(a) => *self.addrs.borrow_mut() = Rc::new(a),
            Control::Tokens(t) => *self.tokens.borrow_mut() = t,
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
            Control::Shared { ticket, bytes } => self.shared_answer(ticket, bytes),
            Control::CachePurge { purge, version } => {
                // Fills that reached this worker before the purge was sent are purged too.
                self.poll_peers();
                self.cache.purge(&purge);
                self.emit(WorkerEvent::DisabledApplied {
                    worker: self.id,
                    version,
                });
                self.report_cache(true);
                self.outbox.borrow_mut().flush();
                self.wake.wake();
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

    /// Drains the control ring (when the coordinator rings the doorbell, at each tick, and
    /// before a request answers with a remembered refusal), then wakes the requests waiting
    /// for allowance.
    pub fn poll_control(&self) {
        let mut read = false;
        loop {
            let msg = self.control.borrow_mut().pop();
            match msg {
                Ok(m) => {
                    read = true;
                    self.control(m);
                }
                Err(_) => break,
            }
        }
        self.flush_quotas();
        if read {
            self.control_read.notify_all();
        }
    }

    /// Reads the control ring each time the coordinator rings this worker's doorbell, so a
    /// grant, a reclaim or a snapshot is seen at once, with no polling in between. Runs for
    /// the worker's life (ends if the coordinator's end closes).
    pub async fn answer_doorbell(self: Rc<Self>) {
        let Some(bell) = self.doorbell.borrow_mut().take() else {
            return;
        };
        let Ok(mut bell) = monoio::net::UnixStream::from_std(bell) else {
            return;
        };
        let mut buf = Vec::with_capacity(64);
        loop {
            buf.clear();
            let (r, b) = monoio::io::AsyncReadRent::read(&mut bell, buf).await;
            buf = b;
            if !matches!(r, Ok(n) if n > 0) {
                return;
            }
            self.poll_control();
            self.poll_peers();
        }
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
            // What was just sent covers the journal so far (charges and sums go together).
            if let Some(upto) = self
                .journal
                .borrow_mut()
                .as_mut()
                .and_then(|j| j.unmarked())
            {
                outbox.push(WorkerEvent::JournalMark { upto });
            }
        }
    }

    /// Periodic housekeeping: spend and counters out, held events flushed, stale upstreams
    /// closed.
    pub fn tick(&self, now: Instant, report_counters: bool) -> bool {
        self.wall.set(wall_clock());
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
            let pooled = std::mem::take(&mut self.pool.borrow_mut().stats);
            c.upstream_connects += pooled.connects;
            c.upstream_reuses += pooled.reuses;
            if !c.is_zero() {
                self.emit(WorkerEvent::Counters {
                    worker: self.id,
                    counters: c,
                });
            }
            self.metrics.borrow_mut().report();
            self.report_cache(false);
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
        let (bound, spans) = {
            let s = self.snapshot.borrow();
            (
                s.audit.queue_records as u64,
                s.tracing.as_ref().map_or(0, |t| t.queue_spans as u64),
            )
        };
        self.audit.borrow_mut().flush(bound);
        self.traces.borrow_mut().flush(spans);
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
                    Ok(Ok(s)) => {
                        self.count(|c| c.tls_handshakes += 1);
                        serve(&self, ClientStream::Tls(Box::new(s))).await;
                    }
                    _ => self.count(|c| c.tls_handshakes_failed += 1),
                }
            }
        }
        self.count(|c| c.connections_closed += 1);
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
    /// A failed request's response still ended properly (a stream's error event and its
    /// last chunk were written): the connection can carry another request.
    response_ended: bool,
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
    /// The audit record carries SHA-256s of prompt and completion (per-key policy).
    log_hashes: bool,
    charged: bool,
    usage: Usage,
    usage_estimated: bool,
    cost_micro_usd: u64,
    reserved_micro_usd: u64,
    /// Attempts given up on after they were sent (a hedge's cancelled half, a timeout, a cut
    /// answer retried): their estimated cost and tokens, charged too (`settle::abandoned`).
    abandoned_cost_micro_usd: u64,
    abandoned_tokens: u64,
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
    /// Each deployment tried and how it went.
    tries: Tries,
    /// The request's trace (tracing on).
    trace: Option<crate::telemetry::trace::TraceCtx>,
    /// The sticky-routing session (header, else the body's), hashed.
    session: Option<u64>,
    /// The current attempt's own state.
    attempt: AttemptState,
    /// What the response cache did.
    cache: crate::telemetry::record::CacheNote,
    /// What the key's guardrails did (filled before `finish`).
    guard: crate::telemetry::record::GuardNote,
    /// This request leads the fill of a cache entry (`worker/cache.rs`).
    cache_fill: Option<cache::FillTicket>,
    /// The journal holds an open record of this call, at this estimated cost (µUSD).
    journal_open: Option<u64>,
}

/// What one attempt (one deployment, or a hedged pair) sets up and finds out; the last
/// attempt's is what the request settles with.
#[derive(Debug, Default)]
struct AttemptState {
    /// The gateway asked the upstream for usage the client did not ask for: the usage-only
    /// chunk is removed from the stream.
    inject_usage: bool,
    /// Bytes of the request body as the provider receives it (the input estimate's basis).
    upstream_body_bytes: u64,
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
    /// Admission was refused by the deployment's own rate limit (another may serve).
    refused_by_deployment: bool,
    /// The current attempt follows one that was admitted (it counts as a retry).
    retrying: bool,
    /// Whether the request was hedged, and which half won.
    hedge: Hedge,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Hedge {
    #[default]
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

/// What every attempt of this request sends (and what the built-in mock answers from).
fn call_of(c: &Conn, ctx: &RequestCtx, f: &Fields) -> Call {
    Call {
        api: match ctx.route {
            Route::Completions => crate::mock::Api::Completions,
            Route::Messages => crate::mock::Api::Messages,
            Route::Responses => crate::mock::Api::Responses,
            Route::GenerateContent | Route::StreamGenerateContent => crate::mock::Api::Gemini {
                model: String::new(),
                stream: f.stream,
                sse: crate::dialect::gemini::wants_sse(c.head.query(&c.buf)),
            },
            Route::Converse | Route::ConverseStream => crate::mock::Api::Bedrock {
                model: String::new(),
                stream: f.stream,
            },
            Route::Embeddings => crate::mock::Api::Embeddings,
            _ => crate::mock::Api::Chat,
        },
        stream: f.stream,
        include_usage: f.include_usage || ctx.attempt.inject_usage,
        max_tokens: f.max_tokens,
        body_len: c.body.len(),
        serial: ctx.serial & SERIAL_MASK,
        created: ctx.start_unix_us / 1_000_000,
        texts: if ctx.route == Route::Embeddings {
            crate::mock::embedding_inputs(&c.buf[c.body.clone()])
        } else {
            Vec::new()
        },
    }
}

impl Worker {
    /// The worker's side of forwarding, counting opened connections in `attempts`.
    fn egress<'a>(&'a self, addrs: &'a AddrTable, attempts: &'a Cell<u8>) -> Egress<'a> {
        Egress {
            pool: &self.pool,
            addrs,
            worker: self.id,
            attempts,
        }
    }
}

/// Now, as a monotonic instant and as µs since the Unix epoch.
fn wall_clock() -> (Instant, u64) {
    let unix_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    (Instant::now(), unix_us)
}
