//! The compiled config: immutable, indexed by dense ids, shared by all workers as an
//! `Arc<Snapshot>`. A reload builds a new one; requests in flight keep the one they started
//! with.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::Driver;
use crate::http1;
use crate::usage::Price;

/// Dense handle of a model (public name) in [`Snapshot::models`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelId(pub u32);
/// Dense handle of a deployment in [`Snapshot::deployments`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeploymentId(pub u32);
/// Dense handle of a provider in [`Snapshot::providers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProviderId(pub u32);
/// Dense handle of a virtual key in [`Snapshot::keys`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyId(pub u32);
/// Dense handle of a budget or rate limit in [`Snapshot::quotas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuotaId(pub u32);

#[derive(Debug)]
pub struct Snapshot {
    /// Which load of the config this is (0 at start, +1 per reload); audit records name it.
    pub generation: u64,
    pub server: Server,
    pub limits: DownstreamLimits,
    pub upstream: UpstreamTimeouts,
    pub providers: Vec<Provider>,
    pub deployments: Vec<Deployment>,
    /// Models that can serve (at least one active deployment).
    pub models: Vec<Model>,
    pub model_index: HashMap<Box<[u8]>, ModelId>,
    pub keys: Vec<Key>,
    pub key_index: HashMap<[u8; 32], KeyId>,
    /// Team names (`[[teams]]`).
    pub teams: Vec<String>,
    /// The `GET /v1/models` bodies, rendered once.
    pub models_json: ModelLists,
    /// Configured models that cannot serve, with why (for `tollgate check` and the log).
    pub inactive: Vec<String>,
    pub audit: Audit,
    pub ledger: LedgerConfig,
    /// Every budget and rate limit (keys', teams' and deployments'), indexed by [`QuotaId`].
    pub quotas: Vec<Quota>,
    pub quota_settings: QuotaSettings,
    pub admin: Admin,
    /// `None`: no tracing (nothing is done per request).
    pub tracing: Option<Tracing>,
    /// `None`: this instance's limits are its own (`[cluster]` unset).
    pub cluster: Option<super::cluster::Cluster>,
    pub routing: Routing,
    /// The bundled price table's version and date, e.g. `v1, taken 2025-10-01`.
    pub price_table: String,
}

/// What a quota counts.
/// `GET /v1/models` in each dialect's shape (a client that sends `anthropic-version` gets
/// Anthropic's).
#[derive(Debug, Clone, Default)]
pub struct ModelLists {
    /// `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`
    pub openai: Vec<u8>,
    /// `{"data":[{"type":"model","id","display_name","created_at"}],"has_more":false,
    /// "first_id","last_id"}`
    pub anthropic: Vec<u8>,
    /// `GET /v1beta/models`: `{"models":[{"name":"models/…","displayName",
    /// "supportedGenerationMethods"}]}`
    pub gemini: Vec<u8>,
}

