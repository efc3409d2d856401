//! Raw config → [`Snapshot`]: every rule checked, every problem reported with the key path it
//! concerns and how to fix it (all of them at once, not just the first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{
    RawAdmin, RawAudit, RawBudget, RawConfig, RawDeploymentPrice, RawLimits, RawPrice,
    RawPriceTable, RawProvider, RawRouting, RawStrategy, RawUpstream, RawWorkers,
};
use super::snapshot::*;
use crate::calendar::Period;
use crate::http1;
use crate::usage::Price;

/// The bundled price table: list prices of well-known models (USD per million tokens), with
/// the date they were taken.
pub const PRICES: &str = include_str!("../../config/prices.toml");

/// One thing wrong with a config: where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Compiles `raw`; `env` looks up provider credentials (the process environment in
/// production, a map in tests).
pub fn compile(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Snapshot, Vec<Problem>> {
    let mut p = Problems::default();

    let listen = match raw.server.listen.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => {
            p.add(
                "server.listen",
                format!(
                    "`{}` is not an IP address and port; write e.g. \"127.0.0.1:8080\" or \
                     \"[::]:8080\" (host names are not resolved for listeners)",
                    raw.server.listen
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    };
    let workers = match &raw.server.workers {
        RawWorkers::Word(w) if w == "auto" => {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
        RawWorkers::Count(n) if (1..=1024).contains(n) => *n as usize,
        RawWorkers::Count(n) => {
            p.add(
                "server.workers",
                format!("{n} is out of range; use 1..=1024 or \"auto\" (one per core)"),
            );
            1
        }
        RawWorkers::Word(w) => {
            p.add(
                "server.workers",
                format!("`{w}` is not a count; use a number or \"auto\" (one per core)"),
            );
            1
        }
    };
    let server = Server {
        listen,
        workers,
        driver: raw.server.io,
        pin_workers: raw.server.pin_workers,
        drain_timeout: ms(
            &mut p,
            "server.drain_timeout_ms",
            raw.server.drain_timeout_ms,
        ),
        tls: match (&raw.server.tls_cert, &raw.server.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                match crate::tls::server_config(cert.as_ref(), key.as_ref()) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        p.add("server.tls_cert", e);
                        None
                    }
                }
            }
            (Some(_), None) => {
                p.add(
                    "server.tls_key",
                    "tls_cert needs tls_key (the private key's PEM file)",
                );
                None
            }
            (None, Some(_)) => {
                p.add(
                    "server.tls_cert",
                    "tls_key needs tls_cert (the certificate chain)",
                );
                None
            }
        },
    };
    let limits = limits(&mut p, &raw.limits);
    let audit = audit(&mut p, &raw.audit);
    let ledger = LedgerConfig {
        dir: match raw.ledger.dir.as_str() {
            "off" => None,
            "" => {
                p.add("ledger.dir", "empty; use a directory path or \"off\"");
                None
            }
            d => Some(d.into()),
        },
        compact_bytes: bounded(
            &mut p,
            "ledger.compact_bytes",
            raw.ledger.compact_bytes,
            256,
            1 << 40,
        ),
        sync: ms(&mut p, "ledger.sync_ms", raw.ledger.sync_ms),
    };
    let (table, price_table) = price_table(&mut p, raw);
    let upstream = upstream(&mut p, &raw.upstream);
    let quota_settings = QuotaSettings {
        lease_wait: ms(&mut p, "quotas.lease_wait_ms", raw.quotas.lease_wait_ms),
        default_output_tokens: bounded(
            &mut p,
            "quotas.default_output_tokens",
            raw.quotas.default_output_tokens,
            1,
            10_000_000,
        ),
    };
    let admin = admin(&mut p, &raw.admin);
    let routing = routing(&mut p, &raw.routing);
    let mut quotas: Vec<Quota> = Vec::new();

    // Providers.
    let mut providers = Vec::new();
    let mut provider_index: HashMap<&str, (ProviderId, Option<String>)> = HashMap::new();
    for (i, rp) in raw.providers.iter().enumerate() {
        let path = format!("providers[{i}]");
        if rp.name.is_empty() {
            p.add(format!("{path}.name"), "must not be empty");
        }
        let id = ProviderId(providers.len() as u32);
        let (provider, inactive) = provider(&mut p, &path, rp, env);
        if provider_index.insert(&rp.name, (id, inactive)).is_some() {
            p.add(
                format!("{path}.name"),
                format!(
                    "provider `{}` is defined twice; names must be unique",
                    rp.name
                ),
            );
        }
        providers.push(provider);
    }

    // Models and their deployments.
    let mut models = Vec::new();
    let mut model_index = HashMap::new();
    let mut deployments = Vec::new();
    let mut inactive = Vec::new();
    let mut seen_models = HashMap::new();
    for (i, rm) in raw.models.iter().enumerate() {
        let path = format!("models[{i}]");
        if rm.name.is_empty() {
            p.add(format!("{path}.name"), "must not be empty");
        }
        if let Some(first) = seen_models.insert(rm.name.as_str(), i) {
            p.add(
                format!("{path}.name"),
                format!("model `{}` is already defined at models[{first}]", rm.name),
            );
            continue;
        }
        if rm.deployments.is_empty() {
            p.add(
                format!("{path}.deployments"),
                "a model needs at least one deployment ([[models.deployments]] with a provider)",
            );
        }
        let model_id = ModelId(models.len() as u32);
        let mut ids = Vec::new();
        for (j, rd) in rm.deployments.iter().enumerate() {
            let dpath = format!("{path}.deployments[{j}]");
            let Some((pid, why)) = provider_index.get(rd.provider.as_str()) else {
                let names: Vec<&str> = raw.providers.iter().map(|p| p.name.as_str()).collect();
                p.add(
                    format!("{dpath}.provider"),
                    format!(
                        "no provider named `{}`{}",
                        rd.provider,
                        suggest(&rd.provider, &names)
                    ),
                );
                continue;
            };
            let upstream_model = rd.model.clone().unwrap_or_else(|| rm.name.clone());
            if upstream_model.is_empty() {
                p.add(format!("{dpath}.model"), "must not be empty");
            }
            // Checked for inactive deployments too: a typo should not wait for a credential.
            let priced = price(
                &mut p,
                &format!("{dpath}.price"),
                rd.price.as_ref(),
                &table,
                &[&upstream_model, &rm.name],
            );
            if let Some(why) = why {
                inactive.push(format!("{dpath} ({} via {}): {why}", rm.name, rd.provider));
                continue;
            }
            let Some((price, price_source)) = priced else {
                continue;
            };
            let mut upstream_model_json = Vec::new();
            crate::json::string(&mut upstream_model_json, upstream_model.as_bytes());
            providers[pid.0 as usize].active = true;
            ids.push(DeploymentId(deployments.len() as u32));
            let dquotas = scope_quotas(
                &mut p,
                &dpath,
                &format!("deployment:{}#{j}", rm.name),
                None,
                rd.rpm,
                rd.tpm,
                &mut quotas,
            );
            let weight = rd.weight.unwrap_or(1);
            if weight == 0 && rm.strategy == RawStrategy::Weighted {
                p.add(
                    format!("{dpath}.weight"),
                    "0 would never be chosen; remove the deployment instead",
                );
            }
            if providers[pid.0 as usize].kind == ProviderKind::Gemini
                && !upstream_model
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                p.add(
                    format!("{dpath}.model"),
                    format!(
                        "`{upstream_model}` goes in a Gemini URL path: letters, digits, `.`, `-` \
                         and `_` only"
                    ),
                );
            }
            if rd.default_max_tokens == Some(0) {
                p.add(format!("{dpath}.default_max_tokens"), "must be at least 1");
            }
            deployments.push(Deployment {
                name: format!("{}#{j}", rm.name),
                weight,
                default_max_tokens: rd.default_max_tokens.unwrap_or(4096),
                provider: *pid,
                model: model_id,
                upstream_model_json,
                upstream_model,
                price,
                price_source,
                quotas: dquotas,
            });
        }
        if ids.is_empty() {
            continue;
        }
        model_index.insert(rm.name.as_bytes().into(), model_id);
        models.push(Model {
            name: rm.name.clone(),
            deployments: ids,
            strategy: match rm.strategy {
                RawStrategy::RoundRobin => Strategy::RoundRobin,
                RawStrategy::Weighted => Strategy::Weighted,
                RawStrategy::LeastInflight => Strategy::LeastInflight,
                RawStrategy::Latency => Strategy::Latency,
                RawStrategy::Cost => Strategy::Cost,
            },
            fallbacks: Vec::new(),
            context_fallback: None,
            policy_fallback: None,
            sticky: rm.sticky,
            hedge_after: rm
                .hedge_after_ms
                .map(|v| ms(&mut p, &format!("{path}.hedge_after_ms"), v)),
        });
    }
    // Fallbacks name models, which may come later in the file: resolved once all are known.
    // One whose deployments are all inactive is left out (it could not serve).
    let names: Vec<&str> = raw.models.iter().map(|m| m.name.as_str()).collect();
    for (i, rm) in raw.models.iter().enumerate() {
        let Some(&id) = model_index.get(rm.name.as_bytes()) else {
            continue;
        };
        let mut resolve = |field: String, name: &str| -> Option<ModelId> {
            if name == rm.name {
                p.add(field, "a model cannot fall back to itself");
                return None;
            }
            if !names.contains(&name) {
                p.add(
                    field,
                    format!("no model named `{name}`{}", suggest(name, &names)),
                );
                return None;
            }
            model_index.get(name.as_bytes()).copied()
        };
        let fallbacks: Vec<ModelId> = rm
            .fallbacks
            .iter()
            .enumerate()
            .filter_map(|(j, f)| resolve(format!("models[{i}].fallbacks[{j}]"), f))
            .collect();
        let context = rm
            .context_fallback
            .as_deref()
            .and_then(|f| resolve(format!("models[{i}].context_fallback"), f));
        let policy = rm
            .policy_fallback
            .as_deref()
            .and_then(|f| resolve(format!("models[{i}].policy_fallback"), f));
        let m = &mut models[id.0 as usize];
        m.fallbacks = fallbacks;
        m.context_fallback = context;
        m.policy_fallback = policy;
    }

    // Teams.
    let mut teams: Vec<String> = Vec::new();
    let mut team_quotas: Vec<Vec<QuotaId>> = Vec::new();
    for (i, rt) in raw.teams.iter().enumerate() {
        team_quotas.push(scope_quotas(
            &mut p,
            &format!("teams[{i}]"),
            &format!("team:{}", rt.name),
            rt.budget.as_ref(),
            rt.rpm,
            rt.tpm,
            &mut quotas,
        ));
        if rt.name.is_empty() {
            p.add(format!("teams[{i}].name"), "must not be empty");
        } else if teams.contains(&rt.name) {
            p.add(
                format!("teams[{i}].name"),
                format!("team `{}` is defined twice", rt.name),
            );
        }
        teams.push(rt.name.clone());
    }
    let all_model_names: Vec<&str> = raw.models.iter().map(|m| m.name.as_str()).collect();

    // Keys.
    let mut keys = Vec::new();
    let mut key_index = HashMap::new();
    for (i, rk) in raw.keys.iter().enumerate() {
        let path = format!("keys[{i}]");
        if rk.id.is_empty() {
            p.add(format!("{path}.id"), "must not be empty");
        }
        let Some(hash) = parse_sha256(&rk.sha256) else {
            p.add(
                format!("{path}.sha256"),
                "must be 64 hex digits: the SHA-256 of the key, as printed by \
                 `tollgate hash-key`",
            );
            continue;
        };
        let id = KeyId(keys.len() as u32);
        if key_index.insert(hash, id).is_some() {
            p.add(format!("{path}.sha256"), "the same key hash appears twice");
        }
        let log_content_sha256 = match rk.log_content.as_deref() {
            None | Some("off") => false,
            Some("sha256") => true,
            Some(other) => {
                p.add(
                    format!("{path}.log_content"),
                    format!(
                        "`{other}` is not a log policy; use \"off\" (nothing) or \"sha256\" \
                         (hashes of the prompt and completion)"
                    ),
                );
                false
            }
        };
        if let Some(t) = &rk.team
            && !teams.contains(t)
        {
            let names: Vec<&str> = teams.iter().map(String::as_str).collect();
            p.add(
                format!("{path}.team"),
                format!(
                    "no team named `{t}`{}; define it with [[teams]] name = \"{t}\"",
                    suggest(t, &names)
                ),
            );
        }
        let expires_unix = rk.expires.as_deref().and_then(|e| {
            let t = parse_instant(e);
            if t.is_none() {
                p.add(
                    format!("{path}.expires"),
                    format!("`{e}` is not a date; write \"2027-01-31\" or \"2027-01-31T18:00:00Z\" (UTC)"),
                );
            }
            t
        });
        let allowed = rk.models.as_ref().map(|patterns| {
            for (j, pat) in patterns.iter().enumerate() {
                if !all_model_names.iter().any(|m| glob(pat, m)) {
                    p.add(
                        format!("{path}.models[{j}]"),
                        format!(
                            "`{pat}` matches no configured model{}",
                            suggest(pat, &all_model_names)
                        ),
                    );
                }
            }
            models
                .iter()
                .map(|m| patterns.iter().any(|pat| glob(pat, &m.name)))
                .collect::<Vec<bool>>()
        });
        let models_json = allowed.as_ref().map(|a| {
            let mine: Vec<&Model> = models
                .iter()
                .zip(a)
                .filter(|(_, ok)| **ok)
                .map(|(m, _)| m)
                .collect();
            render_models(&mine)
        });
        let mut tags_json = Vec::new();
        for (k, v) in &rk.tags {
            tags_json.push(b',');
            crate::json::string(&mut tags_json, k.as_bytes());
            tags_json.push(b':');
            crate::json::string(&mut tags_json, v.as_bytes());
        }
        for (field, v) in [
            ("max_tokens", rk.max_tokens),
            ("default_max_tokens", rk.default_max_tokens),
        ] {
            if v == Some(0) {
                p.add(format!("{path}.{field}"), "must be at least 1");
            }
        }
        if let (Some(d), Some(c)) = (rk.default_max_tokens, rk.max_tokens)
            && d > c
        {
            p.add(
                format!("{path}.default_max_tokens"),
                format!("{d} is above the key's max_tokens ceiling of {c}"),
            );
        }
        let mut kquotas = scope_quotas(
            &mut p,
            &path,
            &format!("key:{}", rk.id),
            rk.budget.as_ref(),
            rk.rpm,
            rk.tpm,
            &mut quotas,
        );
        if let Some(t) = rk
            .team
            .as_ref()
            .and_then(|t| teams.iter().position(|x| x == t))
        {
            kquotas.extend_from_slice(&team_quotas[t]);
        }
        let cut_stream_at_cap = rk.cut_stream_at_cap.unwrap_or(false);
        if cut_stream_at_cap && !kquotas.iter().any(|q| quotas[q.0 as usize].is_budget()) {
            p.add(
                format!("{path}.cut_stream_at_cap"),
                "there is no cap to cut at: give the key (or its team) a budget",
            );
        }
        keys.push(Key {
            quotas: kquotas,
            cut_stream_at_cap,
            id: rk.id.clone(),
            team: rk.team.clone(),
            log_content_sha256,
            enabled: rk.enabled.unwrap_or(true),
            expires_unix,
            models: allowed,
            models_json,
            tags_json,
            max_tokens: rk.max_tokens,
            default_max_tokens: rk.default_max_tokens,
        });
    }

    if !p.0.is_empty() {
        return Err(p.0);
    }
    let models_json = render_models(&models.iter().collect::<Vec<_>>());
    Ok(Snapshot {
        generation: 0,
        server,
        limits,
        upstream,
        providers,
        deployments,
        models,
        model_index,
        keys,
        key_index,
        teams,
        models_json,
        inactive,
        audit,
        ledger,
        quotas,
        quota_settings,
        routing,
        admin,
        price_table,
    })
}

