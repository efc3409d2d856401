//! Starting, reloading and draining the gateway.
//!
//! [`Gateway::start`] binds one SO_REUSEPORT listener per worker on the calling thread (so a
//! bind error is reported before anything runs, and port 0 resolves to one shared port),
//! resolves upstream names, then starts the coordinator and the workers. Each worker is pinned
//! to a core and runs a monoio runtime (io_uring, or epoll where io_uring is unavailable or
//! when the config says so).
//!
//! [`Gateway::reload`] hands a new snapshot to the coordinator, which sends it down every
//! worker's control ring and reports back once all of them serve it; connections and pooled
//! upstream connections are untouched. [`Gateway::shutdown`] drains: workers stop accepting,
//! close idle connections, let requests in flight (streams included) finish until the drain
//! deadline, report, and exit; the coordinator writes the last records and exits.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::account::coordinator::{
    AdminHandle, AdminOp, AdminReply, Command, Coordinator, Published, PublishedCell,
    published_cell,
};
use crate::account::{
    CONTROL_RING_SLOTS, CoordinatorRings, Doorbell, EVENT_RING_SLOTS, METRICS_RING_SLOTS, Rings,
    Wake,
};
use crate::calendar::WallClock;
use crate::config::Snapshot;
use crate::net::io::{self, Driver};
use crate::upstream::dns::{self, AddrTable};
use crate::worker::{TICK, Worker};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("worker {worker}: {source}")]
    Worker {
        worker: usize,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    driver: &'static str,
    commands: Sender<Command>,
    wake: Arc<Wake>,
    workers: Vec<JoinHandle<()>>,
    coordinator: Option<JoinHandle<()>>,
    published: PublishedCell,
    current: Arc<Snapshot>,
    drain_timeout: Duration,
    admin: Option<super::admin::Admin>,
}

impl Gateway {
    pub fn start(snapshot: Snapshot) -> Result<Gateway, StartError> {
        Gateway::start_with_clock(snapshot, WallClock::system())
    }

