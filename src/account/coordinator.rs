//! The coordinator thread: the one place that sees every worker.
//!
//! It drains the workers' event rings — spend deltas → per-key totals and the ledger; counter
//! deltas → totals; lease asks and returns → the books — distributes config snapshots and
//! re-resolved upstream addresses, and runs the drain on shutdown. Nothing reaches it per
//! request: audit records go from each worker straight to the audit writer thread
//! ([`crate::telemetry::audit`]), which it starts, reconfigures and closes.
//!
//! It owns the books of every budget and rate limit ([`Books`]): workers' asks for allowance
//! arrive on the event rings, grants and reclaims go back on the control rings, and the spend
//! that budgets start from is the ledger's.
//!
//! It is a plain thread that wakes every [`TICK`], on a command, or when a worker asks for
//! allowance ([`super::Wake`]); nothing on a worker waits for it except a request short of
//! allowance, and that only up to `quotas.lease_wait_ms`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use super::admin_ops::strategy_name;
pub use super::admin_ops::{
    AdminHandle, AdminOp, AdminReply, Command, DeploymentView, Published, PublishedCell,
    published_cell,
};
use super::ledger::Ledger;
use super::{Control, CoordinatorRings, Counters, DisabledKeys, Spend, Wake, WorkerEvent};
use crate::calendar::WallClock;
use crate::calendar::day_of;
use crate::config::Snapshot;
use crate::policy::books::Books;
use crate::policy::route::HealthView;
use crate::telemetry::audit::AuditWriter;
use crate::telemetry::export::TraceExporter;
use crate::telemetry::history::History;
use crate::telemetry::metrics::Totals;
use crate::upstream::dns::{self, AddrTable};

/// How often the coordinator drains rings when no command arrives.
pub const TICK: Duration = Duration::from_millis(5);
/// Snapshots kept to name audit records of requests that started before a reload.
const KEEP_SNAPSHOTS: usize = 4;
/// How long shutdown waits for the audit writer to flush (a stuck disk must not hang exit).
const AUDIT_CLOSE_WAIT: Duration = Duration::from_secs(10);

