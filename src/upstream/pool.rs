//! Per-worker pools of idle upstream connections, keyed by (host, port, TLS).
//!
//! LIFO: the most recently used connection is reused first (warm, least likely to have been
//! closed by the peer). A connection goes back only through a [`Checkout`] whose exchange
//! completed — response read to its end, no stray bytes, no `Connection: close` — so a
//! connection is never reused in an unknown state. Idle ones older than the pool's idle
//! timeout are closed on checkout and by the worker's tick.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::Stream;

/// Which pool a connection belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub host: String,
    pub port: u16,
    /// `tls::PLAIN`, or the trust profile the TLS session was verified under.
    pub tls: crate::tls::Profile,
}

#[derive(Debug)]
struct Idle {
    stream: Stream,
    since: Instant,
}

/// Connections a worker's pool opened and reused since the worker last read them.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolStats {
    pub connects: u64,
    pub reuses: u64,
}

#[derive(Debug, Default)]
pub struct Pool {
    /// Connections opened and reused since the worker last read them.
    pub stats: PoolStats,
    /// Few distinct upstreams per gateway: a linear scan beats hashing a key per request.
    slots: Vec<(PoolKey, Vec<Idle>)>,
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

impl Pool {
    pub fn new(max_idle: usize, idle_timeout: Duration) -> Self {
        Pool {
            stats: PoolStats::default(),
            slots: Vec::new(),
            max_idle,
            idle_timeout,
        }
    }

    /// The slot of (host, port, TLS profile): a small index a checkout keeps, so a request
    /// copies no host name. Slots are never removed (a worker talks to few upstreams), so an
    /// index stays valid across reloads.
    pub fn slot_of(&mut self, host: &str, port: u16, tls: u64) -> usize {
        let found = self
            .slots
            .iter()
            .position(|(k, _)| k.port == port && k.tls == tls && k.host == host);
        found.unwrap_or_else(|| {
            let key = PoolKey {
                host: host.to_owned(),
                port,
                tls,
            };
            self.slots.push((key, Vec::new()));
            self.slots.len() - 1
        })
    }

    /// The most recently returned live connection of `slot`, if any.
    pub fn take(&mut self, slot: usize, now: Instant) -> Option<Stream> {
        let timeout = self.idle_timeout;
        let idle = &mut self.slots.get_mut(slot)?.1;
        while let Some(i) = idle.pop() {
            if now.duration_since(i.since) < timeout {
                return Some(i.stream);
            }
        }
        None
    }

    pub fn put(&mut self, slot: usize, stream: Stream, now: Instant) {
        let max = self.max_idle;
        if let Some((_, v)) = self.slots.get_mut(slot)
            && v.len() < max
        {
            v.push(Idle { stream, since: now });
        }
    }

    /// Closes idle connections past the idle timeout.
    pub fn evict(&mut self, now: Instant) {
        let timeout = self.idle_timeout;
        for (_, v) in &mut self.slots {
            v.retain(|i| now.duration_since(i.since) < timeout);
        }
    }

    pub fn idle_count(&self) -> usize {
        self.slots.iter().map(|(_, v)| v.len()).sum()
    }

    /// Applies new limits from a reloaded config; connections already pooled stay.
    pub fn configure(&mut self, max_idle: usize, idle_timeout: Duration) {
        self.max_idle = max_idle;
        self.idle_timeout = idle_timeout;
    }
}

/// A connection out of the pool (or freshly made). Dropped, it goes back to the pool only if
/// [`Checkout::reusable`] was set — i.e. its response was read completely.
#[derive(Debug)]
pub struct Checkout {
    pub stream: Option<Stream>,
    /// The pool slot it goes back to ([`Pool::slot_of`]).
    pub slot: usize,
    pub reused: bool,
    pub reusable: bool,
    pool: Rc<RefCell<Pool>>,
}

impl Checkout {
    pub fn new(pool: Rc<RefCell<Pool>>, slot: usize, stream: Stream, reused: bool) -> Self {
        Checkout {
            stream: Some(stream),
            slot,
            reused,
            reusable: false,
            pool,
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if !self.reusable {
            return;
        }
        if let (Some(s), Ok(mut p)) = (self.stream.take(), self.pool.try_borrow_mut()) {
            p.put(self.slot, s, Instant::now());
        }
    }
}
