//! Whole `chat.completion` answers ⇄ the normalised [`Answer`]: `choices[0].message` content
//! (or refusal) and `tool_calls` (`arguments` kept as the string), `finish_reason`. The writer
//! writes a `chat.completion` with usage from the meter.

use simd_json::prelude::*;
use simd_json::tape::Value;

use super::stream::{finish_from, finish_name, write_usage};
use crate::dialect::norm::{Answer, AnswerCall, Args, json_as_string, str_of};
use crate::json;
use crate::usage::Observed;

/// Reads a `chat.completion`.
pub fn read<'v, 'a>(v: Value<'v, 'a>) -> Result<Answer<'v, 'a>, String> {
    let choice = v
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.get(0))
        .ok_or("the provider's response has no `choices`")?;
    let message = choice
        .get("message")
        .ok_or("the provider's response has no `message`")?;
    let text = str_of(message, "content")
        .or_else(|| str_of(message, "refusal"))
        .unwrap_or("");
    let mut answer = Answer {
        id: str_of(v, "id").unwrap_or("msg"),
        model: str_of(v, "model").unwrap_or(""),
        text: vec![text],
        calls: Vec::new(),
        finish: finish_from(str_of(choice, "finish_reason").unwrap_or("stop").as_bytes()),
    };
    let calls = message.get("tool_calls").and_then(|c| c.as_array());
    for call in calls.iter().flat_map(|c| c.iter()) {
        let f = call.get("function");
        answer.calls.push(AnswerCall {
            id: str_of(call, "id").or(Some("")),
            name: f.and_then(|f| str_of(f, "name")).unwrap_or(""),
            args: Args::Text(f.and_then(|f| str_of(f, "arguments")).unwrap_or("")),
        });
    }
    Ok(answer)
}

/// Writes `a` as a `chat.completion` created at `created`.
pub fn write(a: &Answer<'_, '_>, o: &Observed, created: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    json::string(out, a.id.as_bytes());
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    json::uint(out, created);
    out.extend_from_slice(b",\"model\":");
    json::string(out, a.model.as_bytes());
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    let text = a.text.concat();
    if text.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json::string(out, text.as_bytes());
    }
    for (n, call) in a.calls.iter().enumerate() {
        out.extend_from_slice(if n == 0 { b",\"tool_calls\":[" } else { b"," });
        out.extend_from_slice(b"{\"id\":");
        match call.id {
            Some(id) => json::string(out, id.as_bytes()),
            None => json::string(out, format!("call_{n}").as_bytes()),
        }
        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
        json::string(out, call.name.as_bytes());
        out.extend_from_slice(b",\"arguments\":");
        match call.args {
            Args::Json(v) => json_as_string(out, v),
            Args::Text(t) => json::string(out, t.as_bytes()),
        }
        out.extend_from_slice(b"}}");
    }
    if !a.calls.is_empty() {
        out.push(b']');
    }
    out.extend_from_slice(b",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"");
    out.extend_from_slice(finish_name(a.finish));
    out.extend_from_slice(b"\"}],");
    write_usage(out, &o.usage);
    out.push(b'}');
}
