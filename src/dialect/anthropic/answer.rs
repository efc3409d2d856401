//! Whole Messages answers ⇄ the normalised [`Answer`]: `content` text blocks and `tool_use`
//! blocks (`input` kept as JSON), `stop_reason`. The writer writes a `message` with usage from
//! the meter (`input_tokens` the uncached part).

use simd_json::tape::Value;

use super::stream::{finish_from, stop_reason, write_usage};
use crate::dialect::norm::{Answer, AnswerCall, Args, str_of, write_args_object};
use crate::json;
use crate::usage::Observed;

/// Reads a `message`.
pub fn read<'v, 'a>(v: Value<'v, 'a>) -> Result<Answer<'v, 'a>, String> {
    let content = v
        .get("content")
        .and_then(|c| c.as_array())
        .ok_or("the provider's response has no `content` array")?;
    let mut answer = Answer {
        id: str_of(v, "id").unwrap_or("msg"),
        model: str_of(v, "model").unwrap_or(""),
        text: Vec::new(),
        calls: Vec::new(),
        finish: finish_from(str_of(v, "stop_reason").unwrap_or("end_turn").as_bytes()),
    };
    for b in content.iter() {
        match str_of(b, "type") {
            Some("text") => answer.text.extend(str_of(b, "text")),
            Some("tool_use") => answer.calls.push(AnswerCall {
                id: str_of(b, "id").or(Some("")),
                name: str_of(b, "name").unwrap_or(""),
                args: Args::Json(b.get("input")),
            }),
            _ => {}
        }
    }
    Ok(answer)
}

/// Writes `a` as a `message`.
pub fn write(a: &Answer<'_, '_>, o: &Observed, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    json::string(out, a.id.as_bytes());
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    json::string(out, a.model.as_bytes());
    out.extend_from_slice(b",\"content\":[");
    let mut n = 0;
    let text = a.text.concat();
    if !text.is_empty() {
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        json::string(out, text.as_bytes());
        out.push(b'}');
        n += 1;
    }
    for (j, call) in a.calls.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        n += 1;
        out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
        match call.id.filter(|i| !i.is_empty()) {
            Some(id) => json::string(out, id.as_bytes()),
            // A provider without call ids (Gemini): one made up, for the result.
            None => json::string(out, format!("toolu_{j}").as_bytes()),
        }
        out.extend_from_slice(b",\"name\":");
        json::string(out, call.name.as_bytes());
        out.extend_from_slice(b",\"input\":");
        write_args_object(out, &call.args);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"stop_reason\":\"");
    out.extend_from_slice(stop_reason(a.finish));
    out.extend_from_slice(b"\",\"stop_sequence\":null,");
    write_usage(out, &o.usage);
    out.push(b'}');
}
