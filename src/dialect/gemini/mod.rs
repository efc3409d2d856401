//! Google Gemini `generateContent` / `streamGenerateContent?alt=sse`.
//!
//! | field | meaning | handling |
//! | --- | --- | --- |
//! | `usageMetadata` | on every stream chunk, *cumulative* | the last one wins |
//! | `promptTokenCount` | all input, including `cachedContentTokenCount` | input, cache read |
//! | `candidatesTokenCount` | visible output only | output = candidates + thoughts |
//! | `thoughtsTokenCount` | reasoning, billed as output, *not* in `candidatesTokenCount` | reasoning |
//! | `finishReason` | `STOP` even for function calls | finish reason |
//! | `modelVersion`, `responseId` | | response model, id |
//!
//! Streams use CRLF line ends and have no `[DONE]`; the scanner handles both.

pub mod answer;
pub mod request;
pub mod stream;

use serde::Deserialize;

use crate::json::Scratch;
use crate::json::scan::{string_at, value_end, visit_keys};
use crate::usage::Observed;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawUsage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

/// Reads one stream chunk or a whole response (they have the same shape).
pub fn observe(data: &[u8], o: &mut Observed, scratch: &mut Scratch) {
    let mut usage = None;
    visit_keys(data, |k, v| {
        match k {
            b"text" => {
                if let Some(s) = string_at(data, v) {
                    o.content_bytes += s.len() as u64;
                }
            }
            b"functionCall" => {
                if let Some(end) = value_end(data, v) {
                    o.content_bytes += (end - v) as u64;
                }
            }
            b"finishReason" => {
                if let Some(s) = string_at(data, v) {
                    o.set_finish_reason(s);
                }
            }
            b"usageMetadata" if data.get(v) == Some(&b'{') => usage = Some(v),
            b"modelVersion" => {
                if let Some(s) = string_at(data, v) {
                    o.set_model(s);
                }
            }
            b"responseId" => {
                if let Some(s) = string_at(data, v) {
                    o.set_id(s);
                }
            }
            b"error" if data.get(v) == Some(&b'{') => o.error_event = true,
            _ => {}
        }
        true
    });
    let Some(at) = usage else { return };
    let Some(raw) = scratch.parse_value_at::<RawUsage>(data, at) else {
        return;
    };
    if let Some(n) = raw.prompt_token_count {
        o.usage.input_tokens = n;
        o.usage.cache_read_tokens = raw.cached_content_token_count.unwrap_or(0);
        o.input_reported = true;
    }
    let thoughts = raw.thoughts_token_count.unwrap_or(0);
    if raw.candidates_token_count.is_some() || thoughts > 0 {
        o.usage.output_tokens = raw
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(thoughts);
        o.usage.reasoning_tokens = thoughts;
        o.output_reported = true;
    }
}

// ------------------------------------------------------------------------------ wire facts

/// The path of a call under a provider's base URL: `/models/{model}:generateContent`, or
/// `:streamGenerateContent?alt=sse` for a stream (SSE; without `alt=sse` Gemini streams a JSON
/// array).
pub fn write_path(out: &mut Vec<u8>, model: &[u8], stream: bool) {
    out.extend_from_slice(b"/models/");
    out.extend_from_slice(model);
    out.extend_from_slice(if stream {
        b":streamGenerateContent?alt=sse".as_slice()
    } else {
        b":generateContent"
    });
}

/// A Gemini client's call: `/v1beta/models/{model}:generateContent` (or `/v1/models/…`, or
/// `:streamGenerateContent`) → the model and whether it streams. `None` for any other path.
pub fn client_call(path: &[u8]) -> Option<(&[u8], bool)> {
    let rest = path
        .strip_prefix(b"/v1beta/models/")
        .or_else(|| path.strip_prefix(b"/v1/models/"))?;
    let colon = memchr::memrchr(b':', rest)?;
    let (model, method) = (&rest[..colon], &rest[colon + 1..]);
    let stream = match method {
        b"generateContent" => false,
        b"streamGenerateContent" => true,
        _ => return None,
    };
    (!model.is_empty() && !model.contains(&b'/')).then_some((model, stream))
}

/// True when a query string asks for SSE framing (`alt=sse`).
pub fn wants_sse(query: Option<&[u8]>) -> bool {
    query.is_some_and(|q| q.split(|&b| b == b'&').any(|kv| kv == b"alt=sse"))
}

/// The `status` name Google's APIs use for an HTTP status.
pub fn status_name(status: u16) -> &'static [u8] {
    match status {
        400 => b"INVALID_ARGUMENT",
        401 => b"UNAUTHENTICATED",
        403 => b"PERMISSION_DENIED",
        404 => b"NOT_FOUND",
        429 => b"RESOURCE_EXHAUSTED",
        503 | 529 => b"UNAVAILABLE",
        504 => b"DEADLINE_EXCEEDED",
        _ => b"INTERNAL",
    }
}

/// An error body: `{"error":{"code","message","status"}}`.
pub fn write_error(out: &mut Vec<u8>, status: u16, message: &[u8]) {
    out.extend_from_slice(b"{\"error\":{\"code\":");
    crate::json::uint(out, u64::from(status));
    out.extend_from_slice(b",\"message\":");
    crate::json::string(out, message);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status_name(status));
    out.extend_from_slice(b"\"}}");
}
