//! Translation between provider dialects, for a client whose dialect the chosen provider does
//! not speak: OpenAI Chat Completions ⇄ Anthropic Messages, and OpenAI → Gemini.
//!
//! Sans-IO, in three parts, each driven by the worker:
//! - [`request`]: the client's request body → the provider's (a DOM of the request is built
//!   here, unlike the same-dialect path, which edits spans of the original bytes);
//! - [`response`]: a whole JSON body (success or error) → the client's shape, once complete;
//! - [`stream`]: an event stream, translated event by event as each arrives (nothing is held
//!   back beyond the event being read).
//!
//! Whatever has no faithful equivalent in the other dialect is refused with
//! [`Untranslatable`] (a 400 that names the field), never dropped. The few members that are
//! accepted without an equivalent are listed in each translator's quirk table, with why.

pub mod request;
pub mod response;
pub mod stream;

use crate::dialect::Dialect;

/// A client dialect served by a provider that speaks another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pair {
    /// An OpenAI Chat Completions client, an Anthropic Messages provider.
    OpenAiToAnthropic,
    /// An Anthropic Messages client, an OpenAI-dialect provider.
    AnthropicToOpenAi,
    /// An OpenAI Chat Completions client, a Gemini `generateContent` provider.
    OpenAiToGemini,
}

impl Pair {
    /// The translation that serves `client` from `provider`; `None` when they are the same
    /// dialect or no translation exists between them.
    pub fn between(client: Dialect, provider: Dialect) -> Option<Pair> {
        match (client, provider) {
            (Dialect::OpenAi, Dialect::Anthropic) => Some(Pair::OpenAiToAnthropic),
            (Dialect::Anthropic, Dialect::OpenAi) => Some(Pair::AnthropicToOpenAi),
            (Dialect::OpenAi, Dialect::Gemini) => Some(Pair::OpenAiToGemini),
            _ => None,
        }
    }

    pub fn client(self) -> Dialect {
        match self {
            Pair::OpenAiToAnthropic | Pair::OpenAiToGemini => Dialect::OpenAi,
            Pair::AnthropicToOpenAi => Dialect::Anthropic,
        }
    }

    pub fn provider(self) -> Dialect {
        match self {
            Pair::OpenAiToAnthropic => Dialect::Anthropic,
            Pair::AnthropicToOpenAi => Dialect::OpenAi,
            Pair::OpenAiToGemini => Dialect::Gemini,
        }
    }
}

pub use crate::dialect::norm::Untranslatable;

/// The response's finish reason in OpenAI's words, from Anthropic's `stop_reason`.
pub fn openai_finish_from_anthropic(stop_reason: &[u8]) -> &'static [u8] {
    match stop_reason {
        b"max_tokens" | b"model_context_window_exceeded" => b"length",
        b"tool_use" => b"tool_calls",
        b"refusal" => b"content_filter",
        // end_turn, stop_sequence, pause_turn
        _ => b"stop",
    }
}

/// Anthropic's `stop_reason` from OpenAI's `finish_reason`.
pub fn anthropic_stop_from_openai(finish_reason: &[u8]) -> &'static [u8] {
    match finish_reason {
        b"length" => b"max_tokens",
        b"tool_calls" | b"function_call" => b"tool_use",
        b"content_filter" => b"refusal",
        _ => b"end_turn",
    }
}

/// OpenAI's `finish_reason` from Gemini's `finishReason` (`tool`: the answer called a
/// function, which Gemini reports as `STOP`).
pub fn openai_finish_from_gemini(finish_reason: &[u8], tool: bool) -> &'static [u8] {
    match finish_reason {
        b"MAX_TOKENS" => b"length",
        b"SAFETY"
        | b"RECITATION"
        | b"BLOCKLIST"
        | b"PROHIBITED_CONTENT"
        | b"SPII"
        | b"IMAGE_SAFETY" => b"content_filter",
        _ if tool => b"tool_calls",
        _ => b"stop",
    }
}
