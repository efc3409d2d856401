//! Cross-thread traffic between workers and the coordinator (ARCHITECTURE.md, "Threads").
//!
//! Each worker has two rtrb SPSC rings: [`WorkerEvent`]s out (small `Copy` records: spend
//! deltas, lease messages, counter snapshots, health reports, acknowledgements) and
//! [`Control`] messages in (config snapshots, resolved upstream addresses, drain). Nothing
//! goes through them per request: spend travels as per-key sums ([`SpendBook`]) coalesced on
//! the worker, counters as deltas, and audit records not at all (each worker formats its own
//! and hands them to the audit writer in batches, `telemetry::audit`). A worker never blocks
//! on a ring: when the outbound ring is full, events wait in a local queue ([`Outbox`]) and
//! go out on the next tick; nothing is ever dropped. That queue grows with time, not with
//! traffic (spend keeps coalescing in the book while the ring is backed up).

mod admin_ops;
pub mod cluster;
pub mod coordinator;
pub mod journal;
pub mod ledger;
mod scrape;
mod stats;
mod tokens;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::{DeploymentId, KeyId, QuotaId, Snapshot};
use crate::policy::quota::{LeaseMsg, QuotaControl};
use crate::policy::route::{Change, HealthView};
use crate::telemetry::audit::AuditSink;
use crate::upstream::dns::AddrTable;
use crate::usage::Usage;

/// Slots in each worker → coordinator ring (the coordinator drains every few ms; an event is
/// under a hundred bytes, so this is a few hundred KiB per worker).
pub const EVENT_RING_SLOTS: usize = 4 * 1024;
/// Slots in each coordinator → worker ring.
pub const CONTROL_RING_SLOTS: usize = 64;

/// Slots in each worker's two metrics rings: filled buffers out, emptied ones back
/// (`telemetry::metrics`; a worker has at most a few buffers in flight).
pub const METRICS_RING_SLOTS: usize = 8;

/// A worker's metrics buffer, as it travels between the worker and the coordinator.
pub type MetricsBox = Box<crate::telemetry::metrics::WorkerMetrics>;

/// How often workers report their deployments' health to the coordinator.
pub const ROUTE_REPORT: std::time::Duration = std::time::Duration::from_millis(250);

/// What one key spent, summed over requests (a delta since the last report).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spend {
    pub requests: u64,
    pub estimated_requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_micro_usd: u64,
}

impl Spend {
    /// Adds one call. Sums saturate: a provider (or a damaged ledger line) reporting absurd
    /// numbers pins a total at its maximum rather than wrapping it to a small one.
    pub fn charge(&mut self, u: &Usage, estimated: bool, cost: u64) {
        self.add(&Spend {
            requests: 1,
            estimated_requests: u64::from(estimated),
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_tokens: u.cache_read_tokens,
            cache_creation_tokens: u.cache_creation_tokens,
            reasoning_tokens: u.reasoning_tokens,
            cost_micro_usd: cost,
        });
    }

    /// `self − o`, field by field, never below zero.
    pub fn saturating_sub(&self, o: &Spend) -> Spend {
        Spend {
            requests: self.requests.saturating_sub(o.requests),
            estimated_requests: self.estimated_requests.saturating_sub(o.estimated_requests),
            input_tokens: self.input_tokens.saturating_sub(o.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(o.output_tokens),
            cache_read_tokens: self.cache_read_tokens.saturating_sub(o.cache_read_tokens),
            cache_creation_tokens: self
                .cache_creation_tokens
                .saturating_sub(o.cache_creation_tokens),
            reasoning_tokens: self.reasoning_tokens.saturating_sub(o.reasoning_tokens),
            cost_micro_usd: self.cost_micro_usd.saturating_sub(o.cost_micro_usd),
        }
    }

    pub fn add(&mut self, o: &Spend) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.requests, o.requests);
        add(&mut self.estimated_requests, o.estimated_requests);
        add(&mut self.input_tokens, o.input_tokens);
        add(&mut self.output_tokens, o.output_tokens);
        add(&mut self.cache_read_tokens, o.cache_read_tokens);
        add(&mut self.cache_creation_tokens, o.cache_creation_tokens);
        add(&mut self.reasoning_tokens, o.reasoning_tokens);
        add(&mut self.cost_micro_usd, o.cost_micro_usd);
    }
}

/// A worker's spend per key, coalesced until it can go out (never dropped).
#[derive(Debug, Default)]
pub struct SpendBook {
    generation: u64,
    by_key: Vec<Spend>,
    dirty: Vec<KeyId>,
}

