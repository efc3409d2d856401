//! Bedrock Converse requests ⇄ the normalised form ([`crate::dialect::norm`]).
//!
//! | Converse | normalised |
//! | --- | --- |
//! | `system` text blocks | the system prompt |
//! | `user` content: `text`, `image` (`format`, `source.bytes`), `toolResult` (`text` / `json` content) | a user turn: text, images, tool results |
//! | `assistant` content: `text`, `toolUse` (`input` kept as JSON) | an assistant turn: text, tool calls |
//! | `inferenceConfig`: `maxTokens`, `temperature`, `topP`, `stopSequences` | the same |
//! | `toolConfig.tools[].toolSpec` (`inputSchema.json`), `toolChoice` auto / any / tool | tools, tool choice |
//!
//! Accepted and not carried: `cachePoint` blocks (Bedrock's cache breakpoints; the others
//! cache on their own or not at all), `reasoningContent` blocks in assistant turns (the
//! model's earlier reasoning, opaque elsewhere), `requestMetadata` (tags for AWS's logs).
//! Refused by name: `toolResult` with `status: "error"`, documents, videos, S3 image
//! sources, `guardrailConfig`, `additionalModelRequestFields`, `promptVariables`,
//! `performanceConfig`, and anything else unknown. The stream flag is the route's
//! (`converse-stream`).
//!
//! The writer (a Bedrock deployment serving another dialect's client) merges consecutive
//! turns of one role (Converse requires them to alternate), leaves out empty text, and sends
//! images as bytes (a web URL is refused: Bedrock cannot fetch one). Bedrock has no tool
//! choice `none`: with no tool calls in the conversation the tools are left out, which is
//! faithful; with some, Bedrock requires the tools declared, so they are, without a choice —
//! the one place a translated request is looser than asked. Refused: `n` other than 1,
//! `logprobs`, `store`, `seed`, penalties, `top_k`, a JSON response format,
//! `parallel_tool_calls: false`. The end user's id and an OpenAI reasoning effort are not
//! carried (no field for them).

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{
    Args, Image, Loc, Part, Request, Role, Target, Texts, Tool, ToolChoice, Turn, Untranslatable,
    get, number, only, refuse_unless_neutral, string, write_arguments, write_value,
};
use crate::json;

const KNOWN: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "requestMetadata",
    "modelId",
];

/// Reads a Converse request. `target` names the provider it is translated for.
pub fn read<'v, 'a>(v: Value<'v, 'a>, target: &str) -> Result<Request<'v, 'a>, Untranslatable> {
    only(v, KNOWN, Loc::default(), target)?;
    let messages = get(v, "messages")
        .and_then(|m| m.as_array())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Loc::top("messages").refuse("must be a non-empty array"))?;
    let mut r = Request {
        turns: Vec::with_capacity(messages.len()),
        parts: Vec::with_capacity(messages.len() + 4),
        ..Request::default()
    };
    if let Some(system) = get(v, "system") {
        let blocks = system
            .as_array()
            .ok_or_else(|| Loc::top("system").refuse("must be an array"))?;
        let mut texts = Vec::with_capacity(blocks.len());
        for (j, b) in blocks.iter().enumerate() {
            let at = Loc::listed("system", j, "");
            if get(b, "cachePoint").is_some() {
                continue;
            }
            only(b, &["text"], at, target)?;
            texts.push(string(b, "text", at.with("text"))?.unwrap_or_default());
        }
        r.system = Texts::blocks(texts);
        r.system_loc = Loc::top("system");
    }
    for (i, m) in messages.iter().enumerate() {
        let at = Loc::message(i, "");
        only(m, &["role", "content"], at, target)?;
        let role = match string(m, "role", at.with("role"))? {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            _ => return Err(at.with("role").refuse("must be user or assistant")),
        };
        let blocks = get(m, "content")
            .and_then(|c| c.as_array())
            .ok_or_else(|| at.with("content").refuse("must be an array"))?;
        let start = r.parts.len();
        for (j, b) in blocks.iter().enumerate() {
            if let Some(p) = block(i, j, b, role, target)? {
                r.parts.push(p);
            }
        }
        r.turns.push(Turn {
            role,
            parts: start..r.parts.len(),
            plain: false,
            loc: at,
        });
    }
    if let Some(c) = get(v, "inferenceConfig") {
        let at = Loc::top("inferenceConfig");
        only(
            c,
            &["maxTokens", "temperature", "topP", "stopSequences"],
            at,
            target,
        )?;
        if let Some(x) = get(c, "maxTokens") {
            r.max_tokens = Some(x.as_u64().ok_or_else(|| {
                at.with("maxTokens")
                    .refuse("must be a non-negative integer")
            })?);
        }
        r.temperature = number(c, "temperature")?;
        r.top_p = number(c, "topP")?;
        if let Some(stop) = get(c, "stopSequences") {
            if !stop
                .as_array()
                .is_some_and(|a| a.iter().all(|s| s.into_string().is_some()))
            {
                return Err(at
                    .with("stopSequences")
                    .refuse("must be an array of strings"));
            }
            r.stop = Some(stop);
        }
    }
    if let Some(tc) = get(v, "toolConfig") {
        read_tools(&mut r, tc, target)?;
    }
    Ok(r)
}

