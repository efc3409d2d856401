//! Whole Responses API answers (`object: "response"`) ⇄ the normalised [`Answer`].
//!
//! Read: `output` items in order — a `message`'s `output_text` (or `refusal`) parts, each
//! `function_call` (`call_id`, `name`, `arguments` kept as the string); `reasoning` items are
//! skipped (opaque to other dialects). The finish reason comes from `status` and
//! `incomplete_details.reason`.
//!
//! Written: a completed (or, cut short, `incomplete`) response with one `message` item holding
//! the text and a `function_call` item per call, usage from the meter (input includes cached
//! tokens, output includes reasoning tokens, as the API counts them).

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{Answer, AnswerCall, Args, Finish, json_as_string, str_of};
use crate::json;
use crate::usage::{Observed, Usage};

/// Reads a Responses API `response` object.
pub fn read<'v, 'a>(v: Value<'v, 'a>) -> Result<Answer<'v, 'a>, String> {
    let output = v
        .get("output")
        .and_then(|o| o.as_array())
        .ok_or("the provider's response has no `output`")?;
    let mut answer = Answer {
        id: str_of(v, "id").unwrap_or("resp"),
        model: str_of(v, "model").unwrap_or(""),
        text: Vec::new(),
        calls: Vec::new(),
        finish: Finish::Stop,
    };
    for item in output.iter() {
        match str_of(item, "type") {
            Some("message") => {
                let parts = item.get("content").and_then(|c| c.as_array());
                for p in parts.iter().flat_map(|p| p.iter()) {
                    answer
                        .text
                        .extend(str_of(p, "text").or_else(|| str_of(p, "refusal")));
                }
            }
            Some("function_call") => answer.calls.push(AnswerCall {
                id: str_of(item, "call_id"),
                name: str_of(item, "name").unwrap_or(""),
                args: Args::Text(str_of(item, "arguments").unwrap_or("")),
            }),
            _ => {}
        }
    }
    let reason = v
        .get("incomplete_details")
        .and_then(|d| str_of(d, "reason"));
    answer.finish = finish_from(
        str_of(v, "status").unwrap_or("completed").as_bytes(),
        reason.map(str::as_bytes),
        !answer.calls.is_empty(),
    );
    Ok(answer)
}

/// `status` and `incomplete_details.reason` → normalised.
pub fn finish_from(status: &[u8], reason: Option<&[u8]>, calls: bool) -> Finish {
    match (status, reason) {
        (b"incomplete", Some(b"content_filter")) => Finish::ContentFilter,
        (b"incomplete", _) => Finish::Length,
        _ if calls => Finish::ToolCalls,
        _ => Finish::Stop,
    }
}

/// `status` and `incomplete_details` for a normalised finish.
pub fn write_status(out: &mut Vec<u8>, f: Finish) {
    out.extend_from_slice(match f {
        Finish::Length => {
            b"\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}"
                .as_slice()
        }
        Finish::ContentFilter => {
            b"\"status\":\"incomplete\",\"incomplete_details\":{\"reason\":\"content_filter\"}"
        }
        Finish::Stop | Finish::ToolCalls => b"\"status\":\"completed\",\"incomplete_details\":null",
    });
}

/// `"usage":{…}` as the Responses API writes it.
pub fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"\"usage\":{\"input_tokens\":");
    json::uint(out, u.input_tokens);
    out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
    json::uint(out, u.cache_read_tokens);
    out.extend_from_slice(b"},\"output_tokens\":");
    json::uint(out, u.output_tokens);
    out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
    json::uint(out, u.reasoning_tokens);
    out.extend_from_slice(b"},\"total_tokens\":");
    json::uint(out, u.input_tokens + u.output_tokens);
    out.push(b'}');
}

/// The members every response object carries before its `output` (`id` and `model` are raw
/// JSON string contents).
pub fn write_head(out: &mut Vec<u8>, id: &[u8], model: &[u8], created: u64, f: Option<Finish>) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\",\"object\":\"response\",\"created_at\":");
    json::uint(out, created);
    out.push(b',');
    match f {
        Some(f) => write_status(out, f),
        None => out.extend_from_slice(b"\"status\":\"in_progress\",\"incomplete_details\":null"),
    }
    out.extend_from_slice(b",\"error\":null,\"model\":\"");
    out.extend_from_slice(model);
    out.extend_from_slice(
        b"\",\"parallel_tool_calls\":true,\"tool_choice\":\"auto\",\"tools\":[],\"store\":false,\"output\":",
    );
}

/// Writes `a` as a `response` object created at `created`.
pub fn write(a: &Answer<'_, '_>, o: &Observed, created: u64, out: &mut Vec<u8>) {
    let mut id = Vec::with_capacity(a.id.len() + 2);
    json::string(&mut id, a.id.as_bytes());
    let mut model = Vec::with_capacity(a.model.len() + 2);
    json::string(&mut model, a.model.as_bytes());
    let unquote = |s: &[u8]| s[1..s.len() - 1].to_vec();
    let id = unquote(&id);
    write_head(out, &id, &unquote(&model), created, Some(a.finish));
    out.push(b'[');
    let text = a.text.concat();
    let mut first = true;
    if !text.is_empty() || a.calls.is_empty() {
        first = false;
        out.extend_from_slice(b"{\"type\":\"message\",\"id\":\"msg_");
        out.extend_from_slice(&id);
        out.extend_from_slice(
            b"\",\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":",
        );
        json::string(out, text.as_bytes());
        out.extend_from_slice(b",\"annotations\":[]}]}");
    }
    for (n, call) in a.calls.iter().enumerate() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"function_call\",\"id\":\"fc_");
        json::uint(out, n as u64);
        out.extend_from_slice(b"\",\"call_id\":");
        match call.id.filter(|i| !i.is_empty()) {
            Some(i) => json::string(out, i.as_bytes()),
            None => json::string(out, format!("call_{n}").as_bytes()),
        }
        out.extend_from_slice(b",\"name\":");
        json::string(out, call.name.as_bytes());
        out.extend_from_slice(b",\"arguments\":");
        match call.args {
            Args::Json(v) => json_as_string(out, v),
            Args::Text(t) => json::string(out, t.as_bytes()),
        }
        out.extend_from_slice(b",\"status\":\"completed\"}");
    }
    out.extend_from_slice(b"],");
    write_usage(out, &o.usage);
    out.push(b'}');
}
