//! Metrics, counted where the request ran and merged off the path (ARCHITECTURE.md,
//! "Metrics"; DESIGN §11).
//!
//! A worker counts each finished request into a [`WorkerMetrics`] — plain integers and
//! fixed-bound histograms indexed by the snapshot's key and deployment ids, no lock, no atomic,
//! no allocation once its vectors have grown to the config — from the same [`AuditRecord`] the
//! audit line is written from. Every report interval it hands the filled buffer to the
//! coordinator over its own ring and takes an emptied one back; when none is back yet it keeps
//! counting into the one it has (nothing is dropped). The coordinator folds each buffer into
//! [`Totals`] by name — key id, model and deployment names of the generation it was counted
//! under, so counters stay monotonic across reloads — and a scrape renders the totals
//! (`exposition`). A scrape never touches a worker.
//!
//! Label cardinality is bounded by the config: keys by their configured id (never the secret
//! or its hash), the first `metrics.max_keys` keys in config order and the rest as `other`;
//! models and deployments as configured; the `gen_ai_response_model` label is the model the
//! deployment asks for, never a string read from the provider's answer. No per-user labels.

use std::collections::BTreeMap;

use crate::config::{ProviderKind, Snapshot};
use crate::error::ErrorKind;
use crate::telemetry::record::{AuditRecord, CacheOutcome, Route, TryOutcome};

/// `gen_ai.client.token.usage`'s bucket boundaries (OpenTelemetry GenAI conventions), tokens.
pub const TOKEN_BOUNDS: &[u64] = &[
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];
/// `gen_ai.server.request.duration`'s boundaries (0.01 s … 81.92 s), in µs.
pub const DURATION_BOUNDS_US: &[u64] = &[
    10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000, 2_560_000, 5_120_000,
    10_240_000, 20_480_000, 40_960_000, 81_920_000,
];
/// `gen_ai.server.time_to_first_token`'s boundaries (0.001 s … 10 s), in µs.
pub const TTFT_BOUNDS_US: &[u64] = &[
    1_000, 5_000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 250_000, 500_000, 750_000,
    1_000_000, 2_500_000, 5_000_000, 7_500_000, 10_000_000,
];
/// `gen_ai.server.time_per_output_token`'s boundaries (0.01 s … 2.5 s), in µs.
pub const TPOT_BOUNDS_US: &[u64] = &[
    10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000, 300_000, 400_000, 500_000, 750_000,
    1_000_000, 2_500_000,
];
/// The gateway's own time on a request (5 µs … 100 ms), in µs.
pub const OVERHEAD_BOUNDS_US: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
];

/// Request durations and first-byte times for the admin stats (100 µs … 30 s), in µs: finer
/// than the GenAI boundaries, which start at 10 ms.
pub const LATENCY_BOUNDS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000, 30_000_000,
];

/// Most bounds any histogram here has; one more bucket holds `+Inf`.
const MAX_BOUNDS: usize = 16;

/// A histogram over fixed bounds: per-bucket counts (not cumulative; the last is `+Inf`) and
/// the sum of the values, in the bounds' integer unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hist {
    pub counts: [u64; MAX_BOUNDS + 1],
    pub sum: u64,
}

impl Hist {
    /// Counts `v` in the first bucket whose bound is ≥ `v` (Prometheus' `le`).
    pub fn record(&mut self, bounds: &[u64], v: u64) {
        let i = bounds.partition_point(|&b| b < v);
        self.counts[i] += 1;
        self.sum += v;
    }

    pub fn add(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum += o.sum;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Responses by status class: 1xx … 5xx (index 0 … 4).
pub type Classes = [u64; 5];

fn class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// What calls cost and used (sums).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Use {
    pub charged: u64,
    pub estimated: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_micro_usd: u64,
}

impl Use {
    fn charge(&mut self, r: &AuditRecord) {
        self.charged += 1;
        self.estimated += u64::from(r.usage_estimated);
        self.input_tokens += r.usage.input_tokens;
        self.output_tokens += r.usage.output_tokens;
        self.cache_read_tokens += r.usage.cache_read_tokens;
        self.cache_write_tokens += r.usage.cache_creation_tokens;
        self.reasoning_tokens += r.usage.reasoning_tokens;
        self.cost_micro_usd += r.cost_micro_usd + r.abandoned_cost_micro_usd;
    }

