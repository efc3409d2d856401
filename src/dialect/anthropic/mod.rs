//! Anthropic Messages.
//!
//! | event | what it carries | handling |
//! | --- | --- | --- |
//! | `message_start` | `message.usage`: `input_tokens` (the *uncached* part), `cache_creation_input_tokens`, `cache_read_input_tokens`, a provisional `output_tokens` | input side; the output figure is only a floor |
//! | `content_block_delta` | `text_delta` / `input_json_delta` / `thinking_delta` | counted for the output estimate |
//! | `message_delta` | `stop_reason`; final `usage.output_tokens` (newer API versions repeat the input fields) | output side, final |
//! | `error` | e.g. `overloaded_error` mid-stream; no `message_delta` follows | output estimated |
//!
//! Quirk: the API pads some data objects with spaces before the closing brace; nothing here
//! depends on layout. Input is normalised to include both cache parts (OpenTelemetry's
//! `gen_ai.usage.input_tokens`).

pub mod answer;
pub mod request;
pub mod stream;

use serde::Deserialize;

use crate::json::Scratch;
use crate::json::scan::{string_at, value_end, visit_keys};
use crate::usage::Observed;

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

/// Reads one event. `event` is the SSE `event:` field (the data's `type` when absent).
pub fn observe_event(event: &[u8], data: &[u8], o: &mut Observed, scratch: &mut Scratch) {
    let kind = if event.is_empty() {
        type_of(data)
    } else {
        event
    };
    match kind {
        b"message_start" => read(data, o, scratch, false),
        b"message_delta" => {
            read(data, o, scratch, true);
            o.finished = true;
        }
        b"content_block_delta" => visit_keys(data, |k, v| {
            if let b"text" | b"partial_json" | b"thinking" = k
                && let Some(s) = string_at(data, v)
            {
                o.content_bytes += s.len() as u64;
            }
            true
        }),
        b"content_block_start" => {
            o.open_block = crate::json::scan::member(data, b"index")
                .and_then(|r| crate::json::scan::uint_at(data, r.start))
                .map(|i| i.min(u64::from(u32::MAX)) as u32);
        }
        b"content_block_stop" => o.open_block = None,
        b"message_stop" => o.finished = true,
        b"error" => o.error_event = true,
        _ => {}
    }
}

/// Reads a whole (non-streaming) Messages response.
pub fn observe_body(body: &[u8], o: &mut Observed, scratch: &mut Scratch) {
    read(body, o, scratch, true);
    if o.output_reported {
        o.finished = true;
    }
}

/// Ids, stop reason, content sizes and usage of a `message_start`, `message_delta` or a whole
/// message. `output_final`: the usage's `output_tokens` is the final figure.
fn read(data: &[u8], o: &mut Observed, scratch: &mut Scratch, output_final: bool) {
    let mut usage = None;
    visit_keys(data, |k, v| {
        match k {
            b"id" => {
                if let Some(s) = string_at(data, v) {
                    o.set_id(s);
                }
            }
            b"model" => {
                if let Some(s) = string_at(data, v) {
                    o.set_model(s);
                }
            }
            b"stop_reason" => {
                if let Some(s) = string_at(data, v) {
                    o.set_finish_reason(s);
                }
            }
            b"text" | b"thinking" => {
                if let Some(s) = string_at(data, v) {
                    o.content_bytes += s.len() as u64;
                }
            }
            b"input" => {
                if let Some(end) = value_end(data, v) {
                    o.content_bytes += (end - v) as u64;
                }
            }
            b"usage" if data.get(v) == Some(&b'{') => usage = Some(v),
            _ => {}
        }
        true
    });
    let Some(at) = usage else { return };
    let Some(raw) = scratch.parse_value_at::<RawUsage>(data, at) else {
        return;
    };
    if let Some(uncached) = raw.input_tokens {
        let read = raw.cache_read_input_tokens.unwrap_or(0);
        let written = raw.cache_creation_input_tokens.unwrap_or(0);
        o.usage.input_tokens = uncached.saturating_add(read).saturating_add(written);
        o.usage.cache_read_tokens = read;
        o.usage.cache_creation_tokens = written;
        o.input_reported = true;
    }
    if let Some(out) = raw.output_tokens {
        o.usage.output_tokens = if output_final {
            out
        } else {
            o.usage.output_tokens.max(out)
        };
        o.output_reported |= output_final;
    }
}

/// The `"type"` of an event's data object.
fn type_of(data: &[u8]) -> &[u8] {
    let mut t: &[u8] = b"";
    visit_keys(data, |k, v| {
        if k == b"type" {
            t = string_at(data, v).unwrap_or_default();
            return false;
        }
        true
    });
    t
}

// ------------------------------------------------------------------------------ wire facts

/// The Messages API's path under a provider's base URL.
pub const MESSAGES_PATH: &[u8] = b"/messages";

/// The request member that caps output (required by Messages).
pub const MAX_TOKENS_MEMBER: &[u8] = b"max_tokens";

/// The API version sent when the client names none (`anthropic-version`).
pub const VERSION: &[u8] = b"2023-06-01";
/// The API version Anthropic's models on Vertex AI take, in the body (`anthropic_version`).
pub const VERTEX_VERSION: &[u8] = b"vertex-2023-10-16";

/// Whether `name` is one of this dialect's own headers (`anthropic-*`), which do not go to a
/// provider of another dialect.
pub fn is_own_header(name: &[u8]) -> bool {
    name.len() >= 10 && name[..10].eq_ignore_ascii_case(b"anthropic-")
}

/// The error `type` Anthropic uses for an HTTP status.
pub fn error_type(status: u16) -> &'static [u8] {
    match status {
        401 => b"authentication_error",
        403 => b"permission_error",
        404 => b"not_found_error",
        413 => b"request_too_large",
        429 => b"rate_limit_error",
        503 | 529 => b"overloaded_error",
        400..=499 => b"invalid_request_error",
        _ => b"api_error",
    }
}

/// An error body: `{"type":"error","error":{"type","message"}}`.
pub fn write_error(out: &mut Vec<u8>, kind: &[u8], message: &[u8]) {
    out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
    out.extend_from_slice(kind);
    out.extend_from_slice(b"\",\"message\":");
    crate::json::string(out, message);
    out.extend_from_slice(b"}}");
}
