//! Whole (non-streaming) response bodies — answers and errors — from the provider's dialect to
//! the client's, once the body is complete. Usage is written from the meter's reading of the
//! provider's body ([`Observed`]), so the client sees exactly what is charged.
//!
//! | provider answer | client answer |
//! | --- | --- |
//! | Anthropic `message`: text blocks, `tool_use` blocks, `stop_reason`, usage (uncached input + cache parts) | `chat.completion`: `content`, `tool_calls` (input serialised), `finish_reason`, `prompt_tokens` = all input, `cached_tokens` |
//! | Gemini `candidates[0]`: text parts (thoughts left out), `functionCall` parts, `finishReason`, `usageMetadata` | `chat.completion` (thoughts counted in `reasoning_tokens`) |
//! | OpenAI `chat.completion` `choices[0]` | Anthropic `message` (`input_tokens` = prompt − cached) |
//!
//! Errors keep their status; the message is carried over and the type mapped to the client's
//! vocabulary. A body that is not the expected JSON becomes an error naming the problem.

use simd_json::BorrowedValue as Value;
use simd_json::prelude::*;

use super::Pair;
use crate::dialect::anthropic::stream::{stop_reason, write_usage as anthropic_usage};
use crate::dialect::openai::stream::{finish_name, write_usage as openai_usage};
use crate::dialect::{anthropic, gemini, openai};
use crate::json::{self, Scratch};
use crate::usage::Observed;

/// Writes the client's answer for the provider's complete JSON `body`. `Err` when the body is
/// not a response of the provider's dialect.
pub fn translate(
    pair: Pair,
    body: &[u8],
    o: &Observed,
    created: u64,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let Scratch { bytes, buffers, .. } = scratch;
    bytes.clear();
    bytes.extend_from_slice(body);
    let v = simd_json::to_borrowed_value_with_buffers(bytes, buffers)
        .map_err(|e| format!("the provider's response is not valid JSON ({e})"))?;
    match pair {
        Pair::OpenAiToAnthropic => anthropic_to_openai(&v, o, created, out),
        Pair::OpenAiToGemini => gemini_to_openai(&v, o, created, out),
        Pair::AnthropicToOpenAi => openai_to_anthropic(&v, o, out),
    }
}

fn s<'v>(v: &'v Value<'_>, k: &str) -> Option<&'v str> {
    v.get(k).and_then(|x| x.as_str())
}

fn write_value(out: &mut Vec<u8>, v: &Value<'_>) {
    let _ = v.write(out);
}

/// The head of an OpenAI `chat.completion` up to the message's members.
fn completion_head(out: &mut Vec<u8>, id: &str, model: &str, created: u64) {
    out.extend_from_slice(b"{\"id\":");
    json::string(out, id.as_bytes());
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    json::uint(out, created);
    out.extend_from_slice(b",\"model\":");
    json::string(out, model.as_bytes());
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
}

fn completion_tail(out: &mut Vec<u8>, finish: &[u8], o: &Observed) {
    out.extend_from_slice(b",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"");
    out.extend_from_slice(finish);
    out.extend_from_slice(b"\"}],");
    openai_usage(out, &o.usage);
    out.push(b'}');
}

fn tool_call(out: &mut Vec<u8>, n: usize, id: &str, name: &str, args: &Value<'_>) {
    out.extend_from_slice(if n == 0 { b",\"tool_calls\":[" } else { b"," });
    out.extend_from_slice(b"{\"id\":");
    json::string(out, id.as_bytes());
    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
    json::string(out, name.as_bytes());
    out.extend_from_slice(b",\"arguments\":");
    let mut a = Vec::with_capacity(64);
    write_value(&mut a, args);
    json::string(out, &a);
    out.extend_from_slice(b"}}");
}

fn anthropic_to_openai(
    v: &Value<'_>,
    o: &Observed,
    created: u64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let content = v
        .get("content")
        .and_then(|c| c.as_array())
        .ok_or("the provider's response has no `content` array")?;
    completion_head(
        out,
        s(v, "id").unwrap_or("msg"),
        s(v, "model").unwrap_or(""),
        created,
    );
    let text: String = content
        .iter()
        .filter(|b| s(b, "type") == Some("text"))
        .filter_map(|b| s(b, "text"))
        .collect();
    if text.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json::string(out, text.as_bytes());
    }
    let empty = Value::from(simd_json::value::borrowed::Object::new());
    let mut n = 0;
    for b in content.iter().filter(|b| s(b, "type") == Some("tool_use")) {
        let input = b.get("input").unwrap_or(&empty);
        tool_call(
            out,
            n,
            s(b, "id").unwrap_or(""),
            s(b, "name").unwrap_or(""),
            input,
        );
        n += 1;
    }
    if n > 0 {
        out.push(b']');
    }
    let reason = s(v, "stop_reason").unwrap_or("end_turn").as_bytes();
    let finish = finish_name(anthropic::stream::finish_from(reason));
    completion_tail(out, finish, o);
    Ok(())
}

