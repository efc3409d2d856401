//! The audit record: one finished request as the `finish` phase saw it — a fixed-size `Copy`
//! value a worker pushes on its ring, formatted into a JSON line by the coordinator
//! ([`super::log`]).

use crate::config::{DeploymentId, KeyId, ModelId};
use crate::error::ErrorKind;
use crate::http1::Method;
use crate::usage::{InlineStr, Usage};

/// The API a request addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    ChatCompletions,
    Completions,
    /// Anthropic's Messages API (`POST /v1/messages`).
    Messages,
    /// OpenAI's Responses API (`POST /v1/responses`).
    Responses,
    /// A call on a response OpenAI stored: `GET`/`DELETE /v1/responses/{id}`,
    /// `POST …/cancel`, `GET …/input_items`.
    StoredResponse,
    /// Gemini's `POST /v1beta/models/{model}:generateContent`.
    GenerateContent,
    /// Gemini's `POST /v1beta/models/{model}:streamGenerateContent` (`?alt=sse`: SSE; else a
    /// JSON array).
    StreamGenerateContent,
    /// Bedrock's `POST /model/{modelId}/converse`.
    Converse,
    /// Bedrock's `POST /model/{modelId}/converse-stream` (AWS's binary event stream).
    ConverseStream,
    Embeddings,
    Models,
    Health,
    Ready,
    Unknown,
}

impl Route {
    /// A Gemini client's route (the model is in its path).
    pub fn is_gemini(self) -> bool {
        matches!(self, Route::GenerateContent | Route::StreamGenerateContent)
    }

    /// A Bedrock client's route (the model is in its path).
    pub fn is_bedrock(self) -> bool {
        matches!(self, Route::Converse | Route::ConverseStream)
    }

    /// The path the route serves (`http.route`).
    pub fn path(self) -> &'static str {
        match self {
            Route::ChatCompletions => "/v1/chat/completions",
            Route::Completions => "/v1/completions",
            Route::Messages => "/v1/messages",
            Route::Responses => "/v1/responses",
            Route::StoredResponse => "/v1/responses/{response_id}",
            Route::GenerateContent => "/v1beta/models/{model}:generateContent",
            Route::StreamGenerateContent => "/v1beta/models/{model}:streamGenerateContent",
            Route::Converse => "/model/{modelId}/converse",
            Route::ConverseStream => "/model/{modelId}/converse-stream",
            Route::Embeddings => "/v1/embeddings",
            Route::Models => "/v1/models",
            Route::Health => "/healthz",
            Route::Ready => "/readyz",
            Route::Unknown => "",
        }
    }
}

/// One finished request, as the `finish` phase saw it: the audit record. Names are resolved by
/// the coordinator against the snapshot `generation` the request ran under.
#[derive(Clone, Copy, Debug)]
pub struct AuditRecord {
    pub generation: u64,
    pub worker: u16,
    pub serial: u64,
    pub start_unix_us: u64,
    pub method: Method,
    pub route: Route,
    pub status: u16,
    pub key: Option<KeyId>,
    pub model: Option<ModelId>,
    pub deployment: Option<DeploymentId>,
    pub stream: bool,
    /// Upstream attempts (a stale pooled connection retried counts twice).
    pub attempts: u8,
    /// Each deployment tried, in order, and how it went.
    pub tries: Tries,
    pub max_tokens: Option<u32>,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub duration_us: u64,
    /// Request sent upstream → response head received (0 when there was no upstream).
    pub upstream_us: u64,
    /// Request start → first response body byte written to the client (0: none was).
    pub ttft_us: u64,
    pub error: Option<ErrorKind>,
    /// A provider accepted the call (2xx): `usage` and `cost_micro_usd` are what it is
    /// charged.
    pub charged: bool,
    pub usage: Usage,
    pub usage_estimated: bool,
    pub cost_micro_usd: u64,
    /// What admission reserved of the key's USD budget (0: no USD budget applied).
    pub reserved_micro_usd: u64,
    /// Attempts given up on after they were sent — a hedge's cancelled half, an attempt past
    /// the first-token timeout, one cut before its first byte reached the client and retried:
    /// what they were charged (estimated), on top of `cost_micro_usd`.
    pub abandoned_cost_micro_usd: u64,
    /// Their tokens (input and output), counted against token budgets like the answer's.
    pub abandoned_tokens: u64,
    pub finish_reason: InlineStr<24>,
    pub response_model: InlineStr<64>,
    pub response_id: InlineStr<64>,
    pub prompt_sha256: Option<[u8; 32]>,
    pub completion_sha256: Option<[u8; 32]>,
    /// What the response cache did.
    pub cache: CacheNote,
    /// What the key's guardrails did.
    pub guard: GuardNote,
}

