//! Whole (non-streaming) response bodies — answers and errors — from the provider's dialect to
//! the client's, once the body is complete. Usage is written from the meter's reading of the
//! provider's body ([`Observed`]), so the client sees exactly what is charged.
//!
//! Read by the provider dialect's answer reader into the normalised answer
//! (`dialect::norm::Answer`), written by the client dialect's writer
//! (`dialect/<name>/answer.rs`):
//!
//! | provider answer | client answer |
//! | --- | --- |
//! | Anthropic `message`: text blocks, `tool_use` blocks, `stop_reason`, usage (uncached input + cache parts) | `chat.completion`: `content`, `tool_calls` (input serialised), `finish_reason`, `prompt_tokens` = all input, `cached_tokens` |
//! | Gemini `candidates[0]`: text parts (thoughts left out), `functionCall` parts, `finishReason`, `usageMetadata` | `chat.completion` (thoughts counted in `reasoning_tokens`) |
//! | OpenAI `chat.completion` `choices[0]` | Anthropic `message` (`input_tokens` = prompt − cached) |
//!
//! Errors keep their status; the message is carried over and the type mapped to the client's
//! vocabulary. A body that is not the expected JSON becomes an error naming the problem.

use super::Pair;
use crate::dialect::{Dialect, anthropic, bedrock, gemini, openai, responses};
use crate::json::Scratch;
use crate::usage::Observed;

/// Writes the client's answer for the provider's complete JSON `body`: the provider dialect's
/// answer reader, then the client's writer. `Err` when the body is not a response of the
/// provider's dialect.
pub fn translate(
    pair: Pair,
    body: &[u8],
    o: &Observed,
    created: u64,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let tape = scratch
        .tape(body)
        .map_err(|e| format!("the provider's response is not valid JSON ({e})"))?;
    let v = tape.as_value();
    let answer = match pair.provider() {
        Dialect::Anthropic => anthropic::answer::read(v),
        Dialect::Gemini => gemini::answer::read(v),
        Dialect::OpenAi => openai::answer::read(v),
        Dialect::Responses => responses::answer::read(v),
        Dialect::Bedrock => bedrock::answer::read(v),
    };
    let result = answer.map(|a| write_answer(pair.client(), &a, o, created, out));
    let empty: simd_json::Tape<'static> = tape.reset();
    scratch.keep_tape(empty);
    result
}

/// Writes a whole answer in `client`'s dialect (a translated answer, or a cached one).
pub fn write_answer(
    client: Dialect,
    a: &crate::dialect::norm::Answer<'_, '_>,
    o: &Observed,
    created: u64,
    out: &mut Vec<u8>,
) {
    match client {
        Dialect::Anthropic => anthropic::answer::write(a, o, out),
        Dialect::OpenAi => openai::answer::write(a, o, created, out),
        Dialect::Responses => responses::answer::write(a, o, created, out),
        Dialect::Gemini => gemini::answer::write(a, o, out),
        Dialect::Bedrock => bedrock::answer::write(a, o, out),
    }
}

/// Reads a provider's whole answer (`body`, in `provider`'s dialect) and hands it to `f`.
pub fn read_answer<R>(
    provider: Dialect,
    body: &[u8],
    scratch: &mut Scratch,
    f: impl FnOnce(&crate::dialect::norm::Answer<'_, '_>) -> R,
) -> Result<R, String> {
    let tape = scratch
        .tape(body)
        .map_err(|e| format!("the provider's response is not valid JSON ({e})"))?;
    let v = tape.as_value();
    let answer = match provider {
        Dialect::Anthropic => anthropic::answer::read(v),
        Dialect::Gemini => gemini::answer::read(v),
        Dialect::OpenAi => openai::answer::read(v),
        Dialect::Responses => responses::answer::read(v),
        Dialect::Bedrock => bedrock::answer::read(v),
    };
    let result = answer.map(|a| f(&a));
    let empty: simd_json::Tape<'static> = tape.reset();
    scratch.keep_tape(empty);
    result
}

/// Writes the client's error body for the provider's error response (`status`, `body`).
pub fn error(pair: Pair, status: u16, body: &[u8], scratch: &mut Scratch, out: &mut Vec<u8>) {
    let (message, kind) = read_error(body, scratch);
    match pair.client() {
        Dialect::Anthropic => {
            let kind = match status {
                400 | 422 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                503 | 529 => "overloaded_error",
                _ => "api_error",
            };
            anthropic::write_error(out, kind.as_bytes(), message.as_bytes());
        }
        Dialect::Gemini => gemini::write_error(out, status, message.as_bytes()),
        Dialect::Bedrock => bedrock::write_error(out, status, message.as_bytes()),
        Dialect::OpenAi | Dialect::Responses => {
            let (kind, code): (&str, Option<&str>) = match (status, kind.as_deref()) {
                (_, Some("overloaded_error")) => ("server_error", Some("overloaded")),
                (429, _) => ("rate_limit_error", Some("rate_limit_exceeded")),
                (401, _) => ("authentication_error", Some("invalid_api_key")),
                (403, _) => ("permission_error", None),
                (404, _) => ("invalid_request_error", Some("model_not_found")),
                (400..=499, _) => ("invalid_request_error", None),
                _ => ("server_error", None),
            };
            let code = code.map(str::as_bytes);
            openai::write_error(out, message.as_bytes(), kind.as_bytes(), None, code);
        }
    }
}

/// The message and type of an error body in any of the three dialects: OpenAI's and
/// Gemini's `{"error":{"message",…}}`, Anthropic's `{"type":"error","error":{"type","message"}}`.
/// A body that is none of them is quoted (truncated).
pub fn read_error(body: &[u8], scratch: &mut Scratch) -> (String, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Inner {
        message: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        status: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Outer {
        error: Inner,
    }
    if let Some(Outer { error }) = scratch.parse::<Outer>(body)
        && let Some(m) = error.message
    {
        return (m, error.kind.or(error.status));
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    (
        format!("the provider answered with an error: {}", text.trim()),
        None,
    )
}
