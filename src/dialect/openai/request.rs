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
//! | `user`, `n`, `store`, `logprobs`, `seed`, penalties, `response_format`, `reasoning_effort` | kept for the writer to pass or refuse |
//!
//! Accepted and not carried: `stream_options` (the gateway asks for usage itself),
//! `prompt_cache_key` (the gateway's sticky-routing key), an image's `detail`, a tool's
//! `strict` flag (the schema still goes). Anything else is refused by name.
//!
//! The writer (an OpenAI-dialect provider serving another dialect's client) writes the same
//! members back (a JSON schema under the name `response`); a streamed request asks for
//! `stream_options.include_usage`.

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{
    Args, Image, Loc, Part, Request, ResponseFormat, Role, Target, Texts, Tool, ToolChoice, Turn,
    Untranslatable, data_url, get, json_as_string, number, only, refuse_extra, string,
    write_tool_name, write_value,
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
    "reasoning_effort",
];

/// Text content: a string, or text parts only.
fn texts<'v>(content: Value<'v, '_>, at: Loc) -> Result<Texts<'v>, Untranslatable> {
    if let Some(s) = content.into_string() {
        return Ok(Texts::plain(s));
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
    Ok(Texts::blocks(texts))
}

/// Reads a Chat Completions request. `target` names the provider it is translated for, in
/// refusals.
pub fn read<'v, 'a>(v: Value<'v, 'a>, target: &str) -> Result<Request<'v, 'a>, Untranslatable> {
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

/// A message's members, read in one pass over it (no lookup per member).
#[derive(Default)]
struct Members<'v, 'a> {
    role: Option<Value<'v, 'a>>,
    content: Option<Value<'v, 'a>>,
    name: Option<Value<'v, 'a>>,
    tool_calls: Option<Value<'v, 'a>>,
    tool_call_id: Option<Value<'v, 'a>>,
    refusal: Option<Value<'v, 'a>>,
    /// The first member none of the above.
    other: Option<&'v str>,
}

impl<'v, 'a> Members<'v, 'a> {
    fn of(m: Value<'v, 'a>) -> Self {
        let mut out = Members::default();
        for (k, x) in m.as_object().iter().flat_map(|o| o.iter()) {
            if x.as_null().is_some() {
                continue;
            }
            let slot = match k {
                "role" => &mut out.role,
                "content" => &mut out.content,
                "name" => &mut out.name,
                "tool_calls" => &mut out.tool_calls,
                "tool_call_id" => &mut out.tool_call_id,
                "refusal" => &mut out.refusal,
                _ => {
                    out.other.get_or_insert(k);
                    continue;
                }
            };
            *slot = Some(x);
        }
        out
    }

    /// Refuses a member present that `role` messages do not have.
    fn only(&self, i: usize, allowed: &[&str], target: &str) -> Result<(), Untranslatable> {
        let present = [
            ("name", self.name.is_some()),
            ("tool_calls", self.tool_calls.is_some()),
            ("tool_call_id", self.tool_call_id.is_some()),
            ("refusal", self.refusal.is_some()),
        ];
        refuse_extra(Loc::message(i, ""), self.other, &present, allowed, target)
    }
}

fn read_message<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    m: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = Loc::message(i, "");
    let ms = Members::of(m);
    let role = match ms.role {
        None => return Err(at.with("role").refuse("is required")),
        Some(x) => x
            .into_string()
            .ok_or_else(|| at.with("role").refuse("must be a string"))?,
    };
    let required =
        |x: Option<Value<'v, 'a>>, tail| x.ok_or_else(|| at.with(tail).refuse("is required"));
    let start = r.parts.len();
    match role {
        "system" | "developer" => {
            ms.only(i, &["name"], target)?;
            if ms.name.is_some() {
                return Err(at
                    .with("name")
                    .refuse(&format!("has no equivalent for {target}")));
            }
            let t = texts(required(ms.content, "content")?, at.with("content"))?;
            if r.system.is_empty() {
                r.system_loc = at.with("content");
            }
            r.system.extend(t);
            return Ok(());
        }
        "tool" => {
            ms.only(i, &["tool_call_id"], target)?;
            let loc = at.with("tool_call_id");
            let id = required(ms.tool_call_id, "tool_call_id")?
                .into_string()
                .ok_or_else(|| loc.refuse("must be a string"))?;
            let content = match ms.content {
                None => Texts::plain(""),
                Some(c) => texts(c, at.with("content"))?,
            };
            r.parts.push(Part::ToolResult {
                id: id.into(),
                content,
                json: None,
                loc,
            });
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
            ms.only(i, &[], target)?;
            let plain = read_user_content(r, i, required(ms.content, "content")?, target)?;
            r.turns.push(Turn {
                role: Role::User,
                parts: start..r.parts.len(),
                plain,
                loc: at,
            });
        }
        "assistant" => {
            ms.only(i, &["tool_calls", "refusal"], target)?;
            let mut plain = false;
            if let Some(c) = ms.content {
                if let Some(s) = c.into_string() {
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
            if let Some(calls) = ms.tool_calls {
                let calls = calls
                    .as_array()
                    .ok_or_else(|| at.with("tool_calls").refuse("must be an array"))?;
                for (j, call) in calls.iter().enumerate() {
                    r.parts.push(read_tool_call(i, j, call, target)?);
                    plain = false;
                }
            }
            if ms
                .refusal
                .and_then(|x| x.into_string())
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
    content: Value<'v, 'a>,
    target: &str,
) -> Result<bool, Untranslatable> {
    if let Some(s) = content.into_string() {
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

fn image_url<'v>(p: Value<'v, '_>, pat: Loc, target: &str) -> Result<&'v str, Untranslatable> {
    only(p, &["type", "image_url"], pat, target)?;
    let img = get(p, "image_url").ok_or_else(|| pat.with("image_url").refuse("is required"))?;
    if let Some(s) = img.into_string() {
        return Ok(s);
    }
    only(img, &["url", "detail"], pat.with("image_url"), target)?;
    string(img, "url", pat.with("image_url.url"))?
        .ok_or_else(|| pat.with("image_url.url").refuse("is required"))
}

fn read_tool_call<'v, 'a>(
    i: usize,
    j: usize,
    call: Value<'v, 'a>,
    target: &str,
) -> Result<Part<'v, 'a>, Untranslatable> {
    let at = Loc::item(i, "tool_calls", j, "");
    let (mut id, mut kind, mut function) = (None, None, None);
    for (k, x) in call.as_object().iter().flat_map(|o| o.iter()) {
        if x.as_null().is_some() {
            continue;
        }
        match k {
            "id" => id = Some(x),
            "type" => kind = Some(x),
            "function" => function = Some(x),
            _ => only(call, &["id", "type", "function"], at, target)?,
        }
    }
    let str_or_refuse = |x: Value<'v, 'a>, tail| {
        x.into_string()
            .ok_or_else(|| at.with(tail).refuse("must be a string"))
    };
    if let Some(t) = kind
        && str_or_refuse(t, "type")? != "function"
    {
        return Err(at.with("type").refuse("must be `function`"));
    }
    let f = function.ok_or_else(|| at.with("function").refuse("is required"))?;
    let (mut name, mut args) = (None, None);
    for (k, x) in f.as_object().iter().flat_map(|o| o.iter()) {
        match k {
            "name" if x.as_null().is_none() => name = Some(str_or_refuse(x, "function.name")?),
            "arguments" if x.as_null().is_none() => {
                args = Some(str_or_refuse(x, "function.arguments")?);
            }
            _ => {}
        }
    }
    Ok(Part::ToolCall {
        id: id
            .map(|x| str_or_refuse(x, "id"))
            .transpose()?
            .unwrap_or_default()
            .into(),
        name: name.ok_or_else(|| at.with("function.name").refuse("is required"))?,
        args: Args::Text(args.unwrap_or_default()),
        loc: at.with("function.arguments"),
    })
}

fn read_settings<'v, 'a>(
    r: &mut Request<'v, 'a>,
    v: Value<'v, 'a>,
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
        let ok = stop.into_string().is_some()
            || stop
                .as_array()
                .is_some_and(|a| a.iter().all(|s| s.into_string().is_some()));
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
    r.reasoning_effort = string(v, "reasoning_effort", Loc::top("reasoning_effort"))?;
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
    tool: Value<'v, 'a>,
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
        openapi: false,
    })
}

fn tool_choice<'v>(x: Value<'v, '_>) -> Result<ToolChoice<'v>, Untranslatable> {
    let at = Loc::top("tool_choice");
    match x.into_string() {
        Some("auto") => return Ok(ToolChoice::Auto),
        Some("none") => return Ok(ToolChoice::None),
        Some("required") => return Ok(ToolChoice::Required),
        Some(other) => return Err(at.refuse(&format!("`{other}` is not a known tool choice"))),
        None => {}
    }
    if string(x, "type", Loc::top("tool_choice.type"))? == Some("function")
        && let Some(name) = get(x, "function")
            .and_then(|f| f.get("name"))
            .and_then(|n| n.into_string())
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
    if !r.system.is_empty() {
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
                    if let Part::ToolResult {
                        id, content, json, ..
                    } = p
                    {
                        open(out);
                        out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
                        json::string(out, id.as_bytes());
                        out.extend_from_slice(b",\"content\":");
                        match json {
                            Some(_) => json_as_string(out, *json),
                            None => text_content(content, out),
                        }
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
        out.extend_from_slice(b",\"");
        out.extend_from_slice(super::max_tokens_member(true, t.compatible));
        out.extend_from_slice(b"\":");
        json::uint(out, n);
    }
    write_sampling(r, out);
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
            out.extend_from_slice(b"{\"type\":\"function\",\"function\":{");
            write_tool_name(out, tool);
            if let Some(s) = tool.parameters {
                out.extend_from_slice(b",\"parameters\":");
                crate::dialect::norm::write_schema(out, s, tool.openapi);
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
    write_tail(r, out);
    if let Some(effort) = r.reasoning_effort {
        out.extend_from_slice(b",\"reasoning_effort\":");
        json::string(out, effort.as_bytes());
    }
    match r.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            out.extend_from_slice(b",\"response_format\":{\"type\":\"json_object\"}");
        }
        Some(ResponseFormat::JsonSchema(schema)) => {
            out.extend_from_slice(
                b",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"response\",\"schema\":",
            );
            write_value(out, schema);
            out.extend_from_slice(b"}}");
        }
    }
    out.push(b'}');
    Ok(())
}

/// `temperature` and `top_p`, as both of OpenAI's APIs name them.
pub(crate) fn write_sampling(r: &Request<'_, '_>, out: &mut Vec<u8>) {
    for (k, x) in [("temperature", r.temperature), ("top_p", r.top_p)] {
        if let Some(x) = x {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            write_value(out, x.raw);
        }
    }
}

/// `parallel_tool_calls` (when off) and `user`, as both of OpenAI's APIs name them.
pub(crate) fn write_tail(r: &Request<'_, '_>, out: &mut Vec<u8>) {
    if r.parallel_tool_calls == Some(false) {
        out.extend_from_slice(b",\"parallel_tool_calls\":false");
    }
    if let Some(user) = r.user {
        out.extend_from_slice(b",\"user\":");
        json::string(out, user.as_bytes());
    }
}

/// Text content as OpenAI writes it: a string, or text parts.
fn text_content(t: &Texts<'_>, out: &mut Vec<u8>) {
    if t.is_plain() {
        json::string(out, t.joined().as_bytes());
        return;
    }
    out.push(b'[');
    for (j, text) in t.as_slice().iter().enumerate() {
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
            Args::Json(x) => json_as_string(out, *x),
        }
        out.extend_from_slice(b"}}");
    }
    if calls > 0 {
        out.push(b']');
    }
    out.push(b'}');
}
