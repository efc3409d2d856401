//! One worker's share of the cache: the entries whose key hashes to this worker, an LRU per
//! model bounded by entries and bytes, TTLs, and single-flight — the slot of a key being
//! filled lists who waits for it. Sans-IO: it answers asks and takes fills; the worker
//! carries the answers to whoever asked (`worker/cache.rs`).
//!
//! Each model's bounds are its configured totals divided by the number of workers: keys hash
//! uniformly over the shards, so the cache as a whole holds about what was configured.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entry::Entry;

/// Who asked: a worker and its ticket for the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub worker: u16,
    pub ticket: u32,
}

/// The answer to an ask.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Served from this entry (`similarity` below 1 for a semantic hit).
    Hit(Arc<Entry>, f32),
    /// No entry: the asker calls the provider and fills the key (or abandons it).
    Lead,
    /// The asker goes upstream without filling: the leader failed, too many wait already, or
    /// (semantic) nothing was near enough.
    GoAhead,
}

/// What an ask or a fill brings of its model's configuration (this shard's share).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
    pub ttl: Duration,
    pub max_waiters: u32,
    /// A fill older than this has lost its leader: the next ask takes over.
    pub lead_timeout: Duration,
    /// Semantic vectors per model on this shard.
    pub max_vectors: u64,
}

enum Slot {
    Ready {
        entry: Arc<Entry>,
        expires: Instant,
        stamp: u64,
    },
    Filling {
        since: Instant,
        waiters: Vec<Waiter>,
    },
}

/// The keys are hashes already: the map folds them instead of hashing them again.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        // Folded and mixed: uniform already for SipHash keys, and still spread for any other.
        self.0 = ((n as u64) ^ ((n >> 64) as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Map<V> = HashMap<u128, V, BuildHasherDefault<Prehashed>>;

/// One model's use of this shard.
#[derive(Default)]
struct ModelUse {
    entries: u64,
    bytes: u64,
    /// Least recently used first; marks whose stamp no longer matches the slot are stale.
    lru: VecDeque<(u128, u64)>,
    /// Semantic vectors, by the hash of the request without its last user turn.
    vectors: super::vectors::Vectors,
}

/// What one shard holds of one model (for metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub model: String,
    pub entries: u64,
    pub bytes: u64,
}

impl Held {
    /// Every worker's reports summed per model: (entries, bytes).
    pub fn per_model(reports: &[Vec<Held>]) -> std::collections::BTreeMap<&str, (u64, u64)> {
        let mut m = std::collections::BTreeMap::new();
        for h in reports.iter().flatten() {
            let x: &mut (u64, u64) = m.entry(h.model.as_str()).or_default();
            x.0 += h.entries;
            x.1 += h.bytes;
        }
        m
    }
}

/// Which entries a purge drops.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purge {
    pub model: Option<String>,
    /// `key:<id>`, `team:<name>` or `global`.
    pub scope: Option<String>,
}

#[derive(Default)]
pub struct Shard {
    slots: Map<Slot>,
    models: HashMap<Box<str>, ModelUse>,
    stamp: u64,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// An ask for `key` from `who`. `refresh`: skip a stored entry (the asker wants a fresh
    /// answer, and stores it). Returns the answer now, or `None` when `who` now waits for
    /// the fill in flight (answered by [`Shard::fill`]); `Lead` and `GoAhead` may also carry
    /// answers for waiters of a fill that timed out (`out`).
    pub fn ask(
        &mut self,
        (key, refresh): (u128, bool),
        who: Waiter,
        limits: &Limits,
        now: Instant,
        out: &mut Vec<(Waiter, Reply)>,
    ) -> Option<Reply> {
        self.stamp += 1;
        let stamp = self.stamp;
        match self.slots.get_mut(&key) {
            Some(Slot::Ready {
                entry,
                expires,
                stamp: s,
            }) if !refresh && *expires > now => {
                *s = stamp;
                let entry = entry.clone();
                if let Some(m) = self.models.get_mut(&*entry.model) {
                    m.lru.push_back((key, stamp));
                    compact(m, &self.slots);
                }
                Some(Reply::Hit(entry, 1.0))
            }
            Some(Slot::Filling { since, waiters, .. }) => {
                if now.saturating_duration_since(*since) > limits.lead_timeout {
                    // The leader is lost: its waiters go ahead, this asker leads.
                    out.extend(waiters.drain(..).map(|w| (w, Reply::GoAhead)));
                    *since = now;
                    return Some(Reply::Lead);
                }
                if waiters.len() >= limits.max_waiters as usize {
                    return Some(Reply::GoAhead);
                }
                waiters.push(who);
                None
            }
            Some(slot @ Slot::Ready { .. }) => {
                // Expired, or refreshed: this asker fills it again.
                let Slot::Ready { entry, .. } = std::mem::replace(
                    slot,
                    Slot::Filling {
                        since: now,
                        waiters: Vec::new(),
                    },
                ) else {
                    return Some(Reply::GoAhead);
                };
                if let Some(m) = self.models.get_mut(&*entry.model) {
                    m.entries -= 1;
                    m.bytes -= entry.bytes() as u64;
                }
                Some(Reply::Lead)
            }
            None => {
                self.slots.insert(
                    key,
                    Slot::Filling {
                        since: now,
                        waiters: Vec::new(),
                    },
                );
                Some(Reply::Lead)
            }
        }
    }