fn block<'v, 'a>(
    i: usize,
    j: usize,
    b: Value<'v, 'a>,
    role: Role,
    target: &str,
) -> Result<Option<Part<'v, 'a>>, Untranslatable> {
    let at = Loc::item(i, "content", j, "");
    let Some(obj) = b.as_object() else {
        return Err(at.refuse("must be an object"));
    };
    let Some((k, x)) = obj.iter().find(|(_, x)| x.as_null().is_none()) else {
        return Err(at.refuse("must hold a content block"));
    };
    if obj.len() > 1 {
        return Err(at.refuse("must hold one kind of content"));
    }
    Ok(Some(match (k, role) {
        ("text", _) => Part::Text(
            x.into_string()
                .ok_or_else(|| at.with("text").refuse("must be a string"))?,
        ),
        ("cachePoint", _) | ("reasoningContent", Role::Assistant) => return Ok(None),
        ("image", Role::User) => {
            let loc = at.with("image");
            only(x, &["format", "source"], loc, target)?;
            let format = string(x, "format", loc.with("image.format"))?
                .ok_or_else(|| loc.with("image.format").refuse("is required"))?;
            let source = get(x, "source").ok_or_else(|| loc.refuse("needs a source"))?;
            let data =
                string(source, "bytes", loc.with("image.source.bytes"))?.ok_or_else(|| {
                    loc.with("image.source")
                        .refuse(&format!("must hold bytes to be translated for {target}"))
                })?;
            Part::Image {
                image: Image::Base64 {
                    media_type: media_type(format)
                        .ok_or_else(|| loc.with("image.format").refuse("is not an image format"))?,
                    data,
                },
                loc,
            }
        }
        ("toolUse", Role::Assistant) => {
            let loc = at.with("toolUse");
            only(x, &["toolUseId", "name", "input"], loc, target)?;
            Part::ToolCall {
                id: string(x, "toolUseId", loc.with("toolUse.toolUseId"))?
                    .unwrap_or_default()
                    .into(),
                name: string(x, "name", loc.with("toolUse.name"))?
                    .ok_or_else(|| loc.with("toolUse.name").refuse("is required"))?,
                args: Args::Json(get(x, "input")),
                loc: loc.with("toolUse.input"),
            }
        }
        ("toolResult", Role::User) => {
            let loc = at.with("toolResult.toolUseId");
            only(
                x,
                &["toolUseId", "content", "status"],
                at.with("toolResult"),
                target,
            )?;
            if string(x, "status", at.with("toolResult.status"))? == Some("error") {
                return Err(at
                    .with("toolResult.status")
                    .refuse(&format!("`error` has no equivalent for {target}")));
            }
            let id = string(x, "toolUseId", loc)?.ok_or_else(|| loc.refuse("is required"))?;
            let content = get(x, "content").and_then(|c| c.as_array());
            let mut texts = Vec::new();
            let mut json = None;
            for c in content.iter().flat_map(|c| c.iter()) {
                if let Some(t) = c.get("text").and_then(|t| t.into_string()) {
                    texts.push(t);
                } else if let Some(v) = get(c, "json")
                    && json.is_none()
                    && texts.is_empty()
                {
                    json = Some(v);
                } else {
                    return Err(at
                        .with("toolResult.content")
                        .refuse(&format!("must hold text, or one json block, for {target}")));
                }
            }
            if json.is_some() && !texts.is_empty() {
                return Err(at
                    .with("toolResult.content")
                    .refuse(&format!("must hold text, or one json block, for {target}")));
            }
            Part::ToolResult {
                id: id.into(),
                content: Texts::blocks(texts),
                json,
                loc,
            }
        }
        (other, _) => {
            return Err(at.refuse(&format!(
                "holds `{other}`, which cannot be translated for {target}"
            )));
        }
    }))
}