    fn add(&mut self, o: &Use) {
        self.charged += o.charged;
        self.estimated += o.estimated;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.cache_write_tokens += o.cache_write_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.cost_micro_usd += o.cost_micro_usd;
    }
}

/// One key's requests and use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyCounts {
    pub responses: Classes,
    pub used: Use,
    pub cache: CacheCounts,
}

/// What the response cache did, for a model or a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// By `CacheOutcome` (index = its position in `CacheOutcome::ALL`).
    pub outcomes: [u64; 6],
    /// Requests that waited for an identical one in flight.
    pub waited: u64,
    pub saved_micro_usd: u64,
    pub saved_tokens: u64,
}

impl CacheCounts {
    fn count(&mut self, r: &AuditRecord) {
        let c = &r.cache;
        if let Some(i) = CacheOutcome::ALL.iter().position(|&o| o == c.outcome) {
            self.outcomes[i] += 1;
        }
        self.waited += u64::from(c.waited);
        if c.outcome.is_hit() {
            self.saved_micro_usd += c.saved_micro_usd;
            self.saved_tokens += c.saved_tokens;
        }
    }

    pub fn add(&mut self, o: &CacheCounts) {
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes) {
            *a += b;
        }
        self.waited += o.waited;
        self.saved_micro_usd += o.saved_micro_usd;
        self.saved_tokens += o.saved_tokens;
    }
}

/// The GenAI operations (`gen_ai.operation.name`), as indexes.
pub const OPERATIONS: [&str; 4] = ["chat", "text_completion", "generate_content", "embeddings"];

/// One deployment's requests, use and the GenAI histograms, per operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentCounts {
    pub responses: Classes,
    pub used: Use,
    pub ops: [GenAi; OPERATIONS.len()],
    /// Hedged requests this deployment answered first, and those it lost (cancelled).
    pub hedges_won: u64,
    pub hedges_lost: u64,
}

/// The OpenTelemetry GenAI histograms of one deployment and operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenAi {
    pub input_tokens: Hist,
    pub output_tokens: Hist,
    pub duration: Hist,
    pub ttft: Hist,
    pub tpot: Hist,
}

/// What one worker counted under one snapshot generation since its last report.
#[derive(Clone, Debug, Default)]
pub struct WorkerMetrics {
    pub generation: u64,
    /// By key id; requests with no key (refused before one was known) are only in `errors`
    /// and `responses`.
    pub keys: Vec<KeyCounts>,
    pub deployments: Vec<DeploymentCounts>,
    /// By model id: what the response cache did.
    pub cache: Vec<CacheCounts>,
    /// Guardrail matches: by key id, the rule and detector (indices in the key's guard) and
    /// the side, summed.
    pub guard: Vec<(u32, crate::telemetry::record::GuardHit)>,
    /// Every response by status class.
    pub responses: Classes,
    /// Requests that ended in a gateway error, by kind (429s by reason among them).
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Time inside the gateway before the first byte reached the client, excluding the wait
    /// for the provider's response head.
    pub overhead: Hist,
    /// Every request's duration and time to its first byte (`LATENCY_BOUNDS_US`).
    pub latency: Hist,
    pub first_byte: Hist,
    /// Upstream attempts beyond the first (failovers and retries).
    pub extra_tries: u64,
    pub dirty: bool,
}

impl WorkerMetrics {
    /// An empty buffer for `generation`, keeping its vectors' capacity.
    pub fn reset(&mut self, generation: u64) {
        self.generation = generation;
        self.keys.clear();
        self.deployments.clear();
        self.cache.clear();
        self.guard.clear();
        self.responses = Classes::default();
        self.errors = [0; ErrorKind::ALL.len()];
        self.overhead = Hist::default();
        self.latency = Hist::default();
        self.first_byte = Hist::default();
        self.extra_tries = 0;
        self.dirty = false;
    }

