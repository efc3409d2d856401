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

/// A client dialect served by a provider that speaks another. (The Responses API is served
/// only by OpenAI providers, as it is: no pair names it.)
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
