//! The config file as written: serde types that mirror the TOML, every table with
//! `deny_unknown_fields`, every optional key with its documented default. Nothing here is
//! interpreted — [`super::validate`] turns it into a [`super::Snapshot`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Driver;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    #[serde(default)]
    pub teams: Vec<RawTeam>,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub ledger: RawLedger,
    #[serde(default)]
    pub quotas: RawQuotas,
    #[serde(default)]
    pub admin: RawAdmin,
    #[serde(default)]
    pub tracing: RawTracing,
    /// Several instances sharing budgets, limits and health through Redis.
    #[serde(default)]
    pub cluster: super::cluster::RawCluster,
    #[serde(default)]
    pub routing: RawRouting,
    /// A price file over the bundled `config/prices.toml`.
    #[serde(default)]
    pub price_table: RawPriceFile,
    /// Price table entries added to (or replacing those of) the bundled table and the file.
    #[serde(default)]
    pub prices: BTreeMap<String, RawPrice>,
    /// Guardrail rule sets (`config/guardrails.rs`), applied to the keys and teams that name
    /// them.
    #[serde(default)]
    pub guardrails: Vec<super::guardrails::RawGuardrail>,
}

/// `[price_table] file = "…"`: LiteLLM's price map (`.json`) or a TOML table shaped like
/// `config/prices.toml`, whose entries go over the bundled ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriceFile {
    pub file: Option<String>,
}

/// `workers = "auto"` or a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawWorkers {
    Count(u64),
    Word(String),
}

impl Default for RawWorkers {
    fn default() -> Self {
        RawWorkers::Word("auto".into())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub workers: RawWorkers,
    /// `auto` (io_uring, epoll where unavailable), `io_uring` or `epoll`.
    pub io: Driver,
    /// Pin worker i to core i (mod the cores this process may use).
    pub pin_workers: bool,
    /// How long SIGTERM waits for in-flight requests and streams.
    pub drain_timeout_ms: u64,
    /// TLS for clients: PEM certificate chain and private key (both, or neither). Re-read on
    /// every reload (SIGHUP), so renewed certificates take effect without a restart.
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            workers: RawWorkers::default(),
            io: Driver::Auto,
            pin_workers: true,
            drain_timeout_ms: 30_000,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Downstream (client-side) limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub max_head_bytes: u64,
    pub max_headers: u64,
    pub max_body_bytes: u64,
    /// From the first byte of a request head to its end (slowloris).
    pub header_timeout_ms: u64,
    /// From the end of the head to the end of the body.
    pub body_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this long.
    pub idle_timeout_ms: u64,
    /// Open client connections per worker; more are answered 503 and closed.
    pub max_connections: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_head_bytes: crate::http1::MAX_HEAD_BYTES as u64,
            max_headers: crate::http1::MAX_HEADERS as u64,
            max_body_bytes: 8 * 1024 * 1024,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 16_384,
        }
    }
}

