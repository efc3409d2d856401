//! The coordinator thread: the one place that sees every worker.
//!
//! It drains the workers' event rings — audit records → JSON lines, handed in one batch per
//! tick to the audit writer thread ([`crate::telemetry::audit`]), which alone touches the
//! output; spend deltas → per-key totals; counter deltas → totals — distributes config
//! snapshots and re-resolved upstream addresses, and runs the drain on shutdown. Later it owns
//! budgets and the ledger.
//!
//! It is a plain thread that wakes every [`TICK`] (or on a command); nothing on a worker waits
//! for it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ledger::Ledger;
use super::{Control, Counters, Spend, WorkerEvent};
use crate::config::Snapshot;
use crate::telemetry::audit::AuditWriter;
use crate::telemetry::log::audit_line;
use crate::upstream::dns::{self, AddrTable};

/// How often the coordinator drains rings when no command arrives.
pub const TICK: Duration = Duration::from_millis(5);
/// Snapshots kept to name audit records of requests that started before a reload.
const KEEP_SNAPSHOTS: usize = 4;
/// How long shutdown waits for the audit writer to flush (a stuck disk must not hang exit).
const AUDIT_CLOSE_WAIT: Duration = Duration::from_secs(10);
/// Dropped audit records are reported on stderr at most this often.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub enum Command {
    /// Swap in a new snapshot; the sender is told once every worker serves it.
    Swap(Arc<Snapshot>, Sender<()>),
    /// Drain the workers; the coordinator exits once all have stopped.
    Drain,
}

/// What the coordinator publishes for the control thread (read off the hot path).
#[derive(Debug, Default, Clone)]
pub struct Published {
    pub totals: Counters,
    /// Generation each worker serves.
    pub applied: Vec<u64>,
    /// Connections cut at the drain deadline.
    pub cut_connections: u64,
    /// Spend per key id (names from the config), since start.
    pub spend: BTreeMap<String, Spend>,
    /// Audit records written to the output.
    pub audit_written: u64,
}

