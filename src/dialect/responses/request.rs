//! OpenAI Responses API requests ⇄ the normalised form ([`crate::dialect::norm`]).
//!
//! | Responses | normalised |
//! | --- | --- |
//! | `instructions`; `system` / `developer` messages in `input`, anywhere | the system prompt (in order) |
//! | `input` as a string | one user turn of text |
//! | `user` messages: a string, or `input_text` / `input_image` parts (data URL or http(s) URL) | a user turn: text, images |
//! | `assistant` messages (`output_text` / `refusal` parts) and `function_call` items | an assistant turn: text, tool calls (`arguments` kept as the string); a run of them is one turn |
//! | a run of `function_call_output` items | one user turn of tool results |
//! | `max_output_tokens`, `temperature`, `top_p`, `user`, `parallel_tool_calls`, `store` | the same |
//! | `tools` (`function` tools), `tool_choice` auto / none / required / a named function | tools, tool choice |
//! | `text.format` text / json_object / json_schema | the response format |
//! | `reasoning.effort` | the reasoning effort |
//!
//! Accepted and not carried: `reasoning` items in `input` (the opaque, encrypted state of an
//! OpenAI model's earlier reasoning: no other provider can read it), `reasoning.summary` and
//! `include` (they ask for reasoning output a translated answer never has), `metadata` (tags
//! for OpenAI's stored responses, which a translated route does not store), `stream_options`,
//! `prompt_cache_key` (the gateway's sticky-routing key), `safety_identifier` (an
//! abuse-monitoring id), `truncation: "disabled"`, `service_tier: "auto" | "default"`,
//! `background: false`, an image's `detail`, a function tool's `strict` flag, an item's
//! `id` and `status` (echoes of OpenAI's own output).
//!
//! Refused by name: server-side state (`previous_response_id`, `conversation`, a stored
//! `prompt`, `item_reference` items: only OpenAI holds them), the built-in tools OpenAI runs
//! itself (`web_search`, `file_search`, `computer_use_preview`, `code_interpreter`,
//! `image_generation`, `mcp`, `local_shell`, …: named in the refusal), file inputs, and
//! anything else unknown.
//!
//! The writer (an OpenAI provider whose deployment sets `api = "responses"`, serving another
//! dialect's client) writes the same members back, `store: false` unless the client asked to
//! store (it could not fetch a stored response through a translation anyway), function tools with `strict: false` (the API's
//! default is strict, which changes what a schema allows). Refused there: stop sequences,
//! `n`, `logprobs`, `seed`, penalties, `top_k` (the Responses API has none of them).

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{
    Args, Image, Loc, Part, Request, ResponseFormat, Role, Target, Texts, Tool, ToolChoice, Turn,
    Untranslatable, data_url, get, json_as_string, number, only, refuse_unless_neutral, string,
    write_tool_name, write_value,
};
use crate::dialect::openai;
use crate::json;

/// Top-level members read (or accepted, see the table).
const KNOWN: &[&str] = &[
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "user",
    "store",
    "metadata",
    "text",
    "reasoning",
    "include",
    "prompt_cache_key",
    "safety_identifier",
    "truncation",
    "service_tier",
    "background",
];

/// Members that need OpenAI's server-side state.
const STATEFUL: &[&str] = &["previous_response_id", "conversation", "prompt"];

/// The list of messages is `input`.
fn at(i: usize) -> Loc {
    Loc::message(i, "").in_list("input")
}

/// Reads a Responses request. `target` names the provider it is translated for, in refusals.
pub fn read<'v, 'a>(v: Value<'v, 'a>, target: &str) -> Result<Request<'v, 'a>, Untranslatable> {
    for k in STATEFUL {
        if get(v, k).is_some() {
            return Err(Loc::top(k).refuse(&format!(
                "needs state that only OpenAI keeps; {target} cannot serve it"
            )));
        }
    }
    only(v, KNOWN, Loc::default(), target)?;
    let mut r = Request::default();
    if let Some(s) = string(v, "instructions", Loc::top("instructions"))? {
        r.system = Texts::plain(s);
        r.system_loc = Loc::top("instructions");
    }
    match get(v, "input") {
        None => return Err(Loc::top("input").refuse("is required")),
        Some(x) => {
            if let Some(s) = x.into_string() {
                r.parts.push(Part::Text(s));
                r.turns.push(Turn {
                    role: Role::User,
                    parts: 0..1,
                    plain: true,
                    loc: Loc::top("input"),
                });
            } else {
                let items = x
                    .as_array()
                    .ok_or_else(|| Loc::top("input").refuse("must be a string or an array"))?;
                r.turns.reserve(items.len());
                r.parts.reserve(items.len() + 4);
                for (i, item) in items.iter().enumerate() {
                    read_item(&mut r, i, item, target)?;
                }
            }
        }
    }
    if r.turns.is_empty() {
        return Err(Loc::top("input").refuse("must hold at least one message"));
    }
    read_settings(&mut r, v, target)?;
    Ok(r)
}

