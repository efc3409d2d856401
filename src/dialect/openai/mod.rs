//! OpenAI Chat Completions, Completions and Embeddings — and the OpenAI-compatible servers
//! (vLLM, Ollama, Azure, GitHub Models, gateways) that speak them with quirks.
//!
//! Where usage is, per server (each row has a capture in `tests/fixtures/corpus/`):
//!
//! | server | stream usage | handling |
//! | --- | --- | --- |
//! | OpenAI, `include_usage` | a last chunk with `"choices":[]` and `usage`; other chunks `"usage":null` (or no key, 2024) | read it; drop that chunk when the gateway asked for it |
//! | OpenAI, no `include_usage` | none | the gateway asks upstream for it (see `worker::translate`) |
//! | Azure / GitHub Models | a *leading* `"choices":[]` chunk with `prompt_filter_results` | not usage: never dropped |
//! | vLLM (continuous usage) | cumulative `usage` on every chunk, then the `choices:[]` chunk | last one wins — never summed |
//! | OpenCode-style gateways | `usage` on the finish chunk; a data event after `[DONE]` | read it; nothing after `[DONE]` counts as usage |
//! | Ollama, older vLLM tool parsers | none | estimated (`usage_estimated`) |
//!
//! `prompt_tokens` includes `prompt_tokens_details.cached_tokens` and `completion_tokens`
//! includes `completion_tokens_details.reasoning_tokens`: the normalised convention already.

pub mod answer;
pub mod request;
pub mod stream;

use serde::Deserialize;

use crate::json::Scratch;
use crate::json::scan::{is_empty_array, string_at, visit_keys};
use crate::usage::Observed;

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

/// Reads one event's data (or a whole JSON body). Returns true when the event is a usage-only
/// chunk (`choices` empty, `usage` present): the one `include_usage` adds.
pub fn observe(data: &[u8], o: &mut Observed, scratch: &mut Scratch) -> bool {
    if data == b"[DONE]" {
        o.finished = true;
        return false;
    }
    let mut empty_choices = false;
    let mut usage = None;
    visit_keys(data, |k, v| {
        match k {
            b"content" | b"text" | b"arguments" | b"reasoning_content" | b"reasoning"
            | b"refusal" => {
                if let Some(s) = string_at(data, v) {
                    o.content_bytes += s.len() as u64;
                }
            }
            b"finish_reason" => {
                if let Some(s) = string_at(data, v) {
                    o.set_finish_reason(s);
                }
            }
            b"usage" if data.get(v) == Some(&b'{') => usage = Some(v),
            b"choices" => empty_choices = is_empty_array(data, v),
            b"model" => {
                if let Some(s) = string_at(data, v) {
                    o.set_model(s);
                }
            }
            b"id" => {
                if let Some(s) = string_at(data, v) {
                    o.set_id(s);
                }
            }
            b"error" if data.get(v) == Some(&b'{') => o.error_event = true,
            _ => {}
        }
        true
    });
    let Some(at) = usage else {
        return false;
    };
    let Some(raw) = scratch.parse_value_at::<RawUsage>(data, at) else {
        return false;
    };
    if let Some(n) = raw.prompt_tokens {
        o.usage.input_tokens = n;
        o.usage.cache_read_tokens = raw
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        o.input_reported = true;
    }
    // Embeddings report no completion side: zero output, reported.
    o.usage.output_tokens = raw.completion_tokens.unwrap_or(0);
    o.usage.reasoning_tokens = raw
        .completion_tokens_details
        .and_then(|d| d.reasoning_tokens)
        .unwrap_or(0);
    o.output_reported = true;
    empty_choices
}

// ------------------------------------------------------------------------------ wire facts

/// Paths under a provider's base URL, per API.
pub const CHAT_PATH: &[u8] = b"/chat/completions";
pub const COMPLETIONS_PATH: &[u8] = b"/completions";
pub const EMBEDDINGS_PATH: &[u8] = b"/embeddings";

/// Headers of this dialect's own that do not go to a provider of another dialect.
pub const OWN_HEADERS: &[&[u8]] = &[b"openai-organization", b"openai-project"];

/// The request member that caps output: Chat Completions calls it `max_completion_tokens`
/// (reasoning models refuse `max_tokens`); the legacy Completions API and OpenAI-compatible
/// servers (vLLM, Ollama, …) call it `max_tokens`.
pub fn max_tokens_member(chat: bool, compatible: bool) -> &'static [u8] {
    if chat && !compatible {
        b"max_completion_tokens"
    } else {
        b"max_tokens"
    }
}

/// An error body: `{"error":{"message","type","param","code"}}` (`param`, `code`: `null`
/// when `None`).
pub fn write_error(
    out: &mut Vec<u8>,
    message: &[u8],
    kind: &[u8],
    param: Option<&[u8]>,
    code: Option<&[u8]>,
) {
    out.extend_from_slice(b"{\"error\":{\"message\":");
    crate::json::string(out, message);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind);
    out.extend_from_slice(b"\",\"param\":");
    match param {
        Some(p) => crate::json::string(out, p),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"code\":");
    match code {
        Some(c) => crate::json::string(out, c),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}}");
}
