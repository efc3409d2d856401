//! OpenAI Chat Completions requests ⇄ the normalised form ([`crate::dialect::norm`]).
//!
//! | Chat Completions | normalised |
//! | --- | --- |
//! | `system` / `developer` messages, anywhere | the system prompt (hoisted, in order) |
//! | `user` content: a string, or `text` / `image_url` parts (data URL or http(s) URL) | a user turn: text, images |
//! | `assistant` content (text or refusal parts) + `tool_calls` | an assistant turn: text, tool calls (`arguments` kept as the string) |
//! | a run of `tool` messages | one user turn of tool results |
//! | `max_completion_tokens`, else `max_tokens` | max tokens |
//! | `stop` (a string or a list) | stop sequences |
//! | `tool_choice` auto / none / required / named, `parallel_tool_calls` | tool choice, parallel calls |
//! | `user`, `n`, `store`, `logprobs`, `seed`, penalties, `response_format` | kept for the writer to pass or refuse |
//!
//! Accepted and not carried: `stream_options` (the gateway asks for usage itself),
//! `prompt_cache_key` (the gateway's sticky-routing key), an image's `detail`, a tool's
//! `strict` flag (the schema still goes). Anything else is refused by name.
//!
//! The writer (an OpenAI-dialect provider serving another dialect's client) writes the same
//! members back; a streamed request asks for `stream_options.include_usage`.

use simd_json::BorrowedValue as Value;
use simd_json::prelude::*;

use crate::dialect::norm::{
    Args, Image, Loc, Number, Part, Request, ResponseFormat, Role, Target, Texts, Tool, ToolChoice,
    Turn, Untranslatable, data_url, write_value,
};
use crate::json;

/// Top-level members read.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "response_format",
    "n",
    "prompt_cache_key",
    "store",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
];

/// The value of member `k`, `None` when absent or null.
fn get<'v, 'a>(v: &'v Value<'a>, k: &str) -> Option<&'v Value<'a>> {
    v.get(k).filter(|x| !x.is_null())
}

fn string<'v>(v: &'v Value<'_>, k: &str, loc: Loc) -> Result<Option<&'v str>, Untranslatable> {
    match get(v, k) {
        None => Ok(None),
        Some(x) => x
            .as_str()
            .map(Some)
            .ok_or_else(|| loc.refuse("must be a string")),
    }
}

fn number<'v, 'a>(
    v: &'v Value<'a>,
    k: &'static str,
) -> Result<Option<Number<'v, 'a>>, Untranslatable> {
    match get(v, k) {
        None => Ok(None),
        Some(raw) => raw
            .cast_f64()
            .map(|value| Some(Number { raw, value }))
            .ok_or_else(|| Loc::top(k).refuse("must be a number")),
    }
}

/// The first member of `v` not in `known` (and not null), refused for `target`.
fn only(v: &Value<'_>, known: &[&str], at: Loc, target: &str) -> Result<(), Untranslatable> {
    let Some(obj) = v.as_object() else {
        return Ok(());
    };
    match obj
        .iter()
        .find(|(k, x)| !x.is_null() && !known.contains(&k.as_ref()))
    {
        None => Ok(()),
        Some((k, _)) => {
            let mut param = at.param();
            if !param.is_empty() {
                param.push('.');
            }
            param.push_str(k);
            let message = format!("`{param}` cannot be translated for {target}");
            Err(Untranslatable::new(param, message))
        }
    }
}

