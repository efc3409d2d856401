//! Choosing a deployment and keeping score of how each one does — per worker, sans-IO.
//!
//! A worker's [`Router`] holds, per deployment of the current snapshot, its [`Health`]: calls
//! in flight, an EWMA of time to first byte, the recent outcomes, the circuit breaker and the
//! retry budget. [`Router::order`] lists a model's usable deployments best first by the model's
//! [`Strategy`]; the worker tries them in that order (then the fallback models').
//!
//! **Circuit breaker.** Closed, a deployment takes traffic. `breaker_failures` consecutive
//! failures, or a failure rate of at least `breaker_error_rate` (0: off) over the last
//! `breaker_window` calls, open it for `cooldown`; a provider's `retry-after` (429, 503) opens
//! it for that long. Open, it is skipped until the cooldown ends; then one request — the
//! probe — may try it: success closes the circuit, failure opens it again. What one worker
//! learns the others hear through the coordinator ([`Router::remote`]).
//!
//! **Asked to wait.** A circuit a `retry-after` opened (no run of failures) is skipped while
//! another deployment can take the request; when none can, it is still tried
//! ([`Router::last_resort`]) — the provider answers, perhaps with another 429 and its
//! `retry-after`, which reaches the client — instead of the gateway refusing every request
//! for one provider's 429. Its first success closes the circuit.
//!
//! **Retry budget.** Every request a deployment takes adds `retry_budget` (a fraction) to its
//! balance, which starts at and never falls below the reach of `retry_budget_min`; a retry
//! after one of its failures spends one. So during an outage retries stay near that fraction
//! of requests instead of multiplying the load.
//!
//! **Latency strategy.** Sorted by EWMA (never-measured first), with one request in
//! [`EXPLORE_ONE_IN`] sent to another usable deployment so that one that became faster (or
//! recovered) is measured again.

use std::time::{Duration, Instant};

use crate::config::{DeploymentId, ModelId, Routing, Snapshot, Strategy};

/// One request in this many goes to a random usable deployment under `latency`.
pub const EXPLORE_ONE_IN: u64 = 20;

/// A deployment's standing on one worker.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub inflight: u32,
    /// EWMA (1/8) of time to first byte in µs; 0: not measured yet.
    pub ewma_ttft_us: u64,
    consecutive: u32,
    /// The last calls' outcomes, newest in bit 0 (1 = failure), `seen` of them valid.
    outcomes: u64,
    seen: u32,
    /// Open circuit: skipped until then.
    pub open_until: Option<Instant>,
    /// The probe of a half-open circuit is in flight.
    probing: bool,
    /// The open circuit was opened by a provider's `retry-after` alone, not by failures.
    waited: bool,
    retry_balance: f64,
    pub requests: u64,
    pub failures: u64,
    pub retries: u64,
}

/// A deployment's standing over every worker: what the metrics and the stats show.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HealthSum {
    /// Workers on which its circuit is open at `now`.
    pub open_on: usize,
    pub inflight: u64,
    pub requests: u64,
    pub failures: u64,
    pub retries: u64,
    /// The mean EWMA time to first byte over the workers that saw calls (µs).
    pub ewma_ttft_us: Option<f64>,
}

impl HealthSum {
    pub fn of(views: &[HealthView], now: Instant) -> HealthSum {
        let seen: Vec<u64> = views
            .iter()
            .map(|v| v.ewma_ttft_us)
            .filter(|&t| t > 0)
            .collect();
        HealthSum {
            open_on: views
                .iter()
                .filter(|v| v.open_until.is_some_and(|u| u > now))
                .count(),
            inflight: views.iter().map(|v| u64::from(v.inflight)).sum(),
            requests: views.iter().map(|v| v.requests).sum(),
            failures: views.iter().map(|v| v.failures).sum(),
            retries: views.iter().map(|v| v.retries).sum(),
            ewma_ttft_us: (!seen.is_empty())
                .then(|| seen.iter().sum::<u64>() as f64 / seen.len() as f64),
        }
    }
}

