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

    fn slot(&mut self, host: &str, port: u16, tls: u64) -> Option<&mut Vec<Idle>> {
        self.slots
            .iter_mut()
            .find(|(k, _)| k.port == port && k.tls == tls && k.host == host)
            .map(|(_, v)| v)
    }

    /// The most recently returned live connection, if any.
    pub fn take(&mut self, host: &str, port: u16, tls: u64, now: Instant) -> Option<Stream> {
        let timeout = self.idle_timeout;
        let slot = self.slot(host, port, tls)?;
        while let Some(idle) = slot.pop() {
            if now.duration_since(idle.since) < timeout {
                return Some(idle.stream);
            }
        }
        None
    }

    pub fn put(&mut self, key: &PoolKey, stream: Stream, now: Instant) {
        let max = self.max_idle;
        let idle = Idle { stream, since: now };
        match self.slot(&key.host, key.port, key.tls) {
            Some(v) if v.len() < max => v.push(idle),
            Some(_) => {}
            None if max > 0 => self.slots.push((key.clone(), vec![idle])),
            None => {}
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
    pub key: PoolKey,
    pub reused: bool,
    pub reusable: bool,
    pool: Rc<RefCell<Pool>>,
}

impl Checkout {
    pub fn new(pool: Rc<RefCell<Pool>>, key: PoolKey, stream: Stream, reused: bool) -> Self {
        Checkout {
            stream: Some(stream),
            key,
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
            p.put(&self.key, s, Instant::now());
        }
    }
}