/// Adds `parts[start..]` to the last turn when it has `role` and `joins` says so, else as a
/// new turn.
fn push_turn(
    r: &mut Request<'_, '_>,
    role: Role,
    start: usize,
    plain: bool,
    loc: Loc,
    joins: bool,
) {
    if joins
        && let Some(last) = r.turns.last_mut()
        && last.role == role
        && last.parts.end == start
    {
        last.parts.end = r.parts.len();
        last.plain = false;
        return;
    }
    r.turns.push(Turn {
        role,
        parts: start..r.parts.len(),
        plain,
        loc,
    });
}

fn read_item<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    item: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = at(i);
    let kind = string(item, "type", at.with("type"))?;
    let start = r.parts.len();
    match kind {
        None | Some("message") => read_message(r, i, item, target),
        Some("function_call") => {
            only(
                item,
                &["type", "call_id", "name", "arguments", "id", "status"],
                at,
                target,
            )?;
            let required = |k: &'static str| {
                string(item, k, at.with(k))?.ok_or_else(|| at.with(k).refuse("is required"))
            };
            r.parts.push(Part::ToolCall {
                id: required("call_id")?.into(),
                name: required("name")?,
                args: Args::Text(string(item, "arguments", at.with("arguments"))?.unwrap_or("")),
                loc: at.with("arguments"),
            });
            // An assistant message and the calls after it are one turn.
            push_turn(r, Role::Assistant, start, false, at, true);
            Ok(())
        }
        Some("function_call_output") => {
            only(
                item,
                &["type", "call_id", "output", "id", "status"],
                at,
                target,
            )?;
            let loc = at.with("call_id");
            let id = string(item, "call_id", loc)?.ok_or_else(|| loc.refuse("is required"))?;
            let content = match get(item, "output") {
                None => Texts::plain(""),
                Some(o) => output_texts(o, at.with("output"))?,
            };
            r.parts.push(Part::ToolResult {
                id: id.into(),
                content,
                json: None,
                loc,
            });
            let joins = matches!(
                r.parts.get(start.wrapping_sub(1)),
                Some(Part::ToolResult { .. })
            );
            push_turn(r, Role::User, start, false, at, joins);
            Ok(())
        }
        Some("reasoning") => Ok(()),
        Some("item_reference") => Err(at.refuse(&format!(
            "refers to an item only OpenAI keeps; {target} cannot serve it"
        ))),
        Some(other) => Err(at.with("type").refuse(&format!(
            "`{other}` items cannot be translated for {target}"
        ))),
    }
}

/// A `function_call_output`'s `output`: a string, or `input_text` parts.
fn output_texts<'v>(o: Value<'v, '_>, at: Loc) -> Result<Texts<'v>, Untranslatable> {
    if let Some(s) = o.into_string() {
        return Ok(Texts::plain(s));
    }
    let parts = o
        .as_array()
        .ok_or_else(|| at.refuse("must be a string or an array of parts"))?;
    let mut texts = Vec::with_capacity(parts.len());
    for p in parts.iter() {
        match string(p, "type", at.with("type"))? {
            Some("input_text") => texts.push(string(p, "text", at)?.unwrap_or_default()),
            _ => return Err(at.refuse("must hold text parts only to be translated")),
        }
    }
    Ok(Texts::blocks(texts))
}