/// A deployment's standing on one worker, as the admin API shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthView {
    pub inflight: u32,
    pub ewma_ttft_us: u64,
    /// Until when its circuit is open (`None`: closed).
    pub open_until: Option<Instant>,
    pub requests: u64,
    pub failures: u64,
    pub retries: u64,
}

/// What a call came to, for its deployment's score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered (with a first byte after `ttft_us`).
    Success { ttft_us: u64 },
    /// A failure that counts against the deployment (connect error, reset, timeout, 5xx,
    /// 429); with the provider's `retry-after`, if it sent one.
    Failure { retry_after: Option<Duration> },
    /// The call ended in a way that says nothing of the deployment (the client left, a 4xx
    /// about the request).
    Neutral,
}

/// A change of a circuit, to be spread to the other workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Opened(Instant),
    /// Opened by a provider's `retry-after` alone: a last resort until then.
    Waiting(Instant),
    Closed,
}

#[derive(Debug)]
pub struct Router {
    pub generation: u64,
    pub health: Vec<Health>,
    /// Per model: where round robin starts next.
    next: Vec<u32>,
    rng: u64,
}

impl Router {
    pub fn new(snap: &Snapshot, seed: u64) -> Self {
        let balance = f64::from(snap.routing.retry_budget_min);
        Router {
            generation: snap.generation,
            health: vec![
                Health {
                    retry_balance: balance,
                    ..Health::default()
                };
                snap.deployments.len()
            ],
            next: vec![0; snap.models.len()],
            rng: seed | 1,
        }
    }