/// Which guardrail rules fired on a request and how often (by index in the key's compiled
/// guard, named from the snapshot when written), never what they matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardNote {
    pub n: u8,
    pub hits: [GuardHit; GuardNote::MAX],
}

/// One rule's detector on one side: how many matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardHit {
    pub rule: u16,
    pub detector: u16,
    /// In the answer (else in the request).
    pub response: bool,
    pub count: u32,
}

impl GuardNote {
    /// Distinct (rule, detector, side) triples kept per request; more are not itemised.
    pub const MAX: usize = 8;

    pub fn hits(&self) -> &[GuardHit] {
        &self.hits[..usize::from(self.n)]
    }
}

/// What the response cache did for a request (`worker/cache.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CacheNote {
    pub outcome: CacheOutcome,
    /// It waited for an identical request in flight (single-flight).
    pub waited: bool,
    /// The hit came from the shared second level in Redis (`[cluster] cache`).
    pub shared: bool,
    /// A semantic hit's cosine similarity.
    pub similarity: f32,
    /// A hit: what the original call cost (`cost_micro_usd` is what the key was charged).
    pub saved_micro_usd: u64,
    /// A hit: the original call's input and output tokens, not spent again.
    pub saved_tokens: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The model has no cache (or the key has it off).
    #[default]
    Off,
    Hit,
    SemanticHit,
    Miss,
    /// The client asked for a fresh answer (`Cache-Control: no-cache`); it was stored.
    Refresh,
    /// Not looked up nor stored: the client said `no-store`, or the request's shape cannot be
    /// cached.
    Bypass,
}

impl CacheOutcome {
    pub const ALL: [CacheOutcome; 6] = [
        CacheOutcome::Off,
        CacheOutcome::Hit,
        CacheOutcome::SemanticHit,
        CacheOutcome::Miss,
        CacheOutcome::Refresh,
        CacheOutcome::Bypass,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CacheOutcome::Off => "off",
            CacheOutcome::Hit => "hit",
            CacheOutcome::SemanticHit => "semantic_hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Refresh => "refresh",
            CacheOutcome::Bypass => "bypass",
        }
    }

    /// Served from the cache.
    pub fn is_hit(self) -> bool {
        matches!(self, CacheOutcome::Hit | CacheOutcome::SemanticHit)
    }
}

/// How one attempt on a deployment went (audit records list them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryOutcome {
    /// Its answer went to the client (whatever its status).
    Served,
    /// A retryable status (429, 5xx), retried elsewhere.
    Status(u16),
    Connect,
    Timeout,
    /// Reset or closed before anything reached the client.
    Reset,
    /// A 400 saying the prompt is too long: on to the context fallback.
    ContextLength,
    /// A content-policy refusal: on to the policy fallback.
    ContentPolicy,
    /// The deployment's own rate limit had no room: skipped.
    RateLimited,
    /// A hedged pair's slower half, cancelled (charged an estimate of its prompt).
    HedgeLost,
}

impl TryOutcome {
    pub fn name(self) -> &'static str {
        match self {
            TryOutcome::Served => "served",
            TryOutcome::Status(_) => "status",
            TryOutcome::Connect => "connect_error",
            TryOutcome::Timeout => "timeout",
            TryOutcome::Reset => "reset",
            TryOutcome::ContextLength => "context_length",
            TryOutcome::ContentPolicy => "content_policy",
            TryOutcome::RateLimited => "rate_limited",
            TryOutcome::HedgeLost => "hedge_lost",
        }
    }
}

/// Attempts a request may make at most (`routing.max_attempts` is bounded by it).
pub const MAX_TRIES: usize = 10;

/// The deployments a request tried, in order.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tries {
    pub n: u8,
    pub list: [Option<(DeploymentId, TryOutcome)>; MAX_TRIES],
    /// When each attempt began and ended, µs after the request's start (recorded for traced
    /// requests only; an end of 0: it ran to the request's end).
    pub at: [(u32, u32); MAX_TRIES],
    began: u32,
    ended: u32,
}

impl Tries {
    pub fn push(&mut self, d: DeploymentId, o: TryOutcome) {
        let n = usize::from(self.n);
        if let Some(slot) = self.list.get_mut(n) {
            *slot = Some((d, o));
            self.at[n] = (self.began, self.ended);
            self.n += 1;
        }
    }

    /// The next attempt begins `us` after the request's start.
    pub fn begin(&mut self, us: u32) {
        self.began = us;
        self.ended = 0;
    }

    /// The current attempt ended `us` after the request's start.
    pub fn end(&mut self, us: u32) {
        self.ended = us;
    }

    pub fn iter(&self) -> impl Iterator<Item = (DeploymentId, TryOutcome)> + '_ {
        self.list
            .iter()
            .take(usize::from(self.n))
            .flatten()
            .copied()
    }
}
