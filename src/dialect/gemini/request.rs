//! Gemini `generateContent` requests ⇄ the normalised form ([`crate::dialect::norm`]).
//!
//! Reading (a Gemini client served by another dialect's provider): `systemInstruction` → the
//! system prompt; `contents` — `user` (and the older `function`) turns of `text`,
//! `inlineData` images, `fileData` images at https URLs and `functionResponse` parts; `model`
//! turns of `text` and `functionCall` parts (`thought` parts skipped) — into turns; a call
//! without an `id` gets one made up (`call_{turn}_{part}`), and a response without one takes
//! the id of the first unanswered call of that name in the model turn before it; a response
//! that is `{"content": <string>}` is that text, any other is carried as JSON.
//! `generationConfig` (max output tokens, temperature, topP, topK, stop sequences, seed,
//! penalties, `candidateCount`, `responseMimeType` + `responseJsonSchema`),
//! `tools[].functionDeclarations` (`parametersJsonSchema`, or `parameters` in Google's OpenAPI
//! dialect, whose upper-case type names go out lower-cased as JSON Schema has them) and
//! `toolConfig.functionCallingConfig` (AUTO / NONE / ANY, one allowed name) are read.
//! Accepted and not carried: `thinkingConfig` (a hint; the model thinks at its default),
//! `responseModalities: ["TEXT"]`, a part's `thoughtSignature` (Gemini's own state).
//! Refused by name: Google's built-in tools (`googleSearch`, `codeExecution`, `urlContext`,
//! …), `safetySettings`, `cachedContent`, `responseSchema` (Google's OpenAPI dialect of a
//! schema: send `responseJsonSchema`), other part kinds, and anything else unknown. The
//! stream flag is the route's (`:streamGenerateContent`), not the body's.
//!
//! Writing:
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
//! dropped (an abuse-monitoring id Gemini has no field for); so is an OpenAI reasoning effort
//! (a hint: the model thinks at its own default).

use std::borrow::Cow;

use simd_json::prelude::*;
use simd_json::tape::Value;

