//! Whole `generateContent` answers → the normalised [`Answer`]: `candidates[0]` text parts
//! (thoughts left out), `functionCall` parts, `finishReason`.

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::stream::finish_from;
use crate::dialect::norm::{Answer, AnswerCall, Args, Finish, str_of, write_args_object};
use crate::json;
use crate::usage::{Observed, Usage};

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

/// `finishReason` for a normalised finish.
pub fn finish_name(f: Finish) -> &'static [u8] {
    match f {
        Finish::Stop | Finish::ToolCalls => b"STOP",
        Finish::Length => b"MAX_TOKENS",
        Finish::ContentFilter => b"SAFETY",
    }
}

/// `"usageMetadata":{…}` (prompt includes cached tokens; candidates exclude thoughts).
pub fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"\"usageMetadata\":{\"promptTokenCount\":");
    json::uint(out, u.input_tokens);
    out.extend_from_slice(b",\"candidatesTokenCount\":");
    json::uint(out, u.output_tokens.saturating_sub(u.reasoning_tokens));
    out.extend_from_slice(b",\"totalTokenCount\":");
    json::uint(out, u.input_tokens + u.output_tokens);
    if u.cache_read_tokens > 0 {
        out.extend_from_slice(b",\"cachedContentTokenCount\":");
        json::uint(out, u.cache_read_tokens);
    }
    if u.reasoning_tokens > 0 {
        out.extend_from_slice(b",\"thoughtsTokenCount\":");
        json::uint(out, u.reasoning_tokens);
    }
    out.push(b'}');
}

/// A `functionCall` part; `args` is the arguments object's JSON.
pub fn write_call(out: &mut Vec<u8>, id: &[u8], name: &[u8], args: &[u8]) {
    out.extend_from_slice(b"{\"functionCall\":{\"id\":");
    json::string(out, id);
    out.extend_from_slice(b",\"name\":");
    json::string(out, name);
    out.extend_from_slice(b",\"args\":");
    out.extend_from_slice(args);
    out.extend_from_slice(b"}}");
}

/// Writes `a` as a `generateContent` response. Arguments that are not a JSON object (Gemini's
/// `args` must be one) are kept as text: `{"arguments": "…"}`, as for Anthropic clients.
pub fn write(a: &Answer<'_, '_>, o: &Observed, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"candidates\":[{\"content\":{\"parts\":[");
    let text = a.text.concat();
    let mut first = true;
    if !text.is_empty() || a.calls.is_empty() {
        first = false;
        out.extend_from_slice(b"{\"text\":");
        json::string(out, text.as_bytes());
        out.push(b'}');
    }
    let mut args = Vec::new();
    for (n, call) in a.calls.iter().enumerate() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        args.clear();
        write_args_object(&mut args, &call.args);
        let id = match call.id.filter(|i| !i.is_empty()) {
            Some(i) => i.to_owned(),
            None => format!("call_{n}"),
        };
        write_call(out, id.as_bytes(), call.name.as_bytes(), &args);
    }
    out.extend_from_slice(b"],\"role\":\"model\"},\"finishReason\":\"");
    out.extend_from_slice(finish_name(a.finish));
    out.extend_from_slice(b"\",\"index\":0}],");
    write_usage(out, &o.usage);
    out.extend_from_slice(b",\"modelVersion\":");
    json::string(out, a.model.as_bytes());
    out.extend_from_slice(b",\"responseId\":");
    json::string(out, a.id.as_bytes());
    out.push(b'}');
}