impl SpendBook {
    /// Adds a charge. A request that ran under another snapshot than the book's (it started
    /// before a reload) is returned to be sent on its own: key ids are per snapshot.
    pub fn charge(
        &mut self,
        generation: u64,
        key: KeyId,
        u: &Usage,
        estimated: bool,
        cost: u64,
    ) -> Option<WorkerEvent> {
        if generation != self.generation {
            let mut s = Spend::default();
            s.charge(u, estimated, cost);
            return Some(WorkerEvent::Spend {
                generation,
                key,
                spend: s,
            });
        }
        let i = key.0 as usize;
        if self.by_key.len() <= i {
            self.by_key.resize(i + 1, Spend::default());
        }
        if self.by_key[i].requests == 0 {
            self.dirty.push(key);
        }
        self.by_key[i].charge(u, estimated, cost);
        None
    }

    /// Takes every non-zero sum, as events.
    pub fn drain(&mut self, mut emit: impl FnMut(WorkerEvent)) {
        for key in self.dirty.drain(..) {
            let s = std::mem::take(&mut self.by_key[key.0 as usize]);
            emit(WorkerEvent::Spend {
                generation: self.generation,
                key,
                spend: s,
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.dirty.is_empty()
    }

    /// Starts keeping sums for snapshot `generation` (drain first).
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }
}

/// A worker's counters since its previous report (deltas, so they coalesce by addition).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub connections_accepted: u64,
    pub connections_refused: u64,
    /// Client TLS handshakes that failed or timed out (the connection was closed).
    pub tls_handshakes_failed: u64,
    /// Client TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Accepted client connections that have ended (open = accepted − closed).
    pub connections_closed: u64,
    pub requests: u64,
    pub responses_2xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upstream_connects: u64,
    pub upstream_reuses: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.connections_accepted += o.connections_accepted;
        self.connections_refused += o.connections_refused;
        self.tls_handshakes_failed += o.tls_handshakes_failed;
        self.tls_handshakes += o.tls_handshakes;
        self.connections_closed += o.connections_closed;
        self.requests += o.requests;
        self.responses_2xx += o.responses_2xx;
        self.responses_4xx += o.responses_4xx;
        self.responses_5xx += o.responses_5xx;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.upstream_connects += o.upstream_connects;
        self.upstream_reuses += o.upstream_reuses;
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

#[derive(Clone, Debug)]
pub enum WorkerEvent {
    /// `[cluster] cache`: is the entry of `key` (a SHA-256 of the cache key) in Redis?
    /// Answered with [`Control::Shared`] `ticket`. Sent only by a request that missed here and
    /// would otherwise call the provider.
    SharedGet {
        worker: u16,
        ticket: u32,
        key: [u8; 32],
    },
    /// `[cluster] cache`: an entry filled here, encoded (`cache::wire`), for Redis.
    SharedPut {
        key: [u8; 32],
        bytes: Vec<u8>,
        ttl_ms: u64,
    },
    /// Spend of one key since the last report, under snapshot `generation`'s key ids.
    Spend {
        generation: u64,
        key: KeyId,
        spend: Spend,
    },
    Counters {
        worker: u16,
        counters: Counters,
    },
    /// The spend sums sent so far cover the worker's journal up to this position
    /// (`journal.rs`, "Marks"); follows them on the ring.
    JournalMark {
        upto: u64,
    },
    /// The worker now serves snapshot `generation`.
    Applied {
        worker: u16,
        generation: u64,
    },
    /// The worker has stopped (drained or past its deadline); `open` connections were cut.
    Stopped {
        worker: u16,
        open: u64,
    },
    /// Use of, and asks for, a budget or rate limit.
    Lease(LeaseMsg),
    /// What the worker's cache shard holds, per model (sent when it changed).
    CacheHeld {
        worker: u16,
        held: Vec<crate::cache::Held>,
    },
    /// The worker now refuses the keys of [`DisabledKeys`] `version` (or applied the cache
    /// purge of that version).
    DisabledApplied {
        worker: u16,
        version: u64,
    },
    /// A deployment's circuit changed on this worker (the coordinator tells the others).
    Breaker {
        worker: u16,
        generation: u64,
        deployment: DeploymentId,
        change: Change,
    },
    /// How a deployment of snapshot `generation` stands on this worker (for the admin API;
    /// sent for each deployment every [`ROUTE_REPORT`]).
    Route {
        worker: u16,
        generation: u64,
        deployment: DeploymentId,
        view: HealthView,
    },
}

/// Coordinator → worker.
#[derive(Debug)]
pub enum Control {
    Snapshot(Arc<Snapshot>),
    Addrs(Arc<AddrTable>),
    Drain,
    /// About one quota of snapshot `generation`.
    Quota {
        generation: u64,
        quota: QuotaId,
        msg: QuotaControl,
    },
    /// Keys disabled at runtime (admin API), by id under snapshot `generation`.
    Disabled(Arc<DisabledKeys>),
    /// Vertex AI access tokens (fetched and refreshed by the coordinator).
    Tokens(Arc<crate::upstream::gcp::Tokens>),
    /// Drop the cache entries `purge` names; acknowledged as `DisabledApplied { version }`.
    CachePurge {
        purge: crate::cache::Purge,
        version: u64,
    },
    /// What another worker learnt of a deployment's health.
    Breaker {
        generation: u64,
        deployment: DeploymentId,
        change: Change,
    },
    /// Redis's answer to [`WorkerEvent::SharedGet`] `ticket` (`None`: not there, or Redis
    /// could not be asked).
    Shared {
        ticket: u32,
        bytes: Option<Vec<u8>>,
    },
}

/// Keys disabled at runtime, as a bitmap over one snapshot's key ids.
#[derive(Debug, Default)]
pub struct DisabledKeys {
    /// Increases with every change; workers acknowledge it.
    pub version: u64,
    pub generation: u64,
    pub keys: Vec<bool>,
}

impl DisabledKeys {
    pub fn is_disabled(&self, generation: u64, key: KeyId) -> bool {
        self.generation == generation && self.keys.get(key.0 as usize).copied().unwrap_or(false)
    }
}

/// A worker's ends of its rings, and the coordinator's doorbell.
#[derive(Debug)]
pub struct Rings {
    pub events: rtrb::Producer<WorkerEvent>,
    pub control: rtrb::Consumer<Control>,
    pub wake: Arc<Wake>,
    /// Readable when the coordinator pushed control messages ([`Doorbell`]).
    pub doorbell: std::os::unix::net::UnixStream,
    /// Where the worker hands its formatted audit lines (not through the coordinator).
    pub audit: Option<AuditSink>,
    /// Where the worker hands its encoded trace spans.
    pub traces: Option<crate::telemetry::export::TraceSink>,
    /// Filled metrics buffers out, and emptied ones back.
    pub metrics: rtrb::Producer<MetricsBox>,
    pub metrics_back: rtrb::Consumer<MetricsBox>,
    /// The rings to and from the other workers (the response cache).
    pub peers: crate::cache::Peers,
    /// The cache key's hash keys, the same on every worker.
    pub hashing: crate::cache::Hashing,
    /// Where the gateway listens (the port bound): the semantic cache asks it for embeddings.
    pub listen: std::net::SocketAddr,
    /// The worker's spend journal (with a ledger).
    pub journal: Option<journal::Writer>,
}

/// The coordinator's ends of every worker's rings (index = worker), and its doorbell.
#[derive(Debug)]
pub struct CoordinatorRings {
    pub events: Vec<rtrb::Consumer<WorkerEvent>>,
    pub controls: Vec<rtrb::Producer<Control>>,
    pub wake: Arc<Wake>,
    pub doorbells: Vec<Doorbell>,
    pub metrics: Vec<rtrb::Consumer<MetricsBox>>,
    pub metrics_back: Vec<rtrb::Producer<MetricsBox>>,
}

/// Wakes one worker when the coordinator has pushed control messages for it (a grant a
/// request waits for, a reclaim, a snapshot): a byte on a socket pair whose other end the
/// worker's runtime reads. The worker reads its control ring then, instead of polling it.
#[derive(Debug)]
pub struct Doorbell(std::os::unix::net::UnixStream);

impl Doorbell {
    /// A doorbell and the end its worker listens on.
    pub fn pair() -> std::io::Result<(Doorbell, std::os::unix::net::UnixStream)> {
        let (ring, listen) = std::os::unix::net::UnixStream::pair()?;
        ring.set_nonblocking(true)?;
        listen.set_nonblocking(true)?;
        Ok((Doorbell(ring), listen))
    }

    /// Another handle on the socket, for the other workers to ring this one (the cache).
    pub fn peer_bell(&self) -> std::io::Result<crate::cache::Bell> {
        Ok(crate::cache::Bell::new(self.0.try_clone()?))
    }

    /// Rings (never blocks: a full socket buffer means a ring is already pending).
    pub fn ring(&self) {
        use std::io::Write as _;
        let _ = (&self.0).write(&[1]);
    }
}

/// Wakes the coordinator early (a worker's ask should not wait for its next tick).
#[derive(Debug, Default)]
pub struct Wake(std::sync::OnceLock<std::thread::Thread>);

impl Wake {
    /// Called once, on the coordinator thread.
    pub fn register(&self) {
        let _ = self.0.set(std::thread::current());
    }

    pub fn wake(&self) {
        if let Some(t) = self.0.get() {
            t.unpark();
        }
    }
}

/// A worker's side of its outbound ring, with the local queue for when it is full.
#[derive(Debug)]
pub struct Outbox {
    ring: rtrb::Producer<WorkerEvent>,
    held: VecDeque<WorkerEvent>,
}

impl Outbox {
    pub fn new(ring: rtrb::Producer<WorkerEvent>) -> Self {
        Outbox {
            ring,
            held: VecDeque::new(),
        }
    }

    /// Queues `e`; never blocks, never drops.
    pub fn push(&mut self, e: WorkerEvent) {
        if self.held.is_empty() {
            match self.ring.push(e) {
                Ok(()) => return,
                Err(rtrb::PushError::Full(e)) => return self.held.push_back(e),
            }
        }
        self.held.push_back(e);
    }

    /// Moves held events into the ring as far as it has room. True when nothing is held.
    pub fn flush(&mut self) -> bool {
        while let Some(e) = self.held.pop_front() {
            if let Err(rtrb::PushError::Full(e)) = self.ring.push(e) {
                self.held.push_front(e);
                return false;
            }
        }
        true
    }

    /// True when events are waiting for room in the ring.
    pub fn is_backed_up(&self) -> bool {
        !self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_coalesces_per_key_and_a_reload_keeps_ids_apart() {
        let u = Usage {
            input_tokens: 10,
            output_tokens: 5,
            ..Usage::default()
        };
        let mut book = SpendBook::default();
        for _ in 0..3 {
            assert!(book.charge(0, KeyId(2), &u, false, 7).is_none());
        }
        assert!(book.charge(0, KeyId(0), &u, true, 1).is_none());
        // A request that started under another snapshot goes out on its own.
        let Some(WorkerEvent::Spend { generation: 9, .. }) = book.charge(9, KeyId(0), &u, false, 1)
        else {
            panic!("a foreign generation is not coalesced");
        };
        let mut out = Vec::new();
        book.drain(|e| out.push(e));
        assert!(book.is_empty());
        let sums: Vec<(u32, u64, u64, u64)> = out
            .iter()
            .map(|e| match e {
                WorkerEvent::Spend { key, spend, .. } => (
                    key.0,
                    spend.requests,
                    spend.input_tokens,
                    spend.cost_micro_usd,
                ),
                _ => panic!("not spend"),
            })
            .collect();
        assert_eq!(sums, vec![(2, 3, 30, 21), (0, 1, 10, 1)]);
    }

    #[test]
    fn full_ring_holds_counters_in_order() {
        let (p, mut c) = rtrb::RingBuffer::new(2);
        let mut out = Outbox::new(p);
        let counters = |n| WorkerEvent::Counters {
            worker: 0,
            counters: Counters {
                requests: n,
                ..Counters::default()
            },
        };
        for n in 0..5 {
            out.push(counters(n));
        }
        assert!(!out.flush());
        let mut seen = Vec::new();
        loop {
            while let Ok(WorkerEvent::Counters { counters, .. }) = c.pop() {
                seen.push(counters.requests);
            }
            if out.flush() {
                while let Ok(WorkerEvent::Counters { counters, .. }) = c.pop() {
                    seen.push(counters.requests);
                }
                break;
            }
        }
        assert_eq!(seen, vec![0, 1, 2, 3, 4], "in order, none lost");
    }

    #[test]
    fn a_stuck_ring_holds_spend_and_loses_none() {
        let (p, mut c) = rtrb::RingBuffer::new(4);
        let mut out = Outbox::new(p);
        let spend = |n| WorkerEvent::Spend {
            generation: 0,
            key: KeyId(0),
            spend: Spend {
                requests: n,
                ..Spend::default()
            },
        };
        let pushed = 1000u64;
        for n in 1..=pushed {
            out.push(spend(n));
        }
        assert!(out.is_backed_up());
        let mut requests = 0;
        loop {
            while let Ok(e) = c.pop() {
                if let WorkerEvent::Spend { spend, .. } = e {
                    requests += spend.requests;
                }
            }
            if out.flush() && c.is_empty() {
                break;
            }
        }
        assert_eq!(
            requests,
            pushed * (pushed + 1) / 2,
            "every spend delta arrived"
        );
    }
}