use crate::dialect::norm::{
    Args, Image, Loc, Number, Part, Request, ResponseFormat, Role, Target, Texts, Tool, ToolChoice,
    Turn, Untranslatable, refuse_unless_neutral, write_tool_name, write_value,
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
                crate::dialect::norm::write_schema(out, p, tool.openapi);
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
        Part::ToolResult {
            id,
            content,
            json,
            loc,
        } => {
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
            out.extend_from_slice(b",\"response\":");
            match json {
                Some(v) => write_value(out, *v),
                None => {
                    out.extend_from_slice(b"{\"content\":");
                    json::string(out, content.joined().as_bytes());
                    out.push(b'}');
                }
            }
            out.extend_from_slice(b"}}");
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

// -------------------------------------------------------------------------------- reader

/// Top-level members read.
const KNOWN: &[&str] = &[
    "contents",
    "systemInstruction",
    "generationConfig",
    "tools",
    "toolConfig",
    "model",
];

/// The list of messages is `contents`.
fn turn_at(i: usize) -> Loc {
    Loc::message(i, "").in_list("contents")
}

// Google's JSON takes every member under its camelCase or its snake_case name (the proto
// JSON mapping; google-genai sends some of each): members are looked up by both, and
// checked against the known ones by their camelCase form.

/// `some_name` → `someName`.
fn camel(k: &str) -> Cow<'_, str> {
    if !k.contains('_') {
        return Cow::Borrowed(k);
    }
    let mut out = String::with_capacity(k.len());
    let mut up = false;
    for c in k.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.extend(c.to_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `someName` → `some_name`.
fn snake(k: &str) -> String {
    let mut out = String::with_capacity(k.len() + 4);
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Member `k` (camelCase) under either name; null is absent.
fn get<'v, 'a>(v: Value<'v, 'a>, k: &str) -> Option<Value<'v, 'a>> {
    let found = v.get(k).or_else(|| {
        k.bytes()
            .any(|b| b.is_ascii_uppercase())
            .then(|| v.get(snake(k).as_str()))
            .flatten()
    });
    found.filter(|x| x.as_null().is_none())
}

fn string<'v>(v: Value<'v, '_>, k: &str, loc: Loc) -> Result<Option<&'v str>, Untranslatable> {
    match get(v, k) {
        None => Ok(None),
        Some(x) => x
            .into_string()
            .map(Some)
            .ok_or_else(|| loc.refuse("must be a string")),
    }
}

fn number<'v, 'a>(
    v: Value<'v, 'a>,
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

/// Refuses a member (by either name) that is not in `known` (camelCase).
fn only(v: Value<'_, '_>, known: &[&str], at: Loc, target: &str) -> Result<(), Untranslatable> {
    let Some(obj) = v.as_object() else {
        return Ok(());
    };
    match obj
        .iter()
        .find(|(k, x)| x.as_null().is_none() && !known.contains(&camel(k).as_ref()))
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

/// Reads a `generateContent` request body. `target` names the provider it is translated for.
pub fn read<'v, 'a>(v: Value<'v, 'a>, target: &str) -> Result<Request<'v, 'a>, Untranslatable> {
    only(v, KNOWN, Loc::default(), target)?;
    let contents = get(v, "contents")
        .and_then(|c| c.as_array())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Loc::top("contents").refuse("must be a non-empty array"))?;
    let mut r = Request {
        turns: Vec::with_capacity(contents.len()),
        parts: Vec::with_capacity(contents.len() + 4),
        ..Request::default()
    };
    if let Some(sys) = get(v, "systemInstruction") {
        let at = Loc::top("systemInstruction");
        r.system = match sys.into_string() {
            Some(s) => Texts::plain(s),
            None => {
                let parts = get(sys, "parts")
                    .and_then(|p| p.as_array())
                    .ok_or_else(|| at.with("parts").refuse("must be an array"))?;
                let mut texts = Vec::with_capacity(parts.len());
                for p in parts.iter() {
                    only(p, &["text"], at, target)?;
                    texts.push(string(p, "text", at)?.unwrap_or_default());
                }
                Texts::blocks(texts)
            }
        };
        r.system_loc = at;
    }
    // The calls of the last model turn not yet answered: (name, id).
    let mut pending: Vec<(&'v str, Cow<'v, str>)> = Vec::new();
    for (i, c) in contents.iter().enumerate() {
        read_content(&mut r, i, c, &mut pending, target)?;
    }
    read_config(&mut r, v, target)?;
    Ok(r)
}

fn read_content<'v, 'a>(
    r: &mut Request<'v, 'a>,
    i: usize,
    c: Value<'v, 'a>,
    pending: &mut Vec<(&'v str, Cow<'v, str>)>,
    target: &str,
) -> Result<(), Untranslatable> {
    let at = turn_at(i);
    only(c, &["role", "parts"], at, target)?;
    let role = match string(c, "role", at.with("role"))? {
        None | Some("user") | Some("function") => Role::User,
        Some("model") => Role::Assistant,
        Some(other) => {
            return Err(at
                .with("role")
                .refuse(&format!("`{other}` is not a Gemini role")));
        }
    };
    let parts = get(c, "parts")
        .and_then(|p| p.as_array())
        .ok_or_else(|| at.with("parts").refuse("must be an array"))?;
    if role == Role::Assistant {
        pending.clear();
    }
    let start = r.parts.len();
    for (j, p) in parts.iter().enumerate() {
        let pat = Loc::item(i, "parts", j, "").in_list("contents");
        let Some(obj) = p.as_object() else {
            return Err(pat.refuse("must be an object"));
        };
        let mut kind = None;
        let mut thought = false;
        for (k, x) in obj.iter() {
            match k {
                "thought" => thought = x.as_bool() == Some(true),
                "thoughtSignature" | "thought_signature" => {}
                _ if x.as_null().is_some() => {}
                _ => {
                    if kind.is_some() {
                        return Err(pat.refuse("must hold one kind of data"));
                    }
                    kind = Some((k, x));
                }
            }
        }
        let Some((k, x)) = kind else {
            continue;
        };
        let k = camel(k);
        if thought {
            continue;
        }
        let part = match (k.as_ref(), role) {
            ("text", _) => Part::Text(
                x.into_string()
                    .ok_or_else(|| pat.with("text").refuse("must be a string"))?,
            ),
            ("inlineData", Role::User) => {
                let loc = pat.with("inlineData");
                let media_type = get(x, "mimeType")
                    .and_then(|m| m.into_string())
                    .ok_or_else(|| loc.refuse("needs a mimeType"))?;
                if !media_type.starts_with("image/") {
                    return Err(loc.refuse(&format!(
                        "is `{media_type}`; only images can be translated for {target}"
                    )));
                }
                let data = string(x, "data", loc)?.ok_or_else(|| loc.refuse("needs data"))?;
                Part::Image {
                    image: Image::Base64 { media_type, data },
                    loc,
                }
            }
            ("fileData", Role::User) => {
                let loc = pat.with("fileData.fileUri");
                let uri = get(x, "fileUri")
                    .and_then(|u| u.into_string())
                    .ok_or_else(|| loc.refuse("is required"))?;
                if !uri.starts_with("https://") {
                    return Err(loc.refuse(&format!(
                        "must be an https URL to be translated for {target}"
                    )));
                }
                Part::Image {
                    image: Image::Url(uri),
                    loc,
                }
            }
            ("functionCall", Role::Assistant) => {
                let loc = pat.with("functionCall");
                only(x, &["name", "args", "id"], loc, target)?;
                let name = string(x, "name", loc.with("functionCall.name"))?
                    .ok_or_else(|| loc.with("functionCall.name").refuse("is required"))?;
                let id: Cow<'v, str> = match string(x, "id", loc)? {
                    Some(id) => id.into(),
                    None => format!("call_{i}_{j}").into(),
                };
                pending.push((name, id.clone()));
                Part::ToolCall {
                    id,
                    name,
                    args: Args::Json(get(x, "args")),
                    loc: loc.with("functionCall.args"),
                }
            }
            ("functionResponse", Role::User) => {
                let loc = pat.with("functionResponse");
                only(x, &["name", "response", "id"], loc, target)?;
                let name = string(x, "name", loc)?.unwrap_or_default();
                let id: Cow<'v, str> = match string(x, "id", loc)? {
                    Some(id) => id.into(),
                    None => {
                        let at = pending
                            .iter()
                            .position(|(n, _)| *n == name)
                            .ok_or_else(|| {
                                loc.refuse("answers no call of that name in the turn before it")
                            })?;
                        pending.remove(at).1
                    }
                };
                let response = get(x, "response");
                let text = response.and_then(|v| {
                    let o = v.as_object()?;
                    (o.len() == 1).then(|| str_in(v, "content")).flatten()
                });
                let (content, json) = match text {
                    Some(t) => (Texts::plain(t), None),
                    None => (Texts::plain(""), response),
                };
                Part::ToolResult {
                    id,
                    content,
                    json,
                    loc,
                }
            }
            (other, _) => {
                return Err(pat.refuse(&format!(
                    "holds `{other}`, which cannot be translated for {target}"
                )));
            }
        };
        r.parts.push(part);
    }
    r.turns.push(Turn {
        role,
        parts: start..r.parts.len(),
        plain: false,
        loc: at,
    });
    Ok(())
}

fn str_in<'v>(v: Value<'v, '_>, k: &str) -> Option<&'v str> {
    get(v, k).and_then(|x| x.into_string())
}

fn read_config<'v, 'a>(
    r: &mut Request<'v, 'a>,
    v: Value<'v, 'a>,
    target: &str,
) -> Result<(), Untranslatable> {
    if let Some(g) = get(v, "generationConfig") {
        let at = Loc::top("generationConfig");
        only(
            g,
            &[
                "maxOutputTokens",
                "temperature",
                "topP",
                "topK",
                "stopSequences",
                "seed",
                "presencePenalty",
                "frequencyPenalty",
                "candidateCount",
                "responseMimeType",
                "responseJsonSchema",
                "thinkingConfig",
                "responseModalities",
            ],
            at,
            target,
        )?;
        if let Some(x) = get(g, "maxOutputTokens") {
            r.max_tokens = Some(x.as_u64().ok_or_else(|| {
                Loc::top("generationConfig.maxOutputTokens")
                    .refuse("must be a non-negative integer")
            })?);
        }
        r.temperature = number(g, "temperature")?;
        r.top_p = number(g, "topP")?;
        r.top_k = number(g, "topK")?;
        r.seed = number(g, "seed")?;
        r.presence_penalty = number(g, "presencePenalty")?;
        r.frequency_penalty = number(g, "frequencyPenalty")?;
        r.n = get(g, "candidateCount").map(|x| x.as_u64().unwrap_or(u64::MAX));
        if let Some(stop) = get(g, "stopSequences") {
            if !stop
                .as_array()
                .is_some_and(|a| a.iter().all(|s| s.into_string().is_some()))
            {
                return Err(Loc::top("generationConfig.stopSequences")
                    .refuse("must be an array of strings"));
            }
            r.stop = Some(stop);
        }
        if let Some(m) = get(g, "responseModalities")
            && !m
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.into_string() == Some("TEXT")))
        {
            return Err(Loc::top("generationConfig.responseModalities")
                .refuse(&format!("must be [\"TEXT\"] to be translated for {target}")));
        }
        let schema = get(g, "responseJsonSchema");
        r.response_format = match (str_in(g, "responseMimeType"), schema) {
            (_, Some(s)) => Some(ResponseFormat::JsonSchema(s)),
            (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
            (None | Some("text/plain"), None) => None,
            (Some(other), None) => {
                return Err(Loc::top("generationConfig.responseMimeType")
                    .refuse(&format!("`{other}` cannot be translated for {target}")));
            }
        };
    }
    if let Some(tools) = get(v, "tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| Loc::top("tools").refuse("must be an array"))?;
        for (j, t) in tools.iter().enumerate() {
            let at = Loc::listed("tools", j, "");
            for (k, x) in t.as_object().iter().flat_map(|o| o.iter()) {
                if x.as_null().is_some() {
                    continue;
                }
                if camel(k) != "functionDeclarations" {
                    return Err(at.refuse(&format!(
                        "is Google's built-in `{k}` tool, which only Gemini runs; {target} \
                         cannot run it"
                    )));
                }
                let decls = x
                    .as_array()
                    .ok_or_else(|| at.with("functionDeclarations").refuse("must be an array"))?;
                for d in decls.iter() {
                    let dat = at.with("functionDeclarations");
                    only(
                        d,
                        &["name", "description", "parameters", "parametersJsonSchema"],
                        dat,
                        target,
                    )?;
                    r.tools.push(Tool {
                        name: string(d, "name", dat)?.ok_or_else(|| dat.refuse("needs a name"))?,
                        description: string(d, "description", dat)?,
                        parameters: get(d, "parametersJsonSchema").or_else(|| get(d, "parameters")),
                        openapi: get(d, "parametersJsonSchema").is_none(),
                    });
                }
            }
        }
    }
    if let Some(tc) = get(v, "toolConfig") {
        let at = Loc::top("toolConfig.functionCallingConfig");
        only(
            tc,
            &["functionCallingConfig"],
            Loc::top("toolConfig"),
            target,
        )?;
        if let Some(fc) = get(tc, "functionCallingConfig") {
            only(fc, &["mode", "allowedFunctionNames"], at, target)?;
            let names = get(fc, "allowedFunctionNames").and_then(|n| n.as_array());
            let one = names
                .filter(|n| n.len() == 1)
                .and_then(|n| n.get(0))
                .and_then(|n| n.into_string());
            if names.is_some_and(|n| n.len() > 1) {
                return Err(at
                    .with("allowedFunctionNames")
                    .refuse(&format!("can name one function only for {target}")));
            }
            r.tool_choice = match (str_in(fc, "mode"), one) {
                (Some("ANY"), Some(name)) => Some(ToolChoice::Named(name)),
                (Some("ANY"), None) => Some(ToolChoice::Required),
                (Some("NONE"), _) => Some(ToolChoice::None),
                (None | Some("AUTO") | Some("MODE_UNSPECIFIED"), _) => Some(ToolChoice::Auto),
                (Some(other), _) => {
                    return Err(at
                        .with("mode")
                        .refuse(&format!("`{other}` cannot be translated for {target}")));
                }
            };
        }
    }
    Ok(())
}