/// Upstream (provider-side) timeouts and pools.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    pub connect_timeout_ms: u64,
    /// From the request written to the response head read.
    pub head_timeout_ms: u64,
    /// Longest silence between two reads of a response body.
    pub body_idle_timeout_ms: u64,
    /// From the request written to the first response body byte (the first token of a
    /// stream): past it, before anything reached the client, the gateway fails over.
    pub ttft_timeout_ms: u64,
    /// Whole exchange, head and body.
    pub total_timeout_ms: u64,
    /// An idle pooled connection older than this is closed, not reused.
    pub pool_idle_timeout_ms: u64,
    /// Idle connections kept per upstream per worker.
    pub pool_max_idle: u64,
    /// How often the coordinator re-resolves upstream host names.
    pub dns_refresh_ms: u64,
    /// The most body bytes one provider response may carry (decoded); past it the answer is
    /// cut with an error (a 502 before anything reached the client, else an error event).
    pub max_response_bytes: u64,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            connect_timeout_ms: 3_000,
            head_timeout_ms: 120_000,
            body_idle_timeout_ms: 120_000,
            ttft_timeout_ms: 120_000,
            total_timeout_ms: 600_000,
            pool_idle_timeout_ms: 60_000,
            pool_max_idle: 256,
            dns_refresh_ms: 30_000,
            max_response_bytes: 64 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    /// `mock`, `openai`, `openai_compatible`, `anthropic` or `gemini`.
    pub kind: String,
    pub base_url: Option<String>,
    /// Environment variable holding the provider credential. A provider whose variable is
    /// unset is inactive: its deployments are skipped, not errors.
    pub api_key_env: Option<String>,
    /// How the credential is sent: `bearer` (Authorization: Bearer), `api_key` (api-key:),
    /// `x_api_key` (x-api-key:). Default `bearer`.
    pub auth: Option<String>,
    /// PEM file of CA certificates trusted for this provider, besides the bundled web PKI
    /// roots (a private deployment's own CA).
    pub ca_file: Option<String>,
    /// Azure OpenAI: the `api-version` query parameter sent with every request.
    pub api_version: Option<String>,
    /// Bedrock: the AWS region (`us-east-1`); Vertex AI: the location (`us-east5`,
    /// `global`). The default base URL is the region's endpoint.
    pub region: Option<String>,
    /// Vertex AI: the Google Cloud project id.
    pub project: Option<String>,
    /// Vertex AI: the service account's JSON key file; access tokens are minted from it and
    /// refreshed before they expire.
    pub service_account_file: Option<String>,
    /// Bedrock, signing with SigV4: the variables holding the access key id, the secret and
    /// (optional) the session token. Defaults: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`. With `api_key_env` set instead, a Bedrock API key is sent as a
    /// bearer token.
    pub aws_access_key_env: Option<String>,
    pub aws_secret_key_env: Option<String>,
    pub aws_session_token_env: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// The public name clients send as `model`.
    pub name: String,
    pub deployments: Vec<RawDeployment>,
    /// How a deployment is chosen (default `round_robin`).
    #[serde(default)]
    pub strategy: RawStrategy,
    /// Other public models to try, in order, when every deployment of this one failed.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// The model to try when a provider says the prompt is too long for this one.
    pub context_fallback: Option<String>,
    /// The model to try when a provider refuses the request on content policy.
    pub policy_fallback: Option<String>,
    /// Requests carrying a session (`x-tollgate-session`, or the body's `prompt_cache_key` or
    /// `user`) go to the same deployment while it is healthy.
    #[serde(default)]
    pub sticky: bool,
    /// Hedging: when a deployment has sent no first byte this long after the request, the
    /// same request goes to the next deployment too, and the first to answer wins.
    pub hedge_after_ms: Option<u64>,
    /// Response caching (`config/cache.rs`); off unless set.
    pub cache: Option<super::cache::RawCache>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawStrategy {
    #[default]
    RoundRobin,
    Weighted,
    LeastInflight,
    Latency,
    Cost,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeployment {
    pub provider: String,
    /// The model name the provider expects; defaults to the public name.
    pub model: Option<String>,
    /// What calls cost. Default: the price table's entry for `model`, else for the public name.
    pub price: Option<RawDeploymentPrice>,
    /// Requests per minute this deployment may receive (a provider account's quota).
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute this deployment may receive.
    pub tpm: Option<u64>,
    /// Share of the model's traffic under the `weighted` strategy (default 1).
    pub weight: Option<u32>,
    /// Output tokens asked for when a request translated for Anthropic names none and its
    /// key has no `default_max_tokens` (Anthropic requires a number). Default 4096.
    pub default_max_tokens: Option<u32>,
    /// Which of an OpenAI provider's APIs serves this deployment: by default both (each
    /// client's call goes to its own API); `chat` (Chat Completions only: a server without
    /// the Responses API) or `responses` (some models answer only the Responses API), and
    /// clients of the other API are translated.
    pub api: Option<RawApi>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawApi {
    Chat,
    Responses,
}

/// `price = "gpt-4o"` (a price-table entry, or `"free"`), or a table of fields:
/// `price = { from = "gpt-4o", output = 12.0 }` / `price = { input = 0.2, output = 0.8 }`.
#[derive(Debug)]
pub enum RawDeploymentPrice {
    Name(String),
    Fields(RawPriceOverride),
}

impl<'de> Deserialize<'de> for RawDeploymentPrice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawDeploymentPrice;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a price-table entry name, \"free\", or a table of prices")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawDeploymentPrice::Name(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                m: A,
            ) -> Result<Self::Value, A::Error> {
                // Through the derived impl, so unknown fields are named in the error.
                RawPriceOverride::deserialize(serde::de::value::MapAccessDeserializer::new(m))
                    .map(RawDeploymentPrice::Fields)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriceOverride {
    /// Start from this price-table entry; the fields below override it.
    pub from: Option<String>,
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
    /// Replaces the entry's long-context tier.
    pub long_context: Option<RawLongContext>,
}

/// USD per million tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub output: f64,
    /// Input served from a provider cache; default: `input`.
    pub cached_input: Option<f64>,
    /// Input written to a provider cache (Anthropic); default: `input`.
    pub cache_write: Option<f64>,
    /// Rates for prompts longer than `above_tokens`.
    pub long_context: Option<RawLongContext>,
}

/// `long_context = { above_tokens = 200000, input = 2.5, output = 15.0, cached_input = 0.25 }`:
/// a call whose prompt is longer than `above_tokens` pays these rates for all its tokens
/// (USD per million tokens; unset cache rates follow this tier's `input`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLongContext {
    pub above_tokens: u64,
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
}

