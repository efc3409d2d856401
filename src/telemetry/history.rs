//! The bounded history the admin stats (`GET /admin/stats`, `tollgate top`) show: the
//! coordinator samples its merged [`Totals`] once a second and keeps the differences — per
//! second for the last [`SECONDS`], per minute for the last [`MINUTES`] — and each key's spend
//! per minute over the same day. A few hundred KiB at most; nothing a worker touches.

use std::collections::{BTreeMap, VecDeque};

use super::metrics::{Hist, LATENCY_BOUNDS_US, OVERHEAD_BOUNDS_US, Totals};

/// Per-second points kept: ten minutes.
pub const SECONDS: usize = 600;
/// Per-minute points kept: a day.
pub const MINUTES: usize = 1440;

/// What happened in one second (or minute).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// Unix seconds at the start of the interval.
    pub t: u64,
    pub requests: u64,
    /// 4xx and 5xx responses.
    pub errors: u64,
    pub server_errors: u64,
    pub cost_micro_usd: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Request durations, first-byte times and the gateway's own time (µs bounds).
    pub latency: Hist,
    pub first_byte: Hist,
    pub overhead: Hist,
}

impl Point {
    fn add(&mut self, o: &Point) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.server_errors += o.server_errors;
        self.cost_micro_usd += o.cost_micro_usd;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.latency.add(&o.latency);
        self.first_byte.add(&o.first_byte);
        self.overhead.add(&o.overhead);
    }

    /// The totals so far, as one cumulative point.
    pub fn of(t: &Totals) -> Point {
        let mut p = Point {
            requests: t.responses.iter().sum(),
            errors: t.responses[3] + t.responses[4],
            server_errors: t.responses[4],
            latency: t.latency,
            first_byte: t.first_byte,
            overhead: t.overhead,
            ..Point::default()
        };
        for k in t.keys.values() {
            p.cost_micro_usd += k.used.cost_micro_usd;
            p.input_tokens += k.used.input_tokens;
            p.output_tokens += k.used.output_tokens;
        }
        p
    }

    /// `self − before`, field by field (counters only grow; a reset reads as zero).
    fn since(&self, before: &Point) -> Point {
        let hist = |a: &Hist, b: &Hist| {
            let mut h = Hist::default();
            for (i, c) in h.counts.iter_mut().enumerate() {
                *c = a.counts[i].saturating_sub(b.counts[i]);
            }
            h.sum = a.sum.saturating_sub(b.sum);
            h
        };
        Point {
            t: self.t,
            requests: self.requests.saturating_sub(before.requests),
            errors: self.errors.saturating_sub(before.errors),
            server_errors: self.server_errors.saturating_sub(before.server_errors),
            cost_micro_usd: self.cost_micro_usd.saturating_sub(before.cost_micro_usd),
            input_tokens: self.input_tokens.saturating_sub(before.input_tokens),
            output_tokens: self.output_tokens.saturating_sub(before.output_tokens),
            latency: hist(&self.latency, &before.latency),
            first_byte: hist(&self.first_byte, &before.first_byte),
            overhead: hist(&self.overhead, &before.overhead),
        }
    }
}

/// Spend (µUSD) per label per minute, for the minutes a label spent anything: each key's, and
/// each model's deployment's.
#[derive(Debug, Default)]
pub struct SpendMinutes {
    pub minutes: VecDeque<(u64, BTreeMap<String, u64>)>,
    last: BTreeMap<String, u64>,
}

impl SpendMinutes {
    /// Adds what each label spent since the last sample (`current`: totals since start) to
    /// `minute`.
    fn sample<'a>(&mut self, minute: u64, current: impl Iterator<Item = (&'a str, u64)>) {
        let mut spent = BTreeMap::new();
        for (label, now_spent) in current {
            let before = self.last.get(label).copied().unwrap_or(0);
            if now_spent > before {
                spent.insert(label.to_owned(), now_spent - before);
            }
            self.last.insert(label.to_owned(), now_spent);
        }
        if spent.is_empty() {
            return;
        }
        match self.minutes.back_mut() {
            Some((m, map)) if *m == minute => {
                for (k, v) in spent {
                    *map.entry(k).or_default() += v;
                }
            }
            _ => {
                self.minutes.push_back((minute, spent));
                while self.minutes.len() > MINUTES {
                    self.minutes.pop_front();
                }
            }
        }
    }

    /// Each label's spend in the minutes that started at or after `since`.
    pub fn since(&self, since: u64) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (_, map) in self.minutes.iter().filter(|(m, _)| *m >= since) {
            for (k, v) in map {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    }
}

/// A deployment's label in [`History::deployments`]: `model|deployment`.
pub fn deployment_label(model: &str, deployment: &str) -> String {
    format!("{model}|{deployment}")
}

/// The coordinator's history.
#[derive(Debug, Default)]
pub struct History {
    pub seconds: VecDeque<Point>,
    pub minutes: VecDeque<Point>,
    /// Each key label's spend per minute.
    pub keys: SpendMinutes,
    /// Each deployment's (`deployment_label`) spend per minute.
    pub deployments: SpendMinutes,
    last: Point,
}

