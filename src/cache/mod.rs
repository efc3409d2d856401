//! Response caching (ARCHITECTURE.md, "The cache"): exact and semantic, per tenant scope,
//! sharded by key over the workers, single-flight.
//!
//! - [`key`]: what two requests must share to share an answer — the request normalised
//!   (JSON semantics, volatile members out), the scope, the model, the client's dialect.
//! - [`entry`]: an answer held normalised, rendered for each hit in the client's dialect, as
//!   JSON or as a stream whatever form filled it.
//! - [`shard`]: one worker's share — LRU by entries and bytes per model, TTL, the slots of
//!   keys being filled and who waits for them, the semantic vectors.
//! - [`Peers`]: the rings between workers. A key has one owning worker (its hash modulo the
//!   number of workers), so a hit does not depend on which core the request landed on: the
//!   requesting worker asks the owner over a ring (a fixed-size message out, the `Arc` of the
//!   entry back) and renders the answer itself. Single-flight falls out of ownership: the
//!   owner knows a fill is in flight and queues the askers. No lock, no shared map; the only
//!   shared writes are the `Arc` counts of entries served across cores.

pub mod entry;
pub mod key;
pub mod shard;
pub mod vectors;
pub mod wire;

use std::collections::VecDeque;
use std::sync::Arc;

pub use entry::{Entry, StreamForm, Tag};
pub use key::{Hashing, NotCached, Op};
pub use shard::{Held, Limits, Purge, Reply, Shard, Waiter};

/// Slots of each ring between two workers.
pub const PEER_RING_SLOTS: usize = 1024;

/// What one worker sends another about the cache.
#[derive(Debug)]
pub enum PeerMsg {
    /// Is `key` stored? (`refresh`: the asker wants a fresh answer and will fill it.)
    Ask {
        who: Waiter,
        key: u128,
        refresh: bool,
        limits: Limits,
    },
    /// The nearest stored answer to `vector` among requests whose rest hashed to `rest`.
    Near {
        who: Waiter,
        model: Box<str>,
        rest: u128,
        vector: Arc<[f32]>,
        threshold: f32,
        limits: Limits,
    },
    /// The owner's answer to ticket `who.ticket` (for `key`).
    Answer {
        ticket: u32,
        key: u128,
        reply: Reply,
    },
    /// A leader's result for `key` (`None`: nothing to store; the waiters go upstream).
    Fill {
        key: u128,
        entry: Option<Arc<Entry>>,
        limits: Limits,
    },
    /// A new answer, and its question's vector, for the semantic index of `rest`.
    AddVector {
        rest: u128,
        vector: Arc<[f32]>,
        entry: Arc<Entry>,
        limits: Limits,
    },
}

/// The worker that owns a hash.
pub fn owner(hash: u128, workers: usize) -> u16 {
    ((hash as u64) % workers.max(1) as u64) as u16
}

/// Wakes a worker: a byte on the socket its doorbell task reads (shared with the
/// coordinator's doorbell, so one task reads both).
#[derive(Debug)]
pub struct Bell(std::os::unix::net::UnixStream);

impl Bell {
    pub fn new(s: std::os::unix::net::UnixStream) -> Self {
        Bell(s)
    }

    fn ring(&self) {
        use std::io::Write as _;
        // Never blocks (the socket is non-blocking): a full buffer means a ring is pending.
        let _ = (&self.0).write(&[2]);
    }
}

/// One worker's ends of the rings to and from every other worker.
#[derive(Debug)]
pub struct Peers {
    pub me: u16,
    /// To worker `i` (none to itself).
    out: Vec<Option<rtrb::Producer<PeerMsg>>>,
    /// Messages for a full ring, sent on the next flush, in order.
    held: Vec<VecDeque<PeerMsg>>,
    bells: Vec<Option<Bell>>,
    inbox: Vec<rtrb::Consumer<PeerMsg>>,
}

impl Peers {
    /// The peer ends for `n` workers; `bells[i]`: a handle on worker `i`'s doorbell.
    pub fn mesh(
        n: usize,
        mut bells: impl FnMut(usize) -> std::io::Result<Bell>,
    ) -> std::io::Result<Vec<Peers>> {
        let mut peers: Vec<Peers> = (0..n)
            .map(|i| Peers {
                me: i as u16,
                out: (0..n).map(|_| None).collect(),
                held: (0..n).map(|_| VecDeque::new()).collect(),
                bells: (0..n).map(|_| None).collect(),
                inbox: Vec::new(),
            })
            .collect();
        for to in 0..n {
            for from in 0..n {
                if from == to {
                    continue;
                }
                let (tx, rx) = rtrb::RingBuffer::new(PEER_RING_SLOTS);
                peers[from].out[to] = Some(tx);
                peers[from].bells[to] = Some(bells(to)?);
                peers[to].inbox.push(rx);
            }
        }
        Ok(peers)
    }

    /// How many workers share the cache.
    pub fn workers(&self) -> usize {
        self.out.len().max(1)
    }

    /// Sends `m` to worker `to` (never blocks, never drops: a full ring holds it here until
    /// [`Peers::flush`]) and rings its doorbell.
    pub fn send(&mut self, to: u16, m: PeerMsg) {
        let i = to as usize;
        let Some(Some(ring)) = self.out.get_mut(i) else {
            return;
        };
        if self.held[i].is_empty() {
            match ring.push(m) {
                Ok(()) => {}
                Err(rtrb::PushError::Full(m)) => self.held[i].push_back(m),
            }
        } else {
            self.held[i].push_back(m);
        }
        if let Some(b) = &self.bells[i] {
            b.ring();
        }
    }

    /// Retries what full rings held back.
    pub fn flush(&mut self) {
        for (i, held) in self.held.iter_mut().enumerate() {
            let Some(ring) = &mut self.out[i] else {
                continue;
            };
            let mut sent = false;
            while let Some(m) = held.pop_front() {
                match ring.push(m) {
                    Ok(()) => sent = true,
                    Err(rtrb::PushError::Full(m)) => {
                        held.push_front(m);
                        break;
                    }
                }
            }
            if sent && let Some(b) = &self.bells[i] {
                b.ring();
            }
        }
    }

    /// Takes every message waiting for this worker.
    pub fn drain(&mut self, mut f: impl FnMut(PeerMsg)) {
        for rx in &mut self.inbox {
            while let Ok(m) = rx.pop() {
                f(m);
            }
        }
    }
}
