//! The semantic cache's index: per request "rest" (everything but the last user turn), the
//! vectors of the questions answered, searched exactly.
//!
//! Why exact search and no index crate: a lookup only compares vectors whose rest is identical
//! (same system prompt, tools, parameters, history), and each model's vectors per worker are
//! bounded (`semantic.max_entries`, default 1024). At that size a flat scan is fast and exact:
//! `benches/cache.rs` measures a lookup over 1024 vectors of 1536 dimensions at ~0.4 ms on one
//! core (4096 at ~1.5 ms; `perf/results/2026-12-02-cache/`), with no recall loss and no build
//! step — paid only on an exact miss, which then waits hundreds of milliseconds for the
//! provider anyway. An approximate index (HNSW) pays off beyond ~10⁵ vectors,
//! which a per-tenant, per-prompt cache on one core does not reach.
//!
//! Vectors are unit length and stored quantised to `i8` (each scaled so its largest component
//! is ±127), rows contiguous per rest: a quarter of the memory of `f32`, and the scan is
//! integer multiply-adds over one block the prefetcher streams. The similarity is the integer
//! dot product scaled back: off from the `f32` cosine by about 10⁻³, far inside any useful
//! threshold's margin.

use std::collections::VecDeque;
use std::sync::Arc;

use super::entry::Entry;

/// One rest's vectors: row `i` of `q` (`dims` bytes) belongs to `entries[i]`.
#[derive(Debug, Default)]
struct Bucket {
    dims: usize,
    /// Rows before this were evicted (compacted away once they are half the block).
    start: usize,
    q: Vec<i8>,
    /// Per row: 1 / the scale its components were multiplied by.
    inv: Vec<f32>,
    entries: Vec<Arc<Entry>>,
}

impl Bucket {
    fn live(&self) -> usize {
        self.entries.len() - self.start
    }

    fn drop_oldest(&mut self) {
        if self.start < self.entries.len() {
            self.start += 1;
        }
        if self.start * 2 >= self.entries.len() {
            self.q.drain(..self.start * self.dims);
            self.inv.drain(..self.start);
            self.entries.drain(..self.start);
            self.start = 0;
        }
    }
}

/// One model's vectors on one worker.
#[derive(Debug, Default)]
pub struct Vectors {
    buckets: std::collections::HashMap<u128, Bucket>,
    /// Which bucket each vector went to, oldest first (for the bound).
    order: VecDeque<u128>,
    count: u64,
}

/// `v` quantised: the row and 1 / its scale.
fn quantise(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        out.extend(std::iter::repeat_n(0, v.len()));
        return 0.0;
    }
    let scale = 127.0 / max;
    out.extend(v.iter().map(|x| (x * scale).round() as i8));
    1.0 / scale
}

/// The integer dot product, in lanes the compiler vectorises.
fn dot(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..16 {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += i32::from(*x) * i32::from(*y);
    }
    s
}

impl Vectors {
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the vectors take.
    pub fn bytes(&self) -> u64 {
        self.buckets
            .values()
            .map(|b| (b.q.len() + b.inv.len() * 4 + b.entries.len() * 8) as u64)
            .sum()
    }

    /// Adds `entry`, answered for a question embedded as `v` (unit length), to `rest`'s
    /// vectors; past `max`, the model's oldest vectors go.
    pub fn add(&mut self, rest: u128, v: &[f32], entry: Arc<Entry>, max: u64) {
        let b = self.buckets.entry(rest).or_default();
        if b.live() == 0 {
            *b = Bucket {
                dims: v.len(),
                ..Bucket::default()
            };
        }
        if v.len() != b.dims {
            // Another embedding model's vectors (a config change): start this rest over.
            *b = Bucket {
                dims: v.len(),
                ..Bucket::default()
            };
        }
        let inv = quantise(v, &mut b.q);
        b.inv.push(inv);
        b.entries.push(entry);
        self.order.push_back(rest);
        self.count += 1;
        while self.count > max {
            let Some(r) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.buckets.get_mut(&r)
                && b.live() > 0
            {
                b.drop_oldest();
                self.count -= 1;
                if b.live() == 0 {
                    self.buckets.remove(&r);
                }
            }
        }
    }

    /// The entry whose question is nearest to `v` among `rest`'s, with its cosine
    /// similarity, if that is at least `threshold`; entries stored at or before
    /// `fresh_after_us` (µs since the Unix epoch) have expired and are skipped.
    pub fn nearest(
        &self,
        rest: u128,
        v: &[f32],
        threshold: f32,
        fresh_after_us: u64,
    ) -> Option<(Arc<Entry>, f32)> {
        let b = self.buckets.get(&rest)?;
        if v.len() != b.dims {
            return None;
        }
        let mut q = Vec::with_capacity(v.len());
        let qinv = quantise(v, &mut q);
        let mut best: Option<(usize, f32)> = None;
        for i in b.start..b.entries.len() {
            let row = &b.q[i * b.dims..(i + 1) * b.dims];
            let s = dot(row, &q) as f32 * b.inv[i] * qinv;
            if best.is_none_or(|x| s > x.1) && b.entries[i].stored_us > fresh_after_us {
                best = Some((i, s));
            }
        }
        best.filter(|x| x.1 >= threshold)
            .map(|(i, s)| (b.entries[i].clone(), s))
    }

    /// Keeps only the vectors whose entries `keep` says to.
    pub fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        let old = std::mem::take(&mut self.buckets);
        self.order.clear();
        self.count = 0;
        for (rest, b) in old {
            let mut nb = Bucket {
                dims: b.dims,
                ..Bucket::default()
            };
            for i in b.start..b.entries.len() {
                if keep(&b.entries[i]) {
                    nb.q.extend_from_slice(&b.q[i * b.dims..(i + 1) * b.dims]);
                    nb.inv.push(b.inv[i]);
                    nb.entries.push(b.entries[i].clone());
                    self.order.push_back(rest);
                    self.count += 1;
                }
            }
            if nb.live() > 0 {
                self.buckets.insert(rest, nb);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantised_similarity_is_the_cosine_within_a_hundredth() {
        let mut seed = 7u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for dims in [3usize, 256, 1536] {
            let unit = |v: Vec<f32>| {
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
            };
            let a = unit((0..dims).map(|_| next()).collect());
            // A near neighbour: a plus a little noise.
            let b = unit(a.iter().map(|x| x + 0.1 * next()).collect());
            let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let (mut qa, mut qb) = (Vec::new(), Vec::new());
            let (ia, ib) = (quantise(&a, &mut qa), quantise(&b, &mut qb));
            let approx = dot(&qa, &qb) as f32 * ia * ib;
            assert!((approx - exact).abs() < 0.01, "{dims}: {approx} vs {exact}");
        }
    }
}