    /// The leader's result for `key`: an entry to store (the waiters are served from it), or
    /// `None` (the call failed or is not cacheable: the waiters go upstream themselves).
    pub fn fill(
        &mut self,
        key: u128,
        entry: Option<Arc<Entry>>,
        limits: &Limits,
        now: Instant,
        out: &mut Vec<(Waiter, Reply)>,
    ) {
        let Some(entry) = entry else {
            if let Some(Slot::Filling { waiters, .. }) = self.slots.get_mut(&key) {
                out.extend(waiters.drain(..).map(|w| (w, Reply::GoAhead)));
                self.slots.remove(&key);
            }
            return;
        };
        self.stamp += 1;
        let stamp = self.stamp;
        let bytes = entry.bytes() as u64;
        if bytes > limits.max_bytes {
            // Larger than the model's share: serve the waiters, keep nothing.
            if let Some(Slot::Filling { waiters, .. }) = self.slots.remove(&key) {
                out.extend(
                    waiters
                        .into_iter()
                        .map(|w| (w, Reply::Hit(entry.clone(), 1.0))),
                );
            }
            return;
        }
        let slot = Slot::Ready {
            entry: entry.clone(),
            expires: now + limits.ttl,
            stamp,
        };
        match self.slots.insert(key, slot) {
            Some(Slot::Filling { waiters, .. }) => {
                out.extend(
                    waiters
                        .into_iter()
                        .map(|w| (w, Reply::Hit(entry.clone(), 1.0))),
                );
            }
            Some(Slot::Ready { entry: old, .. }) => {
                if let Some(m) = self.models.get_mut(&*old.model) {
                    m.entries -= 1;
                    m.bytes -= old.bytes() as u64;
                }
            }
            None => {}
        }
        let model = self.models.entry(entry.model.clone()).or_default();
        model.entries += 1;
        model.bytes += bytes;
        model.lru.push_back((key, stamp));
        self.evict(&entry.model, limits, now);
    }

    /// Drops least recently used (and expired) entries of `model` until it is within
    /// `limits`.
    fn evict(&mut self, model: &str, limits: &Limits, now: Instant) {
        let Some(m) = self.models.get_mut(model) else {
            return;
        };
        while m.entries > limits.max_entries || m.bytes > limits.max_bytes {
            let Some((key, stamp)) = m.lru.pop_front() else {
                break;
            };
            let current = matches!(
                self.slots.get(&key),
                Some(Slot::Ready { stamp: s, .. }) if *s == stamp
            );
            if current && let Some(Slot::Ready { entry, .. }) = self.slots.remove(&key) {
                m.entries -= 1;
                m.bytes -= entry.bytes() as u64;
            }
        }
        let _ = now;
        compact(m, &self.slots);
    }

    /// Drops the entries `p` names (a model's, a scope's, or all). Fills in flight are left
    /// to finish.
    pub fn purge(&mut self, p: &Purge) -> u64 {
        let mut dropped = 0;
        let models = &mut self.models;
        self.slots.retain(|_, slot| {
            let Slot::Ready { entry, .. } = slot else {
                return true;
            };
            let hit = p.model.as_deref().is_none_or(|m| m == &*entry.model)
                && p.scope.as_deref().is_none_or(|s| s == &*entry.scope);
            if hit {
                dropped += 1;
                if let Some(m) = models.get_mut(&*entry.model) {
                    m.entries -= 1;
                    m.bytes -= entry.bytes() as u64;
                }
            }
            !hit
        });
        for (name, m) in models.iter_mut() {
            if p.model.as_deref().is_none_or(|x| x == &**name) {
                m.vectors
                    .retain(|e| p.scope.as_deref().is_some_and(|s| s != &*e.scope));
            }
        }
        dropped
    }