/// The bundled price table (`config/prices.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriceTable {
    pub table: RawPriceTableMeta,
    pub models: BTreeMap<String, RawPrice>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPriceTableMeta {
    pub version: u32,
    /// The date the prices were taken from the providers' pricing pages.
    pub taken: String,
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub id: String,
    /// Hex SHA-256 of the key (`tollgate hash-key`).
    pub sha256: String,
    /// The team the key belongs to (named in audit records).
    pub team: Option<String>,
    /// `"off"` (default): prompts and completions are never logged; `"sha256"`: the audit
    /// record carries their SHA-256.
    pub log_content: Option<String>,
    /// `false`: the key is refused (401 `key_disabled`). Default true.
    pub enabled: Option<bool>,
    /// After this instant the key is refused (401 `key_expired`): `"2027-01-31"` (midnight
    /// UTC) or `"2027-01-31T18:00:00Z"`.
    pub expires: Option<String>,
    /// Public model names (or globs with `*`) the key may use; default: all.
    pub models: Option<Vec<String>>,
    /// Free-form metadata, copied into the key's audit records.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Largest `max_tokens` the key may ask for (larger requests get 400).
    pub max_tokens: Option<u32>,
    /// `max_tokens` applied when a request sets none.
    pub default_max_tokens: Option<u32>,
    pub budget: Option<RawBudget>,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens (input + output) per minute.
    pub tpm: Option<u64>,
    /// End a stream (with a proper final event) when its output would take the key past a
    /// hard budget cap. Default false.
    pub cut_stream_at_cap: Option<bool>,
    /// `false`, or the cache fields this key changes (over its team's).
    pub cache: Option<super::cache::RawCacheOverride>,
    /// `[[guardrails]]` rule sets by name (after its team's).
    pub guardrails: Option<Vec<String>>,
}

/// A team: keys name it with `team = "..."`; its budgets and limits apply on top of theirs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTeam {
    pub name: String,
    pub budget: Option<RawBudget>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// `false`, or the cache fields the team's keys get.
    pub cache: Option<super::cache::RawCacheOverride>,
    /// `[[guardrails]]` rule sets by name, for every key of the team.
    pub guardrails: Option<Vec<String>>,
}

/// `budget = { usd = 25.0, tokens = 5000000, period = "monthly", reset_day = 1, warn_at = 0.8 }`:
/// a hard cap in USD and/or tokens per calendar period (UTC).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub usd: Option<f64>,
    pub tokens: Option<u64>,
    /// `daily`, `weekly` (from Monday), `monthly` (default) or `total`.
    pub period: Option<String>,
    /// The day of the month a monthly period starts (1–28, default 1).
    pub reset_day: Option<u8>,
    /// The soft threshold, as a fraction of the cap: past it responses carry a warning header
    /// and the log says so once per period. Default 0.8.
    pub warn_at: Option<f64>,
}

/// How budgets and rate limits are enforced.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQuotas {
    /// How long a request waits for the coordinator to grant allowance before it is refused.
    pub lease_wait_ms: u64,
    /// The output estimate of a request that sets no max tokens (its key no default either).
    pub default_output_tokens: u64,
}