/// Compiles one scope's budget and rate limits into `quotas`; returns their ids.
fn scope_quotas(
    p: &mut Problems,
    path: &str,
    scope: &str,
    budget: Option<&RawBudget>,
    rpm: Option<u64>,
    tpm: Option<u64>,
    quotas: &mut Vec<Quota>,
) -> Vec<QuotaId> {
    let mut ids = Vec::new();
    let mut add = |unit, window, cap, warn, what: &str| {
        ids.push(QuotaId(quotas.len() as u32));
        quotas.push(Quota {
            name: format!("{scope}/{what}"),
            scope: scope.to_owned(),
            unit,
            window,
            cap,
            warn,
        });
    };
    if let Some(b) = budget {
        let period = match b.period.as_deref().unwrap_or("monthly") {
            "daily" => Period::Daily,
            "weekly" => Period::Weekly,
            "monthly" => Period::Monthly {
                reset_day: b.reset_day.unwrap_or(1),
            },
            "total" => Period::Total,
            other => {
                p.add(
                    format!("{path}.budget.period"),
                    format!(
                        "`{other}` is not a period; use \"daily\", \"weekly\", \"monthly\" or \
                         \"total\""
                    ),
                );
                Period::Total
            }
        };
        if let Some(d) = b.reset_day
            && !(1..=28).contains(&d)
        {
            p.add(
                format!("{path}.budget.reset_day"),
                format!("{d} is out of range; use 1..=28 (every month has those days)"),
            );
        }
        if b.reset_day.is_some() && !matches!(period, Period::Monthly { .. }) {
            p.add(
                format!("{path}.budget.reset_day"),
                "only a monthly period has a reset day",
            );
        }
        let warn_at = b.warn_at.unwrap_or(0.8);
        if !(warn_at.is_finite() && (0.0..=1.0).contains(&warn_at)) {
            p.add(
                format!("{path}.budget.warn_at"),
                format!("{warn_at} is not a fraction of the cap; use 0.0 to 1.0"),
            );
        }
        let warn = |cap: u64| Some((cap as f64 * warn_at.clamp(0.0, 1.0)) as u64);
        if b.usd.is_none() && b.tokens.is_none() {
            p.add(
                format!("{path}.budget"),
                "a budget needs a cap: usd = 25.0 and/or tokens = 1000000",
            );
        }
        if let Some(v) = b.usd {
            let cap = budget_usd(p, &format!("{path}.budget.usd"), v);
            add(
                Unit::MicroUsd,
                Window::Period(period),
                cap,
                warn(cap),
                "usd",
            );
        }
        if let Some(cap) = b.tokens {
            add(
                Unit::Tokens,
                Window::Period(period),
                cap,
                warn(cap),
                "tokens",
            );
        }
    }
    for (what, unit, v) in [("rpm", Unit::Requests, rpm), ("tpm", Unit::Tokens, tpm)] {
        if let Some(cap) = v {
            if cap == 0 {
                p.add(
                    format!("{path}.{what}"),
                    "must be at least 1 (leave it out for no limit)",
                );
            }
            add(unit, Window::Minute, cap.max(1), None, what);
        }
    }
    ids
}