    /// Counts one finished request.
    pub fn record(&mut self, r: &AuditRecord) {
        self.dirty = true;
        let c = class(r.status);
        self.responses[c] += 1;
        if let Some(e) = r.error {
            self.errors[e as usize] += 1;
        }
        self.extra_tries += u64::from(r.tries.n.saturating_sub(1));
        if let Some(k) = r.key {
            let i = k.0 as usize;
            if self.keys.len() <= i {
                self.keys.resize(i + 1, KeyCounts::default());
            }
            let kc = &mut self.keys[i];
            kc.responses[c] += 1;
            if r.cache.outcome.is_hit() {
                // A hit used no tokens; it is charged only what the cache policy says.
                kc.used.cost_micro_usd += r.cost_micro_usd;
            } else if r.charged {
                kc.used.charge(r);
            }
            if r.cache.outcome != CacheOutcome::Off {
                kc.cache.count(r);
            }
        }
        if let Some(k) = r.key {
            for h in r.guard.hits() {
                let same = |(key, g): &&mut (u32, crate::telemetry::record::GuardHit)| {
                    *key == k.0
                        && (g.rule, g.detector, g.response) == (h.rule, h.detector, h.response)
                };
                match self.guard.iter_mut().find(same) {
                    Some((_, g)) => g.count += h.count,
                    None => self.guard.push((k.0, *h)),
                }
            }
        }
        if r.cache.outcome != CacheOutcome::Off
            && let Some(m) = r.model
        {
            let i = m.0 as usize;
            if self.cache.len() <= i {
                self.cache.resize(i + 1, CacheCounts::default());
            }
            self.cache[i].count(r);
        }
        self.latency.record(LATENCY_BOUNDS_US, r.duration_us);
        if r.ttft_us > 0 {
            self.first_byte.record(LATENCY_BOUNDS_US, r.ttft_us);
        }
        if r.ttft_us > 0 && r.upstream_us > 0 {
            self.overhead
                .record(OVERHEAD_BOUNDS_US, r.ttft_us.saturating_sub(r.upstream_us));
        }
        let Some(d) = r.deployment else {
            return;
        };
        let grow = |v: &mut Vec<DeploymentCounts>, i: usize| {
            if v.len() <= i {
                v.resize(i + 1, DeploymentCounts::default());
            }
        };
        let lost = r.tries.iter().filter(|&(_, o)| o == TryOutcome::HedgeLost);
        let mut hedged = false;
        for (loser, _) in lost {
            grow(&mut self.deployments, loser.0 as usize);
            self.deployments[loser.0 as usize].hedges_lost += 1;
            hedged = true;
        }
        let i = d.0 as usize;
        grow(&mut self.deployments, i);
        let dc = &mut self.deployments[i];
        dc.hedges_won += u64::from(hedged);
        dc.responses[c] += 1;
        if !r.charged {
            return;
        }
        dc.used.charge(r);
        let Some(op) = operation(r.route) else {
            return;
        };
        let g = &mut dc.ops[op];
        g.input_tokens.record(TOKEN_BOUNDS, r.usage.input_tokens);
        g.output_tokens.record(TOKEN_BOUNDS, r.usage.output_tokens);
        g.duration.record(DURATION_BOUNDS_US, r.duration_us);
        if r.ttft_us > 0 {
            g.ttft.record(TTFT_BOUNDS_US, r.ttft_us);
            // After the first token, per further output token.
            if r.usage.output_tokens > 1 && r.duration_us > r.ttft_us {
                let per = (r.duration_us - r.ttft_us) / (r.usage.output_tokens - 1);
                g.tpot.record(TPOT_BOUNDS_US, per);
            }
        }
    }
}

/// A worker's side: the buffers it counts into (one per snapshot generation it finished
/// requests under since its last report; almost always one) and its ends of the two metrics
/// rings.
#[derive(Debug)]
#[allow(
    clippy::vec_box,
    reason = "buffers travel through the rings boxed; kept boxed here, they move as pointers"
)]
pub struct WorkerDesk {
    live: Vec<Box<WorkerMetrics>>,
    spares: Vec<Box<WorkerMetrics>>,
    out: rtrb::Producer<Box<WorkerMetrics>>,
    back: rtrb::Consumer<Box<WorkerMetrics>>,
}