pub struct Coordinator {
    /// What budget periods and ledger records are dated by.
    clock: WallClock,
    /// Per deployment of the current snapshot, per worker: its last health report.
    health: Vec<Vec<HealthView>>,
    pub events: Vec<rtrb::Consumer<WorkerEvent>>,
    pub controls: Vec<rtrb::Producer<Control>>,
    doorbells: Vec<super::Doorbell>,
    pub commands: Receiver<Command>,
    pub snapshot: Arc<Snapshot>,
    pub addrs: Arc<AddrTable>,
    pub published: PublishedCell,
    books: Books,
    /// Key ids disabled at runtime (persisted in the ledger when it is on).
    disabled: BTreeSet<String>,
    disabled_version: u64,
    /// The version each worker has applied.
    disabled_acks: Vec<u64>,
    /// What each worker's cache shard holds, per model (its last report).
    cache_held: Vec<Vec<crate::cache::Held>>,
    /// Admin answers held until every worker applied a change (so "disabled" means refused).
    held_replies: Vec<(u64, Sender<AdminReply>, AdminReply)>,
    wake: Arc<Wake>,
    /// Messages waiting for room in a worker's control ring.
    pending: Vec<VecDeque<Control>>,
    history: VecDeque<Arc<Snapshot>>,
    audit: AuditWriter,
    /// Audit lines formatted this tick.
    spend: BTreeMap<String, Spend>,
    spend_changed: bool,
    /// Spend on disk (when `[ledger] dir` is set); appended every tick.
    ledger: Option<Ledger>,
    ledger_dirty: bool,
    next_sync: Instant,
    /// When the ledger last reached the disk (its lag, in the metrics).
    last_sync: Instant,
    drops: crate::telemetry::audit::DropReport,
    applied: Vec<u64>,
    stopped: Vec<bool>,
    swaps: Vec<(u64, Sender<()>)>,
    totals: Counters,
    cut: u64,
    next_dns: Instant,
    /// Vertex AI access tokens.
    tokens: super::tokens::TokenKeeper,
    /// Workers' filled metrics buffers, and where the emptied ones go back.
    metrics_in: Vec<rtrb::Consumer<super::MetricsBox>>,
    metrics_back: Vec<rtrb::Producer<super::MetricsBox>>,
    /// Every worker's metrics since start, by name.
    metrics: Totals,
    started: std::time::SystemTime,
    traces: TraceExporter,
    /// The stats' per-second and per-minute history, sampled every second.
    stats: History,
    next_sample: Instant,
    started_at: Instant,
    /// `[cluster]`: the line to Redis.
    cluster: Option<super::cluster::Side>,
    /// The workers' spend journals, until the runtime hands them out.
    journals: Vec<Option<super::journal::Writer>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("workers", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    pub fn new(
        rings: CoordinatorRings,
        commands: Receiver<Command>,
        snapshot: Arc<Snapshot>,
        addrs: Arc<AddrTable>,
        published: PublishedCell,
        clock: WallClock,
    ) -> std::io::Result<Self> {
        let CoordinatorRings {
            events,
            controls,
            wake,
            doorbells,
            metrics: metrics_in,
            metrics_back,
        } = rings;
        let n = events.len();
        let audit = AuditWriter::start(&snapshot.audit)?;
        let traces = TraceExporter::start(snapshot.tracing.clone())?;
        let mut spend = BTreeMap::new();
        let mut journals = Vec::new();
        let ledger = match &snapshot.ledger.dir {
            None => None,
            Some(dir) => {
                let (mut l, rec) = Ledger::open(dir).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("ledger {}: {e}", dir.display()))
                })?;
                for line in rec.report() {
                    eprintln!("tollgate: ledger: {line}");
                }
                journals = l.journals(if snapshot.ledger.journal { n } else { 0 });
                for (scope, s) in l.totals() {
                    if let Some(key) = scope.strip_prefix("key:") {
                        spend.insert(key.to_owned(), s);
                    }
                }
                Some(l)
            }
        };
        let today = day_of(clock.now());
        let mut books = Books::new(n, &snapshot, today, Instant::now(), &|q, from| {
            ledger.as_ref().map_or(0, |l| l.budget_spent(q, from))
        });
        let cluster = match &snapshot.cluster {
            None => None,
            Some(c) => {
                books.set_cluster(c, snapshot.quota_settings.lease_wait, Instant::now());
                Some(super::cluster::Side::start(c, wake.clone())?)
            }
        };
        let disabled = ledger
            .as_ref()
            .map(Ledger::runtime_disabled)
            .unwrap_or_default();
        let mut c = Coordinator {
            health: vec![vec![HealthView::default(); n]; snapshot.deployments.len()],
            clock,
            books,
            disabled,
            disabled_version: 0,
            disabled_acks: vec![0; n],
            cache_held: vec![Vec::new(); n],
            held_replies: Vec::new(),
            wake,
            next_dns: Instant::now() + snapshot.upstream.dns_refresh,
            history: VecDeque::from([snapshot.clone()]),
            pending: (0..n).map(|_| VecDeque::new()).collect(),
            applied: vec![snapshot.generation; n],
            stopped: vec![false; n],
            events,
            controls,
            doorbells,
            commands,
            snapshot,
            addrs,
            published,
            audit,
            spend_changed: !spend.is_empty(),
            spend,
            ledger,
            ledger_dirty: false,
            next_sync: Instant::now(),
            last_sync: Instant::now(),
            drops: Default::default(),
            swaps: Vec::new(),
            totals: Counters::default(),
            cut: 0,
            tokens: super::tokens::TokenKeeper::default(),
            metrics_in,
            metrics_back,
            metrics: Totals::default(),
            started: std::time::SystemTime::now(),
            traces,
            stats: History::default(),
            next_sample: Instant::now() + Duration::from_secs(1),
            started_at: Instant::now(),
            cluster,
            journals,
        };
        // Before any worker serves a request: Vertex AI access tokens (a blocking fetch, like
        // the first DNS resolution).
        c.refresh_tokens();
        // Before any worker serves a request: which keys an admin disabled.
        let d = c.disabled_keys();
        c.broadcast(|| Control::Disabled(d.clone()));
        Ok(c)
    }

    /// Worker `i`'s spend journal (`None` without a ledger), taken once.
    pub fn take_journal(&mut self, i: usize) -> Option<super::journal::Writer> {
        self.journals.get_mut(i).and_then(Option::take)
    }

    /// The books' messages onto the control rings.
    fn route_books_out(&mut self) {
        for o in self.books.out.drain(..) {
            if let Some(q) = self.pending.get_mut(usize::from(o.worker)) {
                q.push_back(Control::Quota {
                    generation: o.generation,
                    quota: o.quota,
                    msg: o.msg,
                });
            }
        }
        self.send_pending();
    }

    fn disabled_keys(&mut self) -> Arc<DisabledKeys> {
        self.disabled_version += 1;
        Arc::new(DisabledKeys {
            version: self.disabled_version,
            generation: self.snapshot.generation,
            keys: self
                .snapshot
                .keys
                .iter()
                .map(|k| self.disabled.contains(&k.id))
                .collect(),
        })
    }

    /// The thread body. Returns once every worker has stopped, after the last record is
    /// written and flushed.
    pub fn run(mut self) {
        self.wake.register();
        let mut orphaned = false;
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(cmd) => self.command(cmd),
                    Err(TryRecvError::Empty) => break,
                    // The control thread is gone: drain as if told to.
                    Err(TryRecvError::Disconnected) => {
                        if !orphaned {
                            orphaned = true;
                            self.broadcast(|| Control::Drain);
                        }
                        break;
                    }
                }
            }
            self.drain_rings();
            self.send_pending();
            if Instant::now() >= self.next_dns {
                self.refresh_dns();
            }
            if Instant::now() >= self.next_sample {
                self.next_sample += Duration::from_secs(1);
                self.stats.sample(self.clock.now(), &self.metrics);
            }
            if self.tokens.due(Instant::now()) {
                self.refresh_tokens();
            }
            if self.stopped.iter().all(|&s| s) {
                self.drain_rings();
                break;
            }
            std::thread::park_timeout(TICK);
        }
        if let Some(cs) = &mut self.cluster {
            cs.finish(&mut self.books, super::cluster::CLOSE_WAIT);
        }
        if let Some(l) = &mut self.ledger
            && let Err(e) = l.sync()
        {
            eprintln!("tollgate: ledger: {e}; the last second of spend may not be on disk");
        }
        // Every worker has handed over its last spans: send them.
        self.traces.close();
        if !self.audit.close(AUDIT_CLOSE_WAIT) {
            eprintln!(
                "tollgate: the audit output did not finish writing within {} s; {} record(s) \
                 may be lost",
                AUDIT_CLOSE_WAIT.as_secs(),
                self.audit.stats.queued.load(Ordering::Relaxed)
            );
        }
        self.publish();
        if let Ok(mut p) = self.published.lock() {
            p.quotas = self.books.views();
        }
        self.drops.report(self.dropped(), true);
    }

    /// A worker's handle on the trace exporter.
    pub fn trace_sink(&self) -> Option<crate::telemetry::export::TraceSink> {
        self.traces.sink()
    }

    /// A worker's handle on the audit writer (each worker hands it its own formatted lines).
    pub fn audit_sink(&self) -> Option<crate::telemetry::audit::AuditSink> {
        self.audit.sink()
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Swap(snap, done) => {
                // Resolve new endpoints before any worker can route to them.
                let (table, errors) = dns::resolve(&snap, &self.addrs);
                for e in errors {
                    eprintln!("tollgate: {e}");
                }
                if table != *self.addrs {
                    self.addrs = Arc::new(table);
                    let a = self.addrs.clone();
                    self.broadcast(|| Control::Addrs(a.clone()));
                }
                // A service account this gateway has no token for yet: fetched next tick.
                self.tokens.want(&snap);
                if snap.audit != self.snapshot.audit {
                    self.audit.configure(&snap.audit);
                }
                if snap.tracing != self.snapshot.tracing {
                    self.traces.configure(snap.tracing.clone());
                }
                self.swaps.push((snap.generation, done));
                self.history.push_back(snap.clone());
                if self.history.len() > KEEP_SNAPSHOTS {
                    self.history.pop_front();
                }
                self.snapshot = snap.clone();
                self.health =
                    vec![vec![HealthView::default(); self.events.len()]; snap.deployments.len()];
                let ledger = &self.ledger;
                self.books.add_generation(
                    &snap,
                    day_of(self.clock.now()),
                    Instant::now(),
                    &|q, from| ledger.as_ref().map_or(0, |l| l.budget_spent(q, from)),
                );
                // The disabled keys by the new ids first: no request under the new snapshot
                // may see a stale bitmap.
                let d = self.disabled_keys();
                self.broadcast(|| Control::Disabled(d.clone()));
                self.broadcast(|| Control::Snapshot(snap.clone()));
            }
            Command::Drain => self.broadcast(|| Control::Drain),
            Command::Admin(op, reply) => {
                let answer = self.admin(op);
                if matches!(answer, AdminReply::Done(_)) {
                    // Answered once every worker applied what the operation changed.
                    self.held_replies
                        .push((self.disabled_version, reply, answer));
                } else {
                    let _ = reply.send(answer);
                }
            }
        }
    }

    fn admin(&mut self, op: AdminOp) -> AdminReply {
        // As of now: a period that ended since the last tick has rolled over (and the workers
        // are told before the answer goes out).
        self.books.tick(Instant::now(), self.clock.now());
        self.route_books_out();
        match op {
            AdminOp::Deployments => AdminReply::Deployments(
                self.snapshot
                    .deployments
                    .iter()
                    .zip(&self.health)
                    .map(|(d, h)| DeploymentView {
                        name: d.name.clone(),
                        provider: self.snapshot.provider(d.provider).name.clone(),
                        strategy: strategy_name(self.snapshot.models[d.model.0 as usize].strategy),
                        workers: h.clone(),
                    })
                    .collect(),
            ),
            AdminOp::Metrics { openmetrics } => {
                let (content_type, text) = super::scrape::render(
                    &super::scrape::Scrape {
                        snapshot: &self.snapshot,
                        totals: &self.metrics,
                        counters: &self.totals,
                        books: self.books.views(),
                        health: &self.health,
                        audit_written: self.audit.stats.written.load(Ordering::Relaxed),
                        audit_dropped: self.dropped(),
                        cut_connections: self.cut,
                        started: self.started,
                        traces: &self.traces.stats,
                        ledger_sync_age: self
                            .ledger
                            .as_ref()
                            .map(|_| self.last_sync.elapsed().as_secs_f64()),
                        cache_held: &self.cache_held,
                        cluster: self
                            .books
                            .link_view()
                            .zip(self.cluster.as_ref().map(|c| c.stats())),
                    },
                    openmetrics,
                );
                AdminReply::Metrics { content_type, text }
            }
            AdminOp::Stats => AdminReply::Metrics {
                content_type: "application/json",
                text: super::stats::render(&super::stats::Stats {
                    snapshot: &self.snapshot,
                    totals: &self.metrics,
                    history: &self.stats,
                    books: self.books.views(),
                    health: &self.health,
                    now_unix: self.clock.now(),
                    started_unix: self
                        .clock
                        .now()
                        .saturating_sub(self.started_at.elapsed().as_secs()),
                    ledger: self.ledger.as_ref(),
                    cache_held: &self.cache_held,
                }),
            },
            AdminOp::State => AdminReply::State {
                quotas: self.books.views(),
                disabled: self.disabled.iter().cloned().collect(),
                spend: self.spend.clone(),
                shared_spend: self.cluster.as_ref().map_or_else(Default::default, |c| {
                    c.shared_spend(day_of(self.clock.now()))
                }),
            },
            AdminOp::Reset(scope) => {
                let names = self.books.reset(&scope);
                if names.is_empty() {
                    return AdminReply::NotFound(format!("no budget for scope `{scope}`"));
                }
                if let Some(l) = &mut self.ledger {
                    // A credit of what the period spent so far: recovery subtracts it.
                    let from = self
                        .snapshot
                        .quotas
                        .iter()
                        .find(|q| q.scope == scope && q.is_budget())
                        .map_or(0, |q| {
                            super::ledger::period_start(q, day_of(self.clock.now()))
                        });
                    let net = l.net_spent(&scope, from);
                    let r = l
                        .append(self.clock.now(), &format!("credit:{scope}"), &net)
                        .and_then(|()| l.sync());
                    if let Err(e) = r {
                        eprintln!("tollgate: ledger: {e}; the reset holds until restart only");
                    }
                }
                // The resets, then a bitmap version behind them: its acknowledgement (control
                // rings are FIFO) says every worker has applied them.
                self.route_books_out();
                let d = self.disabled_keys();
                self.broadcast(|| Control::Disabled(d.clone()));
                AdminReply::Done(format!("reset {}", names.join(", ")))
            }
            AdminOp::PurgeCache(purge) => {
                self.disabled_version += 1;
                let version = self.disabled_version;
                let what = format!("{purge:?}");
                self.broadcast(|| Control::CachePurge {
                    purge: purge.clone(),
                    version,
                });
                AdminReply::Done(format!("cache purged ({what})"))
            }
            AdminOp::SetKey(id, enabled) => {
                if !self.snapshot.keys.iter().any(|k| k.id == id) {
                    return AdminReply::NotFound(format!("no key `{id}`"));
                }
                let changed = if enabled {
                    self.disabled.remove(&id)
                } else {
                    self.disabled.insert(id.clone())
                };
                if changed && let Some(l) = &mut self.ledger {
                    let scope = format!("{}:key:{id}", if enabled { "enable" } else { "disable" });
                    let one = Spend {
                        requests: 1,
                        ..Spend::default()
                    };
                    if let Err(e) = l
                        .append(self.clock.now(), &scope, &one)
                        .and_then(|()| l.sync())
                    {
                        eprintln!("tollgate: ledger: {e}; the change holds until restart only");
                    }
                }
                let d = self.disabled_keys();
                self.broadcast(|| Control::Disabled(d.clone()));
                AdminReply::Done(format!(
                    "key `{id}` {}",
                    if enabled { "enabled" } else { "disabled" }
                ))
            }
        }
    }

    fn broadcast(&mut self, msg: impl Fn() -> Control) {
        for q in &mut self.pending {
            q.push_back(msg());
        }
        self.send_pending();
    }

    /// Pushes what is pending for each worker and rings the doorbell of each that got any.
    fn send_pending(&mut self) {
        let rings = self.pending.iter_mut().zip(&mut self.controls);
        for ((q, ring), bell) in rings.zip(&self.doorbells) {
            let mut sent = false;
            while let Some(m) = q.pop_front() {
                if let Err(rtrb::PushError::Full(m)) = ring.push(m) {
                    q.push_front(m);
                    break;
                }
                sent = true;
            }
            if sent {
                bell.ring();
            }
        }
    }

    fn drain_rings(&mut self) {
        self.merge_metrics();
        for i in 0..self.events.len() {
            while let Ok(e) = self.events[i].pop() {
                self.event(i, e);
            }
        }
        self.books.tick(Instant::now(), self.clock.now());
        self.pump_cluster();
        for n in self.books.notices.drain(..) {
            eprintln!("tollgate: budget warning: {n}");
        }
        for n in self.books.link_notices.drain(..) {
            eprintln!("tollgate: cluster: {n}");
        }
        self.route_books_out();
        self.persist();
        let acks = &self.disabled_acks;
        self.held_replies.retain(|(version, reply, answer)| {
            let all = acks.iter().all(|a| a >= version);
            if all {
                let _ = reply.send(answer.clone());
            }
            !all
        });
        let applied = &self.applied;
        self.swaps.retain(|(generation, done)| {
            let all = applied.iter().all(|a| a >= generation);
            if all {
                let _ = done.send(());
            }
            !all
        });
        self.publish();
        self.drops.report(self.dropped(), false);
    }

    /// One event from worker `from`'s ring.
    fn event(&mut self, from: usize, e: WorkerEvent) {
        match e {
            WorkerEvent::Spend {
                generation,
                key,
                spend,
            } => {
                let k = self
                    .history
                    .iter()
                    .find(|s| s.generation == generation)
                    .and_then(|s| s.keys.get(key.0 as usize));
                let name = k.map_or_else(|| format!("#{}@{generation}", key.0), |k| k.id.clone());
                let team = k.and_then(|k| k.team.clone());
                if let Some(l) = &mut self.ledger {
                    let now = self.clock.now();
                    let mut r = l.journaled(from, now, &format!("key:{name}"), &spend);
                    if let Some(t) = &team {
                        r = r.and_then(|()| l.journaled(from, now, &format!("team:{t}"), &spend));
                    }
                    if let Err(e) = r {
                        eprintln!("tollgate: ledger: {e}; spend is kept in memory");
                    }
                    self.ledger_dirty = true;
                }
                if let Some(cs) = &mut self.cluster {
                    cs.settled(&name, team.as_deref(), day_of(self.clock.now()), &spend);
                }
                self.spend.entry(name).or_default().add(&spend);
                self.spend_changed = true;
            }
            WorkerEvent::Counters { counters, .. } => self.totals.add(&counters),
            WorkerEvent::JournalMark { upto } => {
                if let Some(l) = &mut self.ledger {
                    if let Err(e) = l.mark(from, upto) {
                        eprintln!("tollgate: ledger: {e}; spend is kept in memory");
                    }
                    self.ledger_dirty = true;
                }
            }
            WorkerEvent::SharedGet { .. } | WorkerEvent::SharedPut { .. } => {
                if let Some(cs) = &mut self.cluster {
                    cs.cache(e, &mut self.books);
                }
            }
            WorkerEvent::Lease(m) => self.books.lease(m, Instant::now()),
            WorkerEvent::Breaker {
                worker,
                generation,
                deployment,
                change,
            } => {
                // Deployment ids are per snapshot: a change under an older one is stale.
                if generation == self.snapshot.generation {
                    if let Some(cs) = &mut self.cluster {
                        cs.opened(&self.snapshot, deployment, change);
                    }
                    for (w, q) in self.pending.iter_mut().enumerate() {
                        if w != usize::from(worker) {
                            q.push_back(Control::Breaker {
                                generation,
                                deployment,
                                change,
                            });
                        }
                    }
                }
            }
            WorkerEvent::Route {
                worker,
                generation,
                deployment,
                view,
            } => {
                if generation == self.snapshot.generation
                    && let Some(v) = self
                        .health
                        .get_mut(deployment.0 as usize)
                        .and_then(|d| d.get_mut(usize::from(worker)))
                {
                    *v = view;
                }
            }
            WorkerEvent::CacheHeld { worker, held } => {
                if let Some(h) = self.cache_held.get_mut(usize::from(worker)) {
                    *h = held;
                }
            }
            WorkerEvent::DisabledApplied { worker, version } => {
                if let Some(a) = self.disabled_acks.get_mut(usize::from(worker)) {
                    *a = version;
                }
            }
            WorkerEvent::Applied { worker, generation } => {
                self.books.applied(worker, generation);
                if let Some(a) = self.applied.get_mut(usize::from(worker)) {
                    *a = generation;
                }
            }
            WorkerEvent::Stopped { worker, open } => {
                self.cut += open;
                if let Some(s) = self.stopped.get_mut(usize::from(worker)) {
                    *s = true;
                }
            }
        }
    }

    /// `[cluster]`: Redis's answers in, the next batch out; circuits opened on other
    /// instances go to every worker.
    fn pump_cluster(&mut self) {
        if let Some(cs) = &mut self.cluster {
            cs.tick(&mut self.books, &self.snapshot, &mut self.pending);
            self.send_pending();
        }
    }

    /// Ledger records to the OS every tick, to the disk every `sync` interval; compaction when
    /// the log has grown.
    fn persist(&mut self) {
        let Some(l) = &mut self.ledger else { return };
        let cfg = &self.snapshot.ledger;
        let mut r = Ok(());
        if self.ledger_dirty {
            r = l.flush();
            self.ledger_dirty = false;
        }
        let now = Instant::now();
        if r.is_ok() && now >= self.next_sync {
            self.next_sync = now + cfg.sync;
            r = l.sync();
            if r.is_ok() {
                self.last_sync = now;
            }
        }
        if r.is_ok() && l.log_bytes() > cfg.compact_bytes {
            r = l.compact();
        }
        if let Err(e) = r {
            eprintln!("tollgate: ledger: {e}");
        }
    }

    fn dropped(&self) -> u64 {
        self.audit.stats.dropped.load(Ordering::Relaxed)
    }

    /// Folds the workers' filled metrics buffers into the totals (named by the snapshot they
    /// were counted under) and sends them back emptied.
    fn merge_metrics(&mut self) {
        let max_keys = self.snapshot.admin.metrics_max_keys;
        for (inbox, back) in self.metrics_in.iter_mut().zip(&mut self.metrics_back) {
            while let Ok(mut m) = inbox.pop() {
                let snap = self.history.iter().find(|s| s.generation == m.generation);
                self.metrics.merge(&m, snap.map(|s| &**s), max_keys);
                m.reset(0);
                // A full return ring: the buffer is freed (the worker makes another).
                let _ = back.push(m);
            }
        }
    }

    fn publish(&mut self) {
        let dropped = self.dropped();
        if let Ok(mut p) = self.published.lock() {
            p.totals = self.totals;
            p.audit_dropped = dropped;
            p.applied.clone_from(&self.applied);
            p.cut_connections = self.cut;
            p.audit_written = self.audit.stats.written.load(Ordering::Relaxed);
            if self.spend_changed {
                p.spend.clone_from(&self.spend);
                self.spend_changed = false;
            }
        }
    }

    /// Vertex AI tokens that are due, fetched; the workers get the new set when it changed.
    fn refresh_tokens(&mut self) {
        if let Some(t) = self
            .tokens
            .refresh(&self.snapshot, Instant::now(), self.clock.now())
        {
            self.broadcast(|| Control::Tokens(t.clone()));
        }
    }

    fn refresh_dns(&mut self) {
        self.next_dns = Instant::now() + self.snapshot.upstream.dns_refresh;
        let (table, errors) = dns::resolve(&self.snapshot, &self.addrs);
        for e in errors {
            eprintln!("tollgate: {e}");
        }
        if table != *self.addrs {
            self.addrs = Arc::new(table);
            let a = self.addrs.clone();
            self.broadcast(|| Control::Addrs(a.clone()));
        }
    }
}
