//! Anthropic Messages requests ⇄ the normalised form ([`crate::dialect::norm`]).
//!
//! | Messages | normalised |
//! | --- | --- |
//! | `system` (a string or text blocks) | the system prompt |
//! | `user` content: a string, or `text` / `image` (base64 or url source) / `tool_result` blocks | a user turn: text, images, tool results |
//! | `assistant` content: a string, or `text` / `tool_use` blocks (`input` kept as JSON) | an assistant turn: text, tool calls |
//! | `max_tokens` (required here) | max tokens |
//! | `stop_sequences` | stop sequences |
//! | `tool_choice` auto / any / none / tool, `disable_parallel_tool_use` | tool choice, parallel calls |
//! | `metadata.user_id` | user |
//! | `top_k` | kept for the writer to pass or refuse |
//!
//! Accepted and not carried: cache breakpoints (`cache_control`: OpenAI caches prompts on its
//! own), `citations` on text, `thinking` when disabled. Refused by name: `thinking` enabled,
//! server tools, documents and other blocks, `is_error` tool results.
//!
//! The writer (an Anthropic provider serving an OpenAI client) hoists the system prompt,
//! turns tool results into `tool_result` blocks of one user turn, tool calls into `tool_use`
//! blocks (the arguments string parsed: it must hold a JSON object), and always sends
//! `max_tokens` (the key's default, else the deployment's). It refuses what Messages cannot
//! say: a temperature above 1, `n` other than 1, penalties other than 0, `seed`,
//! `logprobs`, `store`, a JSON `response_format`. An OpenAI reasoning effort is not carried:
//! it is a hint, and extended thinking needs a token budget and rules (no temperature, a
//! larger `max_tokens`) the client did not ask for; the model answers without thinking.

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{
    Args, Image, Loc, Part, Request, ResponseFormat, Role, Target, Texts, Tool, ToolChoice, Turn,
    Untranslatable, get, json_as_string, number, only, refuse_extra, refuse_unless_neutral, string,
    write_arguments, write_tool_name, write_value,
};
use crate::json;

/// The name refusals use for this dialect as a target.
pub const TARGET: &str = "Anthropic";

/// Top-level members read.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
];

/// Members a text block may have.
const TEXT_BLOCK: &[&str] = &["type", "text", "cache_control", "citations"];

/// Text content: a string, or text blocks only (`block(j)`: where block `j` is, in refusals).
fn texts<'v>(
    c: Value<'v, '_>,
    at: Loc,
    block: impl Fn(usize) -> Loc,
    target: &str,
) -> Result<Texts<'v>, Untranslatable> {
    if let Some(s) = c.into_string() {
        return Ok(Texts::plain(s));
    }
    let blocks = c
        .as_array()
        .ok_or_else(|| at.refuse("must be a string or an array of text blocks"))?;
    let mut texts = Vec::with_capacity(blocks.len());
    for (j, b) in blocks.iter().enumerate() {
        let bat = block(j);
        if string(b, "type", bat.with("type"))? != Some("text") {
            return Err(bat.with("type").refuse("only text can be translated here"));
        }
        only(b, TEXT_BLOCK, bat, target)?;
        texts.push(string(b, "text", bat.with("text"))?.unwrap_or_default());
    }
    Ok(Texts::blocks(texts))
}

/// Reads a Messages request. `target` names the provider it is translated for, in refusals.
pub fn read<'v, 'a>(v: Value<'v, 'a>, target: &str) -> Result<Request<'v, 'a>, Untranslatable> {
    only(v, KNOWN, Loc::default(), target)?;
    if let Some(t) = get(v, "thinking")
        && t.get("type").and_then(|t| t.into_string()) != Some("disabled")
    {
        return Err(Loc::top("thinking").refuse(&format!("has no equivalent for {target}")));
    }
    let messages = get(v, "messages").and_then(|m| m.as_array());
    let Some(messages) = messages.filter(|m| !m.is_empty()) else {
        return Err(Loc::top("messages").refuse("must be a non-empty array"));
    };
    let mut r = Request {
        turns: Vec::with_capacity(messages.len()),
        parts: Vec::with_capacity(messages.len() + 4),
        ..Request::default()
    };
    if let Some(system) = get(v, "system") {
        r.system = texts(
            system,
            Loc::top("system"),
            |j| Loc::listed("system", j, ""),
            target,
        )?;
        r.system_loc = Loc::top("system");
    }
    for (i, m) in messages.iter().enumerate() {
        read_message(&mut r, i, m, target)?;
    }
    read_settings(&mut r, v, target)?;
    Ok(r)
}