/// Emptied buffers a worker keeps beyond those it counts into.
const MAX_SPARES: usize = 2;

impl WorkerDesk {
    pub fn new(
        out: rtrb::Producer<Box<WorkerMetrics>>,
        back: rtrb::Consumer<Box<WorkerMetrics>>,
    ) -> Self {
        WorkerDesk {
            live: Vec::new(),
            spares: Vec::new(),
            out,
            back,
        }
    }

    /// Counts one finished request into the buffer of the snapshot it ran under.
    pub fn record(&mut self, r: &AuditRecord) {
        let i = match self.live.iter().rposition(|m| m.generation == r.generation) {
            Some(i) => i,
            None => {
                // The first request under a new snapshot (or a late one under an old).
                let mut m = self.spares.pop().unwrap_or_default();
                m.reset(r.generation);
                self.live.push(m);
                self.live.len() - 1
            }
        };
        self.live[i].record(r);
    }

    /// Every report interval: each buffer that counted something goes to the coordinator and
    /// an emptied one takes its place. With the ring full, buffers keep counting until the
    /// next report (nothing is lost).
    pub fn report(&mut self) {
        while let Ok(m) = self.back.pop() {
            if self.spares.len() < MAX_SPARES {
                self.spares.push(m);
            }
        }
        let newest = self.live.iter().map(|m| m.generation).max().unwrap_or(0);
        let mut i = 0;
        while i < self.live.len() {
            let m = &self.live[i];
            if !m.dirty {
                // An older snapshot's buffer with nothing new: no longer needed.
                if m.generation != newest {
                    let m = self.live.swap_remove(i);
                    if self.spares.len() < MAX_SPARES {
                        self.spares.push(m);
                    }
                    continue;
                }
                i += 1;
                continue;
            }
            if self.out.is_full() {
                return;
            }
            let generation = m.generation;
            let mut fresh = self.spares.pop().unwrap_or_default();
            fresh.reset(generation);
            let full = std::mem::replace(&mut self.live[i], fresh);
            // Not full (checked above); a push cannot fail.
            let _ = self.out.push(full);
            i += 1;
        }
    }
}

fn operation(route: Route) -> Option<usize> {
    let op = route.operation()?;
    OPERATIONS.iter().position(|&o| o == op)
}

/// OpenTelemetry's `gen_ai.provider.name` for a provider kind.
pub fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::OpenAi => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Gemini => "gcp.gemini",
        ProviderKind::Vertex => "gcp.vertex_ai",
        ProviderKind::Bedrock => "aws.bedrock",
        ProviderKind::Mock => "tollgate.mock",
    }
}

/// A deployment's labels, by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeploymentLabels {
    pub model: String,
    /// `provider/upstream model`.
    pub deployment: String,
    pub provider: &'static str,
    pub upstream_model: String,
}

/// Every worker's counts since start, merged by name (the coordinator's).
#[derive(Clone, Debug, Default)]
pub struct Totals {
    /// By key label (its id, or `other`), with its team (`""`: none).
    pub keys: BTreeMap<(String, String), KeyCounts>,
    pub deployments: BTreeMap<DeploymentLabels, DeploymentCounts>,
    /// By model name.
    pub cache: BTreeMap<String, CacheCounts>,
    /// Guardrail matches by (rule, detector, side, action).
    pub guard: BTreeMap<(String, String, &'static str, &'static str), u64>,
    pub responses: Classes,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub overhead: Hist,
    pub latency: Hist,
    pub first_byte: Hist,
    pub extra_tries: u64,
    /// Buffers counted under a snapshot no longer known (their per-key and per-deployment
    /// counts are in the totals only).
    pub unattributed: u64,
}