impl ModelLists {
    /// The list in each shape, for these models.
    pub fn render(models: &[&Model]) -> ModelLists {
        let mut openai = b"{\"object\":\"list\",\"data\":[".to_vec();
        let mut anthropic = b"{\"data\":[".to_vec();
        let mut gemini = b"{\"models\":[".to_vec();
        for (i, m) in models.iter().enumerate() {
            if i > 0 {
                openai.push(b',');
                anthropic.push(b',');
                gemini.push(b',');
            }
            let mut name = b"models/".to_vec();
            name.extend_from_slice(m.name.as_bytes());
            gemini.extend_from_slice(b"{\"name\":");
            crate::json::string(&mut gemini, &name);
            gemini.extend_from_slice(b",\"displayName\":");
            crate::json::string(&mut gemini, m.name.as_bytes());
            gemini.extend_from_slice(
                b",\"supportedGenerationMethods\":[\"generateContent\",\"streamGenerateContent\"]}",
            );
            openai.extend_from_slice(b"{\"id\":");
            crate::json::string(&mut openai, m.name.as_bytes());
            openai.extend_from_slice(
                b",\"object\":\"model\",\"created\":0,\"owned_by\":\"tollgate\"}",
            );
            anthropic.extend_from_slice(b"{\"type\":\"model\",\"id\":");
            crate::json::string(&mut anthropic, m.name.as_bytes());
            anthropic.extend_from_slice(b",\"display_name\":");
            crate::json::string(&mut anthropic, m.name.as_bytes());
            anthropic.extend_from_slice(b",\"created_at\":\"1970-01-01T00:00:00Z\"}");
        }
        openai.extend_from_slice(b"]}");
        anthropic.extend_from_slice(b"],\"has_more\":false,\"first_id\":");
        let id = |out: &mut Vec<u8>, m: Option<&&Model>| match m {
            Some(m) => crate::json::string(out, m.name.as_bytes()),
            None => out.extend_from_slice(b"null"),
        };
        id(&mut anthropic, models.first());
        anthropic.extend_from_slice(b",\"last_id\":");
        id(&mut anthropic, models.last());
        anthropic.push(b'}');
        gemini.extend_from_slice(b"]}");
        ModelLists {
            openai,
            anthropic,
            gemini,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    MicroUsd,
    /// Input + output tokens.
    Tokens,
    Requests,
}

/// Over what a quota's cap applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A budget: the cap per calendar period; spend is persisted in the ledger.
    Period(crate::calendar::Period),
    /// A rate limit: a bucket of `cap` that refills at `cap` per minute.
    Minute,
}

/// One budget or rate limit of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    /// Stable across reloads: `key:alice/usd`, `team:ml/rpm`, `deployment:gpt-4o#0/tpm`.
    pub name: String,
    /// The ledger scope a budget's spend is read from (`key:alice`, `team:ml`).
    pub scope: String,
    pub unit: Unit,
    pub window: Window,
    pub cap: u64,
    /// The soft threshold (budgets).
    pub warn: Option<u64>,
}