fn read_message<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    m: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = Loc::message(i, "");
    only(m, &["role", "content"], at, target)?;
    let role =
        string(m, "role", at.with("role"))?.ok_or_else(|| at.with("role").refuse("is required"))?;
    let content = get(m, "content").ok_or_else(|| at.with("content").refuse("is required"))?;
    let role = match role {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => {
            return Err(at
                .with("role")
                .refuse(&format!("`{other}` is not a Messages role")));
        }
    };
    let start = r.parts.len();
    let plain = if let Some(s) = content.into_string() {
        r.parts.push(Part::Text(s));
        true
    } else {
        let blocks = content.as_array().ok_or_else(|| {
            at.with("content")
                .refuse("must be a string or an array of blocks")
        })?;
        for (j, b) in blocks.iter().enumerate() {
            r.parts.push(read_block(i, j, b, role, target)?);
        }
        false
    };
    r.turns.push(Turn {
        role,
        parts: start..r.parts.len(),
        plain,
        loc: at,
    });
    Ok(())
}

/// A content block's members, read in one pass over it.
#[derive(Default)]
struct Block<'v, 'a> {
    kind: Option<Value<'v, 'a>>,
    text: Option<Value<'v, 'a>>,
    id: Option<Value<'v, 'a>>,
    name: Option<Value<'v, 'a>>,
    input: Option<Value<'v, 'a>>,
    tool_use_id: Option<Value<'v, 'a>>,
    content: Option<Value<'v, 'a>>,
    is_error: Option<Value<'v, 'a>>,
    source: Option<Value<'v, 'a>>,
    citations: bool,
    /// The first member no block has (`cache_control` is accepted on every block).
    other: Option<&'v str>,
}

impl<'v, 'a> Block<'v, 'a> {
    fn of(b: Value<'v, 'a>) -> Self {
        let mut out = Block::default();
        for (k, x) in b.as_object().iter().flat_map(|o| o.iter()) {
            if x.as_null().is_some() {
                continue;
            }
            let slot = match k {
                "type" => &mut out.kind,
                "text" => &mut out.text,
                "id" => &mut out.id,
                "name" => &mut out.name,
                "input" => &mut out.input,
                "tool_use_id" => &mut out.tool_use_id,
                "content" => &mut out.content,
                "is_error" => &mut out.is_error,
                "source" => &mut out.source,
                "citations" => {
                    out.citations = true;
                    continue;
                }
                "cache_control" => continue,
                _ => {
                    out.other.get_or_insert(k);
                    continue;
                }
            };
            *slot = Some(x);
        }
        out
    }

    /// Refuses a member present that blocks of this kind do not have.
    fn only(&self, at: Loc, allowed: &[&str], target: &str) -> Result<(), Untranslatable> {
        let present = [
            ("text", self.text.is_some()),
            ("id", self.id.is_some()),
            ("name", self.name.is_some()),
            ("input", self.input.is_some()),
            ("tool_use_id", self.tool_use_id.is_some()),
            ("content", self.content.is_some()),
            ("is_error", self.is_error.is_some()),
            ("source", self.source.is_some()),
            ("citations", self.citations),
        ];
        refuse_extra(at, self.other, &present, allowed, target)
    }
}

/// A member that must be a string, when present.
fn opt_str<'a>(x: Option<Value<'_, 'a>>, loc: Loc) -> Result<Option<&'a str>, Untranslatable> {
    x.map(|x| {
        x.into_string()
            .ok_or_else(|| loc.refuse("must be a string"))
    })
    .transpose()
}