impl History {
    /// Takes the second that ends at `now` (Unix seconds) from `totals`.
    pub fn sample(&mut self, now: u64, totals: &Totals) {
        let mut cur = Point::of(totals);
        cur.t = now.saturating_sub(1);
        let d = cur.since(&self.last);
        self.last = cur;
        push(&mut self.seconds, d, SECONDS);
        let minute = d.t / 60 * 60;
        match self.minutes.back_mut() {
            Some(m) if m.t == minute => m.add(&d),
            _ => push(&mut self.minutes, Point { t: minute, ..d }, MINUTES),
        }
        self.keys.sample(
            minute,
            totals
                .keys
                .iter()
                .map(|((key, _), k)| (key.as_str(), k.used.cost_micro_usd)),
        );
        let labels: Vec<(String, u64)> = totals
            .deployments
            .iter()
            .map(|(d, c)| {
                (
                    deployment_label(&d.model, &d.deployment),
                    c.used.cost_micro_usd,
                )
            })
            .collect();
        self.deployments
            .sample(minute, labels.iter().map(|(l, v)| (l.as_str(), *v)));
    }

    /// Each key's spend (µUSD) in the minutes that started at or after `since`.
    pub fn key_spend_since(&self, since: u64) -> BTreeMap<String, u64> {
        self.keys.since(since)
    }

    /// The sum of the last `n` per-second points.
    pub fn last_seconds(&self, n: usize) -> Point {
        let mut p = Point::default();
        for s in self.seconds.iter().rev().take(n) {
            p.add(s);
        }
        p
    }
}

fn push(q: &mut VecDeque<Point>, p: Point, bound: usize) {
    q.push_back(p);
    while q.len() > bound {
        q.pop_front();
    }
}

/// The `q` quantile (0–1) of `h` over `bounds`, interpolated within its bucket as
/// Prometheus' `histogram_quantile` does; `None` for an empty histogram. Past the last bound,
/// the last bound.
pub fn quantile(h: &Hist, bounds: &[u64], q: f64) -> Option<f64> {
    let total = h.count();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &n) in h.counts.iter().enumerate().take(bounds.len() + 1) {
        if n > 0 && (below + n) as f64 >= rank {
            let Some(&upper) = bounds.get(i) else {
                return bounds.last().map(|&b| b as f64);
            };
            let lower = if i == 0 { 0 } else { bounds[i - 1] };
            let within = (rank - below as f64) / n as f64;
            return Some(lower as f64 + (upper - lower) as f64 * within);
        }
        below += n;
    }
    bounds.last().map(|&b| b as f64)
}

/// Latency quantiles for a point, µs: p50, p95, p99 of durations, p50 of first bytes, p99 of
/// the gateway's own time.
pub fn summary(p: &Point) -> [Option<f64>; 5] {
    [
        quantile(&p.latency, LATENCY_BOUNDS_US, 0.5),
        quantile(&p.latency, LATENCY_BOUNDS_US, 0.95),
        quantile(&p.latency, LATENCY_BOUNDS_US, 0.99),
        quantile(&p.first_byte, LATENCY_BOUNDS_US, 0.5),
        quantile(&p.overhead, OVERHEAD_BOUNDS_US, 0.99),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::KeyCounts;

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let bounds = [10, 20, 40];
        let mut h = Hist::default();
        assert_eq!(quantile(&h, &bounds, 0.5), None);
        for v in [5, 15, 15, 35] {
            h.record(&bounds, v);
        }
        // Ranks: 1 in (0,10], 2 in (10,20], 1 in (20,40].
        assert_eq!(quantile(&h, &bounds, 0.25), Some(10.0));
        assert_eq!(quantile(&h, &bounds, 0.5), Some(15.0));
        assert_eq!(quantile(&h, &bounds, 1.0), Some(40.0));
        h.record(&bounds, 1000);
        assert_eq!(
            quantile(&h, &bounds, 1.0),
            Some(40.0),
            "past the last bound"
        );
    }

    #[test]
    fn seconds_roll_into_minutes_and_key_spend_is_kept_per_minute() {
        let mut t = Totals::default();
        let mut h = History::default();
        let key = ("alice".to_owned(), String::new());
        for s in 0..130u64 {
            t.responses[1] += 2;
            t.keys
                .entry(key.clone())
                .or_insert_with(KeyCounts::default)
                .used
                .cost_micro_usd += 5;
            h.sample(1_800_000_000 + s, &t);
        }
        assert_eq!(h.seconds.len(), 130);
        assert!(h.seconds.iter().all(|p| p.requests == 2));
        let minutes: u64 = h.minutes.iter().map(|m| m.requests).sum();
        assert_eq!(minutes, 260);
        assert!(h.minutes.len() == 3 || h.minutes.len() == 4);
        assert_eq!(h.key_spend_since(0)["alice"], 650);
        assert_eq!(h.last_seconds(10).requests, 20);
    }
}
