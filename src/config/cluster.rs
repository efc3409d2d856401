//! `[cluster]`: several instances sharing their budgets, rate limits and deployment health
//! through one Redis (`account::cluster` uses it; off unless `redis` is set).

use serde::Deserialize;
use std::time::Duration;

use super::validate::Problems;

/// `[cluster]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCluster {
    /// `redis://host:port/db` or `rediss://…` (TLS). No password in it: see `password_env`.
    pub redis: Option<String>,
    /// The ACL user (Redis 6+); the default user when unset.
    pub username: Option<String>,
    /// The environment variable holding the password (AUTH).
    pub password_env: Option<String>,
    /// Key prefix, so several gateways' fleets can share one Redis.
    pub prefix: String,
    /// This instance's name in Redis (unique per running instance); default host name and
    /// process id.
    pub instance: Option<String>,
    /// Redis unreachable: `"open"` (each instance spends its local share of every limit and
    /// reconciles later) or `"closed"` (requests needing allowance get 503s).
    pub fail: String,
    /// Settled spend and returned leases go to Redis this often (and asks at once).
    pub flush_ms: u64,
    /// A silent instance's leases go back to the pool after this long.
    pub instance_ttl_ms: u64,
    /// One Redis call longer than this counts as Redis being unreachable.
    pub timeout_ms: u64,
    /// Fail-open: the share of a limit each instance takes is 1/`instances`; unset: 1/(the
    /// instances alive when Redis was last reached).
    pub instances: Option<u32>,
    /// Publish circuits that open here and skip deployments opened elsewhere.
    pub share_health: bool,
    /// A second level for the exact response cache in Redis, shared by the instances: a
    /// miss here asks Redis before the provider; a fill is written there too (with the
    /// model's cache TTL).
    pub cache: bool,
    /// Entries larger than this (encoded) stay local.
    pub cache_max_entry_bytes: u64,
}

impl Default for RawCluster {
    fn default() -> Self {
        RawCluster {
            redis: None,
            username: None,
            password_env: None,
            prefix: "tollgate".into(),
            instance: None,
            fail: "open".into(),
            flush_ms: 100,
            instance_ttl_ms: 10_000,
            timeout_ms: 1_000,
            instances: None,
            share_health: true,
            cache: false,
            cache_max_entry_bytes: 1 << 20,
        }
    }
}

/// What happens to requests while Redis is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    Open,
    Closed,
}

/// `[cluster]`, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct Cluster {
    /// The URL with the credentials filled in (never printed: see `Debug`).
    pub url: String,
    /// The URL as configured (for log lines).
    pub shown: String,
    pub prefix: String,
    pub instance: String,
    pub fail: FailMode,
    pub flush: Duration,
    pub instance_ttl: Duration,
    pub timeout: Duration,
    pub instances: Option<u32>,
    pub share_health: bool,
    /// The shared second cache level: on, with entries up to this many bytes.
    pub cache: Option<usize>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("redis", &self.shown)
            .field("instance", &self.instance)
            .field("fail", &self.fail)
            .finish_non_exhaustive()
    }
}

pub(super) fn cluster(
    p: &mut Problems,
    r: &RawCluster,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Cluster> {
    let shown = r.redis.as_ref()?.clone();
    let Some((scheme, rest)) = shown.split_once("://") else {
        p.add(
            "cluster.redis",
            format!("`{shown}` is not a URL: write redis://host:port/db (or rediss:// for TLS)"),
        );
        return None;
    };
    if scheme != "redis" && scheme != "rediss" {
        p.add(
            "cluster.redis",
            format!("scheme `{scheme}` is not redis:// or rediss://"),
        );
        return None;
    }
    if rest.contains('@') {
        p.add(
            "cluster.redis",
            "must not hold credentials: set `username` and `password_env` instead",
        );
        return None;
    }
    let password = match &r.password_env {
        None => None,
        Some(var) => match env(var) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                p.add(
                    "cluster.password_env",
                    format!("environment variable `{var}` is not set"),
                );
                None
            }
        },
    };
    let url = match (&r.username, &password) {
        (None, None) => shown.clone(),
        (user, pass) => {
            let mut u = format!("{scheme}://").into_bytes();
            crate::http1::percent::encode(&mut u, user.as_deref().unwrap_or("").as_bytes(), false);
            if let Some(pass) = pass {
                u.push(b':');
                crate::http1::percent::encode(&mut u, pass.as_bytes(), false);
            }
            u.push(b'@');
            u.extend_from_slice(rest.as_bytes());
            String::from_utf8_lossy(&u).into_owned()
        }
    };
    let fail = match r.fail.as_str() {
        "open" => FailMode::Open,
        "closed" => FailMode::Closed,
        other => {
            p.add(
                "cluster.fail",
                format!("`{other}` is not \"open\" or \"closed\""),
            );
            FailMode::Open
        }
    };
    if r.prefix.is_empty() || r.prefix.contains(char::is_whitespace) {
        p.add("cluster.prefix", "must be a non-empty word (a key prefix)");
    }
    for (name, v, lo, hi) in [
        ("cluster.flush_ms", r.flush_ms, 5, 10_000),
        ("cluster.instance_ttl_ms", r.instance_ttl_ms, 1_000, 600_000),
        ("cluster.timeout_ms", r.timeout_ms, 10, 60_000),
    ] {
        if !(lo..=hi).contains(&v) {
            p.add(name, format!("must be between {lo} and {hi}"));
        }
    }
    if r.instance_ttl_ms < 4 * r.flush_ms.max(250) {
        p.add(
            "cluster.instance_ttl_ms",
            "must be at least four flush intervals (and 1 s): a live instance must not lapse",
        );
    }
    if r.instances == Some(0) {
        p.add("cluster.instances", "must be at least 1");
    }
    let instance = r.instance.clone().unwrap_or_else(default_instance);
    if instance.is_empty() || instance.len() > 128 {
        p.add("cluster.instance", "must be 1 to 128 characters");
    }
    Some(Cluster {
        url,
        shown,
        prefix: r.prefix.clone(),
        instance,
        fail,
        flush: Duration::from_millis(r.flush_ms),
        instance_ttl: Duration::from_millis(r.instance_ttl_ms),
        timeout: Duration::from_millis(r.timeout_ms),
        instances: r.instances,
        share_health: r.share_health,
        cache: r
            .cache
            .then(|| usize::try_from(r.cache_max_entry_bytes).unwrap_or(usize::MAX)),
    })
}

/// The host name and the process id: unique among running instances.
fn default_instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let host = if host.is_empty() { "host" } else { &host };
    format!("{host}-{}", std::process::id())
}
