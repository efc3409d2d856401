//! Whole `generateContent` answers → the normalised [`Answer`]: `candidates[0]` text parts
//! (thoughts left out), `functionCall` parts, `finishReason`.

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::stream::finish_from;
use crate::dialect::norm::{Answer, AnswerCall, Args, str_of};

/// Reads a `generateContent` response.
pub fn read<'v, 'a>(v: Value<'v, 'a>) -> Result<Answer<'v, 'a>, String> {
    let candidate = v
        .get("candidates")
        .and_then(|c| c.as_array())
        .and_then(|c| c.get(0));
    if candidate.is_none() && v.get("usageMetadata").is_none() {
        return Err("the provider's response has no `candidates`".into());
    }
    let mut answer = Answer {
        id: str_of(v, "responseId").unwrap_or("gemini"),
        model: str_of(v, "modelVersion").unwrap_or(""),
        text: Vec::new(),
        calls: Vec::new(),
        finish: super::super::norm::Finish::Stop,
    };
    let parts = candidate
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
        .and_then(|p| p.as_array());
    for p in parts.iter().flat_map(|p| p.iter()) {
        if p.get("thought").and_then(|t| t.as_bool()) == Some(true) {
            continue;
        }
        answer.text.extend(str_of(p, "text"));
        if let Some(call) = p.get("functionCall") {
            answer.calls.push(AnswerCall {
                id: str_of(call, "id"),
                name: str_of(call, "name").unwrap_or(""),
                args: Args::Json(call.get("args")),
            });
        }
    }
    let reason = candidate
        .and_then(|c| str_of(c, "finishReason"))
        .unwrap_or("STOP");
    answer.finish = finish_from(reason.as_bytes(), !answer.calls.is_empty());
    Ok(answer)
}
