//! AWS Bedrock's Converse API (`POST /model/{modelId}/converse`, `/converse-stream`).
//!
//! | field | meaning | handling |
//! | --- | --- | --- |
//! | `usage.inputTokens` | input *not* read from or written to a cache | input = it + cache read + cache write |
//! | `usage.cacheReadInputTokens`, `usage.cacheWriteInputTokens` | cached input | cache read, cache write |
//! | `usage.outputTokens` | output | output |
//! | `stopReason` | `end_turn`, `tool_use`, `max_tokens`, `stop_sequence`, `guardrail_intervened`, `content_filtered` | finish reason |
//! | stream | AWS's binary event stream ([`crate::sse::eventstream`]): `messageStart`, `contentBlockStart` (tool use), `contentBlockDelta`, `contentBlockStop`, `messageStop` (`stopReason`), `metadata` (`usage`) | usage from `metadata` |
//! | errors | JSON `{"message"}` with the type in `x-amzn-errortype` (or `__type`); in a stream, an `exception` message | |
//!
//! Answers carry no id or model (the request names the model; the id is the
//! `x-amzn-requestid` header). The stream's proper end is the `metadata` event, after
//! `messageStop`.

pub mod answer;
pub mod request;
pub mod stream;

use crate::json::scan::{string_at, uint_at, visit_keys};
use crate::sse::eventstream::is_error_message;
use crate::usage::Observed;

/// A Bedrock client's call: `/model/{modelId}/converse` or `/converse-stream` → the model id
/// (still percent-encoded as sent) and whether it streams.
pub fn client_call(path: &[u8]) -> Option<(&[u8], bool)> {
    let rest = path.strip_prefix(b"/model/")?;
    let slash = memchr::memrchr(b'/', rest)?;
    let (model, call) = (&rest[..slash], &rest[slash + 1..]);
    let stream = match call {
        b"converse" => false,
        b"converse-stream" => true,
        _ => return None,
    };
    (!model.is_empty() && !model.contains(&b'/')).then_some((model, stream))
}

/// `%XX` escapes decoded (a model id such as `…-v1:0` comes as `…-v1%3A0`); `None` when an
/// escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    crate::http1::percent::decode(s).filter(|d| std::str::from_utf8(d).is_ok())
}

/// The path of a call under a provider's base URL: `/model/{id}/converse[-stream]`, the id
/// percent-encoded (RFC 3986 unreserved characters stay as they are).
pub fn write_path(out: &mut Vec<u8>, model: &[u8], stream: bool) {
    out.extend_from_slice(b"/model/");
    crate::http1::percent::encode(out, model, false);
    out.extend_from_slice(if stream {
        b"/converse-stream".as_slice()
    } else {
        b"/converse"
    });
}

/// The content type of Bedrock's event stream.
pub const STREAM_CONTENT_TYPE: &[u8] = b"application/vnd.amazon.eventstream";

/// True when an event carries generated content.
pub fn is_content(event: &[u8]) -> bool {
    event == b"contentBlockDelta"
}

/// Reads one stream event into `o`.
pub fn observe_event(event: &[u8], data: &[u8], o: &mut Observed) {
    match event {
        b"contentBlockDelta" => visit_keys(data, |k, v| {
            if let b"text" | b"input" = k
                && let Some(s) = string_at(data, v)
            {
                o.content_bytes += s.len() as u64;
            }
            true
        }),
        b"messageStop" => read(data, o),
        b"metadata" => {
            read(data, o);
            o.finished = true;
        }
        e if is_error_message(e) => o.error_event = true,
        _ => {}
    }
}

/// Reads a whole `converse` answer into `o`.
pub fn observe_body(body: &[u8], o: &mut Observed) {
    visit_keys(body, |k, v| {
        if let b"text" = k
            && let Some(s) = string_at(body, v)
        {
            o.content_bytes += s.len() as u64;
        }
        true
    });
    read(body, o);
    o.finished = o.output_reported;
}

/// `stopReason` and `usage` wherever they sit in `data`.
fn read(data: &[u8], o: &mut Observed) {
    let (mut input, mut read, mut write, mut output) = (None, 0, 0, None);
    visit_keys(data, |k, v| {
        match k {
            b"stopReason" => {
                if let Some(s) = string_at(data, v) {
                    o.set_finish_reason(s);
                }
            }
            b"inputTokens" => input = uint_at(data, v),
            b"outputTokens" => output = uint_at(data, v),
            b"cacheReadInputTokens" => read = uint_at(data, v).unwrap_or(0),
            b"cacheWriteInputTokens" => write = uint_at(data, v).unwrap_or(0),
            _ => {}
        }
        true
    });
    if let Some(i) = input {
        o.usage.input_tokens = i.saturating_add(read).saturating_add(write);
        o.usage.cache_read_tokens = read;
        o.usage.cache_creation_tokens = write;
        o.input_reported = true;
    }
    if let Some(n) = output {
        o.usage.output_tokens = n;
        o.output_reported = true;
    }
}

/// The error type AWS names for an HTTP status (`x-amzn-errortype`, `__type`).
pub fn error_type(status: u16) -> &'static [u8] {
    match status {
        400 | 413 | 422 => b"ValidationException",
        401 | 403 => b"AccessDeniedException",
        404 => b"ResourceNotFoundException",
        408 | 504 => b"ModelTimeoutException",
        429 => b"ThrottlingException",
        503 | 529 => b"ServiceUnavailableException",
        _ => b"InternalServerException",
    }
}

/// An error body: `{"__type","message"}` (botocore takes the code from `__type`).
pub fn write_error(out: &mut Vec<u8>, status: u16, message: &[u8]) {
    out.extend_from_slice(b"{\"__type\":\"");
    out.extend_from_slice(error_type(status));
    out.extend_from_slice(b"\",\"message\":");
    crate::json::string(out, message);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_model_ids() {
        assert_eq!(
            client_call(b"/model/anthropic.claude-v2%3A1/converse-stream"),
            Some((&b"anthropic.claude-v2%3A1"[..], true))
        );
        assert_eq!(client_call(b"/model/m/converse"), Some((&b"m"[..], false)));
        assert_eq!(client_call(b"/model//converse"), None);
        assert_eq!(client_call(b"/model/a/b/converse"), None);
        assert_eq!(client_call(b"/model/m/invoke"), None);
        assert_eq!(
            percent_decode(b"anthropic.claude-v2%3A1").as_deref(),
            Some(&b"anthropic.claude-v2:1"[..])
        );
        assert_eq!(percent_decode(b"bad%3"), None);
        let mut p = Vec::new();
        write_path(&mut p, b"anthropic.claude-v2:1", true);
        assert_eq!(p, b"/model/anthropic.claude-v2%3A1/converse-stream");
    }

    #[test]
    fn usage_counts_cached_input_in_the_input() {
        let mut o = Observed::default();
        observe_event(
            b"metadata",
            br#"{"usage":{"inputTokens":10,"outputTokens":5,"totalTokens":40,"cacheReadInputTokens":20,"cacheWriteInputTokens":5},"metrics":{"latencyMs":1}}"#,
            &mut o,
        );
        assert_eq!(
            (
                o.usage.input_tokens,
                o.usage.output_tokens,
                o.usage.cache_read_tokens,
                o.usage.cache_creation_tokens
            ),
            (35, 5, 20, 5)
        );
        assert!(o.finished);
    }
}