/// An image `format` → its media type.
fn media_type(format: &str) -> Option<&'static str> {
    Some(match format {
        "png" => "image/png",
        "jpeg" | "jpg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

fn read_tools<'v, 'a>(
    r: &mut Request<'v, 'a>,
    tc: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = Loc::top("toolConfig");
    only(tc, &["tools", "toolChoice"], at, target)?;
    let tools = get(tc, "tools").and_then(|t| t.as_array());
    for (j, t) in tools.iter().flat_map(|t| t.iter()).enumerate() {
        let tat = Loc::listed("toolConfig.tools", j, "");
        if get(t, "cachePoint").is_some() {
            continue;
        }
        only(t, &["toolSpec"], tat, target)?;
        let spec = get(t, "toolSpec").ok_or_else(|| tat.refuse("needs a toolSpec"))?;
        only(
            spec,
            &["name", "description", "inputSchema"],
            tat.with("toolSpec"),
            target,
        )?;
        r.tools.push(Tool {
            name: string(spec, "name", tat.with("toolSpec.name"))?
                .ok_or_else(|| tat.with("toolSpec.name").refuse("is required"))?,
            description: string(spec, "description", tat.with("toolSpec.description"))?,
            parameters: get(spec, "inputSchema").and_then(|s| get(s, "json")),
            openapi: false,
        });
    }
    if let Some(choice) = get(tc, "toolChoice") {
        let cat = Loc::top("toolConfig.toolChoice");
        r.tool_choice = Some(if get(choice, "auto").is_some() {
            ToolChoice::Auto
        } else if get(choice, "any").is_some() {
            ToolChoice::Required
        } else if let Some(t) = get(choice, "tool") {
            ToolChoice::Named(
                string(t, "name", cat.with("tool.name"))?
                    .ok_or_else(|| cat.with("tool.name").refuse("is required"))?,
            )
        } else {
            return Err(cat.refuse("must be auto, any or tool"));
        });
    }
    Ok(())
}

// -------------------------------------------------------------------------------- writer

/// The name refusals use for this dialect as a target.
pub const TARGET: &str = "Bedrock";

/// Writes `r` as a Converse body (the model is in the path).
pub fn write(
    r: &Request<'_, '_>,
    _t: &Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    refuse_unless_neutral(r.n, "n", TARGET, |&n| n == 1)?;
    refuse_unless_neutral(r.store, "store", TARGET, |&s| !s)?;
    refuse_unless_neutral(r.logprobs, "logprobs", TARGET, |&l| !l)?;
    refuse_unless_neutral(r.seed, "seed", TARGET, |_| false)?;
    refuse_unless_neutral(r.top_k, "top_k", TARGET, |_| false)?;
    refuse_unless_neutral(r.parallel_tool_calls, "parallel_tool_calls", TARGET, |&p| p)?;
    refuse_unless_neutral(r.presence_penalty, "presence_penalty", TARGET, |x| {
        x.value == 0.0
    })?;
    refuse_unless_neutral(r.frequency_penalty, "frequency_penalty", TARGET, |x| {
        x.value == 0.0
    })?;
    refuse_unless_neutral(r.response_format, "response_format", TARGET, |f| {
        matches!(f, crate::dialect::norm::ResponseFormat::Text)
    })?;
    out.extend_from_slice(b"{\"messages\":[");
    let mut last: Option<Role> = None;
    for turn in &r.turns {
        let parts: Vec<&Part<'_, '_>> = r
            .parts_of(turn)
            .iter()
            .filter(|p| !matches!(p, Part::Text(s) if s.is_empty()))
            .collect();
        if parts.is_empty() {
            continue;
        }
        if last == Some(turn.role) {
            // The same role again: its blocks join the open message.
            out.push(b',');
        } else {
            if last.is_some() {
                out.extend_from_slice(b"]},");
            }
            out.extend_from_slice(match turn.role {
                Role::User => b"{\"role\":\"user\",\"content\":[",
                Role::Assistant => b"{\"role\":\"assistant\",\"content\":[",
            });
        }
        last = Some(turn.role);
        // Tool results answer the turn before: they go first.
        let mut ordered = parts.clone();
        ordered.sort_by_key(|p| !matches!(p, Part::ToolResult { .. }));
        for (n, p) in ordered.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            block_out(p, out)?;
        }
    }
    if last.is_some() {
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if !r.system.is_empty() {
        out.extend_from_slice(b",\"system\":[");
        for (j, text) in r.system.as_slice().iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":");
            json::string(out, text.as_bytes());
            out.push(b'}');
        }
        out.push(b']');
    }
    let mut config = Vec::new();
    if let Some(n) = r.max_tokens {
        config.extend_from_slice(b",\"maxTokens\":");
        json::uint(&mut config, n);
    }
    for (k, x) in [("temperature", r.temperature), ("topP", r.top_p)] {
        if let Some(x) = x {
            config.extend_from_slice(b",\"");
            config.extend_from_slice(k.as_bytes());
            config.extend_from_slice(b"\":");
            write_value(&mut config, x.raw);
        }
    }
    if let Some(stop) = r.stop {
        config.extend_from_slice(b",\"stopSequences\":");
        if stop.into_string().is_some() {
            config.push(b'[');
            write_value(&mut config, stop);
            config.push(b']');
        } else {
            write_value(&mut config, stop);
        }
    }
    if !config.is_empty() {
        out.extend_from_slice(b",\"inferenceConfig\":{");
        out.extend_from_slice(&config[1..]);
        out.push(b'}');
    }
    let has_calls = r
        .parts
        .iter()
        .any(|p| matches!(p, Part::ToolCall { .. } | Part::ToolResult { .. }));
    let forbid = r.tool_choice == Some(ToolChoice::None);
    if !r.tools.is_empty() && (!forbid || has_calls) {
        out.extend_from_slice(b",\"toolConfig\":{\"tools\":[");
        for (i, tool) in r.tools.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"toolSpec\":{\"name\":");
            json::string(out, tool.name.as_bytes());
            if let Some(d) = tool.description {
                out.extend_from_slice(b",\"description\":");
                json::string(out, d.as_bytes());
            }
            out.extend_from_slice(b",\"inputSchema\":{\"json\":");
            match tool.parameters {
                Some(p) => crate::dialect::norm::write_schema(out, p, tool.openapi),
                None => out.extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
            }
            out.extend_from_slice(b"}}}");
        }
        out.push(b']');
        match r.tool_choice {
            None | Some(ToolChoice::None) => {}
            Some(ToolChoice::Auto) => out.extend_from_slice(b",\"toolChoice\":{\"auto\":{}}"),
            Some(ToolChoice::Required) => out.extend_from_slice(b",\"toolChoice\":{\"any\":{}}"),
            Some(ToolChoice::Named(n)) => {
                out.extend_from_slice(b",\"toolChoice\":{\"tool\":{\"name\":");
                json::string(out, n.as_bytes());
                out.extend_from_slice(b"}}");
            }
        }
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

