//! The mock provider's answers: deterministic bodies and streams in each provider's wire
//! format. Served two ways from this one renderer: by the `tollgate-mock` binary (`loadtest/`,
//! with timing shapes and faults) and by the gateway's built-in `mock` provider kind, so the
//! default config answers real requests with no API keys and no other process.

pub mod render;

use crate::dialect::Dialect;

/// The endpoints the mock serves. Paths are matched by suffix so that provider-style prefixes
/// (`/openai/deployments/x/chat/completions`, `/openai/v1/...`) work too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Api {
    Chat,
    Completions,
    Embeddings,
    Models,
    Messages,
    /// `…/models/{model}:generateContent` or `:streamGenerateContent` (`sse` with `alt=sse`).
    Gemini {
        model: String,
        stream: bool,
        sse: bool,
    },
    Stats,
    Reset,
    Health,
}

impl Api {
    pub fn dialect(&self) -> Dialect {
        match self {
            Api::Messages => Dialect::Anthropic,
            Api::Gemini { .. } => Dialect::Gemini,
            _ => Dialect::OpenAi,
        }
    }

    /// True for the provider endpoints that produce tokens (and are billed).
    pub fn generates(&self) -> bool {
        matches!(
            self,
            Api::Chat | Api::Completions | Api::Embeddings | Api::Messages | Api::Gemini { .. }
        )
    }
}

/// The mock's documented prompt-token estimate: one token per 4 bytes of request body,
/// rounded up. Deterministic, so tests predict it from the bytes they send.
pub fn prompt_tokens(body_len: usize) -> u64 {
    (body_len as u64).div_ceil(4)
}
