//! The provider wire dialects (OpenAI, Anthropic, Gemini): what marks content and the end of
//! a stream in each (shared by the gateway, the mock provider and the load generator), and
//! where each keeps its usage, finish reason and ids — read from SSE events and JSON bodies
//! without a DOM ([`Dialect::observe_event`], [`Dialect::observe_body`]).
//!
//! Each dialect module starts with its quirk table. Only a usage object is JSON-parsed
//! (simd-json, on a scratch copy); everything else is found by [`crate::json::scan`].

pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod norm;
pub mod openai;
pub mod responses;

use crate::json::Scratch;
use crate::sse::SseEvent;
use crate::usage::Observed;

/// How a stream in this dialect marks content and its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    #[default]
    OpenAi,
    Anthropic,
    Gemini,
    /// OpenAI's Responses API (`/v1/responses`): OpenAI providers, its own event stream.
    Responses,
    /// AWS Bedrock's Converse API: binary event stream (`sse::eventstream`).
    Bedrock,
}

impl Dialect {
    /// True when an event carries generated content (text or tool-call arguments).
    pub fn is_content(self, e: &SseEvent<'_>) -> bool {
        let has = |needle: &[u8]| memchr::memmem::find(e.data, needle).is_some();
        match self {
            // A non-empty content / text / arguments string.
            Dialect::OpenAi => {
                non_empty_after(e.data, b"\"content\":\"")
                    || non_empty_after(e.data, b"\"text\":\"")
                    || non_empty_after(e.data, b"\"arguments\":\"")
            }
            Dialect::Anthropic => e.event == b"content_block_delta",
            Dialect::Responses => responses::is_content(e.data),
            Dialect::Bedrock => bedrock::is_content(e.event),
            Dialect::Gemini => {
                non_empty_after(e.data, b"\"text\": \"")
                    || has(b"\"functionCall\"")
                    || non_empty_after(e.data, b"\"text\":\"")
            }
        }
    }

    /// Reads one SSE event into `o`. Returns true when the event is a usage-only chunk that a
    /// client which did not ask for usage must not see (OpenAI's `include_usage` chunk).
    pub fn observe_event(self, e: &SseEvent<'_>, o: &mut Observed, scratch: &mut Scratch) -> bool {
        o.events += 1;
        match self {
            Dialect::OpenAi => openai::observe(e.data, o),
            Dialect::Anthropic => {
                anthropic::observe_event(e.event, e.data, o, scratch);
                false
            }
            Dialect::Gemini => {
                gemini::observe(e.data, o, scratch);
                false
            }
            Dialect::Responses => {
                responses::observe_event(e.data, o);
                false
            }
            Dialect::Bedrock => {
                bedrock::observe_event(e.event, e.data, o);
                false
            }
        }
    }

    /// Reads a complete (non-streaming) JSON response body into `o`.
    pub fn observe_body(self, body: &[u8], o: &mut Observed, scratch: &mut Scratch) {
        match self {
            Dialect::OpenAi => {
                openai::observe(body, o);
                o.finished = true;
            }
            Dialect::Anthropic => anthropic::observe_body(body, o, scratch),
            Dialect::Gemini => {
                gemini::observe(body, o, scratch);
                o.finished = true;
            }
            Dialect::Responses => {
                responses::observe_body(body, o);
                o.finished = true;
            }
            Dialect::Bedrock => bedrock::observe_body(body, o),
        }
    }

    /// True when an event is the dialect's proper end of stream.
    pub fn is_end(self, e: &SseEvent<'_>) -> bool {
        match self {
            Dialect::OpenAi => e.data == b"[DONE]",
            Dialect::Anthropic => e.event == b"message_stop",
            Dialect::Gemini => memchr::memmem::find(e.data, b"\"finishReason\"").is_some(),
            Dialect::Responses => responses::is_end(e.data),
            Dialect::Bedrock => e.event == b"metadata",
        }
    }
}

fn non_empty_after(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find_iter(hay, needle)
        .any(|i| hay.get(i + needle.len()).is_some_and(|&b| b != b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev<'a>(event: &'a [u8], data: &'a [u8]) -> SseEvent<'a> {
        SseEvent {
            event,
            data,
            id: None,
            retry: None,
            end: 0,
            terminated: true,
        }
    }

    #[test]
    fn content_and_end_detection() {
        let d = Dialect::OpenAi;
        assert!(!d.is_content(&ev(
            b"",
            br#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        )));
        assert!(d.is_content(&ev(b"", br#"{"choices":[{"delta":{"content":"Hi"}}]}"#)));
        assert!(d.is_content(&ev(
            b"",
            br#"{"delta":{"tool_calls":[{"function":{"arguments":"{\""}}]}}"#
        )));
        assert!(d.is_end(&ev(b"", b"[DONE]")));
        let a = Dialect::Anthropic;
        assert!(a.is_content(&ev(b"content_block_delta", b"{}")));
        assert!(a.is_end(&ev(b"message_stop", b"{}")));
        let g = Dialect::Gemini;
        assert!(g.is_content(&ev(
            b"",
            br#"{"candidates": [{"content": {"parts": [{"text": "x"}]}}]}"#
        )));
        assert!(g.is_end(&ev(b"", br#"{"finishReason": "STOP"}"#)));
    }
}