/// Text content: a string, or text parts only.
fn texts<'v>(content: &'v Value<'_>, at: Loc) -> Result<Texts<'v>, Untranslatable> {
    if let Some(s) = content.as_str() {
        return Ok(Texts {
            plain: true,
            texts: vec![s],
        });
    }
    let Some(parts) = content.as_array() else {
        return Err(at.refuse("must be a string or an array of content parts"));
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let pat = Loc {
            list: Some(("content", j as u32)),
            ..at
        };
        match string(p, "type", pat.with("type"))? {
            Some("text") => texts.push(string(p, "text", pat.with("text"))?.unwrap_or_default()),
            Some(t) => {
                return Err(pat
                    .with("type")
                    .refuse(&format!("`{t}` is not text; only text is allowed here")));
            }
            None => return Err(pat.with("type").refuse("is required")),
        }
    }
    Ok(Texts {
        plain: false,
        texts,
    })
}

/// Reads a Chat Completions request. `target` names the provider it is translated for, in
/// refusals.
pub fn read<'v, 'a>(v: &'v Value<'a>, target: &str) -> Result<Request<'v, 'a>, Untranslatable> {
    only(v, KNOWN, Loc::default(), target)?;
    let messages = match get(v, "messages") {
        Some(m) => m
            .as_array()
            .ok_or_else(|| Loc::top("messages").refuse("must be an array"))?,
        None => return Err(Loc::top("messages").refuse("must be a non-empty array")),
    };
    if messages.is_empty() {
        return Err(Loc::top("messages").refuse("must be a non-empty array"));
    }
    let mut r = Request {
        turns: Vec::with_capacity(messages.len()),
        parts: Vec::with_capacity(messages.len() + 4),
        ..Request::default()
    };
    for (i, m) in messages.iter().enumerate() {
        read_message(&mut r, i, m, target)?;
    }
    read_settings(&mut r, v, target)?;
    Ok(r)
}

fn read_message<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    m: &'v Value<'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = Loc::message(i, "");
    let role =
        string(m, "role", at.with("role"))?.ok_or_else(|| at.with("role").refuse("is required"))?;
    let start = r.parts.len();
    match role {
        "system" | "developer" => {
            only(m, &["role", "content", "name"], at, target)?;
            if get(m, "name").is_some() {
                return Err(at
                    .with("name")
                    .refuse(&format!("has no equivalent for {target}")));
            }
            let content =
                get(m, "content").ok_or_else(|| at.with("content").refuse("is required"))?;
            let t = texts(content, at.with("content"))?;
            if r.system.texts.is_empty() {
                r.system_loc = at.with("content");
            }
            r.system.texts.extend(t.texts);
            return Ok(());
        }
        "tool" => {
            only(m, &["role", "content", "tool_call_id"], at, target)?;
            let loc = at.with("tool_call_id");
            let id = string(m, "tool_call_id", loc)?.ok_or_else(|| loc.refuse("is required"))?;
            let content = match get(m, "content") {
                None => Texts {
                    plain: true,
                    texts: Vec::new(),
                },
                Some(c) => texts(c, at.with("content"))?,
            };
            r.parts.push(Part::ToolResult { id, content, loc });
            // A run of tool messages is one turn of tool results.
            if let Some(last) = r.turns.last_mut()
                && last.role == Role::User
                && last.parts.end == start
                && matches!(
                    r.parts.get(start.wrapping_sub(1)),
                    Some(Part::ToolResult { .. })
                )
            {
                last.parts.end = r.parts.len();
                return Ok(());
            }
            r.turns.push(Turn {
                role: Role::User,
                parts: start..r.parts.len(),
                plain: false,
                loc: at,
            });
            return Ok(());
        }
        "user" => {
            only(m, &["role", "content"], at, target)?;
            let content =
                get(m, "content").ok_or_else(|| at.with("content").refuse("is required"))?;
            let plain = read_user_content(r, i, content, target)?;
            r.turns.push(Turn {
                role: Role::User,
                parts: start..r.parts.len(),
                plain,
                loc: at,
            });
        }
        "assistant" => {
            only(m, &["role", "content", "tool_calls", "refusal"], at, target)?;
            let mut plain = false;
            if let Some(c) = get(m, "content") {
                if let Some(s) = c.as_str() {
                    plain = true;
                    r.parts.push(Part::Text(s));
                } else {
                    let parts = c.as_array().ok_or_else(|| {
                        at.with("content")
                            .refuse("must be a string or an array of content parts")
                    })?;
                    for (j, p) in parts.iter().enumerate() {
                        let pat = Loc::item(i, "content", j, "type");
                        let text = match string(p, "type", pat)? {
                            Some("text") => string(p, "text", pat.with("text"))?,
                            Some("refusal") => string(p, "refusal", pat.with("refusal"))?,
                            _ => return Err(pat.refuse("must be text or refusal")),
                        };
                        r.parts.push(Part::Text(text.unwrap_or_default()));
                    }
                }
            }
            if let Some(calls) = get(m, "tool_calls") {
                let calls = calls
                    .as_array()
                    .ok_or_else(|| at.with("tool_calls").refuse("must be an array"))?;
                for (j, call) in calls.iter().enumerate() {
                    r.parts.push(read_tool_call(i, j, call, target)?);
                    plain = false;
                }
            }
            if get(m, "refusal")
                .and_then(|x| x.as_str())
                .is_some_and(|x| !x.is_empty())
            {
                return Err(at
                    .with("refusal")
                    .refuse(&format!("has no equivalent for {target}")));
            }
            r.turns.push(Turn {
                role: Role::Assistant,
                parts: start..r.parts.len(),
                plain,
                loc: at,
            });
        }
        other => {
            return Err(at
                .with("role")
                .refuse(&format!("`{other}` cannot be translated for {target}")));
        }
    }
    Ok(())
}