    /// What this shard holds, per model.
    pub fn held(&self) -> Vec<Held> {
        let mut v: Vec<Held> = self
            .models
            .iter()
            .map(|(name, m)| Held {
                model: name.to_string(),
                entries: m.entries,
                bytes: m.bytes + m.vectors.bytes(),
            })
            .collect();
        v.sort_by(|a, b| a.model.cmp(&b.model));
        v
    }

    /// The nearest stored question to `v` among those whose request, without its last user
    /// turn, hashed to `rest` (`cache::vectors`).
    pub fn nearest(
        &self,
        model: &str,
        rest: u128,
        v: &[f32],
        threshold: f32,
        fresh_after_us: u64,
    ) -> Option<(Arc<Entry>, f32)> {
        self.models
            .get(model)?
            .vectors
            .nearest(rest, v, threshold, fresh_after_us)
    }

    /// Adds an answer and its question's vector to `rest`'s, within `limits.max_vectors` for
    /// the model.
    pub fn add_vector(&mut self, rest: u128, v: &[f32], entry: Arc<Entry>, limits: &Limits) {
        let m = self.models.entry(entry.model.clone()).or_default();
        m.vectors.add(rest, v, entry, limits.max_vectors);
    }
}

/// Drops stale LRU marks once they outnumber the live entries.
fn compact(m: &mut ModelUse, slots: &Map<Slot>) {
    if m.lru.len() as u64 > 2 * m.entries + 64 {
        m.lru.retain(
            |(k, stamp)| matches!(slots.get(k), Some(Slot::Ready { stamp: s, .. }) if s == stamp),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::key::Op;
    use crate::dialect::norm::Finish;

    fn entry(model: &str, scope: &str, text: &str) -> Arc<Entry> {
        Arc::new(Entry {
            scope: scope.into(),
            model: model.into(),
            op: Op::Chat,
            id: "id".into(),
            response_model: "m".into(),
            text: text.into(),
            calls: Vec::new(),
            finish: Finish::Stop,
            observed: Default::default(),
            cost_micro_usd: 0,
            stored_us: 0,
            verbatim: None,
        })
    }

    const L: Limits = Limits {
        max_entries: 3,
        max_bytes: 1 << 20,
        ttl: Duration::from_secs(60),
        max_waiters: 2,
        lead_timeout: Duration::from_secs(30),
        max_vectors: 2,
    };

    fn w(ticket: u32) -> Waiter {
        Waiter { worker: 0, ticket }
    }

    #[test]
    fn single_flight_leader_then_waiters_then_hits() {
        let mut s = Shard::default();
        let now = Instant::now();
        let mut out = Vec::new();
        assert!(matches!(
            s.ask((1, false), w(1), &L, now, &mut out),
            Some(Reply::Lead)
        ));
        assert!(s.ask((1, false), w(2), &L, now, &mut out).is_none());
        assert!(s.ask((1, false), w(3), &L, now, &mut out).is_none());
        // Bounded waiters: the next goes upstream itself.
        assert!(matches!(
            s.ask((1, false), w(4), &L, now, &mut out),
            Some(Reply::GoAhead)
        ));
        s.fill(1, Some(entry("m", "team:a", "x")), &L, now, &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, r)| matches!(r, Reply::Hit(..))));
        out.clear();
        assert!(matches!(
            s.ask((1, false), w(5), &L, now, &mut out),
            Some(Reply::Hit(..))
        ));
        // Refresh: leads again, even with an entry stored.
        assert!(matches!(
            s.ask((1, true), w(6), &L, now, &mut out),
            Some(Reply::Lead)
        ));
    }

    #[test]
    fn a_failed_leader_sends_its_waiters_upstream() {
        let mut s = Shard::default();
        let now = Instant::now();
        let mut out = Vec::new();
        s.ask((7, false), w(1), &L, now, &mut out);
        s.ask((7, false), w(2), &L, now, &mut out);
        s.fill(7, None, &L, now, &mut out);
        assert!(matches!(out.as_slice(), [(x, Reply::GoAhead)] if x.ticket == 2));
        out.clear();
        assert!(matches!(
            s.ask((7, false), w(3), &L, now, &mut out),
            Some(Reply::Lead)
        ));
        // A lost leader: after the timeout the next ask leads and the waiters go ahead.
        s.ask((7, false), w(4), &L, now, &mut out);
        let later = now + L.lead_timeout + Duration::from_secs(1);
        assert!(matches!(
            s.ask((7, false), w(5), &L, later, &mut out),
            Some(Reply::Lead)
        ));
        assert!(matches!(out.as_slice(), [(x, Reply::GoAhead)] if x.ticket == 4));
    }

    #[test]
    fn lru_by_entries_and_ttl() {
        let mut s = Shard::default();
        let now = Instant::now();
        let mut out = Vec::new();
        for k in 1..=3 {
            s.ask((k, false), w(0), &L, now, &mut out);
            s.fill(k, Some(entry("m", "team:a", "x")), &L, now, &mut out);
        }
        // Use 1, then add 4: 2 is the least recently used.
        assert!(matches!(
            s.ask((1, false), w(0), &L, now, &mut out),
            Some(Reply::Hit(..))
        ));
        s.ask((4, false), w(0), &L, now, &mut out);
        s.fill(4, Some(entry("m", "team:a", "x")), &L, now, &mut out);
        assert!(matches!(
            s.ask((2, false), w(0), &L, now, &mut out),
            Some(Reply::Lead)
        ));
        assert!(matches!(
            s.ask((1, false), w(0), &L, now, &mut out),
            Some(Reply::Hit(..))
        ));
        assert_eq!(s.held()[0].entries, 3);
        // Past the TTL: a miss, and the asker leads.
        let later = now + L.ttl + Duration::from_secs(1);
        assert!(matches!(
            s.ask((3, false), w(0), &L, later, &mut out),
            Some(Reply::Lead)
        ));
    }

    #[test]
    fn bytes_bound_and_purge() {
        let mut s = Shard::default();
        let now = Instant::now();
        let mut out = Vec::new();
        let small = Limits {
            max_bytes: 1000,
            max_entries: 100,
            ..L
        };
        for k in 1..=10u128 {
            s.ask((k, false), w(0), &small, now, &mut out);
            let scope = if k % 2 == 0 { "team:a" } else { "team:b" };
            s.fill(
                k,
                Some(entry("m", scope, &"y".repeat(200))),
                &small,
                now,
                &mut out,
            );
        }
        let held = &s.held()[0];
        assert!(held.bytes <= 1000 && held.entries >= 1, "{held:?}");
        let before = held.entries;
        let dropped = s.purge(&Purge {
            model: None,
            scope: Some("team:a".into()),
        });
        assert_eq!(s.held()[0].entries, before - dropped);
        s.purge(&Purge::default());
        assert_eq!(s.held()[0].entries, 0);
        assert_eq!(s.held()[0].bytes, 0);
    }

    #[test]
    fn nearest_vector_over_the_threshold_only() {
        let mut s = Shard::default();
        let mk = || {
            let mut e = Arc::try_unwrap(entry("m", "team:a", "x")).unwrap();
            e.stored_us = 100_000_000;
            Arc::new(e)
        };
        s.add_vector(9, &[1.0, 0.0], mk(), &L);
        s.add_vector(9, &[0.0, 1.0], mk(), &L);
        // Entries live 60 s: at `now` s, those stored after `now - 60` s are fresh.
        let fresh = |now: u64| (now - 60) * 1_000_000;
        let (_, sim) = s.nearest("m", 9, &[0.8, 0.6], 0.7, fresh(110)).unwrap();
        assert!((sim - 0.8).abs() < 0.01, "{sim}");
        assert!(s.nearest("m", 9, &[0.8, 0.6], 0.9, fresh(110)).is_none());
        assert!(
            s.nearest("m", 8, &[1.0, 0.0], 0.5, fresh(110)).is_none(),
            "another rest"
        );
        assert!(
            s.nearest("m", 9, &[1.0, 0.0], 0.5, fresh(200)).is_none(),
            "expired"
        );
        assert!(
            s.nearest("m", 9, &[1.0, 0.0, 0.0], 0.5, fresh(110))
                .is_none(),
            "other dims"
        );
        // Bounded: a third vector pushes the first out.
        s.add_vector(9, &[0.6, 0.8], mk(), &L);
        assert!(s.nearest("m", 9, &[1.0, 0.0], 0.99, fresh(110)).is_none());
        assert!(s.nearest("m", 9, &[0.0, 1.0], 0.99, fresh(110)).is_some());
        // Purged with their scope.
        s.purge(&Purge {
            model: None,
            scope: Some("team:a".into()),
        });
        assert!(s.nearest("m", 9, &[0.0, 1.0], 0.5, fresh(110)).is_none());
    }
}