pub struct Coordinator {
    pub events: Vec<rtrb::Consumer<WorkerEvent>>,
    pub controls: Vec<rtrb::Producer<Control>>,
    pub commands: Receiver<Command>,
    pub snapshot: Arc<Snapshot>,
    pub addrs: Arc<AddrTable>,
    pub published: Arc<Mutex<Published>>,
    /// Messages waiting for room in a worker's control ring.
    pending: Vec<VecDeque<Control>>,
    history: VecDeque<Arc<Snapshot>>,
    audit: AuditWriter,
    /// Audit lines formatted this tick.
    batch: Vec<u8>,
    batch_records: u64,
    spend: BTreeMap<String, Spend>,
    spend_changed: bool,
    /// Spend on disk (when `[ledger] dir` is set); appended every tick.
    ledger: Option<Ledger>,
    ledger_dirty: bool,
    next_sync: Instant,
    reported_drops: u64,
    next_drop_report: Instant,
    applied: Vec<u64>,
    stopped: Vec<bool>,
    swaps: Vec<(u64, Sender<()>)>,
    totals: Counters,
    cut: u64,
    next_dns: Instant,
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
        events: Vec<rtrb::Consumer<WorkerEvent>>,
        controls: Vec<rtrb::Producer<Control>>,
        commands: Receiver<Command>,
        snapshot: Arc<Snapshot>,
        addrs: Arc<AddrTable>,
        published: Arc<Mutex<Published>>,
    ) -> std::io::Result<Self> {
        let n = events.len();
        let audit = AuditWriter::start(&snapshot.audit)?;
        let mut spend = BTreeMap::new();
        let ledger = match &snapshot.ledger.dir {
            None => None,
            Some(dir) => {
                let (l, rec) = Ledger::open(dir).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("ledger {}: {e}", dir.display()))
                })?;
                if let Some(aside) = &rec.set_aside_to {
                    eprintln!(
                        "tollgate: ledger: {} byte(s) of a torn or corrupt spend log set aside \
                         in {} (not counted); {} record(s) recovered",
                        rec.set_aside_bytes,
                        aside.display(),
                        rec.records
                    );
                }
                for (scope, s) in l.totals() {
                    if let Some(key) = scope.strip_prefix("key:") {
                        spend.insert(key.to_owned(), s);
                    }
                }
                Some(l)
            }
        };
        Ok(Coordinator {
            next_dns: Instant::now() + snapshot.upstream.dns_refresh,
            history: VecDeque::from([snapshot.clone()]),
            pending: (0..n).map(|_| VecDeque::new()).collect(),
            applied: vec![snapshot.generation; n],
            stopped: vec![false; n],
            events,
            controls,
            commands,
            snapshot,
            addrs,
            published,
            audit,
            batch: Vec::with_capacity(64 * 1024),
            batch_records: 0,
            spend_changed: !spend.is_empty(),
            spend,
            ledger,
            ledger_dirty: false,
            next_sync: Instant::now(),
            reported_drops: 0,
            next_drop_report: Instant::now(),
            swaps: Vec::new(),
            totals: Counters::default(),
            cut: 0,
        })
    }

    /// The thread body. Returns once every worker has stopped, after the last record is
    /// written and flushed.
    pub fn run(mut self) {
        loop {
            match self.commands.recv_timeout(TICK) {
                Ok(cmd) => self.command(cmd),
                Err(RecvTimeoutError::Timeout) => {}
                // The control thread is gone: drain as if told to.
                Err(RecvTimeoutError::Disconnected) => self.broadcast(|| Control::Drain),
            }
            self.drain_rings();
            self.send_pending();
            if Instant::now() >= self.next_dns {
                self.refresh_dns();
            }
            if self.stopped.iter().all(|&s| s) {
                self.drain_rings();
                break;
            }
        }
        if let Some(l) = &mut self.ledger
            && let Err(e) = l.sync()
        {
            eprintln!("tollgate: ledger: {e}; the last second of spend may not be on disk");
        }
        if !self.audit.close(AUDIT_CLOSE_WAIT) {
            eprintln!(
                "tollgate: the audit output did not finish writing within {} s; {} record(s) \
                 may be lost",
                AUDIT_CLOSE_WAIT.as_secs(),
                self.audit.stats.queued.load(Ordering::Relaxed)
            );
        }
        self.publish();
        self.report_drops(true);
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
                if snap.audit != self.snapshot.audit {
                    self.audit.configure(&snap.audit);
                }
                self.swaps.push((snap.generation, done));
                self.history.push_back(snap.clone());
                if self.history.len() > KEEP_SNAPSHOTS {
                    self.history.pop_front();
                }
                self.snapshot = snap.clone();
                self.broadcast(|| Control::Snapshot(snap.clone()));
            }
            Command::Drain => self.broadcast(|| Control::Drain),
        }
    }

    fn broadcast(&mut self, msg: impl Fn() -> Control) {
        for q in &mut self.pending {
            q.push_back(msg());
        }
        self.send_pending();
    }

    fn send_pending(&mut self) {
        for (q, ring) in self.pending.iter_mut().zip(&mut self.controls) {
            while let Some(m) = q.pop_front() {
                if let Err(rtrb::PushError::Full(m)) = ring.push(m) {
                    q.push_front(m);
                    break;
                }
            }
        }
    }

    fn drain_rings(&mut self) {
        for i in 0..self.events.len() {
            while let Ok(e) = self.events[i].pop() {
                self.event(e);
            }
        }
        if self.batch_records > 0 {
            let lines = std::mem::replace(&mut self.batch, Vec::with_capacity(64 * 1024));
            self.audit
                .submit(lines, std::mem::take(&mut self.batch_records));
        }
        self.persist();
        let applied = &self.applied;
        self.swaps.retain(|(generation, done)| {
            let all = applied.iter().all(|a| a >= generation);
            if all {
                let _ = done.send(());
            }
            !all
        });
        self.publish();
        self.report_drops(false);
    }

    fn event(&mut self, e: WorkerEvent) {
        match e {
            WorkerEvent::Audit(r) => {
                if self.audit.is_on() {
                    let snap = self.history.iter().find(|s| s.generation == r.generation);
                    audit_line(&mut self.batch, &r, snap.map(|s| &**s));
                    self.batch_records += 1;
                }
            }
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
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let mut r = l.append(now, &format!("key:{name}"), &spend);
                    if let Some(t) = &team {
                        r = r.and_then(|()| l.append(now, &format!("team:{t}"), &spend));
                    }
                    if let Err(e) = r {
                        eprintln!("tollgate: ledger: {e}; spend is kept in memory");
                    }
                    self.ledger_dirty = true;
                }
                self.spend.entry(name).or_default().add(&spend);
                self.spend_changed = true;
            }
            WorkerEvent::Counters { counters, .. } => self.totals.add(&counters),
            WorkerEvent::Applied { worker, generation } => {
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
        }
        if r.is_ok() && l.log_bytes() > cfg.compact_bytes {
            r = l.compact();
        }
        if let Err(e) = r {
            eprintln!("tollgate: ledger: {e}");
        }
    }

    fn dropped(&self) -> u64 {
        self.totals.audit_records_dropped + self.audit.stats.dropped.load(Ordering::Relaxed)
    }

    fn publish(&mut self) {
        let dropped = self.dropped();
        if let Ok(mut p) = self.published.lock() {
            p.totals = self.totals;
            p.totals.audit_records_dropped = dropped;
            p.applied.clone_from(&self.applied);
            p.cut_connections = self.cut;
            p.audit_written = self.audit.stats.written.load(Ordering::Relaxed);
            if self.spend_changed {
                p.spend.clone_from(&self.spend);
                self.spend_changed = false;
            }
        }
    }

    /// Says on stderr when audit records were dropped (at most once per interval, and at exit).
    fn report_drops(&mut self, last: bool) {
        let dropped = self.dropped();
        let now = Instant::now();
        if dropped > self.reported_drops && (last || now >= self.next_drop_report) {
            eprintln!(
                "tollgate: {} audit record(s) dropped ({} in total): the audit output or the \
                 coordinator is not keeping up; spend figures are unaffected",
                dropped - self.reported_drops,
                dropped
            );
            self.reported_drops = dropped;
            self.next_drop_report = now + DROP_REPORT_INTERVAL;
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
