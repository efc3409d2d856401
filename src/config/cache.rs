//! Response caching settings: a model's `cache = { … }` (with its `semantic = { … }`), and the
//! overrides a key or a team may set (`cache = false`, or a table of the fields it changes).
//! The cache itself is `crate::cache`; this is only what the TOML says, checked.

use std::time::Duration;

use serde::Deserialize;

use super::ModelId;
use super::validate::Problems;

/// `cache = { ttl = "1h", max_entries = 10000, max_bytes = "64MiB", scope = "team" }` on a
/// `[[models]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// How long an entry is served: `"90s"`, `"30m"`, `"1h"`, `"7d"`, or seconds. Default 1h.
    pub ttl: Option<RawDuration>,
    /// Entries of this model held, over all workers. Default 10 000.
    pub max_entries: Option<u64>,
    /// Bytes of this model's entries held, over all workers: a number or `"64MiB"`. Default
    /// 64 MiB.
    pub max_bytes: Option<RawBytes>,
    /// Who shares entries: `"key"`, `"team"` (default: the key's team, its key when it has
    /// none) or `"global"`.
    pub scope: Option<String>,
    /// The fraction (0–1) of a hit's saved cost charged to the key. Default 0: hits are free.
    pub charge: Option<f64>,
    /// A key (or team) past its budget is still served hits. Default false: it gets the
    /// budget's 429 like any other request.
    pub serve_over_budget: Option<bool>,
    /// How long a request waits for an identical one in flight before going upstream itself.
    /// Default 60 000.
    pub wait_ms: Option<u64>,
    /// Requests that may wait for one in flight; more go upstream themselves. Default 1000.
    pub max_waiters: Option<u32>,
    pub semantic: Option<RawSemantic>,
}

/// `semantic = { embeddings = "text-embedding-3-small", threshold = 0.95, max_entries = 2000 }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSemantic {
    /// A model this gateway serves that answers `/v1/embeddings`.
    pub embeddings: String,
    /// Cosine similarity at or above which the nearest entry is served (0–1). Default 0.95.
    pub threshold: Option<f64>,
    /// Vectors held per worker and model, searched exactly (`cache::vectors`). Default 1024.
    pub max_entries: Option<u64>,
}

/// A key's or team's `cache`: `false` turns caching off for it; a table changes fields.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawCacheOverride {
    On(bool),
    Set(RawCacheSet),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCacheSet {
    pub scope: Option<String>,
    pub ttl: Option<RawDuration>,
    pub charge: Option<f64>,
    pub serve_over_budget: Option<bool>,
}

/// `"1h"` or a number of seconds.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawDuration {
    Seconds(u64),
    Text(String),
}

/// A number of bytes or `"64MiB"`.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawBytes {
    Count(u64),
    Text(String),
}

/// Who shares a cache entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheScope {
    Key,
    /// The key's team, or the key alone when it has none.
    Team,
    Global,
}

/// A model's cache, as compiled (a key's overrides applied by [`CachePolicy::with`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub max_entries: u64,
    pub max_bytes: u64,
    pub scope: CacheScope,
    /// Parts per million of the saved cost charged on a hit.
    pub charge_ppm: u32,
    pub serve_over_budget: bool,
    pub wait: Duration,
    pub max_waiters: u32,
    pub semantic: Option<Semantic>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Semantic {
    pub embeddings: ModelId,
    pub threshold: f32,
    pub max_entries: u64,
}

/// What a key (its own setting over its team's) changes of a model's policy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CacheOverride {
    pub off: bool,
    pub scope: Option<CacheScope>,
    pub ttl: Option<Duration>,
    pub charge_ppm: Option<u32>,
    pub serve_over_budget: Option<bool>,
}

impl CachePolicy {
    /// The policy a key gets: the model's, changed by the key's (or its team's) override.
    /// `None`: the key has caching off.
    pub fn with(&self, o: Option<&CacheOverride>) -> Option<CachePolicy> {
        let Some(o) = o else {
            return Some(self.clone());
        };
        if o.off {
            return None;
        }
        let mut p = self.clone();
        p.scope = o.scope.unwrap_or(p.scope);
        p.ttl = o.ttl.unwrap_or(p.ttl);
        p.charge_ppm = o.charge_ppm.unwrap_or(p.charge_ppm);
        p.serve_over_budget = o.serve_over_budget.unwrap_or(p.serve_over_budget);
        Some(p)
    }
}