fn read_message<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    m: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = at(i);
    only(m, &["type", "role", "content", "id", "status"], at, target)?;
    let role =
        string(m, "role", at.with("role"))?.ok_or_else(|| at.with("role").refuse("is required"))?;
    let content = get(m, "content").ok_or_else(|| at.with("content").refuse("is required"))?;
    let start = r.parts.len();
    match role {
        "system" | "developer" => {
            let t = match content.into_string() {
                Some(s) => Texts::plain(s),
                None => {
                    let mut texts = Vec::new();
                    for (j, p) in parts_of(content, at)?.iter().enumerate() {
                        let pat = Loc::item(i, "content", j, "").in_list("input");
                        match string(p, "type", pat.with("type"))? {
                            Some("input_text") => {
                                texts.push(string(p, "text", pat.with("text"))?.unwrap_or(""));
                            }
                            _ => return Err(pat.with("type").refuse("must be `input_text`")),
                        }
                    }
                    Texts::blocks(texts)
                }
            };
            if r.system.is_empty() {
                r.system_loc = at.with("content");
            }
            r.system.extend(t);
            Ok(())
        }
        "user" => {
            let plain = match content.into_string() {
                Some(s) => {
                    r.parts.push(Part::Text(s));
                    true
                }
                None => {
                    for (j, p) in parts_of(content, at)?.iter().enumerate() {
                        r.parts.push(user_part(i, j, p, target)?);
                    }
                    false
                }
            };
            push_turn(r, Role::User, start, plain, at, false);
            Ok(())
        }
        "assistant" => {
            let plain = match content.into_string() {
                Some(s) => {
                    r.parts.push(Part::Text(s));
                    true
                }
                None => {
                    for (j, p) in parts_of(content, at)?.iter().enumerate() {
                        let pat = Loc::item(i, "content", j, "").in_list("input");
                        let text = match string(p, "type", pat.with("type"))? {
                            Some("output_text") => string(p, "text", pat.with("text"))?,
                            Some("refusal") => string(p, "refusal", pat.with("refusal"))?,
                            _ => {
                                return Err(pat
                                    .with("type")
                                    .refuse("must be `output_text` or `refusal`"));
                            }
                        };
                        r.parts.push(Part::Text(text.unwrap_or_default()));
                    }
                    false
                }
            };
            push_turn(r, Role::Assistant, start, plain, at, true);
            Ok(())
        }
        other => Err(at
            .with("role")
            .refuse(&format!("`{other}` cannot be translated for {target}"))),
    }
}

fn parts_of<'v, 'a>(
    content: Value<'v, 'a>,
    at: Loc,
) -> Result<simd_json::tape::Array<'v, 'a>, Untranslatable> {
    content.as_array().ok_or_else(|| {
        at.with("content")
            .refuse("must be a string or an array of content parts")
    })
}

fn user_part<'v, 'a>(
    i: usize,
    j: usize,
    p: Value<'v, 'a>,
    target: &str,
) -> Result<Part<'v, 'a>, Untranslatable> {
    let pat = Loc::item(i, "content", j, "").in_list("input");
    match string(p, "type", pat.with("type"))? {
        Some("input_text") => {
            only(p, &["type", "text"], pat, target)?;
            Ok(Part::Text(
                string(p, "text", pat.with("text"))?.unwrap_or_default(),
            ))
        }
        Some("input_image") => {
            only(p, &["type", "image_url", "detail"], pat, target)?;
            let loc = pat.with("image_url");
            let url = string(p, "image_url", loc)?.ok_or_else(|| loc.refuse("is required"))?;
            let image = match data_url(url) {
                Some((media_type, data)) => Image::Base64 { media_type, data },
                None if url.starts_with("https://") || url.starts_with("http://") => {
                    Image::Url(url)
                }
                None => return Err(loc.refuse("must be an http(s) URL or a base64 data URL")),
            };
            Ok(Part::Image { image, loc })
        }
        Some(t) => Err(pat
            .with("type")
            .refuse(&format!("`{t}` content cannot be translated for {target}"))),
        None => Err(pat.with("type").refuse("is required")),
    }
}

