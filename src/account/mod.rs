//! Cross-thread traffic between workers and the coordinator (DESIGN.md §1).
//!
//! Each worker has two rtrb SPSC rings: [`WorkerEvent`]s out (fixed-size `Copy` records:
//! access records, counter snapshots, acknowledgements) and [`Control`] messages in (config
//! snapshots, resolved upstream addresses, drain). A worker never blocks on a ring: when the
//! outbound ring is full, events wait in a bounded local queue ([`Outbox`]) and go out on the
//! next tick; past that bound access records are dropped *and counted* — counters are sums and
//! are coalesced, never dropped.

pub mod coordinator;

use std::collections::VecDeque;
use std::sync::Arc;

use crate::config::{DeploymentId, KeyId, ModelId, Snapshot};
use crate::error::ErrorKind;
use crate::http1::Method;
use crate::upstream::dns::AddrTable;

/// Slots in each worker → coordinator ring.
pub const EVENT_RING_SLOTS: usize = 16 * 1024;
/// Slots in each coordinator → worker ring.
pub const CONTROL_RING_SLOTS: usize = 64;
/// Events a worker holds locally while its ring is full.
pub const OUTBOX_MAX_EVENTS: usize = 64 * 1024;

/// The API a request addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    Completions,
    Embeddings,
    Models,
    Health,
    Ready,
    Unknown,
}

impl Route {
    pub fn label(self) -> &'static str {
        match self {
            Route::ChatCompletions => "chat.completions",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Unknown => "unknown",
        }
    }
}

/// One finished request, as the `finish` phase saw it. Names are resolved by the coordinator
/// against the snapshot `generation` the request ran under.
#[derive(Clone, Copy, Debug)]
pub struct AccessRecord {
    pub generation: u64,
    pub worker: u16,
    pub serial: u64,
    pub start_unix_us: u64,
    pub method: Method,
    pub route: Route,
    pub status: u16,
    pub key: Option<KeyId>,
    pub model: Option<ModelId>,
    pub deployment: Option<DeploymentId>,
    pub stream: bool,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub duration_us: u64,
    /// Request sent upstream → response head received (0 when there was no upstream).
    pub upstream_us: u64,
    pub error: Option<ErrorKind>,
}

/// A worker's counters since its previous report (deltas, so they coalesce by addition).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub requests: u64,
    pub responses_2xx: u64,
    pub responses_4xx: u64,
    pub responses_5xx: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upstream_connects: u64,
    pub upstream_reuses: u64,
    pub access_records_dropped: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.connections_accepted += o.connections_accepted;
        self.connections_refused += o.connections_refused;
        self.requests += o.requests;
        self.responses_2xx += o.responses_2xx;
        self.responses_4xx += o.responses_4xx;
        self.responses_5xx += o.responses_5xx;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.upstream_connects += o.upstream_connects;
        self.upstream_reuses += o.upstream_reuses;
        self.access_records_dropped += o.access_records_dropped;
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }
}

#[derive(Clone, Copy, Debug)]
pub enum WorkerEvent {
    Access(AccessRecord),
    Counters {
        worker: u16,
        counters: Counters,
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
}

/// Coordinator → worker.
#[derive(Debug)]
pub enum Control {
    Snapshot(Arc<Snapshot>),
    Addrs(Arc<AddrTable>),
    Drain,
}

/// A worker's side of its outbound ring, with the bounded local queue for when it is full.
#[derive(Debug)]
pub struct Outbox {
    ring: rtrb::Producer<WorkerEvent>,
    held: VecDeque<WorkerEvent>,
    dropped: u64,
}

impl Outbox {
    pub fn new(ring: rtrb::Producer<WorkerEvent>) -> Self {
        Outbox {
            ring,
            held: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Queues `e`; never blocks. Access records past the local bound are dropped and counted;
    /// other events are always kept.
    pub fn push(&mut self, e: WorkerEvent) {
        if self.held.is_empty() {
            match self.ring.push(e) {
                Ok(()) => return,
                Err(rtrb::PushError::Full(e)) => return self.hold(e),
            }
        }
        self.hold(e);
    }

    fn hold(&mut self, e: WorkerEvent) {
        if matches!(e, WorkerEvent::Access(_)) && self.held.len() >= OUTBOX_MAX_EVENTS {
            self.dropped += 1;
            return;
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

    /// Access records dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ring_holds_counters_and_bounds_access_records() {
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
}