/// Compiles a model's `cache` (its `semantic.embeddings` resolved by `model`).
pub(super) fn policy(
    p: &mut Problems,
    path: &str,
    r: &RawCache,
    model: &dyn Fn(&str) -> Option<ModelId>,
) -> CachePolicy {
    let semantic = r.semantic.as_ref().map(|s| {
        let at = format!("{path}.semantic");
        let embeddings = model(&s.embeddings).unwrap_or_else(|| {
            p.add(
                format!("{at}.embeddings"),
                format!(
                    "no model named `{}` (it must be a model of this gateway)",
                    s.embeddings
                ),
            );
            ModelId(0)
        });
        let threshold = s.threshold.unwrap_or(0.95);
        if !(0.0..=1.0).contains(&threshold) {
            p.add(format!("{at}.threshold"), "must be between 0 and 1");
        }
        Semantic {
            embeddings,
            threshold: threshold as f32,
            max_entries: s.max_entries.unwrap_or(1024).max(1),
        }
    });
    CachePolicy {
        ttl: r.ttl.as_ref().map_or(Duration::from_secs(3600), |t| {
            duration(p, &format!("{path}.ttl"), t)
        }),
        max_entries: r.max_entries.unwrap_or(10_000).max(1),
        max_bytes: r
            .max_bytes
            .as_ref()
            .map_or(64 << 20, |b| bytes(p, &format!("{path}.max_bytes"), b)),
        scope: r
            .scope
            .as_deref()
            .map_or(CacheScope::Team, |s| scope(p, &format!("{path}.scope"), s)),
        charge_ppm: r
            .charge
            .map_or(0, |c| charge(p, &format!("{path}.charge"), c)),
        serve_over_budget: r.serve_over_budget.unwrap_or(false),
        wait: Duration::from_millis(r.wait_ms.unwrap_or(60_000)),
        max_waiters: r.max_waiters.unwrap_or(1000),
        semantic,
    }
}

/// Compiles a key's or team's `cache`.
pub(super) fn override_of(p: &mut Problems, path: &str, r: &RawCacheOverride) -> CacheOverride {
    match r {
        RawCacheOverride::On(on) => CacheOverride {
            off: !on,
            ..CacheOverride::default()
        },
        RawCacheOverride::Set(s) => CacheOverride {
            off: false,
            scope: s
                .scope
                .as_deref()
                .map(|v| scope(p, &format!("{path}.scope"), v)),
            ttl: s
                .ttl
                .as_ref()
                .map(|t| duration(p, &format!("{path}.ttl"), t)),
            charge_ppm: s.charge.map(|c| charge(p, &format!("{path}.charge"), c)),
            serve_over_budget: s.serve_over_budget,
        },
    }
}

/// A key's own override over its team's: the key's fields win.
pub(super) fn layered(
    key: Option<CacheOverride>,
    team: Option<&CacheOverride>,
) -> Option<CacheOverride> {
    match (key, team) {
        (None, t) => t.cloned(),
        (Some(k), None) => Some(k),
        (Some(k), Some(t)) => Some(CacheOverride {
            off: k.off,
            scope: k.scope.or(t.scope),
            ttl: k.ttl.or(t.ttl),
            charge_ppm: k.charge_ppm.or(t.charge_ppm),
            serve_over_budget: k.serve_over_budget.or(t.serve_over_budget),
        }),
    }
}

fn scope(p: &mut Problems, path: &str, s: &str) -> CacheScope {
    match s {
        "key" => CacheScope::Key,
        "team" => CacheScope::Team,
        "global" => CacheScope::Global,
        _ => {
            p.add(
                path,
                format!("`{s}` is not a scope; use \"key\", \"team\" or \"global\""),
            );
            CacheScope::Team
        }
    }
}

fn charge(p: &mut Problems, path: &str, c: f64) -> u32 {
    if !(0.0..=1.0).contains(&c) {
        p.add(path, "must be a fraction between 0 and 1");
        return 0;
    }
    (c * 1e6).round() as u32
}

fn duration(p: &mut Problems, path: &str, d: &RawDuration) -> Duration {
    let secs = match d {
        RawDuration::Seconds(s) => Some(*s),
        RawDuration::Text(t) => {
            let t = t.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (n, unit) = t.split_at(split);
            let mult = match unit.trim() {
                "" | "s" => Some(1),
                "m" => Some(60),
                "h" => Some(3600),
                "d" => Some(86_400),
                _ => None,
            };
            n.parse::<u64>()
                .ok()
                .zip(mult)
                .map(|(n, m)| n.saturating_mul(m))
        }
    };
    match secs {
        Some(s) if s > 0 => Duration::from_secs(s),
        _ => {
            p.add(
                path,
                "not a duration: write \"90s\", \"30m\", \"1h\", \"7d\" or seconds (> 0)",
            );
            Duration::from_secs(3600)
        }
    }
}

fn bytes(p: &mut Problems, path: &str, b: &RawBytes) -> u64 {
    let n = match b {
        RawBytes::Count(n) => Some(*n),
        RawBytes::Text(t) => {
            let t = t.trim();
            let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (n, unit) = t.split_at(split);
            let mult = match unit.trim() {
                "" | "B" => Some(1u64),
                "KiB" | "KB" | "K" => Some(1 << 10),
                "MiB" | "MB" | "M" => Some(1 << 20),
                "GiB" | "GB" | "G" => Some(1 << 30),
                _ => None,
            };
            n.parse::<u64>()
                .ok()
                .zip(mult)
                .map(|(n, m)| n.saturating_mul(m))
        }
    };
    match n {
        Some(n) if n > 0 => n,
        _ => {
            p.add(path, "not a size: write a number of bytes or \"64MiB\"");
            64 << 20
        }
    }
}
