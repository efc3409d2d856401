//! Raw config → [`Snapshot`]: every rule checked, every problem reported with the key path it
//! concerns and how to fix it (all of them at once, not just the first).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::money::{ScopeLimits, price, price_table, scope_quotas};
use super::provider::provider;
use super::raw::{
    RawApi, RawAudit, RawConfig, RawLimits, RawRouting, RawStrategy, RawUpstream, RawWorkers,
};
use super::snapshot::*;
use crate::dialect::Dialect;
use crate::http1;

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
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
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
    let ledger = super::operator::ledger(&mut p, &raw.ledger);
    let table = price_table(&mut p, raw);
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
    let (admin, tracing, cluster) = super::operator::operator(&mut p, raw, env);
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
                ScopeLimits {
                    budget: None,
                    rpm: rd.rpm,
                    tpm: rd.tpm,
                },
                &mut quotas,
            );
            let weight = rd.weight.unwrap_or(1);
            if weight == 0 && rm.strategy == RawStrategy::Weighted {
                p.add(
                    format!("{dpath}.weight"),
                    "0 would never be chosen; remove the deployment instead",
                );
            }
            if matches!(
                providers[pid.0 as usize].kind,
                ProviderKind::Gemini | ProviderKind::Vertex
            ) && !upstream_model
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@'))
            {
                p.add(
                    format!("{dpath}.model"),
                    format!(
                        "`{upstream_model}` goes in a URL path: letters, digits, `.`, `-`, `_` \
                         and `@` only"
                    ),
                );
            }
            let kind = providers[pid.0 as usize].kind;
            let dialect = match rd.api {
                Some(RawApi::Responses) if kind == ProviderKind::OpenAi => Some(Dialect::Responses),
                Some(RawApi::Responses) => {
                    p.add(
                        format!("{dpath}.api"),
                        "`responses` needs an `openai` provider",
                    );
                    kind.dialect()
                }
                // Vertex serves Anthropic's models in Anthropic's dialect, the rest in Gemini's.
                _ if kind == ProviderKind::Vertex && upstream_model.starts_with("claude") => {
                    Some(Dialect::Anthropic)
                }
                _ => kind.dialect(),
            };
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
                dialect,
                both_openai_apis: kind == ProviderKind::OpenAi && rd.api.is_none(),
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
            cache: None,
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
        let by_name = |n: &str| model_index.get(n.as_bytes()).copied();
        let cache = rm
            .cache
            .as_ref()
            .map(|c| super::cache::policy(&mut p, &format!("models[{i}].cache"), c, &by_name));
        if cache.as_ref().is_some_and(|c| c.semantic.is_some()) && raw.server.tls_cert.is_some() {
            // The embedding is asked of the gateway itself, over a plaintext loopback call.
            let why = "needs a plaintext listener (the embedding is asked of this gateway)";
            p.add(format!("models[{i}].cache.semantic"), why);
        }
        let m = &mut models[id.0 as usize];
        m.cache = cache;
        m.fallbacks = fallbacks;
        m.context_fallback = context;
        m.policy_fallback = policy;
    }

    // Guardrails.
    let rule_sets = super::guardrails::rules(&mut p, &raw.guardrails);
    let mut guards = super::guardrails::Guards::default();

    // Teams.
    let mut teams: Vec<String> = Vec::new();
    let mut team_quotas: Vec<Vec<QuotaId>> = Vec::new();
    let mut team_cache = Vec::new();
    for (i, rt) in raw.teams.iter().enumerate() {
        if let Some(list) = &rt.guardrails {
            let at = format!("teams[{i}]");
            super::guardrails::Guards::check_team(&mut p, &at, &raw.guardrails, list);
        }
        let at = format!("teams[{i}].cache");
        team_cache.push(
            rt.cache
                .as_ref()
                .map(|c| super::cache::override_of(&mut p, &at, c)),
        );
        team_quotas.push(scope_quotas(
            &mut p,
            &format!("teams[{i}]"),
            &format!("team:{}", rt.name),
            ScopeLimits {
                budget: rt.budget.as_ref(),
                rpm: rt.rpm,
                tpm: rt.tpm,
            },
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
            ModelLists::render(&mine)
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
            ScopeLimits {
                budget: rk.budget.as_ref(),
                rpm: rk.rpm,
                tpm: rk.tpm,
            },
            &mut quotas,
        );
        let team = rk
            .team
            .as_ref()
            .and_then(|t| teams.iter().position(|x| x == t));
        if let Some(t) = team {
            kquotas.extend_from_slice(&team_quotas[t]);
        }
        let own = rk
            .cache
            .as_ref()
            .map(|c| super::cache::override_of(&mut p, &format!("{path}.cache"), c));
        let cache = super::cache::layered(own, team.and_then(|t| team_cache[t].as_ref()));
        let team_rules = rk
            .team
            .as_ref()
            .and_then(|t| raw.teams.iter().find(|x| &x.name == t))
            .and_then(|t| t.guardrails.as_deref());
        let guard = guards.for_lists(
            &mut p,
            (&raw.guardrails, &rule_sets),
            team_rules,
            (&path, rk.guardrails.as_deref()),
        );
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
            cache,
            guard,
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
    let models_json = ModelLists::render(&models.iter().collect::<Vec<_>>());
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
        tracing,
        cluster,
        price_table: table.describe.clone(),
    })
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

pub(super) fn ms(p: &mut Problems, path: &str, v: u64) -> Duration {
    if v == 0 {
        p.add(path, "must be greater than 0 (milliseconds)");
    }
    Duration::from_millis(v)
}

pub(super) fn bounded(p: &mut Problems, path: &str, v: u64, lo: u64, hi: u64) -> u64 {
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
        max_response_bytes: bounded(
            p,
            "upstream.max_response_bytes",
            r.max_response_bytes,
            1024,
            1 << 40,
        ),
    }
}

pub(super) fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