fn admin(p: &mut Problems, r: &RawAdmin) -> Admin {
    let Some(hex) = &r.key_sha256 else {
        return Admin {
            listen: None,
            key_sha256: [0; 32],
        };
    };
    let key_sha256 = parse_sha256(hex).unwrap_or_else(|| {
        p.add(
            "admin.key_sha256",
            "must be 64 hex digits: the SHA-256 of the admin key (`tollgate hash-key`)",
        );
        [0; 32]
    });
    let listen = r.listen.parse::<SocketAddr>().unwrap_or_else(|_| {
        p.add(
            "admin.listen",
            format!("`{}` is not an IP address and port", r.listen),
        );
        SocketAddr::from(([127, 0, 0, 1], 0))
    });
    Admin {
        listen: Some(listen),
        key_sha256,
    }
}

fn audit(p: &mut Problems, r: &RawAudit) -> Audit {
    let output = match r.output.as_str() {
        "off" => AuditOutput::Off,
        "stdout" => AuditOutput::Stdout,
        "" => {
            p.add(
                "audit.output",
                "empty; use \"stdout\", \"off\" or a file path",
            );
            AuditOutput::Off
        }
        path => AuditOutput::File(path.into()),
    };
    Audit {
        output,
        max_file_bytes: bounded(p, "audit.max_file_bytes", r.max_file_bytes, 4096, 1 << 40),
        max_files: bounded(p, "audit.max_files", r.max_files, 1, 1000) as u32,
        queue_records: bounded(p, "audit.queue_records", r.queue_records, 16, 1 << 24) as usize,
    }
}

