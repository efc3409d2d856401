//! Translation between provider dialects, for a client whose dialect the chosen provider does
//! not speak: any two of OpenAI Chat Completions, OpenAI Responses, Anthropic Messages and
//! Gemini `generateContent`.
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

/// A client dialect served by a provider that speaks another: the client dialect's readers
/// and the provider dialect's writers on the way up, the reverse on the way down. Every
/// dialect has all six (request, answer and stream; reader and writer), so every pair of
/// distinct dialects translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    client: Dialect,
    provider: Dialect,
}

impl Pair {
    pub const OPENAI_TO_ANTHROPIC: Pair = Pair::of(Dialect::OpenAi, Dialect::Anthropic);
    pub const ANTHROPIC_TO_OPENAI: Pair = Pair::of(Dialect::Anthropic, Dialect::OpenAi);
    pub const OPENAI_TO_GEMINI: Pair = Pair::of(Dialect::OpenAi, Dialect::Gemini);

    const fn of(client: Dialect, provider: Dialect) -> Pair {
        Pair { client, provider }
    }

    /// The translation that serves `client` from `provider`; `None` when they are the same
    /// dialect (served byte for byte, never through the hub).
    pub fn between(client: Dialect, provider: Dialect) -> Option<Pair> {
        (client != provider).then_some(Pair { client, provider })
    }

    /// A dialect to itself: a stream or answer read and rewritten through the hub (guarded
    /// answers, whose text the gateway changes).
    pub fn same(d: Dialect) -> Pair {
        Pair {
            client: d,
            provider: d,
        }
    }

    pub fn client(self) -> Dialect {
        self.client
    }

    pub fn provider(self) -> Dialect {
        self.provider
    }
}

pub use crate::dialect::norm::Untranslatable;
