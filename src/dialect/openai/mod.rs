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

use crate::json::scan::{Members, is_empty_array, string_at, uint_at, value_end, visit_keys};
use crate::usage::Observed;

/// The counts of an OpenAI `usage` object.
#[derive(Debug, Default, PartialEq, Eq)]
struct RawUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
}

/// Reads the `usage` object at `data[at]` in place: four counts from a small object of known
/// shape, where a serde parse would cost more than the rest of the event. As strict as one:
/// a count that is neither digits nor `null`, or a malformed member, refuses the whole object
/// (and the usage is then estimated). vLLM repeats usage on every chunk, so this is per event.
fn read_usage(data: &[u8], at: usize) -> Option<RawUsage> {
    let obj = &data[at..value_end(data, at)?];
    let mut u = RawUsage::default();
    for m in Members::new(obj) {
        let m = m.ok()?;
        let v = &obj[m.value];
        match &obj[m.key] {
            b"prompt_tokens" => u.prompt_tokens = count(v)?,
            b"completion_tokens" => u.completion_tokens = count(v)?,
            b"prompt_tokens_details" => u.cached_tokens = detail(v, b"cached_tokens")?,
            b"completion_tokens_details" => u.reasoning_tokens = detail(v, b"reasoning_tokens")?,
            _ => {}
        }
    }
    Some(u)
}

/// A count: `Some(None)` for `null`, `None` when it is not a count at all.
pub(crate) fn count(v: &[u8]) -> Option<Option<u64>> {
    if v == b"null" {
        return Some(None);
    }
    uint_at(v, 0)
        .filter(|_| v.iter().all(u8::is_ascii_digit))
        .map(Some)
}

/// The count `key` of a details object (`null` or absent: none).
pub(crate) fn detail(v: &[u8], key: &[u8]) -> Option<Option<u64>> {
    if v == b"null" {
        return Some(None);
    }
    let mut found = None;
    for m in Members::new(v) {
        let m = m.ok()?;
        if &v[m.key] == key {
            found = count(&v[m.value])?;
        }
    }
    Some(found)
}

/// Reads one event's data (or a whole JSON body). Returns true when the event is a usage-only
/// chunk (`choices` empty, `usage` present): the one `include_usage` adds.
pub fn observe(data: &[u8], o: &mut Observed) -> bool {
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
            // Every chunk repeats these; the first one's are kept.
            b"model" if o.response_model.is_empty() => {
                if let Some(s) = string_at(data, v) {
                    o.set_model(s);
                }
            }
            b"id" if o.response_id.is_empty() => {
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
    let Some(raw) = read_usage(data, at) else {
        return false;
    };
    if let Some(n) = raw.prompt_tokens {
        o.usage.input_tokens = n;
        o.usage.cache_read_tokens = raw.cached_tokens.unwrap_or(0);
        o.input_reported = true;
    }
    // Embeddings report no completion side: zero output, reported.
    o.usage.output_tokens = raw.completion_tokens.unwrap_or(0);
    o.usage.reasoning_tokens = raw.reasoning_tokens.unwrap_or(0);
    o.output_reported = true;
    empty_choices
}

// ------------------------------------------------------------------------------ wire facts

/// Paths under a provider's base URL, per API.
pub const CHAT_PATH: &[u8] = b"/chat/completions";
pub const RESPONSES_PATH: &[u8] = b"/responses";
/// The Responses API's cap on output.
pub const RESPONSES_MAX_TOKENS_MEMBER: &[u8] = b"max_output_tokens";
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

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: &str) -> Option<RawUsage> {
        read_usage(json.as_bytes(), 0)
    }

    #[test]
    fn usage_read_in_place() {
        let full = r#"{"prompt_tokens":19,"completion_tokens":40,"total_tokens":59,
            "prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},
            "completion_tokens_details":{"reasoning_tokens":7,"audio_tokens":0}}"#;
        assert_eq!(
            usage(full),
            Some(RawUsage {
                prompt_tokens: Some(19),
                completion_tokens: Some(40),
                cached_tokens: Some(3),
                reasoning_tokens: Some(7),
            })
        );
        // Embeddings: no completion side; details null or absent.
        assert_eq!(
            usage(r#"{ "prompt_tokens" : 8, "total_tokens": 8, "prompt_tokens_details": null }"#),
            Some(RawUsage {
                prompt_tokens: Some(8),
                ..RawUsage::default()
            })
        );
        assert_eq!(
            usage(r#"{"prompt_tokens":null}"#),
            Some(RawUsage::default())
        );
    }

    #[test]
    fn usage_refused_as_serde_would() {
        for bad in [
            r#"{"prompt_tokens":1.5}"#,
            r#"{"prompt_tokens":-1}"#,
            r#"{"prompt_tokens":"19"}"#,
            r#"{"prompt_tokens_details":{"cached_tokens":true}}"#,
            r#"{"prompt_tokens":19,}"#,
            r#"{"prompt_tokens":19"#,
            r#"{"prompt_tokens":99999999999999999999}"#,
        ] {
            assert_eq!(usage(bad), None, "{bad}");
        }
    }

    #[test]
    fn usage_chunk_observed() {
        let mut o = Observed::default();
        let chunk = br#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":31,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":0}}}"#;
        assert!(observe(chunk, &mut o));
        assert_eq!(
            (
                o.usage.input_tokens,
                o.usage.output_tokens,
                o.usage.cache_read_tokens
            ),
            (19, 31, 2)
        );
        assert!(o.input_reported && o.output_reported);
        assert_eq!(o.response_model.as_bytes(), b"gpt-4o-mini");
    }
}