/// The bundled table with the config's `[prices]` entries over it, in µ$ per million tokens;
/// and a one-line description of the bundled table.
fn price_table(p: &mut Problems, raw: &RawConfig) -> (HashMap<String, Price>, String) {
    let mut table = HashMap::new();
    let meta = match toml::from_str::<RawPriceTable>(PRICES) {
        Ok(t) => {
            for (name, rp) in &t.models {
                if let Some(price) = micros(p, &format!("(bundled prices) {name}"), rp) {
                    table.insert(name.clone(), price);
                }
            }
            format!(
                "v{}, taken {} from {}",
                t.table.version, t.table.taken, t.table.source
            )
        }
        Err(e) => {
            p.add("(bundled prices)", e.to_string());
            String::new()
        }
    };
    for (name, rp) in &raw.prices {
        if let Some(price) = micros(p, &format!("prices.{name}"), rp) {
            table.insert(name.clone(), price);
        }
    }
    (table, meta)
}

/// USD per million tokens → µ$ per million tokens.
fn usd(p: &mut Problems, path: &str, v: f64) -> u64 {
    if !(v.is_finite() && (0.0..=1_000_000.0).contains(&v)) {
        p.add(
            path,
            format!("{v} is not a price; use USD per million tokens, 0 to 1000000"),
        );
        return 0;
    }
    (v * 1_000_000.0).round() as u64
}