impl Quota {
    pub fn is_budget(&self) -> bool {
        matches!(self.window, Window::Period(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaSettings {
    pub lease_wait: Duration,
    pub default_output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// `None`: no admin listener (no admin key, and metrics not public).
    pub listen: Option<SocketAddr>,
    /// `None`: no admin API; only `/metrics`, when public.
    pub key_sha256: Option<[u8; 32]>,
    /// `GET /metrics` needs no key.
    pub metrics_public: bool,
    /// Keys with their own metrics label (config order); the rest are `other`.
    pub metrics_max_keys: usize,
}

/// `[tracing]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracing {
    /// The collector: host, port, `Host:` value and path (`/v1/traces`).
    pub host: String,
    pub port: u16,
    pub authority: String,
    pub path: String,
    /// Requests traced per million, when no caller's `traceparent` decides.
    pub sample_per_million: u32,
    pub service_name: String,
    pub queue_spans: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// `None`: spend is kept in memory only.
    pub dir: Option<std::path::PathBuf>,
    pub compact_bytes: u64,
    pub sync: Duration,
    /// The workers keep spend journals.
    pub journal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub output: AuditOutput,
    pub max_file_bytes: u64,
    pub max_files: u32,
    pub queue_records: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutput {
    Off,
    Stdout,
    File(std::path::PathBuf),
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub workers: usize,
    pub driver: Driver,
    pub pin_workers: bool,
    pub drain_timeout: Duration,
    /// TLS termination for clients (TLS 1.2 and 1.3, ALPN http/1.1).
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

#[derive(Debug, Clone)]
pub struct DownstreamLimits {
    pub head: http1::Limits,
    pub max_body_bytes: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct UpstreamTimeouts {
    pub connect: Duration,
    pub head: Duration,
    pub ttft: Duration,
    pub body_idle: Duration,
    pub total: Duration,
    pub pool_idle: Duration,
    pub pool_max_idle: usize,
    pub dns_refresh: Duration,
    pub max_response_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Answered inside the gateway by [`crate::mock`].
    Mock,
    /// An OpenAI-compatible HTTP API.
    OpenAi,
    /// Anthropic's Messages API (`x-api-key`, `anthropic-version`).
    Anthropic,
    /// Google's Gemini API (`x-goog-api-key`; `…/models/{model}:generateContent`).
    Gemini,
    /// AWS Bedrock's Converse API (SigV4, or a Bedrock API key as a bearer token).
    Bedrock,
    /// Google Cloud Vertex AI: Gemini models (`publishers/google`) and Anthropic's
    /// (`publishers/anthropic`, `rawPredict`), with OAuth2 tokens from a service account.
    Vertex,
}

impl ProviderKind {
    /// The wire dialect the provider speaks; `None` for the built-in mock, which answers in
    /// whichever the client speaks.
    pub fn dialect(self) -> Option<crate::dialect::Dialect> {
        use crate::dialect::Dialect;
        match self {
            ProviderKind::Mock => None,
            ProviderKind::OpenAi => Some(Dialect::OpenAi),
            ProviderKind::Anthropic => Some(Dialect::Anthropic),
            ProviderKind::Gemini => Some(Dialect::Gemini),
            ProviderKind::Bedrock => Some(Dialect::Bedrock),
            // Gemini's, or Anthropic's for a `claude…` model: see `Deployment::dialect`.
            ProviderKind::Vertex => Some(Dialect::Gemini),
        }
    }
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub kind: ProviderKind,
    /// Where to connect; `None` for the built-in mock.
    pub endpoint: Option<Endpoint>,
    /// The credential header line, `name: value\r\n`, ready to append to a request head.
    /// Never logged.
    pub credential: Option<Vec<u8>>,
    /// Some deployment uses this provider (it has its credential, if it needs one).
    pub active: bool,
    /// `openai_compatible` (vLLM, Ollama, …): requests translated for it say `max_tokens`
    /// rather than `max_completion_tokens`.
    pub compatible: bool,
    /// Appended to every request path (`?api-version=…` for Azure OpenAI), or empty.
    pub query: String,
    /// For an https endpoint: the TLS client config (shared by every worker) and its trust
    /// profile (part of the connection pool's key).
    pub tls: Option<(std::sync::Arc<rustls::ClientConfig>, crate::tls::Profile)>,
    /// Bedrock signing with SigV4 (`None`: a bearer API key in `credential`).
    pub aws: Option<AwsSigning>,
    /// Vertex AI's service account, whose access token the coordinator keeps fresh.
    pub vertex: Option<std::sync::Arc<super::vertex::ServiceAccount>>,
}

/// What a Bedrock provider signs its requests with.
#[derive(Debug)]
pub struct AwsSigning {
    pub region: String,
    pub credentials: crate::http1::sigv4::Credentials,
}

/// An upstream origin plus the path prefix requests go under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// The `Host:` header value.
    pub authority: String,
    /// Prefix the API path is appended to, without a trailing slash (`/v1`).
    pub base_path: String,
}

#[derive(Debug)]
pub struct Deployment {
    pub provider: ProviderId,
    pub model: ModelId,
    /// The provider's model name as a JSON string literal (quoted, escaped), ready to splice.
    pub upstream_model_json: Vec<u8>,
    pub upstream_model: String,
    /// Output tokens asked for when a request translated for a provider that requires a
    /// number (Anthropic) names none and its key has no default.
    pub default_max_tokens: u32,
    pub price: Price,
    /// Where the price came from, for `tollgate check`.
    pub price_source: String,
    /// The deployment's own rate limits.
    pub quotas: Vec<QuotaId>,
    /// `model#index`: how headers, the audit trail and the admin API name it.
    pub name: String,
    /// Share of traffic under the `weighted` strategy.
    pub weight: u32,
    /// The wire dialect the deployment is called in (`None`: the built-in mock, which answers
    /// in the client's): its provider's, or OpenAI's Responses API for `api = "responses"`.
    pub dialect: Option<crate::dialect::Dialect>,
    /// An OpenAI deployment that answers both of OpenAI's APIs (no `api` set): Responses
    /// clients go to it as they came.
    pub both_openai_apis: bool,
}

impl Deployment {
    /// The dialect this deployment is called in for a client of `client`'s (`None`: the
    /// built-in mock).
    pub fn dialect_for(&self, client: crate::dialect::Dialect) -> Option<crate::dialect::Dialect> {
        use crate::dialect::Dialect;
        match self.dialect {
            Some(Dialect::OpenAi) if client == Dialect::Responses && self.both_openai_apis => {
                Some(Dialect::Responses)
            }
            d => d,
        }
    }
}

#[derive(Debug)]
pub struct Model {
    pub name: String,
    pub deployments: Vec<DeploymentId>,
    pub strategy: Strategy,
    /// Tried in order when every deployment failed.
    pub fallbacks: Vec<ModelId>,
    /// On a context-length error.
    pub context_fallback: Option<ModelId>,
    /// On a content-policy refusal.
    pub policy_fallback: Option<ModelId>,
    pub sticky: bool,
    /// Hedge a request that has no first byte after this long.
    pub hedge_after: Option<Duration>,
    /// Response caching, when the model has it on.
    pub cache: Option<super::cache::CachePolicy>,
}

/// How a model's deployment is chosen (see `policy::route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    RoundRobin,
    Weighted,
    LeastInflight,
    Latency,
    Cost,
}

/// Retries, failover and circuit breaking (`[routing]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Routing {
    pub max_attempts: u32,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub retry_budget: f64,
    pub retry_budget_min: u32,
    pub breaker_failures: u32,
    pub breaker_error_rate: f64,
    pub breaker_window: u32,
    pub cooldown: Duration,
}

#[derive(Debug)]
pub struct Key {
    pub id: String,
    /// The team's name (a `[[teams]]` entry).
    pub team: Option<String>,
    /// Audit records carry the SHA-256 of the prompt and the completion.
    pub log_content_sha256: bool,
    pub enabled: bool,
    /// Seconds since the Unix epoch after which the key is refused.
    pub expires_unix: Option<u64>,
    /// Which models (by [`ModelId`]) the key may use; `None`: all.
    pub models: Option<Vec<bool>>,
    /// The `GET /v1/models` bodies for a key restricted to some models.
    pub models_json: Option<ModelLists>,
    /// `"key":"value"` pairs, pre-rendered as JSON members (`,"k":"v",...`) for audit lines.
    pub tags_json: Vec<u8>,
    pub max_tokens: Option<u32>,
    pub default_max_tokens: Option<u32>,
    /// The key's budgets and rate limits, then its team's.
    pub quotas: Vec<QuotaId>,
    pub cut_stream_at_cap: bool,
    /// What the key (or its team) changes of a model's cache policy.
    pub cache: Option<super::cache::CacheOverride>,
    /// The guardrails of the key and its team, compiled (`None`: none, and no cost).
    pub guard: Option<std::sync::Arc<crate::guard::Guard>>,
}

impl Key {
    /// May this key use `model`?
    pub fn allows(&self, model: ModelId) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.get(model.0 as usize).copied().unwrap_or(false))
    }
}

impl Snapshot {
    pub fn model(&self, name: &[u8]) -> Option<ModelId> {
        self.model_index.get(name).copied()
    }