impl Totals {
    /// Folds one worker's buffer in, naming ids by `snap` (the snapshot of the buffer's
    /// generation, if still known); `max_keys` keys have their own label.
    pub fn merge(&mut self, m: &WorkerMetrics, snap: Option<&Snapshot>, max_keys: usize) {
        for (a, b) in self.responses.iter_mut().zip(m.responses) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(m.errors) {
            *a += b;
        }
        self.overhead.add(&m.overhead);
        self.latency.add(&m.latency);
        self.first_byte.add(&m.first_byte);
        self.extra_tries += m.extra_tries;
        let Some(snap) = snap else {
            self.unattributed += 1;
            return;
        };
        for (i, k) in m.keys.iter().enumerate() {
            if k.responses == Classes::default() {
                continue;
            }
            let Some(key) = snap.keys.get(i) else {
                continue;
            };
            let label = if i < max_keys {
                (key.id.clone(), key.team.clone().unwrap_or_default())
            } else {
                ("other".to_owned(), String::new())
            };
            let t = self.keys.entry(label).or_default();
            for (a, b) in t.responses.iter_mut().zip(k.responses) {
                *a += b;
            }
            t.used.add(&k.used);
            t.cache.add(&k.cache);
        }
        for (k, h) in &m.guard {
            let Some(g) = snap.keys.get(*k as usize).and_then(|k| k.guard.as_ref()) else {
                continue;
            };
            let (Some(rule), Some(det)) = (
                g.rules.get(usize::from(h.rule)),
                g.dets.get(usize::from(h.detector)),
            ) else {
                continue;
            };
            let side = if h.response { "response" } else { "request" };
            let label = (
                rule.name.to_string(),
                det.id.to_string(),
                side,
                rule.action.name(),
            );
            *self.guard.entry(label).or_default() += u64::from(h.count);
        }
        for (i, c) in m.cache.iter().enumerate() {
            if let Some(model) = snap.models.get(i)
                && c.outcomes.iter().any(|&n| n > 0)
            {
                self.cache.entry(model.name.clone()).or_default().add(c);
            }
        }
        for (i, d) in m.deployments.iter().enumerate() {
            if d.responses == Classes::default() && d.hedges_lost == 0 {
                continue;
            }
            let Some(dep) = snap.deployments.get(i) else {
                continue;
            };
            let provider = snap.provider(dep.provider);
            let labels = DeploymentLabels {
                model: snap.models[dep.model.0 as usize].name.clone(),
                deployment: format!("{}/{}", provider.name, dep.upstream_model),
                provider: provider_name(provider.kind),
                upstream_model: dep.upstream_model.clone(),
            };
            let t = self.deployments.entry(labels).or_default();
            for (a, b) in t.responses.iter_mut().zip(d.responses) {
                *a += b;
            }
            t.used.add(&d.used);
            t.hedges_won += d.hedges_won;
            t.hedges_lost += d.hedges_lost;
            for (a, b) in t.ops.iter_mut().zip(&d.ops) {
                a.input_tokens.add(&b.input_tokens);
                a.output_tokens.add(&b.output_tokens);
                a.duration.add(&b.duration);
                a.ttft.add(&b.ttft);
                a.tpot.add(&b.tpot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_count_by_le() {
        let mut h = Hist::default();
        for v in [0, 1, 2, 4, 5, 67108864, 67108865] {
            h.record(TOKEN_BOUNDS, v);
        }
        assert_eq!(&h.counts[..4], &[2, 2, 1, 0]);
        assert_eq!(h.counts[TOKEN_BOUNDS.len() - 1], 1, "≤ the last bound");
        assert_eq!(h.counts[TOKEN_BOUNDS.len()], 1, "+Inf");
        assert_eq!(h.count(), 7);
        assert_eq!(h.sum, 1 + 2 + 4 + 5 + 67108864 + 67108865);
        for b in [
            TOKEN_BOUNDS,
            DURATION_BOUNDS_US,
            TTFT_BOUNDS_US,
            TPOT_BOUNDS_US,
        ] {
            assert!(b.len() <= MAX_BOUNDS && b.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn statuses_fall_in_classes() {
        assert_eq!(
            [101, 200, 399, 404, 599, 0, 999].map(class),
            [0, 1, 2, 3, 4, 0, 4]
        );
    }
}