/// A user message's content into `r.parts`; true when it was a plain string.
fn read_user_content<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    content: &'v Value<'a>,
    target: &str,
) -> Result<bool, Untranslatable> {
    if let Some(s) = content.as_str() {
        r.parts.push(Part::Text(s));
        return Ok(true);
    }
    let Some(parts) = content.as_array() else {
        return Err(
            Loc::message(i, "content").refuse("must be a string or an array of content parts")
        );
    };
    for (j, p) in parts.iter().enumerate() {
        let pat = Loc::item(i, "content", j, "");
        match string(p, "type", pat.with("type"))? {
            Some("text") => {
                only(p, &["type", "text"], pat, target)?;
                r.parts.push(Part::Text(
                    string(p, "text", pat.with("text"))?.unwrap_or_default(),
                ));
            }
            Some("image_url") => {
                let loc = pat.with("image_url.url");
                let url = image_url(p, pat, target)?;
                let image = match data_url(url) {
                    Some((media_type, data)) => Image::Base64 { media_type, data },
                    None if url.starts_with("https://") || url.starts_with("http://") => {
                        Image::Url(url)
                    }
                    None => return Err(loc.refuse("must be an http(s) URL or a base64 data URL")),
                };
                r.parts.push(Part::Image { image, loc });
            }
            Some(t) => {
                return Err(pat
                    .with("type")
                    .refuse(&format!("`{t}` content cannot be translated for {target}")));
            }
            None => return Err(pat.with("type").refuse("is required")),
        }
    }
    Ok(false)
}

fn image_url<'v>(p: &'v Value<'_>, pat: Loc, target: &str) -> Result<&'v str, Untranslatable> {
    only(p, &["type", "image_url"], pat, target)?;
    let img = get(p, "image_url").ok_or_else(|| pat.with("image_url").refuse("is required"))?;
    if let Some(s) = img.as_str() {
        return Ok(s);
    }
    only(img, &["url", "detail"], pat.with("image_url"), target)?;
    string(img, "url", pat.with("image_url.url"))?
        .ok_or_else(|| pat.with("image_url.url").refuse("is required"))
}