    pub fn key_by_hash(&self, hash: &[u8; 32]) -> Option<KeyId> {
        self.key_index.get(hash).copied()
    }

    pub fn deployment(&self, id: DeploymentId) -> &Deployment {
        &self.deployments[id.0 as usize]
    }

    pub fn provider(&self, id: ProviderId) -> &Provider {
        &self.providers[id.0 as usize]
    }

    /// Every distinct upstream endpoint (for DNS resolution).
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.providers
            .iter()
            .filter(|p| p.active)
            .filter_map(|p| p.endpoint.as_ref())
    }

    /// A one-screen summary for `tollgate check` and the startup log.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "listen {} · {} worker(s) · io {:?} · {} key(s)",
            self.server.listen,
            self.server.workers,
            self.server.driver,
            self.keys.len()
        );
        for m in &self.models {
            let deps: Vec<String> = m
                .deployments
                .iter()
                .map(|&d| {
                    let d = self.deployment(d);
                    format!(
                        "{}:{} ({})",
                        self.provider(d.provider).name,
                        d.upstream_model,
                        d.price_source
                    )
                })
                .collect();
            let _ = writeln!(s, "model {} → {}", m.name, deps.join(", "));
        }
        let _ = writeln!(s, "prices: {}", self.price_table);
        for why in &self.inactive {
            let _ = writeln!(s, "inactive: {why}");
        }
        s
    }
}