    /// [`Gateway::start`] with the wall clock the accounting reads (budget periods, ledger
    /// dates) given: tests run a gateway across a period boundary with a manual one.
    pub fn start_with_clock(
        mut snapshot: Snapshot,
        clock: WallClock,
    ) -> Result<Gateway, StartError> {
        snapshot.generation = 0;
        let snapshot = Arc::new(snapshot);
        let server = snapshot.server.clone();
        let listeners = io::bind_reuseport(server.listen, server.workers).map_err(|source| {
            StartError::Bind {
                addr: server.listen,
                source,
            }
        })?;
        let addr = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or(server.listen);
        let (table, errors) = dns::resolve(&snapshot, &AddrTable::default());
        for e in errors {
            eprintln!("tollgate: {e}");
        }
        let addrs = Arc::new(table);
        let driver = match server.driver {
            Driver::Epoll => "epoll",
            Driver::Uring => "io_uring",
            Driver::Auto if monoio::utils::detect_uring() => "io_uring",
            Driver::Auto => "epoll",
        };

        let (cmd_tx, cmd_rx) = mpsc::channel();
        let published = published_cell(Published {
            applied: vec![0; listeners.len()],
            ..Published::default()
        });
        let cores: Vec<usize> = available_cores();
        let mut events = Vec::new();
        let mut controls = Vec::new();
        let mut doorbells = Vec::new();
        let mut metrics = Vec::new();
        let mut metrics_back = Vec::new();
        let mut ends = Vec::new();
        for _ in 0..listeners.len() {
            let (ev_tx, ev_rx) = rtrb::RingBuffer::new(EVENT_RING_SLOTS);
            let (ctl_tx, ctl_rx) = rtrb::RingBuffer::new(CONTROL_RING_SLOTS);
            let (m_tx, m_rx) = rtrb::RingBuffer::new(METRICS_RING_SLOTS);
            let (back_tx, back_rx) = rtrb::RingBuffer::new(METRICS_RING_SLOTS);
            let (bell, listen) = Doorbell::pair()
                .map_err(|e| StartError::Other(format!("creating a doorbell: {e}")))?;
            events.push(ev_rx);
            controls.push(ctl_tx);
            doorbells.push(bell);
            metrics.push(m_rx);
            metrics_back.push(back_tx);
            ends.push((ev_tx, ctl_rx, listen, (m_tx, back_rx)));
        }
        // The rings between workers (the response cache), ringing each other's doorbells.
        let mut peers = crate::cache::Peers::mesh(doorbells.len(), |i| doorbells[i].peer_bell())
            .map_err(|e| StartError::Other(format!("creating the workers' rings: {e}")))?
            .into_iter();
        let hashing = crate::cache::Hashing::new();
        // The coordinator is built first: it opens the ledger and queues what workers must
        // know before their first request (keys disabled at runtime).
        let wake = Arc::new(Wake::default());
        let mut coordinator = Coordinator::new(
            CoordinatorRings {
                events,
                controls,
                wake: wake.clone(),
                doorbells,
                metrics,
                metrics_back,
            },
            cmd_rx,
            snapshot.clone(),
            addrs.clone(),
            published.clone(),
            clock,
        )
        .map_err(|e| StartError::Other(format!("opening the audit output or ledger: {e}")))?;
        let mut workers = Vec::new();
        let (ready_tx, ready_rx) = mpsc::channel();
        let audit = coordinator.audit_sink();
        let traces = coordinator.trace_sink();
        for (i, (listener, (ev_tx, ctl_rx, doorbell, (m_tx, back_rx)))) in
            listeners.into_iter().zip(ends).enumerate()
        {
            let snap = snapshot.clone();
            let addrs = addrs.clone();
            let ready = ready_tx.clone();
            let wake = wake.clone();
            let audit = audit.clone();
            let traces = traces.clone();
            let hashing = hashing.clone();
            let listen = listener
                .local_addr()
                .map_err(|source| StartError::Worker { worker: i, source })?;
            let Some(peers) = peers.next() else {
                return Err(StartError::Other("a worker has no rings".into()));
            };
            let core = (server.pin_workers && !cores.is_empty()).then(|| cores[i % cores.len()]);
            let journal = coordinator.take_journal(i);
            let handle = std::thread::Builder::new()
                .name(format!("tollgate-w{i}"))
                .spawn(move || {
                    let rings = Rings {
                        events: ev_tx,
                        control: ctl_rx,
                        wake,
                        doorbell,
                        audit,
                        traces,
                        metrics: m_tx,
                        metrics_back: back_rx,
                        peers,
                        hashing,
                        listen,
                        journal,
                    };
                    let seat = Seat {
                        id: i,
                        core,
                        listener,
                        rings,
                        ready,
                    };
                    worker_thread(seat, snap, addrs);
                })
                .map_err(|source| StartError::Worker { worker: i, source })?;
            workers.push(handle);
        }
        drop(ready_tx);
        for _ in 0..workers.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err((worker, source))) => return Err(StartError::Worker { worker, source }),
                Err(_) => return Err(StartError::Other("a worker thread died at start".into())),
            }
        }
        let coordinator = std::thread::Builder::new()
            .name("tollgate-coord".into())
            .spawn(move || {
                io::run_in_background();
                coordinator.run();
            })
            .map_err(|e| StartError::Other(format!("starting the coordinator: {e}")))?;
        let admin = match snapshot.admin.listen {
            None => None,
            Some(listen) => {
                let handle = AdminHandle::new(cmd_tx.clone(), wake.clone());
                let access = super::admin::Access {
                    key: snapshot.admin.key_sha256,
                    metrics_public: snapshot.admin.metrics_public,
                };
                Some(
                    super::admin::Admin::start(listen, access, handle).map_err(|source| {
                        StartError::Bind {
                            addr: listen,
                            source,
                        }
                    })?,
                )
            }
        };
        Ok(Gateway {
            admin,
            addr,
            driver,
            commands: cmd_tx,
            wake,
            workers,
            coordinator: Some(coordinator),
            published,
            drain_timeout: server.drain_timeout,
            current: snapshot,
        })
    }

    /// The address the workers listen on (the real port when the config said port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin API's address, when it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|a| a.addr)
    }

    /// `io_uring` or `epoll`.
    pub fn driver(&self) -> &'static str {
        self.driver
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// The generation the workers serve (after the last successful reload).
    pub fn generation(&self) -> u64 {
        self.current.generation
    }

    /// Counters summed over all workers, as last reported to the coordinator.
    pub fn published(&self) -> Published {
        self.published.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Runs an admin operation on the coordinator (what the admin API serves).
    pub fn admin(&self, op: AdminOp) -> Option<AdminReply> {
        AdminHandle::new(self.commands.clone(), self.wake.clone()).call(op)
    }

    /// A handle the admin API's thread uses to reach the coordinator.
    pub fn admin_handle(&self) -> AdminHandle {
        AdminHandle::new(self.commands.clone(), self.wake.clone())
    }

    /// Swaps in `next` on every worker; returns once all of them serve it. Settings that
    /// only take effect at start (listen address, workers, io driver) are reported in the
    /// returned notes and keep their running values.
    pub fn reload(&mut self, mut next: Snapshot) -> Result<Vec<String>, StartError> {
        let mut notes = Vec::new();
        let old = &self.current.server;
        if next.server.listen != old.listen
            || next.server.workers != old.workers
            || next.server.driver != old.driver
            || next.server.pin_workers != old.pin_workers
        {
            notes.push(
                "server.listen, server.workers, server.io and server.pin_workers take effect \
                 only at start; the running values stay"
                    .to_string(),
            );
            next.server.listen = old.listen;
            next.server.workers = old.workers;
            next.server.driver = old.driver;
            next.server.pin_workers = old.pin_workers;
        }
        if next.cluster != self.current.cluster {
            notes.push("[cluster] takes effect only at start; the running link stays".into());
            next.cluster = self.current.cluster.clone();
        }
        next.generation = self.current.generation + 1;
        let next = Arc::new(next);
        let (done_tx, done_rx) = mpsc::channel();
        self.commands
            .send(Command::Swap(next.clone(), done_tx))
            .map_err(|_| StartError::Other("the coordinator has stopped".into()))?;
        self.wake.wake();
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| StartError::Other("workers did not take the new config in 30 s".into()))?;
        self.drain_timeout = next.server.drain_timeout;
        self.current = next;
        Ok(notes)
    }

    /// Drains and stops: returns once every worker and the coordinator have exited.
    pub fn shutdown(mut self) -> Published {
        if let Some(a) = &mut self.admin {
            a.stop();
        }
        let _ = self.commands.send(Command::Drain);
        self.wake.wake();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        if let Some(c) = self.coordinator.take() {
            let _ = c.join();
        }
        self.published()
    }
}

