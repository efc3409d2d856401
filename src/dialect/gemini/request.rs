//! The normalised form ([`crate::dialect::norm`]) → a Gemini `generateContent` request.
//!
//! | normalised | Gemini |
//! | --- | --- |
//! | the system prompt | `systemInstruction.parts` |
//! | user turns: text, base64 images | `user` contents: `text`, `inlineData` (web URLs refused: Gemini cannot fetch them) |
//! | assistant turns: text, tool calls | `model` contents: `text`, `functionCall` (arguments parsed) |
//! | tool results | `functionResponse` parts (the function's name found from the call's id) |
//! | max tokens, temperature, top p, top k, stop, seed, penalties | `generationConfig` |
//! | `response_format` json_object / json_schema | `responseMimeType` (+ `responseJsonSchema`) |
//! | tools, tool choice | `functionDeclarations` (`parametersJsonSchema`), `toolConfig` |
//!
//! Refused: `n` other than 1, `logprobs`, `store`, `parallel_tool_calls`. The end user's id is
//! dropped (an abuse-monitoring id Gemini has no field for).

use simd_json::prelude::*;

use crate::dialect::norm::{
    Image, Part, Request, ResponseFormat, Role, Target, ToolChoice, Untranslatable,
    refuse_unless_neutral, write_tool_name, write_value,
};
use crate::json;

/// The name refusals use for this dialect as a target.
pub const TARGET: &str = "Gemini";

/// `"key":` after a comma unless first.
fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Writes `r` as a `generateContent` body (the model is in the path, not the body).
pub fn write(
    r: &Request<'_, '_>,
    _t: &Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    refuse_unless_neutral(r.n, "n", TARGET, |&n| n == 1)?;
    refuse_unless_neutral(r.store, "store", TARGET, |&s| !s)?;
    refuse_unless_neutral(r.logprobs, "logprobs", TARGET, |&l| !l)?;
    refuse_unless_neutral(r.parallel_tool_calls, "parallel_tool_calls", TARGET, |_| {
        false
    })?;
    out.push(b'{');
    let mut top = true;
    if !r.system.is_empty() {
        key(out, &mut top, "systemInstruction");
        out.extend_from_slice(b"{\"parts\":[");
        for (j, text) in r.system.as_slice().iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":");
            json::string(out, text.as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    key(out, &mut top, "contents");
    out.push(b'[');
    let mut first = true;
    for turn in &r.turns {
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(match turn.role {
            Role::User => b"{\"role\":\"user\",\"parts\":[",
            Role::Assistant => b"{\"role\":\"model\",\"parts\":[",
        });
        let mut parts = 0;
        for p in r.parts_of(turn) {
            if turn.role == Role::Assistant && matches!(p, Part::Text(s) if s.is_empty()) {
                continue;
            }
            if parts > 0 {
                out.push(b',');
            }
            parts += 1;
            part(r, p, out)?;
        }
        if parts == 0 && turn.role == Role::Assistant {
            out.truncate(mark);
        } else {
            first = false;
            out.extend_from_slice(b"]}");
        }
    }
    out.push(b']');
    generation_config(r, &mut top, out)?;
    if !r.tools.is_empty() {
        key(out, &mut top, "tools");
        out.extend_from_slice(b"[{\"functionDeclarations\":[");
        for (i, tool) in r.tools.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            write_tool_name(out, tool);
            if let Some(p) = tool.parameters {
                out.extend_from_slice(b",\"parametersJsonSchema\":");
                write_value(out, p);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}]");
    }
    if let Some(choice) = r.tool_choice {
        key(out, &mut top, "toolConfig");
        out.extend_from_slice(b"{\"functionCallingConfig\":{\"mode\":");
        match choice {
            ToolChoice::Auto => out.extend_from_slice(b"\"AUTO\""),
            ToolChoice::None => out.extend_from_slice(b"\"NONE\""),
            ToolChoice::Required => out.extend_from_slice(b"\"ANY\""),
            ToolChoice::Named(n) => {
                out.extend_from_slice(b"\"ANY\",\"allowedFunctionNames\":[");
                json::string(out, n.as_bytes());
                out.push(b']');
            }
        }
        out.extend_from_slice(b"}}");
    }
    out.push(b'}');
    Ok(())
}

fn part(r: &Request<'_, '_>, p: &Part<'_, '_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    match p {
        Part::Text(s) => {
            out.extend_from_slice(b"{\"text\":");
            json::string(out, s.as_bytes());
            out.push(b'}');
        }
        Part::Image { image, loc } => match image {
            Image::Base64 { media_type, data } => {
                out.extend_from_slice(b"{\"inlineData\":{\"mimeType\":");
                json::string(out, media_type.as_bytes());
                out.extend_from_slice(b",\"data\":");
                json::string(out, data.as_bytes());
                out.extend_from_slice(b"}}");
            }
            Image::Url(_) => {
                return Err(
                    loc.refuse("must be a base64 data URL for Gemini (it cannot fetch web URLs)")
                );
            }
        },
        Part::ToolCall {
            name, args, loc, ..
        } => {
            out.extend_from_slice(b"{\"functionCall\":{\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"args\":");
            crate::dialect::norm::write_arguments(args, *loc, out)?;
            out.extend_from_slice(b"}}");
        }
        Part::ToolResult { id, content, loc } => {
            // Gemini answers a call by the function's name: the call with this id names it.
            let name = r
                .parts
                .iter()
                .find_map(|p| match p {
                    Part::ToolCall { id: cid, name, .. } if cid == id => Some(*name),
                    _ => None,
                })
                .ok_or_else(|| {
                    loc.refuse(
                        "does not match a tool call earlier in the conversation (Gemini needs \
                         the function's name)",
                    )
                })?;
            out.extend_from_slice(b"{\"functionResponse\":{\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"response\":{\"content\":");
            json::string(out, content.joined().as_bytes());
            out.extend_from_slice(b"}}}");
        }
    }
    Ok(())
}

fn generation_config(
    r: &Request<'_, '_>,
    top: &mut bool,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    let mut config = Vec::new();
    let mut first = true;
    if let Some(n) = r.max_tokens {
        key(&mut config, &mut first, "maxOutputTokens");
        json::uint(&mut config, n);
    }
    for (name, x) in [
        ("temperature", r.temperature),
        ("topP", r.top_p),
        ("topK", r.top_k),
        ("presencePenalty", r.presence_penalty),
        ("frequencyPenalty", r.frequency_penalty),
        ("seed", r.seed),
    ] {
        if let Some(x) = x {
            key(&mut config, &mut first, name);
            write_value(&mut config, x.raw);
        }
    }
    if let Some(stop) = r.stop {
        key(&mut config, &mut first, "stopSequences");
        if stop.into_string().is_some() {
            config.push(b'[');
            write_value(&mut config, stop);
            config.push(b']');
        } else {
            write_value(&mut config, stop);
        }
    }
    match r.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            key(&mut config, &mut first, "responseMimeType");
            config.extend_from_slice(b"\"application/json\"");
        }
        Some(ResponseFormat::JsonSchema(schema)) => {
            key(&mut config, &mut first, "responseMimeType");
            config.extend_from_slice(b"\"application/json\"");
            key(&mut config, &mut first, "responseJsonSchema");
            write_value(&mut config, schema);
        }
    }
    if !config.is_empty() {
        key(out, top, "generationConfig");
        out.push(b'{');
        out.extend_from_slice(&config);
        out.push(b'}');
    }
    Ok(())
}