fn read_settings<'v, 'a>(
    r: &mut Request<'v, 'a>,
    v: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    if let Some(x) = get(v, "max_output_tokens") {
        r.max_tokens = Some(x.as_u64().ok_or_else(|| {
            Loc::top("max_output_tokens").refuse("must be a non-negative integer")
        })?);
    }
    r.temperature = number(v, "temperature")?;
    r.top_p = number(v, "top_p")?;
    r.stream = get(v, "stream").and_then(|s| s.as_bool()) == Some(true);
    r.user = string(v, "user", Loc::top("user"))?;
    r.store = get(v, "store").map(|x| x.as_bool() != Some(false));
    if let Some(x) = get(v, "parallel_tool_calls") {
        r.parallel_tool_calls = Some(
            x.as_bool()
                .ok_or_else(|| Loc::top("parallel_tool_calls").refuse("must be a boolean"))?,
        );
    }
    for (k, neutral) in [
        ("truncation", &["disabled"][..]),
        ("service_tier", &["auto", "default"][..]),
    ] {
        if let Some(x) = get(v, k)
            && !x.into_string().is_some_and(|s| neutral.contains(&s))
        {
            return Err(Loc::top(k).refuse(&format!("has no equivalent for {target}")));
        }
    }
    if get(v, "background").and_then(|b| b.as_bool()) == Some(true) {
        return Err(Loc::top("background").refuse(&format!("has no equivalent for {target}")));
    }
    if let Some(tools) = get(v, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| Loc::top("tools").refuse("must be an array"))?;
        for (j, tool) in tools.iter().enumerate() {
            r.tools.push(read_tool(j, tool, target)?);
        }
    }
    if let Some(x) = get(v, "tool_choice") {
        r.tool_choice = Some(tool_choice(x, target)?);
    }
    if let Some(reasoning) = get(v, "reasoning") {
        only(
            reasoning,
            &["effort", "summary", "generate_summary"],
            Loc::top("reasoning"),
            target,
        )?;
        r.reasoning_effort = string(reasoning, "effort", Loc::top("reasoning.effort"))?;
    }
    if let Some(text) = get(v, "text") {
        only(text, &["format", "verbosity"], Loc::top("text"), target)?;
        if let Some(vb) = get(text, "verbosity")
            && vb.into_string() != Some("medium")
        {
            return Err(
                Loc::top("text.verbosity").refuse(&format!("has no equivalent for {target}"))
            );
        }
        if let Some(f) = get(text, "format") {
            let at = Loc::top("text.format");
            only(
                f,
                &["type", "name", "schema", "strict", "description"],
                at,
                target,
            )?;
            r.response_format = Some(match string(f, "type", at.with("type"))? {
                Some("text") => ResponseFormat::Text,
                Some("json_object") => ResponseFormat::JsonObject,
                Some("json_schema") => ResponseFormat::JsonSchema(
                    get(f, "schema").ok_or_else(|| at.with("schema").refuse("is required"))?,
                ),
                _ => {
                    return Err(at
                        .with("type")
                        .refuse("must be text, json_object or json_schema"));
                }
            });
        }
    }
    Ok(())
}

fn read_tool<'v, 'a>(
    j: usize,
    tool: Value<'v, 'a>,
    target: &str,
) -> Result<Tool<'v, 'a>, Untranslatable> {
    let at = Loc::listed("tools", j, "");
    match string(tool, "type", at.with("type"))? {
        Some("function") => {}
        Some(builtin) => {
            return Err(at.refuse(&format!(
                "is OpenAI's built-in `{builtin}` tool, which OpenAI runs itself; {target} \
                 cannot run it (declare a function tool instead)"
            )));
        }
        None => return Err(at.with("type").refuse("is required")),
    }
    only(
        tool,
        &["type", "name", "description", "parameters", "strict"],
        at,
        target,
    )?;
    Ok(Tool {
        name: string(tool, "name", at.with("name"))?
            .ok_or_else(|| at.with("name").refuse("is required"))?,
        description: string(tool, "description", at.with("description"))?,
        parameters: get(tool, "parameters"),
        openapi: false,
    })
}

fn tool_choice<'v>(x: Value<'v, '_>, target: &str) -> Result<ToolChoice<'v>, Untranslatable> {
    let at = Loc::top("tool_choice");
    match x.into_string() {
        Some("auto") => return Ok(ToolChoice::Auto),
        Some("none") => return Ok(ToolChoice::None),
        Some("required") => return Ok(ToolChoice::Required),
        Some(other) => return Err(at.refuse(&format!("`{other}` is not a known tool choice"))),
        None => {}
    }
    match string(x, "type", at.with("type"))? {
        Some("function") => string(x, "name", at.with("name"))?
            .map(ToolChoice::Named)
            .ok_or_else(|| at.with("name").refuse("is required")),
        Some(other) => Err(at.refuse(&format!(
            "names OpenAI's built-in `{other}` tool, which {target} cannot run"
        ))),
        None => Err(at.refuse("must be auto, none, required or a named function")),
    }
}

// -------------------------------------------------------------------------------- writer

/// The name refusals use for this dialect as a target.
pub const TARGET: &str = "OpenAI's Responses API";