/// The largest budget accepted, in USD: micro-dollar amounts stay far inside an `i64`.
const MAX_BUDGET_USD: f64 = 1e12;

/// A budget cap in USD → µ$.
fn budget_usd(p: &mut Problems, path: &str, v: f64) -> u64 {
    if !(v.is_finite() && (0.0..=MAX_BUDGET_USD).contains(&v)) {
        p.add(
            path,
            format!("{v} is not a budget; use an amount in USD from 0 to {MAX_BUDGET_USD:e}"),
        );
        return 0;
    }
    (v * 1_000_000.0).round() as u64
}

fn micros(p: &mut Problems, path: &str, r: &RawPrice) -> Option<Price> {
    let before = p.0.len();
    let input = usd(p, &format!("{path}.input"), r.input);
    let price = Price {
        input,
        output: usd(p, &format!("{path}.output"), r.output),
        cache_read: r
            .cached_input
            .map_or(input, |v| usd(p, &format!("{path}.cached_input"), v)),
        cache_write: r
            .cache_write
            .map_or(input, |v| usd(p, &format!("{path}.cache_write"), v)),
    };
    (p.0.len() == before).then_some(price)
}

/// A deployment's price: explicit, from a named table entry (with overrides), or looked up by
/// the `names` it goes by (upstream model, then public name). No price is an error: a budget
/// can only hold if every call costs something known.
fn price(
    p: &mut Problems,
    path: &str,
    raw: Option<&RawDeploymentPrice>,
    table: &HashMap<String, Price>,
    names: &[&str],
) -> Option<(Price, String)> {
    let lookup = |p: &mut Problems, name: &str, at: &str| -> Option<Price> {
        let found = table.get(name).copied();
        if found.is_none() {
            let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
            known.sort_unstable();
            p.add(
                at,
                format!(
                    "no price-table entry `{name}`{}; add `[prices.\"{name}\"]` with input and \
                     output (USD per million tokens), or write the prices here",
                    suggest(name, &known)
                ),
            );
        }
        found
    };
    match raw {
        Some(RawDeploymentPrice::Name(n)) if n == "free" => Some((Price::default(), "free".into())),
        Some(RawDeploymentPrice::Name(n)) => {
            lookup(p, n, path).map(|pr| (pr, format!("price of {n}")))
        }
        Some(RawDeploymentPrice::Fields(f)) => {
            let (base, source) = match &f.from {
                Some(n) => (
                    lookup(p, n, &format!("{path}.from"))?,
                    format!("price of {n}, overridden"),
                ),
                None if f.input.is_some() && f.output.is_some() => {
                    (Price::default(), "configured price".to_string())
                }
                None => match names.iter().find_map(|n| table.get(*n).map(|pr| (*pr, *n))) {
                    Some((pr, n)) => (pr, format!("price of {n}, overridden")),
                    None => {
                        p.add(
                            path,
                            "set both input and output (USD per million tokens), or `from` = a \
                             price-table entry",
                        );
                        return None;
                    }
                },
            };
            let before = p.0.len();
            let input = f
                .input
                .map_or(base.input, |v| usd(p, &format!("{path}.input"), v));
            // A price written out in full: unset cache prices follow its input price.
            let explicit_input = f.from.is_none() && f.input.is_some() && f.output.is_some();
            let price = Price {
                input,
                output: f
                    .output
                    .map_or(base.output, |v| usd(p, &format!("{path}.output"), v)),
                cache_read: f.cached_input.map_or(
                    if explicit_input {
                        input
                    } else {
                        base.cache_read
                    },
                    |v| usd(p, &format!("{path}.cached_input"), v),
                ),
                cache_write: f.cache_write.map_or(
                    if explicit_input {
                        input
                    } else {
                        base.cache_write
                    },
                    |v| usd(p, &format!("{path}.cache_write"), v),
                ),
            };
            (p.0.len() == before).then_some((price, source))
        }
        None => {
            if let Some((pr, n)) = names.iter().find_map(|n| table.get(*n).map(|pr| (*pr, *n))) {
                return Some((pr, format!("price of {n}")));
            }
            p.add(
                path,
                format!(
                    "no price known for `{}`: add `price = \"<price-table entry>\"`, \
                     `price = {{ input = …, output = … }}` (USD per million tokens) or \
                     `price = \"free\"`",
                    names[0]
                ),
            );
            None
        }
    }
}

