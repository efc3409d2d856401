//! `streamGenerateContent?alt=sse` chunks → normalised events ([`crate::dialect::norm::Event`]).
//!
//! | chunk | normalised |
//! | --- | --- |
//! | the first chunk (`responseId`, `modelVersion`) | `Start` |
//! | `candidates[0].content.parts[]` text (not thoughts) | `Text` |
//! | a `functionCall` part (`name`, `args`, maybe `id`) | `ToolCall` with the whole arguments |
//! | `finishReason` (`STOP` with a call → tool calls, `MAX_TOKENS` → length, safety → content filter) | `Finish` |
//! | `{"error":{…}}` | `Error` |
//!
//! Gemini has no end marker: the stream ends with the body ([`Reader::ENDS_WITH_BODY`]).

use crate::dialect::norm::{Event, Finish, safe_raw, str_member, value_member};
use crate::json::scan::elements;

/// `finishReason` → normalised (`tool`: the answer called a function, which Gemini reports as
/// `STOP`).
pub fn finish_from(reason: &[u8], tool: bool) -> Finish {
    match reason {
        b"MAX_TOKENS" => Finish::Length,
        b"SAFETY"
        | b"RECITATION"
        | b"BLOCKLIST"
        | b"PROHIBITED_CONTENT"
        | b"SPII"
        | b"IMAGE_SAFETY" => Finish::ContentFilter,
        _ if tool => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

/// Reads one stream's chunks into events.
#[derive(Debug, Default)]
pub struct Reader {
    started: bool,
    /// Function calls read so far (the next one's index).
    calls: u64,
}

impl Reader {
    /// The stream ends with the body: there is no end event.
    pub const ENDS_WITH_BODY: bool = true;

    pub fn read<'a>(&mut self, data: &'a [u8], emit: &mut impl FnMut(Event<'a>)) {
        if let Some(err) = value_member(data, b"error").filter(|e| e.first() == Some(&b'{')) {
            emit(Event::Error {
                message: str_member(err, b"message").unwrap_or(b"the provider reported an error"),
                kind: str_member(err, b"status").unwrap_or_default(),
            });
            return;
        }
        if !std::mem::replace(&mut self.started, true) {
            emit(Event::Start {
                id: str_member(data, b"responseId").unwrap_or_default(),
                model: str_member(data, b"modelVersion").unwrap_or_default(),
            });
        }
        let Some(candidate) =
            value_member(data, b"candidates").and_then(|c| elements(c).next().map(|r| &c[r]))
        else {
            return;
        };
        if let Some(parts) =
            value_member(candidate, b"content").and_then(|c| value_member(c, b"parts"))
        {
            for r in elements(parts) {
                let part = &parts[r];
                if value_member(part, b"thought") == Some(b"true") {
                    continue;
                }
                if let Some(text) = str_member(part, b"text").filter(|t| !t.is_empty()) {
                    emit(Event::Text(text));
                }
                if let Some(call) = value_member(part, b"functionCall") {
                    let index = self.calls;
                    self.calls += 1;
                    emit(Event::ToolCall {
                        index,
                        id: str_member(call, b"id").filter(|i| safe_raw(i)),
                        name: str_member(call, b"name").unwrap_or_default(),
                        args: Some(value_member(call, b"args").unwrap_or(b"{}")),
                    });
                }
            }
        }
        if let Some(reason) = str_member(candidate, b"finishReason") {
            emit(Event::Finish(finish_from(reason, self.calls > 0)));
        }
    }
}