/// Writes `r` as a Responses request for `t`'s deployment.
pub fn write(r: &Request<'_, '_>, t: &Target<'_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    refuse_unless_neutral(r.stop, "stop", TARGET, |_| false)?;
    refuse_unless_neutral(r.n, "n", TARGET, |&n| n == 1)?;
    refuse_unless_neutral(r.logprobs, "logprobs", TARGET, |&l| !l)?;
    refuse_unless_neutral(r.seed, "seed", TARGET, |_| false)?;
    refuse_unless_neutral(r.top_k, "top_k", TARGET, |_| false)?;
    refuse_unless_neutral(r.presence_penalty, "presence_penalty", TARGET, |x| {
        x.value == 0.0
    })?;
    refuse_unless_neutral(r.frequency_penalty, "frequency_penalty", TARGET, |x| {
        x.value == 0.0
    })?;
    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(t.model_json);
    if !r.system.is_empty() {
        out.extend_from_slice(b",\"instructions\":");
        json::string(out, r.system.joined().as_bytes());
    }
    out.extend_from_slice(b",\"input\":[");
    let mut first = true;
    let mut open = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    for turn in &r.turns {
        let parts = r.parts_of(turn);
        match turn.role {
            Role::User => {
                for p in parts {
                    if let Part::ToolResult {
                        id, content, json, ..
                    } = p
                    {
                        open(out);
                        out.extend_from_slice(b"{\"type\":\"function_call_output\",\"call_id\":");
                        json::string(out, id.as_bytes());
                        out.extend_from_slice(b",\"output\":");
                        match json {
                            Some(_) => json_as_string(out, *json),
                            None => json::string(out, content.joined().as_bytes()),
                        }
                        out.push(b'}');
                    }
                }
                let mut rest = parts
                    .iter()
                    .filter(|p| !matches!(p, Part::ToolResult { .. }))
                    .peekable();
                if rest.peek().is_none() {
                    continue;
                }
                open(out);
                if turn.plain
                    && let [Part::Text(s)] = parts
                {
                    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                    json::string(out, s.as_bytes());
                    out.push(b'}');
                    continue;
                }
                out.extend_from_slice(b"{\"role\":\"user\",\"content\":[");
                for (n, p) in rest.enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    user_part_out(p, out)?;
                }
                out.extend_from_slice(b"]}");
            }
            Role::Assistant => {
                let text: String = parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(s) => Some(*s),
                        _ => None,
                    })
                    .collect();
                if !text.is_empty() {
                    open(out);
                    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
                    json::string(out, text.as_bytes());
                    out.push(b'}');
                }
                for p in parts {
                    if let Part::ToolCall { id, name, args, .. } = p {
                        open(out);
                        out.extend_from_slice(b"{\"type\":\"function_call\",\"call_id\":");
                        json::string(out, id.as_bytes());
                        out.extend_from_slice(b",\"name\":");
                        json::string(out, name.as_bytes());
                        out.extend_from_slice(b",\"arguments\":");
                        match args {
                            Args::Text(s) => json::string(out, s.as_bytes()),
                            Args::Json(x) => json_as_string(out, *x),
                        }
                        out.push(b'}');
                    }
                }
            }
        }
    }
    out.push(b']');
    if let Some(n) = r.max_tokens {
        out.extend_from_slice(b",\"max_output_tokens\":");
        json::uint(out, n);
    }
    openai::request::write_sampling(r, out);
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    if !r.tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[");
        for (i, tool) in r.tools.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"type\":\"function\",");
            write_tool_name(out, tool);
            if let Some(s) = tool.parameters {
                out.extend_from_slice(b",\"parameters\":");
                crate::dialect::norm::write_schema(out, s, tool.openapi);
            }
            out.extend_from_slice(b",\"strict\":false}");
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
                out.extend_from_slice(b"{\"type\":\"function\",\"name\":");
                json::string(out, name.as_bytes());
                out.push(b'}');
            }
        }
    }
    openai::request::write_tail(r, out);
    match r.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            out.extend_from_slice(b",\"text\":{\"format\":{\"type\":\"json_object\"}}");
        }
        Some(ResponseFormat::JsonSchema(schema)) => {
            out.extend_from_slice(
                b",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"response\",\"schema\":",
            );
            write_value(out, schema);
            out.extend_from_slice(b",\"strict\":false}}");
        }
    }
    if let Some(effort) = r.reasoning_effort {
        out.extend_from_slice(b",\"reasoning\":{\"effort\":");
        json::string(out, effort.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(if r.store == Some(true) {
        b",\"store\":true}".as_slice()
    } else {
        b",\"store\":false}"
    });
    Ok(())
}

fn user_part_out(p: &Part<'_, '_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    match p {
        Part::Text(s) => {
            out.extend_from_slice(b"{\"type\":\"input_text\",\"text\":");
            json::string(out, s.as_bytes());
            out.push(b'}');
        }
        Part::Image { image, .. } => {
            out.extend_from_slice(b"{\"type\":\"input_image\",\"image_url\":");
            match image {
                Image::Base64 { media_type, data } => {
                    json::string(out, format!("data:{media_type};base64,{data}").as_bytes());
                }
                Image::Url(url) => json::string(out, url.as_bytes()),
            }
            out.push(b'}');
        }
        Part::ToolCall { loc, .. } => {
            return Err(loc.refuse("a tool call cannot be sent in a user message"));
        }
        Part::ToolResult { .. } => {}
    }
    Ok(())
}