fn read_tool_call<'v, 'a>(
    i: usize,
    j: usize,
    call: &'v Value<'a>,
    target: &str,
) -> Result<Part<'v, 'a>, Untranslatable> {
    let at = Loc::item(i, "tool_calls", j, "");
    only(call, &["id", "type", "function"], at, target)?;
    if string(call, "type", at.with("type"))?.is_some_and(|t| t != "function") {
        return Err(at.with("type").refuse("must be `function`"));
    }
    let f = get(call, "function").ok_or_else(|| at.with("function").refuse("is required"))?;
    let name = string(f, "name", at.with("function.name"))?
        .ok_or_else(|| at.with("function.name").refuse("is required"))?;
    let args = string(f, "arguments", at.with("function.arguments"))?.unwrap_or_default();
    Ok(Part::ToolCall {
        id: string(call, "id", at.with("id"))?.unwrap_or_default(),
        name,
        args: Args::Text(args),
        loc: at.with("function.arguments"),
    })
}

fn read_settings<'v, 'a>(
    r: &mut Request<'v, 'a>,
    v: &'v Value<'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    for k in ["max_completion_tokens", "max_tokens"] {
        if let Some(x) = get(v, k) {
            r.max_tokens = Some(x.as_u64().ok_or_else(|| {
                Untranslatable::new(k, format!("`{k}` must be a non-negative integer"))
            })?);
            break;
        }
    }
    r.temperature = number(v, "temperature")?;
    r.top_p = number(v, "top_p")?;
    r.seed = number(v, "seed")?;
    r.presence_penalty = number(v, "presence_penalty")?;
    r.frequency_penalty = number(v, "frequency_penalty")?;
    if let Some(stop) = get(v, "stop") {
        let ok = stop.as_str().is_some()
            || stop
                .as_array()
                .is_some_and(|a| a.iter().all(|s| s.as_str().is_some()));
        if !ok {
            return Err(Loc::top("stop").refuse("must be a string or an array of strings"));
        }
        r.stop = Some(stop);
    }
    r.stream = get(v, "stream").and_then(|s| s.as_bool()) == Some(true);
    if let Some(tools) = get(v, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| Loc::top("tools").refuse("must be an array"))?;
        for (j, tool) in tools.iter().enumerate() {
            r.tools.push(read_tool(j, tool, target)?);
        }
    }
    if let Some(x) = get(v, "tool_choice") {
        r.tool_choice = Some(tool_choice(x)?);
    }
    if let Some(x) = get(v, "parallel_tool_calls") {
        r.parallel_tool_calls = Some(
            x.as_bool()
                .ok_or_else(|| Loc::top("parallel_tool_calls").refuse("must be a boolean"))?,
        );
    }
    r.user = string(v, "user", Loc::top("user"))?;
    r.n = get(v, "n").map(|x| x.as_u64().unwrap_or(u64::MAX));
    // A non-boolean reads as `true`: not neutral, so a writer that cannot carry it refuses.
    r.store = get(v, "store").map(|x| x.as_bool() != Some(false));
    r.logprobs = get(v, "logprobs").map(|x| x.as_bool() != Some(false));
    if let Some(rf) = get(v, "response_format") {
        let at = Loc::top("response_format");
        only(rf, &["type", "json_schema"], at, target)?;
        r.response_format = Some(
            match string(rf, "type", Loc::top("response_format.type"))? {
                Some("text") => ResponseFormat::Text,
                Some("json_object") => ResponseFormat::JsonObject,
                Some("json_schema") => ResponseFormat::JsonSchema(
                    get(rf, "json_schema")
                        .and_then(|s| get(s, "schema"))
                        .ok_or_else(|| {
                            Loc::top("response_format.json_schema.schema").refuse("is required")
                        })?,
                ),
                _ => {
                    return Err(Loc::top("response_format.type")
                        .refuse("must be text, json_object or json_schema"));
                }
            },
        );
    }
    Ok(())
}