fn read_block<'v, 'a>(
    i: usize,
    j: usize,
    b: Value<'v, 'a>,
    role: Role,
    target: &str,
) -> Result<Part<'v, 'a>, Untranslatable> {
    let bat = Loc::item(i, "content", j, "");
    let m = Block::of(b);
    let kind = opt_str(m.kind, bat.with("type"))?;
    match (kind, role) {
        (Some("text"), _) => {
            m.only(bat, &["text", "citations"], target)?;
            Ok(Part::Text(
                opt_str(m.text, bat.with("text"))?.unwrap_or_default(),
            ))
        }
        (Some("tool_result"), Role::User) => {
            m.only(bat, &["tool_use_id", "content", "is_error"], target)?;
            if m.is_error.and_then(|e| e.as_bool()) == Some(true) {
                return Err(bat
                    .with("is_error")
                    .refuse(&format!("has no equivalent for {target}")));
            }
            let loc = bat.with("tool_use_id");
            let id = opt_str(m.tool_use_id, loc)?.ok_or_else(|| loc.refuse("is required"))?;
            let content = match m.content {
                None => Texts::plain(""),
                // A block inside the result is named by the result's `content` member.
                Some(c) => texts(c, bat.with("content"), |_| bat.with("content"), target)?,
            };
            Ok(Part::ToolResult {
                id: id.into(),
                content,
                json: None,
                loc,
            })
        }
        (Some("image"), Role::User) => {
            m.only(bat, &["source"], target)?;
            let src = m
                .source
                .ok_or_else(|| bat.with("source").refuse("is required"))?;
            let image = match string(src, "type", bat.with("source.type"))? {
                Some("base64") => Image::Base64 {
                    media_type: string(src, "media_type", bat.with("source.media_type"))?
                        .unwrap_or("image/png"),
                    data: string(src, "data", bat.with("source.data"))?.unwrap_or_default(),
                },
                Some("url") => {
                    Image::Url(string(src, "url", bat.with("source.url"))?.unwrap_or_default())
                }
                _ => {
                    return Err(bat
                        .with("source.type")
                        .refuse("must be base64 or url to be translated"));
                }
            };
            Ok(Part::Image {
                image,
                loc: bat.with("source"),
            })
        }
        (Some("tool_use"), Role::Assistant) => {
            m.only(bat, &["id", "name", "input"], target)?;
            Ok(Part::ToolCall {
                id: opt_str(m.id, bat.with("id"))?.unwrap_or_default().into(),
                name: opt_str(m.name, bat.with("name"))?.unwrap_or_default(),
                args: Args::Json(m.input),
                loc: bat.with("input"),
            })
        }
        (Some(other), _) => Err(bat.with("type").refuse(&format!(
            "`{other}` blocks cannot be translated for {target}"
        ))),
        (None, _) => Err(bat.with("type").refuse("is required")),
    }
}

fn read_settings<'v, 'a>(
    r: &mut Request<'v, 'a>,
    v: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    if let Some(x) = get(v, "max_tokens") {
        r.max_tokens = Some(
            x.as_u64()
                .ok_or_else(|| Loc::top("max_tokens").refuse("must be a non-negative integer"))?,
        );
    }
    r.temperature = number(v, "temperature")?;
    r.top_p = number(v, "top_p")?;
    r.top_k = number(v, "top_k")?;
    if let Some(stop) = get(v, "stop_sequences") {
        match stop.as_array() {
            Some(a) if a.iter().all(|s| s.into_string().is_some()) => r.stop = Some(stop),
            _ => return Err(Loc::top("stop_sequences").refuse("must be an array of strings")),
        }
    }
    r.stream = get(v, "stream").and_then(|s| s.as_bool()) == Some(true);
    if let Some(tools) = get(v, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| Loc::top("tools").refuse("must be an array"))?;
        for (j, tool) in tools.iter().enumerate() {
            let at = Loc::listed("tools", j, "");
            only(
                tool,
                &[
                    "name",
                    "description",
                    "input_schema",
                    "type",
                    "cache_control",
                ],
                at,
                target,
            )?;
            if string(tool, "type", at.with("type"))?.is_some_and(|t| t != "custom") {
                return Err(at
                    .with("type")
                    .refuse(&format!("server tools cannot be translated for {target}")));
            }
            r.tools.push(Tool {
                name: string(tool, "name", at.with("name"))?
                    .ok_or_else(|| at.with("name").refuse("is required"))?,
                description: string(tool, "description", at.with("description"))?,
                parameters: get(tool, "input_schema"),
                openapi: false,
            });
        }
    }
    if let Some(choice) = get(v, "tool_choice") {
        let at = Loc::top("tool_choice");
        only(
            choice,
            &["type", "name", "disable_parallel_tool_use"],
            at,
            target,
        )?;
        let kind = Loc::top("tool_choice.type");
        r.tool_choice = Some(match string(choice, "type", kind)? {
            Some("auto") => ToolChoice::Auto,
            Some("any") => ToolChoice::Required,
            Some("none") => ToolChoice::None,
            Some("tool") => {
                let name = Loc::top("tool_choice.name");
                ToolChoice::Named(
                    string(choice, "name", name)?.ok_or_else(|| name.refuse("is required"))?,
                )
            }
            _ => return Err(kind.refuse("must be auto, any, tool or none")),
        });
        if get(choice, "disable_parallel_tool_use").and_then(|d| d.as_bool()) == Some(true) {
            r.parallel_tool_calls = Some(false);
        }
    }
    if let Some(meta) = get(v, "metadata") {
        only(meta, &["user_id"], Loc::top("metadata"), target)?;
        r.user = string(meta, "user_id", Loc::top("metadata.user_id"))?;
    }
    Ok(())
}