fn ms(p: &mut Problems, path: &str, v: u64) -> Duration {
    if v == 0 {
        p.add(path, "must be greater than 0 (milliseconds)");
    }
    Duration::from_millis(v)
}

fn bounded(p: &mut Problems, path: &str, v: u64, lo: u64, hi: u64) -> u64 {
    if !(lo..=hi).contains(&v) {
        p.add(path, format!("{v} is out of range; use {lo}..={hi}"));
        return lo;
    }
    v
}

fn limits(p: &mut Problems, r: &RawLimits) -> DownstreamLimits {
    let max_head_bytes = bounded(p, "limits.max_head_bytes", r.max_head_bytes, 1024, 1 << 20);
    let max_headers = bounded(
        p,
        "limits.max_headers",
        r.max_headers,
        8,
        http1::MAX_HEADERS_HARD as u64,
    );
    DownstreamLimits {
        head: http1::Limits {
            max_head_bytes: max_head_bytes as usize,
            max_headers: max_headers as usize,
        },
        max_body_bytes: bounded(p, "limits.max_body_bytes", r.max_body_bytes, 1, 1 << 30),
        header_timeout: ms(p, "limits.header_timeout_ms", r.header_timeout_ms),
        body_timeout: ms(p, "limits.body_timeout_ms", r.body_timeout_ms),
        idle_timeout: ms(p, "limits.idle_timeout_ms", r.idle_timeout_ms),
        max_connections: bounded(p, "limits.max_connections", r.max_connections, 1, 1 << 24)
            as usize,
    }
}

fn routing(p: &mut Problems, r: &RawRouting) -> Routing {
    let ratio = |p: &mut Problems, path: &str, v: f64| {
        if !(0.0..=1.0).contains(&v) {
            p.add(path, format!("{v} is out of range; use 0.0..=1.0"));
        }
        v.clamp(0.0, 1.0)
    };
    Routing {
        max_attempts: bounded(p, "routing.max_attempts", r.max_attempts, 1, 10) as u32,
        backoff: ms(p, "routing.backoff_ms", r.backoff_ms),
        backoff_max: ms(p, "routing.backoff_max_ms", r.backoff_max_ms),
        retry_budget: ratio(p, "routing.retry_budget", r.retry_budget),
        retry_budget_min: bounded(
            p,
            "routing.retry_budget_min",
            r.retry_budget_min,
            0,
            1 << 20,
        ) as u32,
        breaker_failures: bounded(
            p,
            "routing.breaker_failures",
            r.breaker_failures,
            1,
            1 << 20,
        ) as u32,
        breaker_error_rate: ratio(p, "routing.breaker_error_rate", r.breaker_error_rate),
        breaker_window: bounded(p, "routing.breaker_window", r.breaker_window, 1, 64) as u32,
        cooldown: ms(p, "routing.cooldown_ms", r.cooldown_ms),
    }
}