fn read_tool<'v, 'a>(
    j: usize,
    tool: &'v Value<'a>,
    target: &str,
) -> Result<Tool<'v, 'a>, Untranslatable> {
    let at = Loc::listed("tools", j, "");
    only(tool, &["type", "function"], at, target)?;
    if string(tool, "type", at.with("type"))? != Some("function") {
        return Err(at
            .with("type")
            .refuse(&format!("must be `function` to be translated for {target}")));
    }
    let f = get(tool, "function").ok_or_else(|| at.with("function").refuse("is required"))?;
    only(
        f,
        &["name", "description", "parameters", "strict"],
        at.with("function"),
        target,
    )?;
    Ok(Tool {
        name: string(f, "name", at.with("function.name"))?
            .ok_or_else(|| at.with("function.name").refuse("is required"))?,
        description: string(f, "description", at.with("function.description"))?,
        parameters: get(f, "parameters"),
    })
}

fn tool_choice<'v>(x: &'v Value<'_>) -> Result<ToolChoice<'v>, Untranslatable> {
    let at = Loc::top("tool_choice");
    match x.as_str() {
        Some("auto") => return Ok(ToolChoice::Auto),
        Some("none") => return Ok(ToolChoice::None),
        Some("required") => return Ok(ToolChoice::Required),
        Some(other) => return Err(at.refuse(&format!("`{other}` is not a known tool choice"))),
        None => {}
    }
    if string(x, "type", Loc::top("tool_choice.type"))? == Some("function")
        && let Some(name) = get(x, "function")
            .and_then(|f| f.get("name"))
            .and_then(|n| n.as_str())
    {
        return Ok(ToolChoice::Named(name));
    }
    Err(at.refuse("must be auto, none, required or a named function"))
}

// -------------------------------------------------------------------------------- writer

/// The name refusals use for this dialect as a target.
pub const TARGET: &str = "an OpenAI-dialect provider";

/// Writes `r` as a Chat Completions request for `t`'s deployment.
pub fn write(r: &Request<'_, '_>, t: &Target<'_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    if r.top_k.is_some() {
        return Err(Loc::top("top_k").refuse(&format!("has no equivalent for {TARGET}")));
    }
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(t.model_json);
    out.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    let mut open = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    if !r.system.texts.is_empty() {
        open(out);
        out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
        text_content(&r.system, out);
        out.push(b'}');
    }
    for turn in &r.turns {
        let parts = r.parts_of(turn);
        match turn.role {
            Role::User => {
                // Tool results answer the previous assistant turn: they go first, one message
                // each.
                for p in parts {
                    if let Part::ToolResult { id, content, .. } = p {
                        open(out);
                        out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
                        json::string(out, id.as_bytes());
                        out.extend_from_slice(b",\"content\":");
                        text_content(content, out);
                        out.push(b'}');
                    }
                }
                if turn.plain {
                    if let [Part::Text(s)] = parts {
                        open(out);
                        out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                        json::string(out, s.as_bytes());
                        out.push(b'}');
                    }
                    continue;
                }
                let mut rest = parts
                    .iter()
                    .filter(|p| !matches!(p, Part::ToolResult { .. }))
                    .peekable();
                if rest.peek().is_none() {
                    continue;
                }
                open(out);
                out.extend_from_slice(b"{\"role\":\"user\",\"content\":[");
                for (n, p) in rest.enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    user_part(p, out)?;
                }
                out.extend_from_slice(b"]}");
            }
            Role::Assistant => {
                open(out);
                assistant(turn, parts, out);
            }
        }
    }
    out.push(b']');
    if let Some(n) = r.max_tokens {
        out.extend_from_slice(if t.compatible {
            b",\"max_tokens\":"
        } else {
            b",\"max_completion_tokens\":"
        });
        json::uint(out, n);
    }
    for (k, x) in [("temperature", r.temperature), ("top_p", r.top_p)] {
        if let Some(x) = x {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            write_value(out, x.raw);
        }
    }
    if let Some(stop) = r.stop {
        out.extend_from_slice(b",\"stop\":");
        write_value(out, stop);
    }
    if r.stream {
        out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    if !r.tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[");
        for (i, tool) in r.tools.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
            json::string(out, tool.name.as_bytes());
            if let Some(d) = tool.description {
                out.extend_from_slice(b",\"description\":");
                json::string(out, d.as_bytes());
            }
            if let Some(s) = tool.parameters {
                out.extend_from_slice(b",\"parameters\":");
                write_value(out, s);
            }
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    if let Some(choice) = r.tool_choice {
        out.extend_from_slice(b",\"tool_choice\":");
        match choice {
            ToolChoice::Auto => out.extend_from_slice(b"\"auto\""),
            ToolChoice::Required => out.extend_from_slice(b"\"required\""),
            ToolChoice::None => out.extend_from_slice(b"\"none\""),
            ToolChoice::Named(name) => {
                out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
                json::string(out, name.as_bytes());
                out.extend_from_slice(b"}}");
            }
        }
    }
    if r.parallel_tool_calls == Some(false) {
        out.extend_from_slice(b",\"parallel_tool_calls\":false");
    }
    if let Some(user) = r.user {
        out.extend_from_slice(b",\"user\":");
        json::string(out, user.as_bytes());
    }
    out.push(b'}');
    Ok(())
}

/// Text content as OpenAI writes it: a string, or text parts.
fn text_content(t: &Texts<'_>, out: &mut Vec<u8>) {
    if t.plain {
        json::string(out, t.joined().as_bytes());
        return;
    }
    out.push(b'[');
    for (j, text) in t.texts.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        json::string(out, text.as_bytes());
        out.push(b'}');
    }
    out.push(b']');
}

