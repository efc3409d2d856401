//! The operator's tables, validated: `[admin]` (the admin listener, its key, metrics access),
//! `[tracing]` (the OTLP collector and sampling) and `[cluster]` (in `cluster.rs`).

use std::net::SocketAddr;

use super::raw::{RawAdmin, RawLedger, RawTracing};
use super::snapshot::{Admin, LedgerConfig, Tracing};
use super::validate::{Problems, bounded, ms, parse_sha256};

/// `[admin]`, `[tracing]` and `[cluster]`.
pub(super) fn operator(
    p: &mut Problems,
    raw: &super::raw::RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Admin, Option<Tracing>, Option<super::cluster::Cluster>) {
    (
        admin(p, &raw.admin),
        tracing(p, &raw.tracing),
        super::cluster::cluster(p, &raw.cluster, env),
    )
}

pub(super) fn admin(p: &mut Problems, r: &RawAdmin) -> Admin {
    let key_sha256 = r.key_sha256.as_ref().map(|hex| {
        parse_sha256(hex).unwrap_or_else(|| {
            p.add(
                "admin.key_sha256",
                "must be 64 hex digits: the SHA-256 of the admin key (`tollgate hash-key`)",
            );
            [0; 32]
        })
    });
    let on = key_sha256.is_some() || r.metrics_public;
    let listen = on.then(|| {
        r.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
            p.add(
                "admin.listen",
                format!("`{}` is not an IP address and port", r.listen),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    });
    Admin {
        listen,
        key_sha256,
        metrics_public: r.metrics_public,
        metrics_max_keys: usize::try_from(r.metrics_max_keys).unwrap_or(usize::MAX),
    }
}

pub(super) fn tracing(p: &mut Problems, r: &RawTracing) -> Option<Tracing> {
    let url = r.endpoint.as_ref()?;
    let ep = match super::provider::parse_base_url(url) {
        Ok(ep) if ep.tls => {
            p.add(
                "tracing.endpoint",
                "https collectors are not supported yet: use http:// (a local collector or agent)",
            );
            return None;
        }
        Ok(ep) => ep,
        Err(e) => {
            p.add("tracing.endpoint", e);
            return None;
        }
    };
    if !(0.0..=1.0).contains(&r.sample) {
        p.add(
            "tracing.sample",
            "must be between 0 and 1 (the share of requests traced)",
        );
    }
    if r.queue_spans == 0 {
        p.add("tracing.queue_spans", "must be at least 1");
    }
    Some(Tracing {
        host: ep.host,
        port: ep.port,
        authority: ep.authority,
        path: if ep.base_path.is_empty() {
            "/v1/traces".to_owned()
        } else {
            ep.base_path
        },
        sample_per_million: (r.sample.clamp(0.0, 1.0) * 1e6).round() as u32,
        service_name: r.service_name.clone(),
        queue_spans: usize::try_from(r.queue_spans).unwrap_or(usize::MAX),
    })
}

pub(super) fn ledger(p: &mut Problems, r: &RawLedger) -> LedgerConfig {
    LedgerConfig {
        dir: match r.dir.as_str() {
            "off" => None,
            "" => {
                p.add("ledger.dir", "empty; use a directory path or \"off\"");
                None
            }
            d => Some(d.into()),
        },
        compact_bytes: bounded(p, "ledger.compact_bytes", r.compact_bytes, 256, 1 << 40),
        sync: ms(p, "ledger.sync_ms", r.sync_ms),
        journal: r.journal,
    }
}