fn upstream(p: &mut Problems, r: &RawUpstream) -> UpstreamTimeouts {
    UpstreamTimeouts {
        connect: ms(p, "upstream.connect_timeout_ms", r.connect_timeout_ms),
        head: ms(p, "upstream.head_timeout_ms", r.head_timeout_ms),
        ttft: ms(p, "upstream.ttft_timeout_ms", r.ttft_timeout_ms),
        body_idle: ms(p, "upstream.body_idle_timeout_ms", r.body_idle_timeout_ms),
        total: ms(p, "upstream.total_timeout_ms", r.total_timeout_ms),
        pool_idle: ms(p, "upstream.pool_idle_timeout_ms", r.pool_idle_timeout_ms),
        pool_max_idle: bounded(p, "upstream.pool_max_idle", r.pool_max_idle, 0, 1 << 16) as usize,
        dns_refresh: ms(p, "upstream.dns_refresh_ms", r.dns_refresh_ms),
    }
}

/// Compiles one provider; the second value says why it is inactive, if it is.
fn provider(
    p: &mut Problems,
    path: &str,
    r: &RawProvider,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Provider, Option<String>) {
    let mut out = Provider {
        name: r.name.clone(),
        kind: ProviderKind::Mock,
        endpoint: None,
        credential: None,
        active: false,
        compatible: r.kind == "openai_compatible",
        query: String::new(),
        tls: None,
    };
    match r.kind.as_str() {
        "mock" => {
            for (field, set) in [
                ("base_url", r.base_url.is_some()),
                ("api_key_env", r.api_key_env.is_some()),
                ("auth", r.auth.is_some()),
                ("ca_file", r.ca_file.is_some()),
                ("api_version", r.api_version.is_some()),
            ] {
                if set {
                    p.add(
                        format!("{path}.{field}"),
                        "a `mock` provider is served inside the gateway; remove this key",
                    );
                }
            }
            return (out, None);
        }
        "openai" | "openai_compatible" => out.kind = ProviderKind::OpenAi,
        "anthropic" => out.kind = ProviderKind::Anthropic,
        "gemini" => out.kind = ProviderKind::Gemini,
        other => {
            p.add(
                format!("{path}.kind"),
                format!(
                    "unknown provider kind `{other}`; expected `mock`, `openai`, \
                     `openai_compatible`, `anthropic` or `gemini`{}",
                    suggest(
                        other,
                        &["mock", "openai", "openai_compatible", "anthropic", "gemini"]
                    )
                ),
            );
            return (out, None);
        }
    }
    let default_url = match r.kind.as_str() {
        "openai" => Some("https://api.openai.com/v1"),
        "anthropic" => Some("https://api.anthropic.com/v1"),
        "gemini" => Some("https://generativelanguage.googleapis.com/v1beta"),
        _ => None,
    };
    if let Some(v) = &r.api_version {
        if out.kind != ProviderKind::OpenAi {
            p.add(
                format!("{path}.api_version"),
                "only OpenAI-dialect providers (Azure OpenAI) take an api-version",
            );
        } else if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            p.add(
                format!("{path}.api_version"),
                "letters, digits, `-`, `.` and `_` only (e.g. \"2024-10-21\")",
            );
        } else {
            out.query = format!("?api-version={v}");
        }
    }
    let Some(url) = r.base_url.as_deref().or(default_url) else {
        p.add(
            format!("{path}.base_url"),
            "required for `openai_compatible` (e.g. \"http://127.0.0.1:8000/v1\")",
        );
        return (out, None);
    };
    match parse_base_url(url) {
        Ok(e) => out.endpoint = Some(e),
        Err(why) => {
            p.add(format!("{path}.base_url"), why);
            return (out, None);
        }
    }
    let default_auth = match out.kind {
        ProviderKind::Anthropic => "x_api_key",
        ProviderKind::Gemini => "x_goog_api_key",
        _ => "bearer",
    };
    let header = match r.auth.as_deref().unwrap_or(default_auth) {
        "bearer" => "authorization: Bearer ",
        "api_key" => "api-key: ",
        "x_api_key" => "x-api-key: ",
        "x_goog_api_key" => "x-goog-api-key: ",
        other => {
            p.add(
                format!("{path}.auth"),
                format!(
                    "unknown auth scheme `{other}`; expected bearer, api_key, x_api_key or \
                     x_goog_api_key"
                ),
            );
            return (out, None);
        }
    };
    let mut inactive = None;
    if let Some(var) = &r.api_key_env {
        match env(var) {
            Some(v) if !v.is_empty() => {
                if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                    p.add(
                        format!("{path}.api_key_env"),
                        format!("${var} contains a line break or NUL; it cannot go in a header"),
                    );
                }
                let mut line = header.as_bytes().to_vec();
                line.extend_from_slice(v.trim().as_bytes());
                line.extend_from_slice(b"\r\n");
                out.credential = Some(line);
            }
            _ => inactive = Some(format!("${var} is not set")),
        }
    }
    let tls = out.endpoint.as_ref().is_some_and(|e| e.tls);
    if let Some(f) = &r.ca_file
        && !tls
    {
        p.add(
            format!("{path}.ca_file"),
            format!("`{f}` would not be used: {url} is not https"),
        );
    }
    if tls {
        let extra = match &r.ca_file {
            None => Ok(None),
            Some(f) => std::fs::read(f)
                .map(Some)
                .map_err(|e| format!("cannot read `{f}`: {e}")),
        };
        let built = extra.and_then(|pem| {
            crate::tls::client_config(pem.as_deref())
                .map(|c| (c, crate::tls::profile(pem.as_deref())))
                .map_err(|e| match &r.ca_file {
                    Some(f) => format!("`{f}` {e}"),
                    None => e,
                })
        });
        match built {
            Ok(t) => out.tls = Some(t),
            Err(e) => p.add(format!("{path}.ca_file"), e),
        }
    }
    (out, inactive)
}