fn user_part(p: &Part<'_, '_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    match p {
        Part::Text(s) => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            json::string(out, s.as_bytes());
            out.push(b'}');
        }
        Part::Image { image, .. } => {
            out.extend_from_slice(b"{\"type\":\"image_url\",\"image_url\":{\"url\":");
            match image {
                Image::Base64 { media_type, data } => {
                    json::string(out, format!("data:{media_type};base64,{data}").as_bytes());
                }
                Image::Url(url) => json::string(out, url.as_bytes()),
            }
            out.extend_from_slice(b"}}");
        }
        Part::ToolCall { loc, .. } => {
            return Err(loc.refuse("a tool call cannot be sent in a user message"));
        }
        Part::ToolResult { .. } => {}
    }
    Ok(())
}

/// An assistant turn: its text joined (null when none), its tool calls.
fn assistant(turn: &Turn, parts: &[Part<'_, '_>], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
    if turn.plain
        && let [Part::Text(s)] = parts
    {
        json::string(out, s.as_bytes());
        out.push(b'}');
        return;
    }
    let mut text = String::new();
    for p in parts {
        if let Part::Text(s) = p {
            text.push_str(s);
        }
    }
    if text.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        json::string(out, text.as_bytes());
    }
    let mut calls = 0;
    for p in parts {
        let Part::ToolCall { id, name, args, .. } = p else {
            continue;
        };
        out.extend_from_slice(if calls == 0 {
            b",\"tool_calls\":["
        } else {
            b","
        });
        calls += 1;
        out.extend_from_slice(b"{\"id\":");
        json::string(out, id.as_bytes());
        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
        json::string(out, name.as_bytes());
        out.extend_from_slice(b",\"arguments\":");
        match args {
            Args::Text(s) => json::string(out, s.as_bytes()),
            Args::Json(x) => {
                let mut a = Vec::new();
                match x {
                    Some(x) => write_value(&mut a, x),
                    None => a.extend_from_slice(b"{}"),
                }
                json::string(out, &a);
            }
        }
        out.extend_from_slice(b"}}");
    }
    if calls > 0 {
        out.push(b']');
    }
    out.push(b'}');
}
