//! Whole Converse answers ⇄ the normalised [`Answer`]: `output.message.content` text and
//! `toolUse` blocks (`reasoningContent` skipped), `stopReason`. The writer writes usage from
//! the meter in Bedrock's terms (`inputTokens` is the uncached input).

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{Answer, AnswerCall, Args, Finish, str_of, write_args_object};
use crate::json;
use crate::usage::{Observed, Usage};

/// `stopReason` → normalised.
pub fn finish_from(reason: &[u8]) -> Finish {
    match reason {
        b"tool_use" => Finish::ToolCalls,
        b"max_tokens" => Finish::Length,
        b"guardrail_intervened" | b"content_filtered" => Finish::ContentFilter,
        _ => Finish::Stop,
    }
}

/// Normalised → `stopReason`.
pub fn stop_reason(f: Finish) -> &'static [u8] {
    match f {
        Finish::Stop => b"end_turn",
        Finish::ToolCalls => b"tool_use",
        Finish::Length => b"max_tokens",
        Finish::ContentFilter => b"content_filtered",
    }
}

/// Reads a `converse` answer.
pub fn read<'v, 'a>(v: Value<'v, 'a>) -> Result<Answer<'v, 'a>, String> {
    let content = v
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(|c| c.as_array())
        .ok_or("the provider's response has no `output.message.content`")?;
    let mut answer = Answer {
        id: "bedrock",
        model: "",
        text: Vec::new(),
        calls: Vec::new(),
        finish: finish_from(str_of(v, "stopReason").unwrap_or("end_turn").as_bytes()),
    };
    for b in content.iter() {
        answer.text.extend(str_of(b, "text"));
        if let Some(t) = b.get("toolUse") {
            answer.calls.push(AnswerCall {
                id: str_of(t, "toolUseId"),
                name: str_of(t, "name").unwrap_or(""),
                args: Args::Json(t.get("input")),
            });
        }
    }
    Ok(answer)
}

/// `"usage":{…}` in Bedrock's terms.
pub fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    let uncached = u
        .input_tokens
        .saturating_sub(u.cache_read_tokens + u.cache_creation_tokens);
    out.extend_from_slice(b"\"usage\":{\"inputTokens\":");
    json::uint(out, uncached);
    out.extend_from_slice(b",\"outputTokens\":");
    json::uint(out, u.output_tokens);
    out.extend_from_slice(b",\"totalTokens\":");
    json::uint(out, u.input_tokens + u.output_tokens);
    if u.cache_read_tokens > 0 {
        out.extend_from_slice(b",\"cacheReadInputTokens\":");
        json::uint(out, u.cache_read_tokens);
    }
    if u.cache_creation_tokens > 0 {
        out.extend_from_slice(b",\"cacheWriteInputTokens\":");
        json::uint(out, u.cache_creation_tokens);
    }
    out.push(b'}');
}

/// Writes `a` as a `converse` answer. Arguments that are not a JSON object (`input` must be
/// one) are kept as text: `{"arguments": "…"}`, as for Anthropic clients.
pub fn write(a: &Answer<'_, '_>, o: &Observed, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[");
    let text = a.text.concat();
    let mut first = true;
    if !text.is_empty() || a.calls.is_empty() {
        first = false;
        out.extend_from_slice(b"{\"text\":");
        json::string(out, text.as_bytes());
        out.push(b'}');
    }
    for (n, call) in a.calls.iter().enumerate() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"toolUse\":{\"toolUseId\":");
        match call.id.filter(|i| !i.is_empty()) {
            Some(i) => json::string(out, i.as_bytes()),
            None => json::string(out, format!("call_{n}").as_bytes()),
        }
        out.extend_from_slice(b",\"name\":");
        json::string(out, call.name.as_bytes());
        out.extend_from_slice(b",\"input\":");
        write_args_object(out, &call.args);
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}},\"stopReason\":\"");
    out.extend_from_slice(stop_reason(a.finish));
    out.extend_from_slice(b"\",");
    write_usage(out, &o.usage);
    out.extend_from_slice(b",\"metrics\":{\"latencyMs\":0}}");
}
