//! The coordinator thread: the one place that sees every worker.
//!
//! In this issue it drains the workers' event rings (access records → the access log, which
//! it alone writes; counter deltas → totals), distributes config snapshots and re-resolved
//! upstream addresses, and runs the drain on shutdown. Later it owns budgets and the ledger.
//!
//! It is a plain thread that wakes every [`TICK`] (or on a command); nothing on a worker waits
//! for it.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Control, Counters, WorkerEvent};
use crate::config::{AccessLog, Snapshot};
use crate::telemetry::log::access_line;
use crate::upstream::dns::{self, AddrTable};

/// How often the coordinator drains rings when no command arrives.
pub const TICK: Duration = Duration::from_millis(5);
/// Snapshots kept to name access records of requests that started before a reload.
const KEEP_SNAPSHOTS: usize = 4;

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
    log: Option<Box<dyn Write + Send>>,
    line: Vec<u8>,
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
        let log = open_log(&snapshot.server.access_log)?;
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
            log,
            line: Vec::with_capacity(512),
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
        if let Some(log) = &mut self.log {
            let _ = log.flush();
        }
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
                if snap.server.access_log != self.snapshot.server.access_log {
                    match open_log(&snap.server.access_log) {
                        Ok(log) => {
                            if let Some(old) = &mut self.log {
                                let _ = old.flush();
                            }
                            self.log = log;
                        }
                        Err(e) => eprintln!("tollgate: access log: {e}; keeping the old one"),
                    }
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
        let mut wrote = false;
        for i in 0..self.events.len() {
            while let Ok(e) = self.events[i].pop() {
                match e {
                    WorkerEvent::Access(r) => {
                        if self.log.is_some() {
                            self.line.clear();
                            let snap = self.history.iter().find(|s| s.generation == r.generation);
                            access_line(&mut self.line, &r, snap.map(|s| &**s));
                            if let Some(log) = &mut self.log {
                                let _ = log.write_all(&self.line);
                                wrote = true;
                            }
                        }
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
        }
        if let (true, Some(log)) = (wrote, &mut self.log) {
            let _ = log.flush();
        }
        let applied = &self.applied;
        self.swaps.retain(|(generation, done)| {
            let all = applied.iter().all(|a| a >= generation);
            if all {
                let _ = done.send(());
            }
            !all
        });
        if let Ok(mut p) = self.published.lock() {
            p.totals = self.totals;
            p.applied.clone_from(&self.applied);
            p.cut_connections = self.cut;
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

fn open_log(cfg: &AccessLog) -> std::io::Result<Option<Box<dyn Write + Send>>> {
    Ok(match cfg {
        AccessLog::Off => None,
        AccessLog::Stdout => Some(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        AccessLog::File(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            Some(Box::new(std::io::BufWriter::new(f)))
        }
    })
}