fn available_cores() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..n).collect()
}

/// What one worker thread is handed at start: its id, the core it is pinned to, its
/// listener, its ends of the rings, and where it says it is ready.
struct Seat {
    id: usize,
    core: Option<usize>,
    listener: std::net::TcpListener,
    rings: Rings,
    ready: Sender<Result<(), (usize, std::io::Error)>>,
}

fn worker_thread(seat: Seat, snapshot: Arc<Snapshot>, addrs: Arc<AddrTable>) {
    let Seat {
        id,
        core,
        listener,
        rings,
        ready,
    } = seat;
    if let Some(core) = core {
        // Pinning is an optimisation: a restricted cpuset must not stop the gateway.
        let _ = monoio::utils::bind_to_cpu_set([core]);
    }
    let driver = snapshot.server.driver;
    let ready2 = ready.clone();
    let result = io::block_on(driver, move || async move {
        let listener = match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready2.send(Err((id, e)));
                return;
            }
        };
        let w = Rc::new(Worker::new(id as u16, snapshot, addrs, rings));
        // What the coordinator queued before start (runtime-disabled keys) applies first.
        w.poll_control();
        monoio::spawn(w.clone().answer_doorbell());
        monoio::spawn(tick_loop(w.clone()));
        let _ = ready2.send(Ok(()));
        accept_loop(&w, &listener).await;
        drop(listener);
        if w.connections() > 0 {
            let deadline = w.snapshot().server.drain_timeout;
            let _ = monoio::time::timeout(deadline, w.idle.wait()).await;
        }
        w.stopped();
        // Hand every remaining event to the coordinator before the thread ends.
        while !w.tick(Instant::now(), false) {
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    if let Err(e) = result {
        let _ = ready.send(Err((id, e)));
    }
}

async fn accept_loop(w: &Rc<Worker>, listener: &monoio::net::TcpListener) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = w.drain.wait() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                monoio::spawn(w.clone().accept(stream));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("tollgate: worker {}: accept: {e}", w.id);
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn tick_loop(w: Rc<Worker>) {
    let mut last_report = Instant::now();
    let mut next_tick = Instant::now() + TICK;
    loop {
        // Control messages are read when the coordinator rings the doorbell
        // (`Worker::answer_doorbell`); the tick reads the ring too, as a backstop.
        monoio::time::sleep(TICK).await;
        w.poll_control();
        w.poll_peers();
        let now = Instant::now();
        if now < next_tick {
            continue;
        }
        next_tick = now + TICK;
        let report = now.duration_since(last_report) >= crate::worker::COUNTER_INTERVAL;
        if report {
            last_report = now;
        }
        w.tick(now, report);
    }
}