fn block_out(p: &Part<'_, '_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    match p {
        Part::Text(s) => {
            out.extend_from_slice(b"{\"text\":");
            json::string(out, s.as_bytes());
            out.push(b'}');
        }
        Part::Image { image, loc } => match image {
            Image::Base64 { media_type, data } => {
                let format = media_type.strip_prefix("image/").unwrap_or(media_type);
                out.extend_from_slice(b"{\"image\":{\"format\":");
                json::string(out, format.as_bytes());
                out.extend_from_slice(b",\"source\":{\"bytes\":");
                json::string(out, data.as_bytes());
                out.extend_from_slice(b"}}}");
            }
            Image::Url(_) => {
                return Err(
                    loc.refuse("must be a base64 data URL for Bedrock (it cannot fetch web URLs)")
                );
            }
        },
        Part::ToolCall {
            id,
            name,
            args,
            loc,
        } => {
            out.extend_from_slice(b"{\"toolUse\":{\"toolUseId\":");
            json::string(out, id.as_bytes());
            out.extend_from_slice(b",\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"input\":");
            write_arguments(args, *loc, out)?;
            out.extend_from_slice(b"}}");
        }
        Part::ToolResult {
            id, content, json, ..
        } => {
            out.extend_from_slice(b"{\"toolResult\":{\"toolUseId\":");
            json::string(out, id.as_bytes());
            out.extend_from_slice(b",\"content\":[");
            match json {
                Some(v) => {
                    out.extend_from_slice(b"{\"json\":");
                    write_value(out, *v);
                    out.push(b'}');
                }
                None => {
                    out.extend_from_slice(b"{\"text\":");
                    json::string(out, content.joined().as_bytes());
                    out.push(b'}');
                }
            }
            out.extend_from_slice(b"]}}");
        }
    }
    Ok(())
}