    pub fn random(&mut self) -> u64 {
        // xorshift64*: plenty for spreading load.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The circuit lets a request through now (closed, or open past its cooldown with no
    /// probe in flight).
    pub fn usable(&self, d: DeploymentId, now: Instant) -> bool {
        let h = &self.health[d.0 as usize];
        match h.open_until {
            None => true,
            Some(t) => now >= t && !h.probing,
        }
    }

    /// Whether `d`'s circuit is open only because its provider asked to wait: a request no
    /// usable deployment can take goes to it all the same (the module's "Asked to wait").
    pub fn last_resort(&self, d: DeploymentId) -> bool {
        let h = &self.health[d.0 as usize];
        h.waited && h.open_until.is_some()
    }

    /// Appends model `m`'s usable deployments to `out`, best first. `session`: a sticky
    /// request's session hash (honoured when the model is sticky).
    pub fn order(
        &mut self,
        snap: &Snapshot,
        m: ModelId,
        session: Option<u64>,
        now: Instant,
        out: &mut Vec<DeploymentId>,
    ) {
        let model = &snap.models[m.0 as usize];
        let at = out.len();
        let deps = &model.deployments;
        let start = self.next[m.0 as usize] as usize;
        self.next[m.0 as usize] = self.next[m.0 as usize].wrapping_add(1);
        // Round robin's rotation is also every strategy's tie-break.
        for i in 0..deps.len() {
            let d = deps[(start + i) % deps.len()];
            if self.usable(d, now) {
                out.push(d);
            }
        }
        let list = &mut out[at..];
        if list.len() > 1 {
            match model.strategy {
                Strategy::RoundRobin => {}
                Strategy::Weighted => {
                    // Successive weighted draws without replacement.
                    for i in 0..list.len() - 1 {
                        let total: u64 = list[i..]
                            .iter()
                            .map(|d| u64::from(snap.deployment(*d).weight))
                            .sum();
                        let mut r = self.random() % total.max(1);
                        for j in i..list.len() {
                            let wgt = u64::from(snap.deployment(list[j]).weight);
                            if r < wgt {
                                list.swap(i, j);
                                break;
                            }
                            r -= wgt;
                        }
                    }
                }
                Strategy::LeastInflight => {
                    let h = &self.health;
                    list.sort_by_key(|d| h[d.0 as usize].inflight);
                }
                Strategy::Latency => {
                    let h = &self.health;
                    list.sort_by_key(|d| h[d.0 as usize].ewma_ttft_us);
                    if self.random().is_multiple_of(EXPLORE_ONE_IN) {
                        let j = 1 + (self.random() % (list.len() as u64 - 1)) as usize;
                        list.swap(0, j);
                    }
                }
                Strategy::Cost => {
                    list.sort_by_key(|d| {
                        let p = snap.deployment(*d).price;
                        p.input.saturating_add(p.output)
                    });
                }
            }
        }
        if let Some(s) = session.filter(|_| model.sticky) {
            // Rendezvous hashing: the same session picks the same deployment while it is
            // usable, and only its sessions move when it is not.
            if let Some((best, _)) = list
                .iter()
                .enumerate()
                .max_by_key(|(_, d)| mix(s ^ u64::from(d.0).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            {
                let d = list[best];
                list.copy_within(0..best, 1);
                list[0] = d;
            }
        }
    }

    /// A call to `d` starts (a first attempt when `retry` is false).
    pub fn start(&mut self, d: DeploymentId, routing: &Routing, retry: bool, now: Instant) {
        let h = &mut self.health[d.0 as usize];
        h.inflight += 1;
        h.requests += 1;
        if !retry {
            let cap = f64::from(routing.retry_budget_min) + 1000.0 * routing.retry_budget;
            h.retry_balance = (h.retry_balance + routing.retry_budget).min(cap);
        }
        if h.open_until.is_some_and(|t| now >= t) {
            h.probing = true;
        }
    }

    /// A retry after a failure of `failed`: allowed if its budget has one left (spent).
    pub fn take_retry(&mut self, failed: DeploymentId) -> bool {
        let h = &mut self.health[failed.0 as usize];
        if h.retry_balance >= 1.0 {
            h.retry_balance -= 1.0;
            h.retries += 1;
            true
        } else {
            false
        }
    }

    /// A call to `d` ended. Returns how its circuit changed, if it did.
    pub fn finish(
        &mut self,
        d: DeploymentId,
        outcome: Outcome,
        routing: &Routing,
        now: Instant,
    ) -> Option<Change> {
        let h = &mut self.health[d.0 as usize];
        h.inflight = h.inflight.saturating_sub(1);
        let was_probe = std::mem::take(&mut h.probing) && h.open_until.is_some();
        let failed = match outcome {
            // Nothing learnt (a probe's turn passes to the next request).
            Outcome::Neutral => return None,
            Outcome::Success { ttft_us } => {
                h.ewma_ttft_us = if h.ewma_ttft_us == 0 {
                    ttft_us.max(1)
                } else {
                    (h.ewma_ttft_us * 7 + ttft_us).div_ceil(8)
                };
                false
            }
            Outcome::Failure { .. } => true,
        };
        h.outcomes = (h.outcomes << 1) | u64::from(failed);
        h.seen = (h.seen + 1).min(routing.breaker_window);
        if failed {
            h.failures += 1;
            h.consecutive += 1;
        } else {
            h.consecutive = 0;
        }
        let told_to_wait = matches!(
            outcome,
            Outcome::Failure {
                retry_after: Some(_)
            }
        );
        // A probe's failure opens the circuit again; a success, or a last resort's, closes it.
        if was_probe && failed {
            let until = now + cooldown(outcome, routing);
            h.open_until = Some(until);
            h.waited = told_to_wait;
            return Some(opened(until, told_to_wait));
        }
        if was_probe || (!failed && h.waited && h.open_until.is_some()) {
            h.open_until = None;
            h.waited = false;
            h.outcomes = 0;
            h.seen = 0;
            return Some(Change::Closed);
        }
        if !failed || h.open_until.is_some() {
            return None;
        }
        let window = routing.breaker_window;
        let mask = if window >= 64 {
            u64::MAX
        } else {
            (1u64 << window) - 1
        };
        let recent_failures = (h.outcomes & mask).count_ones();
        let rate_trips = routing.breaker_error_rate > 0.0
            && h.seen >= window
            && f64::from(recent_failures) >= routing.breaker_error_rate * f64::from(window);
        let tripped = h.consecutive >= routing.breaker_failures || rate_trips;
        if tripped || told_to_wait {
            let until = now + cooldown(outcome, routing);
            h.open_until = Some(until);
            h.waited = !tripped;
            return Some(opened(until, !tripped));
        }
        None
    }

    /// What another worker learnt about `d` (through the coordinator).
    pub fn remote(&mut self, d: DeploymentId, change: Change) {
        let Some(h) = self.health.get_mut(d.0 as usize) else {
            return;
        };
        match change {
            Change::Opened(until) => {
                if h.open_until.is_none_or(|t| t < until) {
                    h.open_until = Some(until);
                }
                h.waited = false;
            }
            Change::Waiting(until) => {
                // A circuit open for failures stays so.
                if h.open_until.is_none() || (h.waited && h.open_until < Some(until)) {
                    h.open_until = Some(until);
                    h.waited = true;
                }
            }
            Change::Closed => {
                h.waited = false;
                h.open_until = None;
                h.consecutive = 0;
                h.outcomes = 0;
                h.seen = 0;
            }
        }
    }

    pub fn views(&self) -> impl Iterator<Item = HealthView> + '_ {
        self.health.iter().map(|h| HealthView {
            inflight: h.inflight,
            ewma_ttft_us: h.ewma_ttft_us,
            open_until: h.open_until,
            requests: h.requests,
            failures: h.failures,
            retries: h.retries,
        })
    }

    /// How long until the first of `deps` can take a request again.
    pub fn soonest(&self, deps: &[DeploymentId], now: Instant) -> Duration {
        deps.iter()
            .filter_map(|d| self.health[d.0 as usize].open_until)
            .map(|t| t.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::ZERO)
    }
}

/// The change a circuit opened until `until` spreads: by failures, or asked to wait.
fn opened(until: Instant, waited: bool) -> Change {
    if waited {
        Change::Waiting(until)
    } else {
        Change::Opened(until)
    }
}

fn cooldown(outcome: Outcome, routing: &Routing) -> Duration {
    match outcome {
        Outcome::Failure {
            retry_after: Some(r),
        } => r.max(Duration::from_millis(1)),
        _ => routing.cooldown,
    }
}

/// A 64-bit finaliser (splitmix64's): spreads session hashes over deployments.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A session's hash (FNV-1a, then mixed): stable across workers and restarts.
pub fn session_hash(s: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in s {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(strategy: &str, weights: &[u32], extra: &str) -> Snapshot {
        let mut t = format!(
            "[[providers]]\nname = \"m\"\nkind = \"mock\"\n[[models]]\nname = \"a\"\n\
             strategy = \"{strategy}\"\nsticky = true\n"
        );
        for (i, w) in weights.iter().enumerate() {
            t.push_str(&format!(
                "[[models.deployments]]\nprovider = \"m\"\nweight = {w}\n\
                 price = {{ input = {}.0, output = 1.0 }}\n",
                3 - i
            ));
        }
        t.push_str(extra);
        crate::config::parse(&t, "t", &|_| None).unwrap()
    }

    fn first(r: &mut Router, s: &Snapshot, session: Option<u64>, now: Instant) -> u32 {
        let mut out = Vec::new();
        r.order(s, ModelId(0), session, now, &mut out);
        out[0].0
    }

    #[test]
    fn weighted_split_follows_the_weights() {
        let s = snap("weighted", &[1, 3, 6], "");
        let mut r = Router::new(&s, 7);
        let now = Instant::now();
        let mut n = [0u32; 3];
        for _ in 0..10_000 {
            n[first(&mut r, &s, None, now) as usize] += 1;
        }
        for (i, want) in [1_000, 3_000, 6_000].iter().enumerate() {
            assert!(n[i].abs_diff(*want) < 250, "{n:?}");
        }
    }

    #[test]
    fn round_robin_cost_and_least_inflight() {
        let now = Instant::now();
        let s = snap("round_robin", &[1, 1, 1], "");
        let mut r = Router::new(&s, 1);
        let picks: Vec<u32> = (0..6).map(|_| first(&mut r, &s, None, now)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let s = snap("cost", &[1, 1, 1], "");
        let mut r = Router::new(&s, 1);
        assert!(
            (0..6).all(|_| first(&mut r, &s, None, now) == 2),
            "cheapest"
        );
        let s = snap("least_inflight", &[1, 1, 1], "");
        let mut r = Router::new(&s, 1);
        r.start(DeploymentId(0), &s.routing, false, now);
        r.start(DeploymentId(1), &s.routing, false, now);
        assert!((0..6).all(|_| first(&mut r, &s, None, now) == 2));
    }

    #[test]
    fn latency_prefers_the_fastest_and_explores() {
        let now = Instant::now();
        let s = snap("latency", &[1, 1], "");
        let mut r = Router::new(&s, 3);
        let rt = &s.routing;
        for (d, us) in [(0, 5_000), (1, 1_000)] {
            r.start(DeploymentId(d), rt, false, now);
            r.finish(DeploymentId(d), Outcome::Success { ttft_us: us }, rt, now);
        }
        let picks: Vec<u32> = (0..1000).map(|_| first(&mut r, &s, None, now)).collect();
        let slow = picks.iter().filter(|&&d| d == 0).count();
        assert!((20..=90).contains(&slow), "about 1 in 20 explores: {slow}");
        // The slow one got faster: its next samples pull its average below the other's.
        for _ in 0..30 {
            r.start(DeploymentId(0), rt, false, now);
            r.finish(DeploymentId(0), Outcome::Success { ttft_us: 200 }, rt, now);
        }
        let fast = (0..100)
            .filter(|_| first(&mut r, &s, None, now) == 0)
            .count();
        assert!(fast > 80, "{fast}");
    }

    #[test]
    fn the_breaker_opens_probes_and_closes() {
        let s = snap(
            "round_robin",
            &[1, 1],
            "[routing]\nbreaker_failures = 3\ncooldown_ms = 1000\n",
        );
        let rt = &s.routing;
        let mut r = Router::new(&s, 1);
        let t0 = Instant::now();
        let d = DeploymentId(0);
        let fail = Outcome::Failure { retry_after: None };
        for i in 0..3 {
            r.start(d, rt, false, t0);
            let c = r.finish(d, fail, rt, t0);
            assert_eq!(c.is_some(), i == 2, "opens on the third failure");
        }
        assert!(!r.usable(d, t0));
        let mut out = Vec::new();
        r.order(&s, ModelId(0), None, t0, &mut out);
        assert_eq!(out, [DeploymentId(1)], "skipped while open");
        // After the cooldown: one probe, no second request meanwhile.
        let t1 = t0 + Duration::from_millis(1000);
        assert!(r.usable(d, t1));
        r.start(d, rt, false, t1);
        assert!(!r.usable(d, t1), "one probe at a time");
        assert_eq!(
            r.finish(d, fail, rt, t1),
            Some(Change::Opened(t1 + Duration::from_secs(1)))
        );
        let t2 = t1 + Duration::from_millis(1000);
        r.start(d, rt, false, t2);
        assert_eq!(
            r.finish(d, Outcome::Success { ttft_us: 10 }, rt, t2),
            Some(Change::Closed)
        );
        assert!(r.usable(d, t2));
    }

    #[test]
    fn an_error_rate_or_a_retry_after_opens_it_too() {
        let s = snap(
            "round_robin",
            &[1],
            "[routing]\nbreaker_failures = 100\nbreaker_window = 10\nbreaker_error_rate = 0.5\n",
        );
        let rt = &s.routing;
        let mut r = Router::new(&s, 1);
        let now = Instant::now();
        let d = DeploymentId(0);
        let mut opened = None;
        for i in 0..20 {
            r.start(d, rt, false, now);
            let o = if i % 2 == 0 {
                Outcome::Failure { retry_after: None }
            } else {
                Outcome::Success { ttft_us: 1 }
            };
            if r.finish(d, o, rt, now).is_some() {
                opened = Some(i);
                break;
            }
        }
        assert_eq!(
            opened,
            Some(10),
            "the first failure with 5 of the last 10 failed"
        );
        let mut r = Router::new(&s, 1);
        r.start(d, rt, false, now);
        let wait = Duration::from_secs(7);
        assert_eq!(
            r.finish(
                d,
                Outcome::Failure {
                    retry_after: Some(wait)
                },
                rt,
                now
            ),
            Some(Change::Waiting(now + wait))
        );
        assert!(!r.usable(d, now));
        assert!(r.last_resort(d), "asked to wait: still a last resort");
        // A request sent as the last resort that succeeds closes the circuit.
        r.start(d, rt, false, now);
        assert_eq!(
            r.finish(d, Outcome::Success { ttft_us: 1 }, rt, now),
            Some(Change::Closed)
        );
        assert!(r.usable(d, now) && !r.last_resort(d));
        // One that fails again keeps it open, asked to wait.
        let told = Outcome::Failure {
            retry_after: Some(wait),
        };
        r.start(d, rt, false, now);
        r.finish(d, told, rt, now);
        r.start(d, rt, false, now);
        assert_eq!(r.finish(d, told, rt, now), None);
        assert!(r.last_resort(d));
    }

    #[test]
    fn a_circuit_opened_by_failures_is_no_last_resort() {
        let s = snap(
            "round_robin",
            &[1],
            "[routing]
breaker_failures = 2
",
        );
        let rt = &s.routing;
        let mut r = Router::new(&s, 1);
        let now = Instant::now();
        let d = DeploymentId(0);
        let fail = Outcome::Failure { retry_after: None };
        r.start(d, rt, false, now);
        assert_eq!(r.finish(d, fail, rt, now), None);
        r.start(d, rt, false, now);
        assert!(matches!(
            r.finish(d, fail, rt, now),
            Some(Change::Opened(_))
        ));
        assert!(!r.usable(d, now) && !r.last_resort(d));
        // Another worker's "asked to wait" does not soften a circuit open for failures…
        r.remote(d, Change::Waiting(now + Duration::from_secs(60)));
        assert!(!r.last_resort(d));
        // …and one open for failures elsewhere hardens a waiting one.
        let mut r = Router::new(&s, 1);
        r.remote(d, Change::Waiting(now + Duration::from_secs(1)));
        assert!(r.last_resort(d));
        r.remote(d, Change::Opened(now + Duration::from_secs(1)));
        assert!(!r.last_resort(d));
    }

    #[test]
    fn the_retry_budget_caps_retries_in_a_storm() {
        let s = snap(
            "round_robin",
            &[1],
            "[routing]\nretry_budget = 0.2\nretry_budget_min = 10\n",
        );
        let mut r = Router::new(&s, 1);
        let now = Instant::now();
        let d = DeploymentId(0);
        let mut retries = 0;
        for _ in 0..1000 {
            r.start(d, &s.routing, false, now);
            if r.take_retry(d) {
                retries += 1;
            }
        }
        assert!((200..=210).contains(&retries), "{retries}");
    }

    #[test]
    fn sticky_sessions_keep_their_deployment_while_it_is_usable() {
        let s = snap("round_robin", &[1, 1, 1], "");
        let mut r = Router::new(&s, 1);
        let now = Instant::now();
        let sessions: Vec<u64> = (0..64)
            .map(|i| session_hash(format!("conv-{i}").as_bytes()))
            .collect();
        let home: Vec<u32> = sessions
            .iter()
            .map(|&h| first(&mut r, &s, Some(h), now))
            .collect();
        for _ in 0..5 {
            let again: Vec<u32> = sessions
                .iter()
                .map(|&h| first(&mut r, &s, Some(h), now))
                .collect();
            assert_eq!(again, home);
        }
        assert!(
            (0..3).all(|d| home.contains(&d)),
            "sessions spread: {home:?}"
        );
        // Deployment 0 out: only its sessions move.
        r.remote(
            DeploymentId(0),
            Change::Opened(now + Duration::from_secs(5)),
        );
        for (i, &h) in sessions.iter().enumerate() {
            let d = first(&mut r, &s, Some(h), now);
            if home[i] != 0 {
                assert_eq!(d, home[i]);
            } else {
                assert_ne!(d, 0);
            }
        }
    }
}