// -------------------------------------------------------------------------------- writer

/// Writes `r` as a Messages request for `t`'s deployment.
pub fn write(r: &Request<'_, '_>, t: &Target<'_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    refuse_unless_neutral(r.n, "n", TARGET, |&n| n == 1)?;
    refuse_unless_neutral(r.store, "store", TARGET, |&s| !s)?;
    refuse_unless_neutral(r.logprobs, "logprobs", TARGET, |&l| !l)?;
    refuse_unless_neutral(r.seed, "seed", TARGET, |_| false)?;
    refuse_unless_neutral(r.presence_penalty, "presence_penalty", TARGET, |x| {
        x.value == 0.0
    })?;
    refuse_unless_neutral(r.frequency_penalty, "frequency_penalty", TARGET, |x| {
        x.value == 0.0
    })?;
    refuse_unless_neutral(r.response_format, "response_format", TARGET, |f| {
        matches!(f, ResponseFormat::Text)
    })?;

    if t.vertex {
        // Vertex AI names the model in the path and the API version in the body.
        out.extend_from_slice(b"{\"anthropic_version\":\"");
        out.extend_from_slice(super::VERTEX_VERSION);
        out.push(b'"');
    } else {
        out.extend_from_slice(b"{\"model\":");
        out.extend_from_slice(t.model_json);
    }
    out.extend_from_slice(b",\"max_tokens\":");
    json::uint(out, r.max_tokens.unwrap_or(u64::from(t.default_max_tokens)));
    if !r.system.is_empty() {
        out.extend_from_slice(b",\"system\":[");
        text_blocks(r.system.as_slice(), out);
        out.push(b']');
    }
    out.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    for turn in &r.turns {
        let mark = out.len();
        if !first {
            out.push(b',');
        }
        if write_turn(r, turn, out)? {
            first = false;
        } else {
            // An empty turn says nothing; Anthropic refuses empty content.
            out.truncate(mark);
        }
    }
    out.push(b']');
    if let Some(x) = r.temperature {
        if !(0.0..=1.0).contains(&x.value) {
            return Err(Loc::top("temperature").refuse(
                "must be between 0 and 1 for Anthropic (OpenAI's 0–2 scale has no equivalent above 1)",
            ));
        }
        out.extend_from_slice(b",\"temperature\":");
        write_value(out, x.raw);
    }
    for (k, x) in [("top_p", r.top_p), ("top_k", r.top_k)] {
        if let Some(x) = x {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            write_value(out, x.raw);
        }
    }
    if let Some(stop) = r.stop {
        out.extend_from_slice(b",\"stop_sequences\":");
        if stop.into_string().is_some() {
            out.push(b'[');
            write_value(out, stop);
            out.push(b']');
        } else {
            write_value(out, stop);
        }
    }
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    if !r.tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[");
        for (i, tool) in r.tools.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            write_tool_name(out, tool);
            out.extend_from_slice(b",\"input_schema\":");
            match tool.parameters {
                Some(p) => crate::dialect::norm::write_schema(out, p, tool.openapi),
                None => out.extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    let parallel = r.parallel_tool_calls != Some(false);
    if r.tool_choice.is_some() || !parallel {
        out.extend_from_slice(b",\"tool_choice\":{\"type\":");
        match r.tool_choice.unwrap_or(ToolChoice::Auto) {
            ToolChoice::Auto => out.extend_from_slice(b"\"auto\""),
            ToolChoice::None => out.extend_from_slice(b"\"none\""),
            ToolChoice::Required => out.extend_from_slice(b"\"any\""),
            ToolChoice::Named(n) => {
                out.extend_from_slice(b"\"tool\",\"name\":");
                json::string(out, n.as_bytes());
            }
        }
        if !parallel {
            out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
        }
        out.push(b'}');
    }
    if let Some(user) = r.user {
        out.extend_from_slice(b",\"metadata\":{\"user_id\":");
        json::string(out, user.as_bytes());
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

fn text_blocks(texts: &[&str], out: &mut Vec<u8>) {
    for (j, text) in texts.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        json::string(out, text.as_bytes());
        out.push(b'}');
    }
}

/// One turn; false when it had nothing to say (an assistant turn of empty text).
fn write_turn(r: &Request<'_, '_>, turn: &Turn, out: &mut Vec<u8>) -> Result<bool, Untranslatable> {
    let parts = r.parts_of(turn);
    let role: &[u8] = match turn.role {
        Role::User => b"user",
        Role::Assistant => b"assistant",
    };
    out.extend_from_slice(b"{\"role\":\"");
    out.extend_from_slice(role);
    out.extend_from_slice(b"\",\"content\":");
    if turn.role == Role::User
        && turn.plain
        && let [Part::Text(s)] = parts
    {
        json::string(out, s.as_bytes());
        out.push(b'}');
        return Ok(true);
    }
    out.push(b'[');
    let mut blocks = 0;
    for p in parts {
        if turn.role == Role::Assistant && matches!(p, Part::Text(s) if s.is_empty()) {
            continue;
        }
        if blocks > 0 {
            out.push(b',');
        }
        blocks += 1;
        block(p, out)?;
    }
    out.extend_from_slice(b"]}");
    Ok(blocks > 0 || turn.role == Role::User)
}

fn block(p: &Part<'_, '_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    match p {
        Part::Text(s) => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            json::string(out, s.as_bytes());
            out.push(b'}');
        }
        Part::Image { image, .. } => {
            out.extend_from_slice(b"{\"type\":\"image\",\"source\":");
            match image {
                Image::Base64 { media_type, data } => {
                    out.extend_from_slice(b"{\"type\":\"base64\",\"media_type\":");
                    json::string(out, media_type.as_bytes());
                    out.extend_from_slice(b",\"data\":");
                    json::string(out, data.as_bytes());
                    out.push(b'}');
                }
                Image::Url(url) => {
                    out.extend_from_slice(b"{\"type\":\"url\",\"url\":");
                    json::string(out, url.as_bytes());
                    out.push(b'}');
                }
            }
            out.push(b'}');
        }
        Part::ToolCall {
            id,
            name,
            args,
            loc,
        } => {
            if id.is_empty() {
                return Err(Loc { tail: "id", ..*loc }.refuse("is required"));
            }
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            json::string(out, id.as_bytes());
            out.extend_from_slice(b",\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"input\":");
            write_arguments(args, *loc, out)?;
            out.push(b'}');
        }
        Part::ToolResult {
            id, content, json, ..
        } => {
            out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
            json::string(out, id.as_bytes());
            out.extend_from_slice(b",\"content\":");
            if json.is_some() {
                json_as_string(out, *json);
            } else if content.is_plain() {
                json::string(out, content.joined().as_bytes());
            } else {
                out.push(b'[');
                text_blocks(content.as_slice(), out);
                out.push(b']');
            }
            out.push(b'}');
        }
    }
    Ok(())
}