/// `http[s]://host[:port][/path]` → [`Endpoint`].
pub fn parse_base_url(url: &str) -> Result<Endpoint, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(format!("`{url}` must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some(end) = v6.find(']') else {
            return Err(format!("`{url}`: unclosed `[` in the host"));
        };
        let port = match &v6[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("`{url}`: bad port"))?,
        };
        (v6[..end].to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("`{url}`: bad port `{p}`"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'@') {
        return Err(format!("`{url}`: missing or invalid host"));
    }
    if path.contains(['?', '#', ' ']) {
        return Err(format!("`{url}`: a base URL has no query or fragment"));
    }
    Ok(Endpoint {
        host,
        port,
        tls,
        authority: authority.to_string(),
        base_path: path.trim_end_matches('/').to_string(),
    })
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let nib = |c: u8| (c as char).to_digit(16);
        out[i] = (nib(pair[0])? * 16 + nib(pair[1])?) as u8;
    }
    Some(out)
}

/// `", did you mean `x`?"` when a known name is close to `got`.
pub fn suggest(got: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(got, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut tail) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let (last, middle) = parts.split_last().unwrap_or((&"", &[]));
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.len() >= last.len() && tail.ends_with(last)
}

/// `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ` → seconds since the Unix epoch.
fn parse_instant(s: &str) -> Option<u64> {
    let num = |r: &str| -> Option<u32> {
        (!r.is_empty() && r.bytes().all(|b| b.is_ascii_digit())).then(|| r.parse().ok())?
    };
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) || y < 1970 {
        return None;
    }
    let secs = match time {
        None => 0,
        Some(t) => {
            let mut t = t.split(':');
            let (h, mi, se) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
            if t.next().is_some() || h > 23 || mi > 59 || se > 60 {
                return None;
            }
            u64::from(h * 3600 + mi * 60 + se)
        }
    };
    let days = crate::calendar::days_from_civil(i64::from(y), m, day);
    u64::try_from(days).ok().map(|d| d * 86_400 + secs)
}

fn render_models(models: &[&Model]) -> Vec<u8> {
    let mut out = b"{\"object\":\"list\",\"data\":[".to_vec();
    for (i, m) in models.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        crate::json::string(&mut out, m.name.as_bytes());
        out.extend_from_slice(b",\"object\":\"model\",\"created\":0,\"owned_by\":\"tollgate\"}");
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let e = parse_base_url("http://127.0.0.1:8000/v1/").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 8000, false));
        assert_eq!(e.base_path, "/v1");
        let e = parse_base_url("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (e.port, e.tls, e.authority.as_str()),
            (443, true, "api.openai.com")
        );
        let e = parse_base_url("http://[::1]:9/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("::1", 9, "")
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("http://:80").is_err());
        assert!(parse_base_url("http://h:x").is_err());
    }

    #[test]
    fn sha256_hex() {
        assert!(parse_sha256(&"ab".repeat(32)).is_some());
        assert!(parse_sha256(&"zz".repeat(32)).is_none());
        assert!(parse_sha256("ab").is_none());
    }

    #[test]
    fn globs() {
        assert!(glob("*", "gpt-4o"));
        assert!(glob("gpt-4o*", "gpt-4o-mini"));
        assert!(glob("gpt-4o*", "gpt-4o"));
        assert!(!glob("gpt-4o*", "gpt-4.1"));
        assert!(glob("*-mini", "gpt-4o-mini"));
        assert!(glob("claude-*-4-5", "claude-sonnet-4-5"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("exact", "exact") && !glob("exact", "exactly"));
    }

    #[test]
    fn instants() {
        assert_eq!(parse_instant("1970-01-01"), Some(0));
        assert_eq!(parse_instant("2000-03-01"), Some(951_868_800));
        assert_eq!(parse_instant("2026-11-18T11:06:40Z"), Some(1_795_000_000));
        for bad in [
            "2026-13-01",
            "2026-1-1x",
            "tomorrow",
            "2026-11-18T11:06:40",
            "",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("wieght", &["weight", "model"]),
            ", did you mean `weight`?"
        );
        assert_eq!(suggest("zzzzzz", &["weight", "model"]), "");
    }
}