/// Retries, failover and circuit breaking.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRouting {
    /// Attempts per request, across deployments and fallback models (1 = no retry).
    pub max_attempts: u64,
    /// First retry backoff (full jitter), doubling per retry up to `backoff_max_ms`.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
    /// Retries a deployment may receive, as a fraction of its requests (per worker)…
    pub retry_budget: f64,
    /// …plus this many, so that a quiet deployment can still be retried.
    pub retry_budget_min: u64,
    /// Consecutive failures that open a deployment's circuit.
    pub breaker_failures: u64,
    /// Or: this failure rate over the last `breaker_window` calls (once that many were made;
    /// 0 turns the rate check off).
    pub breaker_error_rate: f64,
    pub breaker_window: u64,
    /// How long an open circuit keeps a deployment out before one probe request may try it.
    pub cooldown_ms: u64,
}

impl Default for RawRouting {
    fn default() -> Self {
        RawRouting {
            max_attempts: 3,
            backoff_ms: 25,
            backoff_max_ms: 1_000,
            retry_budget: 0.2,
            retry_budget_min: 10,
            breaker_failures: 5,
            breaker_error_rate: 0.5,
            breaker_window: 20,
            cooldown_ms: 5_000,
        }
    }
}

impl Default for RawQuotas {
    fn default() -> Self {
        RawQuotas {
            lease_wait_ms: 100,
            default_output_tokens: 1024,
        }
    }
}

/// The admin API: a separate listener, off unless an admin key is configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub listen: String,
    /// Hex SHA-256 of the admin key (`tollgate hash-key`). Unset: no admin API.
    pub key_sha256: Option<String>,
    /// `GET /metrics` without the admin key (the listener then runs even with no key, serving
    /// only that).
    pub metrics_public: bool,
    /// Keys with their own label in the metrics (the first, in config order); the rest are
    /// counted as `other`.
    pub metrics_max_keys: u64,
}

impl Default for RawAdmin {
    fn default() -> Self {
        RawAdmin {
            listen: "127.0.0.1:9090".into(),
            key_sha256: None,
            metrics_public: false,
            metrics_max_keys: 1000,
        }
    }
}

/// `[tracing]`: OpenTelemetry spans over OTLP/HTTP (protobuf). Off unless `endpoint` is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTracing {
    /// The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces` (`http://` only).
    pub endpoint: Option<String>,
    /// The share of requests traced when their caller's `traceparent` does not decide (0–1).
    pub sample: f64,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Spans waiting for the exporter; past this, batches are dropped and counted.
    pub queue_spans: u64,
}

impl Default for RawTracing {
    fn default() -> Self {
        RawTracing {
            endpoint: None,
            sample: 1.0,
            service_name: "tollgate".into(),
            queue_spans: 16_384,
        }
    }
}

/// Where spend is persisted (the coordinator's append-only log and snapshot).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLedger {
    /// A directory, or `"off"` (spend is then only kept in memory).
    pub dir: String,
    /// Compact the log into a snapshot once it grows past this.
    pub compact_bytes: u64,
    /// How often records are synced to the disk (they reach the OS every tick).
    pub sync_ms: u64,
    /// Each worker's spend journal (`account::journal`): nothing lost to `kill -9`, for a
    /// few hundred nanoseconds a request. Off: the last tick or two of spend can be.
    pub journal: bool,
}

impl Default for RawLedger {
    fn default() -> Self {
        RawLedger {
            dir: "off".into(),
            compact_bytes: 64 * 1024 * 1024,
            sync_ms: 1000,
            journal: true,
        }
    }
}

/// The audit trail: one JSON line per request, formatted by the worker that served it and
/// written by the audit writer thread.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    /// `"stdout"`, `"off"`, or a file path (appended to, rotated by size).
    pub output: String,
    /// Rotate the file when it would grow past this: `path` → `path.1` → … → `path.N`.
    pub max_file_bytes: u64,
    /// Rotated files kept (N).
    pub max_files: u64,
    /// Records waiting for the writer; past this they are dropped and counted (a slow disk
    /// never blocks a worker). About 400 bytes each: the default holds ~6 MiB, a third of a
    /// second at 50,000 requests/s.
    pub queue_records: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        RawAudit {
            output: "stdout".into(),
            max_file_bytes: 100 * 1024 * 1024,
            max_files: 5,
            queue_records: 16_384,
        }
    }
}