fn gemini_to_openai(
    v: &Value<'_>,
    o: &Observed,
    created: u64,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let candidate = v
        .get("candidates")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first());
    let parts = candidate
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
        .and_then(|p| p.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if candidate.is_none() && v.get("usageMetadata").is_none() {
        return Err("the provider's response has no `candidates`".into());
    }
    completion_head(
        out,
        s(v, "responseId").unwrap_or("gemini"),
        s(v, "modelVersion").unwrap_or(""),
        created,
    );
    let text: String = parts
        .iter()
        .filter(|p| p.get("thought").and_then(|t| t.as_bool()) != Some(true))
        .filter_map(|p| s(p, "text"))
        .collect();
    if text.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json::string(out, text.as_bytes());
    }
    let empty = Value::from(simd_json::value::borrowed::Object::new());
    let mut n = 0;
    for call in parts.iter().filter_map(|p| p.get("functionCall")) {
        let id = s(call, "id").map_or_else(|| format!("call_{n}"), str::to_owned);
        tool_call(
            out,
            n,
            &id,
            s(call, "name").unwrap_or(""),
            call.get("args").unwrap_or(&empty),
        );
        n += 1;
    }
    if n > 0 {
        out.push(b']');
    }
    let reason = candidate
        .and_then(|c| s(c, "finishReason"))
        .unwrap_or("STOP");
    let finish = gemini::stream::finish_from(reason.as_bytes(), n > 0);
    completion_tail(out, finish_name(finish), o);
    Ok(())
}

fn openai_to_anthropic(v: &Value<'_>, o: &Observed, out: &mut Vec<u8>) -> Result<(), String> {
    let choice = v
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
        .ok_or("the provider's response has no `choices`")?;
    let message = choice
        .get("message")
        .ok_or("the provider's response has no `message`")?;
    out.extend_from_slice(b"{\"id\":");
    json::string(out, s(v, "id").unwrap_or("msg").as_bytes());
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    json::string(out, s(v, "model").unwrap_or("").as_bytes());
    out.extend_from_slice(b",\"content\":[");
    let mut n = 0;
    let text = s(message, "content")
        .or_else(|| s(message, "refusal"))
        .unwrap_or("");
    if !text.is_empty() {
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        json::string(out, text.as_bytes());
        out.push(b'}');
        n += 1;
    }
    for call in message
        .get("tool_calls")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        let f = call.get("function");
        if n > 0 {
            out.push(b',');
        }
        n += 1;
        out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
        json::string(out, s(call, "id").unwrap_or("").as_bytes());
        out.extend_from_slice(b",\"name\":");
        json::string(out, f.and_then(|f| s(f, "name")).unwrap_or("").as_bytes());
        out.extend_from_slice(b",\"input\":");
        let args = f.and_then(|f| s(f, "arguments")).unwrap_or("");
        let mut copy = args.as_bytes().to_vec();
        match simd_json::to_borrowed_value(&mut copy) {
            Ok(a) if a.as_object().is_some() => write_value(out, &a),
            // Arguments that are not a JSON object cannot be an Anthropic input: kept as text.
            _ if args.trim().is_empty() => out.extend_from_slice(b"{}"),
            _ => {
                out.extend_from_slice(b"{\"arguments\":");
                json::string(out, args.as_bytes());
                out.push(b'}');
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"stop_reason\":\"");
    let reason = s(choice, "finish_reason").unwrap_or("stop").as_bytes();
    out.extend_from_slice(stop_reason(openai::stream::finish_from(reason)));
    out.extend_from_slice(b"\",\"stop_sequence\":null,");
    anthropic_usage(out, &o.usage);
    out.push(b'}');
    Ok(())
}

/// Writes the client's error body for the provider's error response (`status`, `body`).
pub fn error(pair: Pair, status: u16, body: &[u8], scratch: &mut Scratch, out: &mut Vec<u8>) {
    let (message, kind) = read_error(body, scratch);
    match pair.client() {
        crate::dialect::Dialect::Anthropic => {
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
            out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\",\"message\":");
            json::string(out, message.as_bytes());
            out.extend_from_slice(b"}}");
        }
        _ => {
            let (kind, code): (&str, Option<&str>) = match (status, kind.as_deref()) {
                (_, Some("overloaded_error")) => ("server_error", Some("overloaded")),
                (429, _) => ("rate_limit_error", Some("rate_limit_exceeded")),
                (401, _) => ("authentication_error", Some("invalid_api_key")),
                (403, _) => ("permission_error", None),
                (404, _) => ("invalid_request_error", Some("model_not_found")),
                (400..=499, _) => ("invalid_request_error", None),
                _ => ("server_error", None),
            };
            out.extend_from_slice(b"{\"error\":{\"message\":");
            json::string(out, message.as_bytes());
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\",\"param\":null,\"code\":");
            match code {
                Some(c) => json::string(out, c.as_bytes()),
                None => out.extend_from_slice(b"null"),
            }
            out.extend_from_slice(b"}}");
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
