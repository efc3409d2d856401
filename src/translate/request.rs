//! Request bodies from the client's dialect to the provider's.
//!
//! The client's body is parsed (simd-json, on the worker's scratch copy) and the provider's is
//! written member by member. A member set to `null` counts as absent. Anything not listed
//! below is refused by name ([`Untranslatable`]).
//!
//! | OpenAI Chat Completions | Anthropic Messages | Gemini `generateContent` |
//! | --- | --- | --- |
//! | `system` / `developer` messages | top-level `system` (text blocks, hoisted) | `systemInstruction` |
//! | `user` text, `image_url` (data URL / https URL) | text, `image` (base64 / url source) | text, `inlineData` (data URLs only) |
//! | `assistant` content + `tool_calls` | `text` + `tool_use` blocks (arguments parsed) | `model` role, `functionCall` parts |
//! | `tool` messages | `tool_result` blocks in one `user` turn | `functionResponse` parts (name found by `tool_call_id`) |
//! | `max_completion_tokens` / `max_tokens` | `max_tokens` (required: the key's default, else the deployment's) | `generationConfig.maxOutputTokens` |
//! | `temperature` | `temperature` (0–1 only) | `temperature` |
//! | `top_p`, `stop` | `top_p`, `stop_sequences` | `topP`, `stopSequences` |
//! | `tools` (functions) | `tools` (`input_schema`) | `functionDeclarations` (`parametersJsonSchema`) |
//! | `tool_choice` auto / none / required / named | `auto` / `none` / `any` / `tool` | `AUTO` / `NONE` / `ANY` (+ allowed names) |
//! | `parallel_tool_calls: false` | `disable_parallel_tool_use` | refused |
//! | `response_format` json_object / json_schema | refused | `responseMimeType` (+ `responseJsonSchema`) |
//! | `seed`, `presence_penalty`, `frequency_penalty` | refused (unless 0) | passed |
//! | `user` | `metadata.user_id` | dropped (abuse-monitoring id only) |
//! | `n` | 1 only | 1 only |
//!
//! Accepted without an equivalent, deliberately: `stream_options` (the gateway produces the
//! usage chunk itself), `prompt_cache_key` (the gateway's sticky-routing key), `store: false`,
//! an image's `detail` (a sizing hint the other providers decide themselves), a tool's `strict`
//! flag (the schema still goes; adherence is then the provider's best effort).
//!
//! Anthropic client → OpenAI provider is the reverse: `system` becomes the first message,
//! `tool_result` blocks become `tool` messages ahead of the turn's other content, `tool_use`
//! blocks become `tool_calls` (input serialised as the arguments string), `stop_sequences` →
//! `stop`, `metadata.user_id` → `user`, `disable_parallel_tool_use` → `parallel_tool_calls`,
//! and streams ask for `stream_options.include_usage`. Refused: `top_k`, `thinking` (unless
//! disabled), server tools, documents, `is_error` tool results, images inside tool results.
//! Cache breakpoints (`cache_control`) are accepted and not sent: OpenAI caches prompts on its
//! own.

use simd_json::BorrowedValue as Value;
use simd_json::prelude::*;

use super::{Pair, Untranslatable};
use crate::json::{self, Scratch};

/// What the provider's request needs besides the client's body.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The deployment's upstream model as a JSON string literal (quotes included).
    pub model_json: &'a [u8],
    /// Output tokens to ask for when the request names none (Anthropic requires a number).
    pub default_max_tokens: u32,
    /// The provider is `openai_compatible` (vLLM, Ollama, …): `max_tokens`, not
    /// `max_completion_tokens`.
    pub compatible: bool,
}

/// Writes the provider's request body for `body` into `out`.
pub fn translate(
    pair: Pair,
    body: &[u8],
    target: &Target<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    let Scratch { bytes, buffers } = scratch;
    bytes.clear();
    bytes.extend_from_slice(body);
    let v = simd_json::to_borrowed_value_with_buffers(bytes, buffers)
        .map_err(|e| Untranslatable::new("", format!("the body is not valid JSON ({e})")))?;
    if v.as_object().is_none() {
        return Err(Untranslatable::new("", "the body must be a JSON object"));
    }
    out.clear();
    match pair {
        Pair::OpenAiToAnthropic => openai_to_anthropic(&v, target, out),
        Pair::AnthropicToOpenAi => anthropic_to_openai(&v, target, out),
        Pair::OpenAiToGemini => openai_to_gemini(&v, target, out),
    }
}

// ----------------------------------------------------------------------------- helpers

fn refuse(param: impl Into<String>, why: &str) -> Untranslatable {
    let param = param.into();
    Untranslatable::new(param.clone(), format!("`{param}` {why}"))
}

/// The value of member `k`, `None` when absent or null.
fn get<'v, 'a>(v: &'v Value<'a>, k: &str) -> Option<&'v Value<'a>> {
    v.get(k).filter(|x| !x.is_null())
}

fn str_of<'v>(v: &'v Value<'_>, k: &str, at: &str) -> Result<Option<&'v str>, Untranslatable> {
    match get(v, k) {
        None => Ok(None),
        Some(x) => x
            .as_str()
            .map(Some)
            .ok_or_else(|| refuse(format!("{at}{k}"), "must be a string")),
    }
}

fn write_value(out: &mut Vec<u8>, v: &Value<'_>) {
    // Writing into a Vec cannot fail.
    let _ = v.write(out);
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    json::string(out, s.as_bytes());
}

/// `"key":` after a comma unless first.
fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Members of an object that are not in `known` (and not null).
fn unknown<'v>(v: &'v Value<'_>, known: &[&str]) -> Option<&'v str> {
    v.as_object()?
        .iter()
        .find(|(k, x)| !x.is_null() && !known.contains(&k.as_ref()))
        .map(|(k, _)| k.as_ref())
}

fn check_members(
    v: &Value<'_>,
    known: &[&str],
    at: &str,
    dialect: &str,
) -> Result<(), Untranslatable> {
    match unknown(v, known) {
        Some(k) => Err(refuse(
            format!("{at}{k}"),
            &format!("cannot be translated for {dialect}"),
        )),
        None => Ok(()),
    }
}

fn array<'v, 'a>(v: &'v Value<'a>, k: &str, at: &str) -> Result<&'v [Value<'a>], Untranslatable> {
    match get(v, k) {
        None => Ok(&[]),
        Some(x) => x
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| refuse(format!("{at}{k}"), "must be an array")),
    }
}

/// A value that must be absent, null, or equal to its neutral setting.
fn neutral(
    v: &Value<'_>,
    k: &str,
    ok: impl Fn(&Value<'_>) -> bool,
    dialect: &str,
) -> Result<(), Untranslatable> {
    match get(v, k) {
        Some(x) if !ok(x) => Err(refuse(k, &format!("has no equivalent for {dialect}"))),
        _ => Ok(()),
    }
}

fn max_tokens_of(v: &Value<'_>) -> Result<Option<u64>, Untranslatable> {
    for k in ["max_completion_tokens", "max_tokens"] {
        if let Some(x) = get(v, k) {
            return x
                .as_u64()
                .map(Some)
                .ok_or_else(|| refuse(k, "must be a non-negative integer"));
        }
    }
    Ok(None)
}

/// `data:<media type>;base64,<data>` → (media type, data).
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media, data))
}

/// The text of an OpenAI content value that may only hold text (a string, or text parts).
fn text_parts<'v>(content: &'v Value<'_>, at: &str) -> Result<Vec<&'v str>, Untranslatable> {
    if let Some(s) = content.as_str() {
        return Ok(vec![s]);
    }
    let Some(parts) = content.as_array() else {
        return Err(refuse(at, "must be a string or an array of content parts"));
    };
    let mut texts = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{at}[{j}]");
        match str_of(p, "type", &format!("{at}."))? {
            Some("text") => texts.push(str_of(p, "text", &format!("{at}."))?.unwrap_or_default()),
            Some(t) => {
                return Err(refuse(
                    format!("{at}.type"),
                    &format!("`{t}` is not text; only text is allowed here"),
                ));
            }
            None => return Err(refuse(format!("{at}.type"), "is required")),
        }
    }
    Ok(texts)
}

// ------------------------------------------------------------------- OpenAI → Anthropic

const ANTHROPIC: &str = "Anthropic";

fn openai_to_anthropic(
    v: &Value<'_>,
    t: &Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    check_members(
        v,
        &[
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
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
        ],
        "",
        ANTHROPIC,
    )?;
    neutral(v, "n", |x| x.as_u64() == Some(1), ANTHROPIC)?;
    neutral(v, "store", |x| x.as_bool() == Some(false), ANTHROPIC)?;
    neutral(v, "logprobs", |x| x.as_bool() == Some(false), ANTHROPIC)?;
    for k in ["presence_penalty", "frequency_penalty"] {
        neutral(v, k, |x| x.cast_f64() == Some(0.0), ANTHROPIC)?;
    }
    neutral(
        v,
        "response_format",
        |x| x.get("type").and_then(|t| t.as_str()) == Some("text"),
        ANTHROPIC,
    )?;
    let messages = array(v, "messages", "")?;
    if messages.is_empty() {
        return Err(refuse("messages", "must be a non-empty array"));
    }

    out.extend_from_slice(b"{\"model\":");
    out.extend_from_slice(t.model_json);
    out.extend_from_slice(b",\"max_tokens\":");
    let max = max_tokens_of(v)?.unwrap_or(u64::from(t.default_max_tokens));
    json::uint(out, max);

    // System and developer messages, wherever they are, become the top-level system prompt.
    let mut system = false;
    for (i, m) in messages.iter().enumerate() {
        let role = str_of(m, "role", &format!("messages[{i}]."))?;
        if !matches!(role, Some("system" | "developer")) {
            continue;
        }
        check_members(
            m,
            &["role", "content", "name"],
            &format!("messages[{i}]."),
            ANTHROPIC,
        )?;
        if get(m, "name").is_some() {
            return Err(refuse(
                format!("messages[{i}].name"),
                "has no equivalent for Anthropic",
            ));
        }
        let content = get(m, "content")
            .ok_or_else(|| refuse(format!("messages[{i}].content"), "is required"))?;
        for text in text_parts(content, &format!("messages[{i}].content"))? {
            out.extend_from_slice(if std::mem::replace(&mut system, true) {
                b","
            } else {
                b",\"system\":["
            });
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            write_str(out, text);
            out.push(b'}');
        }
    }
    if system {
        out.push(b']');
    }

    out.extend_from_slice(b",\"messages\":[");
    let mut first = true;
    // A run of tool messages is one user turn of tool_result blocks.
    let mut in_tool_turn = false;
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}].");
        let role =
            str_of(m, "role", &at)?.ok_or_else(|| refuse(format!("{at}role"), "is required"))?;
        if role == "tool" {
            check_members(m, &["role", "content", "tool_call_id"], &at, ANTHROPIC)?;
            if in_tool_turn {
                out.push(b',');
            } else {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"role\":\"user\",\"content\":[");
                in_tool_turn = true;
            }
            let id = str_of(m, "tool_call_id", &at)?
                .ok_or_else(|| refuse(format!("{at}tool_call_id"), "is required"))?;
            out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
            write_str(out, id);
            out.extend_from_slice(b",\"content\":");
            match get(m, "content") {
                None => out.extend_from_slice(b"\"\""),
                Some(c) if c.as_str().is_some() => write_value(out, c),
                Some(c) => {
                    out.push(b'[');
                    for (j, text) in text_parts(c, &format!("{at}content"))?.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                        write_str(out, text);
                        out.push(b'}');
                    }
                    out.push(b']');
                }
            }
            out.push(b'}');
            continue;
        }
        if in_tool_turn {
            out.extend_from_slice(b"]}");
            in_tool_turn = false;
        }
        match role {
            "system" | "developer" => {}
            "user" => {
                check_members(m, &["role", "content"], &at, ANTHROPIC)?;
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                let content = get(m, "content")
                    .ok_or_else(|| refuse(format!("{at}content"), "is required"))?;
                user_content_to_anthropic(content, &format!("{at}content"), out)?;
                out.push(b'}');
            }
            "assistant" => {
                check_members(
                    m,
                    &["role", "content", "tool_calls", "refusal"],
                    &at,
                    ANTHROPIC,
                )?;
                let mark = out.len();
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":[");
                let mut blocks = 0;
                if let Some(c) = get(m, "content") {
                    let parts = if c.as_array().is_some() {
                        // Assistant parts are text or refusal.
                        let mut texts = Vec::new();
                        for (j, p) in c.as_array().into_iter().flatten().enumerate() {
                            let pat = format!("{at}content[{j}].");
                            match str_of(p, "type", &pat)? {
                                Some("text") => {
                                    texts.push(str_of(p, "text", &pat)?.unwrap_or_default())
                                }
                                Some("refusal") => {
                                    texts.push(str_of(p, "refusal", &pat)?.unwrap_or_default())
                                }
                                _ => {
                                    return Err(refuse(
                                        format!("{pat}type"),
                                        "must be text or refusal",
                                    ));
                                }
                            }
                        }
                        texts
                    } else {
                        text_parts(c, &format!("{at}content"))?
                    };
                    for text in parts.into_iter().filter(|t| !t.is_empty()) {
                        if blocks > 0 {
                            out.push(b',');
                        }
                        blocks += 1;
                        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                        write_str(out, text);
                        out.push(b'}');
                    }
                }
                for (j, call) in array(m, "tool_calls", &at)?.iter().enumerate() {
                    let cat = format!("{at}tool_calls[{j}].");
                    check_members(call, &["id", "type", "function"], &cat, ANTHROPIC)?;
                    if str_of(call, "type", &cat)?.is_some_and(|t| t != "function") {
                        return Err(refuse(format!("{cat}type"), "must be `function`"));
                    }
                    let f = get(call, "function")
                        .ok_or_else(|| refuse(format!("{cat}function"), "is required"))?;
                    let id = str_of(call, "id", &cat)?
                        .ok_or_else(|| refuse(format!("{cat}id"), "is required"))?;
                    let name = str_of(f, "name", &format!("{cat}function."))?
                        .ok_or_else(|| refuse(format!("{cat}function.name"), "is required"))?;
                    let args =
                        str_of(f, "arguments", &format!("{cat}function."))?.unwrap_or_default();
                    if blocks > 0 {
                        out.push(b',');
                    }
                    blocks += 1;
                    out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                    write_str(out, id);
                    out.extend_from_slice(b",\"name\":");
                    write_str(out, name);
                    out.extend_from_slice(b",\"input\":");
                    arguments_as_object(args, &format!("{cat}function.arguments"), out)?;
                    out.push(b'}');
                }
                if get(m, "refusal")
                    .and_then(|r| r.as_str())
                    .is_some_and(|r| !r.is_empty())
                {
                    return Err(refuse(
                        format!("{at}refusal"),
                        "has no equivalent for Anthropic",
                    ));
                }
                if blocks == 0 {
                    // An empty assistant turn says nothing; Anthropic refuses empty content.
                    out.truncate(mark);
                } else {
                    first = false;
                    out.extend_from_slice(b"]}");
                }
            }
            other => {
                return Err(refuse(
                    format!("{at}role"),
                    &format!("`{other}` cannot be translated for Anthropic"),
                ));
            }
        }
    }
    if in_tool_turn {
        out.extend_from_slice(b"]}");
    }
    out.push(b']');

    if let Some(x) = get(v, "temperature") {
        let temp = x
            .cast_f64()
            .ok_or_else(|| refuse("temperature", "must be a number"))?;
        if !(0.0..=1.0).contains(&temp) {
            return Err(refuse(
                "temperature",
                "must be between 0 and 1 for Anthropic (OpenAI's 0–2 scale has no equivalent above 1)",
            ));
        }
        out.extend_from_slice(b",\"temperature\":");
        write_value(out, x);
    }
    if let Some(x) = get(v, "top_p") {
        x.cast_f64()
            .ok_or_else(|| refuse("top_p", "must be a number"))?;
        out.extend_from_slice(b",\"top_p\":");
        write_value(out, x);
    }
    if let Some(stop) = get(v, "stop") {
        out.extend_from_slice(b",\"stop_sequences\":");
        stop_list(stop, out)?;
    }
    if get(v, "stream").and_then(|s| s.as_bool()) == Some(true) {
        out.extend_from_slice(b",\"stream\":true");
    }
    let tools = array(v, "tools", "")?;
    if !tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[");
        for (i, tool) in tools.iter().enumerate() {
            let (name, description, parameters) = openai_tool(tool, i, ANTHROPIC)?;
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_str(out, name);
            if let Some(d) = description {
                out.extend_from_slice(b",\"description\":");
                write_str(out, d);
            }
            out.extend_from_slice(b",\"input_schema\":");
            match parameters {
                Some(p) => write_value(out, p),
                None => out.extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    let parallel = match get(v, "parallel_tool_calls") {
        None => true,
        Some(x) => x
            .as_bool()
            .ok_or_else(|| refuse("parallel_tool_calls", "must be a boolean"))?,
    };
    let choice = match get(v, "tool_choice") {
        None => None,
        Some(x) => Some(openai_tool_choice(x)?),
    };
    if choice.is_some() || !parallel {
        out.extend_from_slice(b",\"tool_choice\":{\"type\":");
        match choice.unwrap_or(ToolChoice::Auto) {
            ToolChoice::Auto => out.extend_from_slice(b"\"auto\""),
            ToolChoice::None => out.extend_from_slice(b"\"none\""),
            ToolChoice::Required => out.extend_from_slice(b"\"any\""),
            ToolChoice::Named(n) => {
                out.extend_from_slice(b"\"tool\",\"name\":");
                write_str(out, n);
            }
        }
        if !parallel {
            out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
        }
        out.push(b'}');
    }
    if let Some(user) = str_of(v, "user", "")? {
        out.extend_from_slice(b",\"metadata\":{\"user_id\":");
        write_str(out, user);
        out.push(b'}');
    }
    out.push(b'}');
    Ok(())
}

/// An OpenAI user message's content as Anthropic content (a string stays a string).
fn user_content_to_anthropic(
    content: &Value<'_>,
    at: &str,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    if content.as_str().is_some() {
        write_value(out, content);
        return Ok(());
    }
    let Some(parts) = content.as_array() else {
        return Err(refuse(at, "must be a string or an array of content parts"));
    };
    out.push(b'[');
    for (j, p) in parts.iter().enumerate() {
        let pat = format!("{at}[{j}].");
        if j > 0 {
            out.push(b',');
        }
        match str_of(p, "type", &pat)? {
            Some("text") => {
                check_members(p, &["type", "text"], &pat, ANTHROPIC)?;
                out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                write_str(out, str_of(p, "text", &pat)?.unwrap_or_default());
                out.push(b'}');
            }
            Some("image_url") => {
                let url = image_url(p, &pat)?;
                out.extend_from_slice(b"{\"type\":\"image\",\"source\":");
                match data_url(url) {
                    Some((media, data)) => {
                        out.extend_from_slice(b"{\"type\":\"base64\",\"media_type\":");
                        write_str(out, media);
                        out.extend_from_slice(b",\"data\":");
                        write_str(out, data);
                        out.push(b'}');
                    }
                    None if url.starts_with("https://") || url.starts_with("http://") => {
                        out.extend_from_slice(b"{\"type\":\"url\",\"url\":");
                        write_str(out, url);
                        out.push(b'}');
                    }
                    None => {
                        return Err(refuse(
                            format!("{pat}image_url.url"),
                            "must be an http(s) URL or a base64 data URL",
                        ));
                    }
                }
                out.push(b'}');
            }
            Some(t) => {
                return Err(refuse(
                    format!("{pat}type"),
                    &format!("`{t}` content cannot be translated for Anthropic"),
                ));
            }
            None => return Err(refuse(format!("{pat}type"), "is required")),
        }
    }
    out.push(b']');
    Ok(())
}

fn image_url<'v>(p: &'v Value<'_>, pat: &str) -> Result<&'v str, Untranslatable> {
    check_members(p, &["type", "image_url"], pat, "this provider")?;
    let img =
        get(p, "image_url").ok_or_else(|| refuse(format!("{pat}image_url"), "is required"))?;
    if let Some(s) = img.as_str() {
        return Ok(s);
    }
    check_members(
        img,
        &["url", "detail"],
        &format!("{pat}image_url."),
        "this provider",
    )?;
    str_of(img, "url", &format!("{pat}image_url."))?
        .ok_or_else(|| refuse(format!("{pat}image_url.url"), "is required"))
}

/// A tool call's `arguments` string, written as the JSON object it holds.
fn arguments_as_object(args: &str, at: &str, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    if args.trim().is_empty() {
        out.extend_from_slice(b"{}");
        return Ok(());
    }
    let mut copy = args.as_bytes().to_vec();
    let v = simd_json::to_borrowed_value(&mut copy)
        .map_err(|_| refuse(at, "must hold a JSON object to be translated"))?;
    if v.as_object().is_none() {
        return Err(refuse(at, "must hold a JSON object to be translated"));
    }
    write_value(out, &v);
    Ok(())
}

fn stop_list(stop: &Value<'_>, out: &mut Vec<u8>) -> Result<(), Untranslatable> {
    if stop.as_str().is_some() {
        out.push(b'[');
        write_value(out, stop);
        out.push(b']');
        return Ok(());
    }
    match stop.as_array() {
        Some(a) if a.iter().all(|s| s.as_str().is_some()) => {
            write_value(out, stop);
            Ok(())
        }
        _ => Err(refuse("stop", "must be a string or an array of strings")),
    }
}

type ToolParts<'v, 'a> = (&'v str, Option<&'v str>, Option<&'v Value<'a>>);

/// An OpenAI tool: (name, description, parameters).
fn openai_tool<'v, 'a>(
    tool: &'v Value<'a>,
    i: usize,
    dialect: &str,
) -> Result<ToolParts<'v, 'a>, Untranslatable> {
    let at = format!("tools[{i}].");
    check_members(tool, &["type", "function"], &at, dialect)?;
    if str_of(tool, "type", &at)? != Some("function") {
        return Err(refuse(
            format!("{at}type"),
            &format!("must be `function` to be translated for {dialect}"),
        ));
    }
    let f = get(tool, "function").ok_or_else(|| refuse(format!("{at}function"), "is required"))?;
    let fat = format!("{at}function.");
    check_members(
        f,
        &["name", "description", "parameters", "strict"],
        &fat,
        dialect,
    )?;
    let name =
        str_of(f, "name", &fat)?.ok_or_else(|| refuse(format!("{fat}name"), "is required"))?;
    Ok((name, str_of(f, "description", &fat)?, get(f, "parameters")))
}

enum ToolChoice<'v> {
    Auto,
    None,
    Required,
    Named(&'v str),
}

fn openai_tool_choice<'v>(x: &'v Value<'_>) -> Result<ToolChoice<'v>, Untranslatable> {
    match x.as_str() {
        Some("auto") => return Ok(ToolChoice::Auto),
        Some("none") => return Ok(ToolChoice::None),
        Some("required") => return Ok(ToolChoice::Required),
        Some(other) => {
            return Err(refuse(
                "tool_choice",
                &format!("`{other}` is not a known tool choice"),
            ));
        }
        None => {}
    }
    if str_of(x, "type", "tool_choice.")? == Some("function")
        && let Some(name) = get(x, "function")
            .and_then(|f| f.get("name"))
            .and_then(|n| n.as_str())
    {
        return Ok(ToolChoice::Named(name));
    }
    Err(refuse(
        "tool_choice",
        "must be auto, none, required or a named function",
    ))
}

// ------------------------------------------------------------------- Anthropic → OpenAI

const OPENAI: &str = "an OpenAI-dialect provider";

fn anthropic_to_openai(
    v: &Value<'_>,
    t: &Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    check_members(
        v,
        &[
            "model",
            "messages",
            "system",
            "max_tokens",
            "temperature",
            "top_p",
            "stop_sequences",
            "stream",
            "tools",
            "tool_choice",
            "metadata",
            "thinking",
        ],
        "",
        OPENAI,
    )?;
    neutral(
        v,
        "thinking",
        |x| x.get("type").and_then(|t| t.as_str()) == Some("disabled"),
        OPENAI,
    )?;
    let messages = array(v, "messages", "")?;
    if messages.is_empty() {
        return Err(refuse("messages", "must be a non-empty array"));
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
    if let Some(system) = get(v, "system") {
        open(out);
        out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
        anthropic_text_content(system, "system", out)?;
        out.push(b'}');
    }
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}].");
        check_members(m, &["role", "content"], &at, OPENAI)?;
        let role =
            str_of(m, "role", &at)?.ok_or_else(|| refuse(format!("{at}role"), "is required"))?;
        let content =
            get(m, "content").ok_or_else(|| refuse(format!("{at}content"), "is required"))?;
        let cat = format!("{at}content");
        match role {
            "user" => {
                if content.as_str().is_some() {
                    open(out);
                    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
                    write_value(out, content);
                    out.push(b'}');
                    continue;
                }
                let blocks = content
                    .as_array()
                    .ok_or_else(|| refuse(&cat, "must be a string or an array of blocks"))?;
                // Tool results answer the previous assistant turn: they go first, one
                // message each.
                for (j, b) in blocks.iter().enumerate() {
                    let bat = format!("{cat}[{j}].");
                    if str_of(b, "type", &bat)? != Some("tool_result") {
                        continue;
                    }
                    check_members(
                        b,
                        &[
                            "type",
                            "tool_use_id",
                            "content",
                            "is_error",
                            "cache_control",
                        ],
                        &bat,
                        OPENAI,
                    )?;
                    if get(b, "is_error").and_then(|e| e.as_bool()) == Some(true) {
                        return Err(refuse(
                            format!("{bat}is_error"),
                            "has no equivalent for an OpenAI-dialect provider",
                        ));
                    }
                    let id = str_of(b, "tool_use_id", &bat)?
                        .ok_or_else(|| refuse(format!("{bat}tool_use_id"), "is required"))?;
                    open(out);
                    out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
                    write_str(out, id);
                    out.extend_from_slice(b",\"content\":");
                    match get(b, "content") {
                        None => out.extend_from_slice(b"\"\""),
                        Some(c) => anthropic_text_content(c, &format!("{bat}content"), out)?,
                    }
                    out.push(b'}');
                }
                let rest = blocks
                    .iter()
                    .filter(|b| b.get("type").and_then(|t| t.as_str()) != Some("tool_result"))
                    .count();
                if rest == 0 {
                    continue;
                }
                open(out);
                out.extend_from_slice(b"{\"role\":\"user\",\"content\":[");
                let mut n = 0;
                for (j, b) in blocks.iter().enumerate() {
                    let bat = format!("{cat}[{j}].");
                    match str_of(b, "type", &bat)? {
                        Some("tool_result") => continue,
                        Some("text") => {
                            check_members(
                                b,
                                &["type", "text", "cache_control", "citations"],
                                &bat,
                                OPENAI,
                            )?;
                            if n > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                            write_str(out, str_of(b, "text", &bat)?.unwrap_or_default());
                            out.push(b'}');
                        }
                        Some("image") => {
                            check_members(b, &["type", "source", "cache_control"], &bat, OPENAI)?;
                            let src = get(b, "source")
                                .ok_or_else(|| refuse(format!("{bat}source"), "is required"))?;
                            let sat = format!("{bat}source.");
                            if n > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(
                                b"{\"type\":\"image_url\",\"image_url\":{\"url\":",
                            );
                            match str_of(src, "type", &sat)? {
                                Some("base64") => {
                                    let media =
                                        str_of(src, "media_type", &sat)?.unwrap_or("image/png");
                                    let data = str_of(src, "data", &sat)?.unwrap_or_default();
                                    let url = format!("data:{media};base64,{data}");
                                    write_str(out, &url);
                                }
                                Some("url") => {
                                    write_str(out, str_of(src, "url", &sat)?.unwrap_or_default())
                                }
                                _ => {
                                    return Err(refuse(
                                        format!("{sat}type"),
                                        "must be base64 or url to be translated",
                                    ));
                                }
                            }
                            out.extend_from_slice(b"}}");
                        }
                        Some(other) => {
                            return Err(refuse(
                                format!("{bat}type"),
                                &format!(
                                    "`{other}` blocks cannot be translated for an OpenAI-dialect provider"
                                ),
                            ));
                        }
                        None => return Err(refuse(format!("{bat}type"), "is required")),
                    }
                    n += 1;
                }
                out.extend_from_slice(b"]}");
            }
            "assistant" => {
                open(out);
                out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
                if content.as_str().is_some() {
                    write_value(out, content);
                    out.push(b'}');
                    continue;
                }
                let blocks = content
                    .as_array()
                    .ok_or_else(|| refuse(&cat, "must be a string or an array of blocks"))?;
                let mut text = String::new();
                for (j, b) in blocks.iter().enumerate() {
                    let bat = format!("{cat}[{j}].");
                    match str_of(b, "type", &bat)? {
                        Some("text") => {
                            check_members(
                                b,
                                &["type", "text", "cache_control", "citations"],
                                &bat,
                                OPENAI,
                            )?;
                            text.push_str(str_of(b, "text", &bat)?.unwrap_or_default());
                        }
                        Some("tool_use") => {}
                        Some(other) => {
                            return Err(refuse(
                                format!("{bat}type"),
                                &format!(
                                    "`{other}` blocks cannot be translated for an OpenAI-dialect provider"
                                ),
                            ));
                        }
                        None => return Err(refuse(format!("{bat}type"), "is required")),
                    }
                }
                if text.is_empty() {
                    out.extend_from_slice(b"null");
                } else {
                    write_str(out, &text);
                }
                let mut calls = 0;
                for (j, b) in blocks.iter().enumerate() {
                    if b.get("type").and_then(|t| t.as_str()) != Some("tool_use") {
                        continue;
                    }
                    let bat = format!("{cat}[{j}].");
                    check_members(
                        b,
                        &["type", "id", "name", "input", "cache_control"],
                        &bat,
                        OPENAI,
                    )?;
                    out.extend_from_slice(if calls == 0 {
                        b",\"tool_calls\":["
                    } else {
                        b","
                    });
                    calls += 1;
                    out.extend_from_slice(b"{\"id\":");
                    write_str(out, str_of(b, "id", &bat)?.unwrap_or_default());
                    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                    write_str(out, str_of(b, "name", &bat)?.unwrap_or_default());
                    out.extend_from_slice(b",\"arguments\":");
                    let mut args = Vec::new();
                    match get(b, "input") {
                        Some(x) => write_value(&mut args, x),
                        None => args.extend_from_slice(b"{}"),
                    }
                    json::string(out, &args);
                    out.extend_from_slice(b"}}");
                }
                if calls > 0 {
                    out.push(b']');
                }
                out.push(b'}');
            }
            other => {
                return Err(refuse(
                    format!("{at}role"),
                    &format!("`{other}` is not a Messages role"),
                ));
            }
        }
    }
    out.push(b']');
    if let Some(x) = get(v, "max_tokens") {
        let n = x
            .as_u64()
            .ok_or_else(|| refuse("max_tokens", "must be a non-negative integer"))?;
        out.extend_from_slice(if t.compatible {
            b",\"max_tokens\":"
        } else {
            b",\"max_completion_tokens\":"
        });
        json::uint(out, n);
    }
    for k in ["temperature", "top_p"] {
        if let Some(x) = get(v, k) {
            x.cast_f64().ok_or_else(|| refuse(k, "must be a number"))?;
            out.extend_from_slice(b",\"");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            write_value(out, x);
        }
    }
    if let Some(stop) = get(v, "stop_sequences") {
        match stop.as_array() {
            Some(a) if a.iter().all(|s| s.as_str().is_some()) => {
                out.extend_from_slice(b",\"stop\":");
                write_value(out, stop);
            }
            _ => return Err(refuse("stop_sequences", "must be an array of strings")),
        }
    }
    if get(v, "stream").and_then(|s| s.as_bool()) == Some(true) {
        out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    let tools = array(v, "tools", "")?;
    if !tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[");
        for (i, tool) in tools.iter().enumerate() {
            let at = format!("tools[{i}].");
            check_members(
                tool,
                &[
                    "name",
                    "description",
                    "input_schema",
                    "type",
                    "cache_control",
                ],
                &at,
                OPENAI,
            )?;
            if str_of(tool, "type", &at)?.is_some_and(|t| t != "custom") {
                return Err(refuse(
                    format!("{at}type"),
                    "server tools cannot be translated for an OpenAI-dialect provider",
                ));
            }
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
            write_str(
                out,
                str_of(tool, "name", &at)?
                    .ok_or_else(|| refuse(format!("{at}name"), "is required"))?,
            );
            if let Some(d) = str_of(tool, "description", &at)? {
                out.extend_from_slice(b",\"description\":");
                write_str(out, d);
            }
            if let Some(s) = get(tool, "input_schema") {
                out.extend_from_slice(b",\"parameters\":");
                write_value(out, s);
            }
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    if let Some(choice) = get(v, "tool_choice") {
        let at = "tool_choice.";
        check_members(
            choice,
            &["type", "name", "disable_parallel_tool_use"],
            at,
            OPENAI,
        )?;
        out.extend_from_slice(b",\"tool_choice\":");
        match str_of(choice, "type", at)? {
            Some("auto") => out.extend_from_slice(b"\"auto\""),
            Some("any") => out.extend_from_slice(b"\"required\""),
            Some("none") => out.extend_from_slice(b"\"none\""),
            Some("tool") => {
                out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
                write_str(
                    out,
                    str_of(choice, "name", at)?
                        .ok_or_else(|| refuse("tool_choice.name", "is required"))?,
                );
                out.extend_from_slice(b"}}");
            }
            _ => {
                return Err(refuse(
                    "tool_choice.type",
                    "must be auto, any, tool or none",
                ));
            }
        }
        if get(choice, "disable_parallel_tool_use").and_then(|d| d.as_bool()) == Some(true) {
            out.extend_from_slice(b",\"parallel_tool_calls\":false");
        }
    }
    if let Some(meta) = get(v, "metadata") {
        check_members(meta, &["user_id"], "metadata.", OPENAI)?;
        if let Some(user) = str_of(meta, "user_id", "metadata.")? {
            out.extend_from_slice(b",\"user\":");
            write_str(out, user);
        }
    }
    out.push(b'}');
    Ok(())
}

/// Anthropic text content (a string, or text blocks) as OpenAI content: a string, or text
/// parts.
fn anthropic_text_content(
    c: &Value<'_>,
    at: &str,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    if c.as_str().is_some() {
        write_value(out, c);
        return Ok(());
    }
    let blocks = c
        .as_array()
        .ok_or_else(|| refuse(at, "must be a string or an array of text blocks"))?;
    out.push(b'[');
    for (j, b) in blocks.iter().enumerate() {
        let bat = format!("{at}[{j}].");
        if str_of(b, "type", &bat)? != Some("text") {
            return Err(refuse(
                format!("{bat}type"),
                "only text can be translated here",
            ));
        }
        check_members(
            b,
            &["type", "text", "cache_control", "citations"],
            &bat,
            OPENAI,
        )?;
        if j > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
        write_str(out, str_of(b, "text", &bat)?.unwrap_or_default());
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

// ---------------------------------------------------------------------- OpenAI → Gemini

const GEMINI: &str = "Gemini";

fn openai_to_gemini(
    v: &Value<'_>,
    t: &Target<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Untranslatable> {
    check_members(
        v,
        &[
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
            "user",
            "response_format",
            "n",
            "prompt_cache_key",
            "store",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logprobs",
        ],
        "",
        GEMINI,
    )?;
    neutral(v, "n", |x| x.as_u64() == Some(1), GEMINI)?;
    neutral(v, "store", |x| x.as_bool() == Some(false), GEMINI)?;
    neutral(v, "logprobs", |x| x.as_bool() == Some(false), GEMINI)?;
    let messages = array(v, "messages", "")?;
    if messages.is_empty() {
        return Err(refuse("messages", "must be a non-empty array"));
    }
    // A tool message names the call it answers; Gemini wants the function's name.
    let mut call_names: Vec<(&str, &str)> = Vec::new();
    for m in messages {
        for call in m
            .get("tool_calls")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            if let (Some(id), Some(name)) = (
                call.get("id").and_then(|x| x.as_str()),
                call.get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(|x| x.as_str()),
            ) {
                call_names.push((id, name));
            }
        }
    }

    out.push(b'{');
    let mut top = true;
    let mut system = false;
    for (i, m) in messages.iter().enumerate() {
        if !matches!(
            str_of(m, "role", &format!("messages[{i}]."))?,
            Some("system" | "developer")
        ) {
            continue;
        }
        check_members(m, &["role", "content"], &format!("messages[{i}]."), GEMINI)?;
        let content = get(m, "content")
            .ok_or_else(|| refuse(format!("messages[{i}].content"), "is required"))?;
        for text in text_parts(content, &format!("messages[{i}].content"))? {
            if !std::mem::replace(&mut system, true) {
                key(out, &mut top, "systemInstruction");
                out.extend_from_slice(b"{\"parts\":[");
            } else {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":");
            write_str(out, text);
            out.push(b'}');
        }
    }
    if system {
        out.extend_from_slice(b"]}");
    }
    key(out, &mut top, "contents");
    out.push(b'[');
    let mut first = true;
    let mut in_tool_turn = false;
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}].");
        let role =
            str_of(m, "role", &at)?.ok_or_else(|| refuse(format!("{at}role"), "is required"))?;
        if role == "tool" {
            check_members(m, &["role", "content", "tool_call_id"], &at, GEMINI)?;
            if in_tool_turn {
                out.push(b',');
            } else {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"role\":\"user\",\"parts\":[");
                in_tool_turn = true;
            }
            let id = str_of(m, "tool_call_id", &at)?
                .ok_or_else(|| refuse(format!("{at}tool_call_id"), "is required"))?;
            let name = call_names
                .iter()
                .find(|(i, _)| *i == id)
                .map(|(_, n)| *n)
                .ok_or_else(|| refuse(format!("{at}tool_call_id"), "does not match a tool call earlier in the conversation (Gemini needs the function's name)"))?;
            out.extend_from_slice(b"{\"functionResponse\":{\"name\":");
            write_str(out, name);
            out.extend_from_slice(b",\"response\":{\"content\":");
            match get(m, "content") {
                None => out.extend_from_slice(b"\"\""),
                Some(c) => write_str(out, &text_parts(c, &format!("{at}content"))?.concat()),
            }
            out.extend_from_slice(b"}}}");
            continue;
        }
        if in_tool_turn {
            out.extend_from_slice(b"]}");
            in_tool_turn = false;
        }
        match role {
            "system" | "developer" => {}
            "user" => {
                check_members(m, &["role", "content"], &at, GEMINI)?;
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"role\":\"user\",\"parts\":[");
                let content = get(m, "content")
                    .ok_or_else(|| refuse(format!("{at}content"), "is required"))?;
                let cat = format!("{at}content");
                if let Some(s) = content.as_str() {
                    out.extend_from_slice(b"{\"text\":");
                    write_str(out, s);
                    out.push(b'}');
                } else {
                    let parts = content
                        .as_array()
                        .ok_or_else(|| refuse(&cat, "must be a string or an array of parts"))?;
                    for (j, p) in parts.iter().enumerate() {
                        let pat = format!("{cat}[{j}].");
                        if j > 0 {
                            out.push(b',');
                        }
                        match str_of(p, "type", &pat)? {
                            Some("text") => {
                                check_members(p, &["type", "text"], &pat, GEMINI)?;
                                out.extend_from_slice(b"{\"text\":");
                                write_str(out, str_of(p, "text", &pat)?.unwrap_or_default());
                                out.push(b'}');
                            }
                            Some("image_url") => {
                                let url = image_url(p, &pat)?;
                                let Some((media, data)) = data_url(url) else {
                                    return Err(refuse(
                                        format!("{pat}image_url.url"),
                                        "must be a base64 data URL for Gemini (it cannot fetch web URLs)",
                                    ));
                                };
                                out.extend_from_slice(b"{\"inlineData\":{\"mimeType\":");
                                write_str(out, media);
                                out.extend_from_slice(b",\"data\":");
                                write_str(out, data);
                                out.extend_from_slice(b"}}");
                            }
                            Some(other) => {
                                return Err(refuse(
                                    format!("{pat}type"),
                                    &format!("`{other}` content cannot be translated for Gemini"),
                                ));
                            }
                            None => return Err(refuse(format!("{pat}type"), "is required")),
                        }
                    }
                }
                out.extend_from_slice(b"]}");
            }
            "assistant" => {
                check_members(m, &["role", "content", "tool_calls"], &at, GEMINI)?;
                let mark = out.len();
                if !first {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"role\":\"model\",\"parts\":[");
                let mut parts = 0;
                if let Some(c) = get(m, "content") {
                    for text in text_parts(c, &format!("{at}content"))?
                        .into_iter()
                        .filter(|t| !t.is_empty())
                    {
                        if parts > 0 {
                            out.push(b',');
                        }
                        parts += 1;
                        out.extend_from_slice(b"{\"text\":");
                        write_str(out, text);
                        out.push(b'}');
                    }
                }
                for (j, call) in array(m, "tool_calls", &at)?.iter().enumerate() {
                    let cat = format!("{at}tool_calls[{j}].");
                    check_members(call, &["id", "type", "function"], &cat, GEMINI)?;
                    let f = get(call, "function")
                        .ok_or_else(|| refuse(format!("{cat}function"), "is required"))?;
                    let name = str_of(f, "name", &format!("{cat}function."))?
                        .ok_or_else(|| refuse(format!("{cat}function.name"), "is required"))?;
                    let args =
                        str_of(f, "arguments", &format!("{cat}function."))?.unwrap_or_default();
                    if parts > 0 {
                        out.push(b',');
                    }
                    parts += 1;
                    out.extend_from_slice(b"{\"functionCall\":{\"name\":");
                    write_str(out, name);
                    out.extend_from_slice(b",\"args\":");
                    arguments_as_object(args, &format!("{cat}function.arguments"), out)?;
                    out.extend_from_slice(b"}}");
                }
                if parts == 0 {
                    out.truncate(mark);
                } else {
                    first = false;
                    out.extend_from_slice(b"]}");
                }
            }
            other => {
                return Err(refuse(
                    format!("{at}role"),
                    &format!("`{other}` cannot be translated for Gemini"),
                ));
            }
        }
    }
    if in_tool_turn {
        out.extend_from_slice(b"]}");
    }
    out.push(b']');

    // generationConfig
    let mut config = Vec::new();
    let mut cfirst = true;
    if let Some(n) = max_tokens_of(v)? {
        key(&mut config, &mut cfirst, "maxOutputTokens");
        json::uint(&mut config, n);
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ] {
        if let Some(x) = get(v, from) {
            x.cast_f64()
                .ok_or_else(|| refuse(from, "must be a number"))?;
            key(&mut config, &mut cfirst, to);
            write_value(&mut config, x);
        }
    }
    if let Some(stop) = get(v, "stop") {
        key(&mut config, &mut cfirst, "stopSequences");
        stop_list(stop, &mut config)?;
    }
    if let Some(rf) = get(v, "response_format") {
        check_members(rf, &["type", "json_schema"], "response_format.", GEMINI)?;
        match str_of(rf, "type", "response_format.")? {
            Some("text") => {}
            Some("json_object") => {
                key(&mut config, &mut cfirst, "responseMimeType");
                config.extend_from_slice(b"\"application/json\"");
            }
            Some("json_schema") => {
                let schema = get(rf, "json_schema")
                    .and_then(|s| get(s, "schema"))
                    .ok_or_else(|| refuse("response_format.json_schema.schema", "is required"))?;
                key(&mut config, &mut cfirst, "responseMimeType");
                config.extend_from_slice(b"\"application/json\"");
                key(&mut config, &mut cfirst, "responseJsonSchema");
                write_value(&mut config, schema);
            }
            _ => {
                return Err(refuse(
                    "response_format.type",
                    "must be text, json_object or json_schema",
                ));
            }
        }
    }
    if !config.is_empty() {
        key(out, &mut top, "generationConfig");
        out.push(b'{');
        out.extend_from_slice(&config);
        out.push(b'}');
    }
    let tools = array(v, "tools", "")?;
    if !tools.is_empty() {
        key(out, &mut top, "tools");
        out.extend_from_slice(b"[{\"functionDeclarations\":[");
        for (i, tool) in tools.iter().enumerate() {
            let (name, description, parameters) = openai_tool(tool, i, GEMINI)?;
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_str(out, name);
            if let Some(d) = description {
                out.extend_from_slice(b",\"description\":");
                write_str(out, d);
            }
            if let Some(p) = parameters {
                out.extend_from_slice(b",\"parametersJsonSchema\":");
                write_value(out, p);
            }
            out.push(b'}');
        }
        out.extend_from_slice(b"]}]");
    }
    if let Some(x) = get(v, "tool_choice") {
        key(out, &mut top, "toolConfig");
        out.extend_from_slice(b"{\"functionCallingConfig\":{\"mode\":");
        match openai_tool_choice(x)? {
            ToolChoice::Auto => out.extend_from_slice(b"\"AUTO\""),
            ToolChoice::None => out.extend_from_slice(b"\"NONE\""),
            ToolChoice::Required => out.extend_from_slice(b"\"ANY\""),
            ToolChoice::Named(n) => {
                out.extend_from_slice(b"\"ANY\",\"allowedFunctionNames\":[");
                write_str(out, n);
                out.push(b']');
            }
        }
        out.extend_from_slice(b"}}");
    }
    let _ = t;
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value as J, json};

    fn run(pair: Pair, body: J) -> Result<J, Untranslatable> {
        let target = Target {
            model_json: b"\"up-model\"",
            default_max_tokens: 4096,
            compatible: false,
        };
        let mut out = Vec::new();
        let bytes = serde_json::to_vec(&body).unwrap();
        translate(pair, &bytes, &target, &mut Scratch::default(), &mut out)?;
        Ok(serde_json::from_slice(&out).unwrap_or_else(|e| {
            panic!(
                "invalid JSON written ({e}): {}",
                String::from_utf8_lossy(&out)
            )
        }))
    }

    type Edit = Box<dyn Fn(&mut J)>;

    fn chat_with_tools() -> J {
        json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris? \"quoted\""},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "high"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "Thanks"}
            ],
            "max_completion_tokens": 300,
            "temperature": 0.5,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": true}},
                {"type": "function", "function": {"name": "get_time"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
            "user": "u-7"
        })
    }

    #[test]
    fn openai_to_anthropic_maps_every_part() {
        let got = run(Pair::OpenAiToAnthropic, chat_with_tools()).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "max_tokens": 300,
                "system": [{"type": "text", "text": "Be brief."}],
                "messages": [
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather in Paris? \"quoted\""},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
                    ]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                        {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "noon"}]}
                    ]},
                    {"role": "user", "content": "Thanks"}
                ],
                "temperature": 0.5,
                "stop_sequences": ["END"],
                "stream": true,
                "tools": [
                    {"name": "get_weather", "description": "d", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
                ],
                "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
                "metadata": {"user_id": "u-7"}
            })
        );
    }

    #[test]
    fn tool_choice_none_stays_none_and_required_is_any() {
        for (from, to) in [("none", "none"), ("required", "any"), ("auto", "auto")] {
            let got = run(
                Pair::OpenAiToAnthropic,
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": from}),
            )
            .unwrap();
            assert_eq!(got["tool_choice"], json!({"type": to}), "{from}");
            let got = run(
                Pair::OpenAiToGemini,
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": from}),
            )
            .unwrap();
            let mode = got["toolConfig"]["functionCallingConfig"]["mode"]
                .as_str()
                .unwrap()
                .to_owned();
            assert_eq!(mode, to.replace("any", "ANY").to_uppercase(), "{from}");
        }
    }

    #[test]
    fn the_default_max_tokens_fills_in_for_anthropic() {
        let got = run(
            Pair::OpenAiToAnthropic,
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        assert_eq!(got["max_tokens"], 4096);
        assert!(got.get("stream").is_none());
    }

    #[test]
    fn what_cannot_be_translated_is_refused_by_name() {
        let base = || json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
        let cases: Vec<(Pair, Edit, &str)> = vec![
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| b["n"] = json!(2)),
                "n",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| b["temperature"] = json!(1.5)),
                "temperature",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| b["logit_bias"] = json!({"1": 2})),
                "logit_bias",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| b["seed"] = json!(3)),
                "seed",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| b["response_format"] = json!({"type": "json_object"})),
                "response_format",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| {
                    b["messages"][0]["content"] =
                        json!([{"type": "input_audio", "input_audio": {}}])
                }),
                "messages[0].content[0].type",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| b["messages"][0]["name"] = json!("bob")),
                "messages[0].name",
            ),
            (
                Pair::OpenAiToAnthropic,
                Box::new(|b| {
                    b["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}))
                }),
                "messages[1].tool_calls[0].function.arguments",
            ),
            (
                Pair::OpenAiToGemini,
                Box::new(|b| {
                    b["messages"][0]["content"] =
                        json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}])
                }),
                "messages[0].content[0].image_url.url",
            ),
            (
                Pair::OpenAiToGemini,
                Box::new(|b| b["parallel_tool_calls"] = json!(false)),
                "parallel_tool_calls",
            ),
            (
                Pair::OpenAiToGemini,
                Box::new(|b| {
                    b["messages"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"role": "tool", "tool_call_id": "nope", "content": "x"}))
                }),
                "messages[1].tool_call_id",
            ),
        ];
        for (pair, edit, param) in cases {
            let mut b = base();
            edit(&mut b);
            let e = run(pair, b).unwrap_err();
            assert_eq!(e.param, param, "{}", e.message);
            assert!(e.message.contains(param), "{}", e.message);
        }
        let anthropic = || json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
        for (edit, param) in [
            (
                Box::new(|b: &mut J| b["top_k"] = json!(5)) as Box<dyn Fn(&mut J)>,
                "top_k",
            ),
            (
                Box::new(|b: &mut J| {
                    b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024})
                }),
                "thinking",
            ),
            (
                Box::new(|b: &mut J| {
                    b["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}])
                }),
                "tools[0].type",
            ),
            (
                Box::new(|b: &mut J| {
                    b["messages"][0]["content"] = json!([{"type": "document", "source": {}}])
                }),
                "messages[0].content[0].type",
            ),
        ] {
            let mut b = anthropic();
            edit(&mut b);
            let e = run(Pair::AnthropicToOpenAi, b).unwrap_err();
            assert_eq!(e.param, param, "{}", e.message);
        }
    }

    #[test]
    fn anthropic_to_openai_maps_every_part() {
        let body = json!({
            "model": "claude",
            "max_tokens": 200,
            "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "And tomorrow?"}
                ]}
            ],
            "stop_sequences": ["END"],
            "temperature": 0.2,
            "stream": true,
            "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "metadata": {"user_id": "u-7"}
        });
        let got = run(Pair::AnthropicToOpenAi, body).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "up-model",
                "messages": [
                    {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
                    ]},
                    {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
                    {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
                ],
                "max_completion_tokens": 200,
                "temperature": 0.2,
                "stop": ["END"],
                "stream": true,
                "stream_options": {"include_usage": true},
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}}],
                "tool_choice": "required",
                "parallel_tool_calls": false,
                "user": "u-7"
            })
        );
    }

    #[test]
    fn openai_to_gemini_maps_every_part() {
        let mut body = chat_with_tools();
        body.as_object_mut().unwrap().remove("parallel_tool_calls");
        body["messages"][1]["content"].as_array_mut().unwrap().pop();
        body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}});
        body["seed"] = json!(7);
        let got = run(Pair::OpenAiToGemini, body).unwrap();
        assert_eq!(
            got,
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [
                    {"role": "user", "parts": [
                        {"text": "Weather in Paris? \"quoted\""},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}
                    ]},
                    {"role": "model", "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "get_time", "args": {}}}
                    ]},
                    {"role": "user", "parts": [
                        {"functionResponse": {"name": "get_weather", "response": {"content": "18C"}}},
                        {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}
                    ]},
                    {"role": "user", "parts": [{"text": "Thanks"}]}
                ],
                "generationConfig": {
                    "maxOutputTokens": 300, "temperature": 0.5, "seed": 7, "stopSequences": ["END"],
                    "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}
                },
                "tools": [{"functionDeclarations": [
                    {"name": "get_weather", "description": "d", "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                    {"name": "get_time"}
                ]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
            })
        );
    }

    /// OpenAI → Anthropic → OpenAI keeps what the request means.
    #[test]
    fn a_round_trip_preserves_meaning() {
        let original = chat_with_tools();
        let there = run(Pair::OpenAiToAnthropic, original.clone()).unwrap();
        let back = run(Pair::AnthropicToOpenAi, there).unwrap();
        let o = &original;
        assert_eq!(
            back["messages"][0],
            json!({"role": "system", "content": [{"type": "text", "text": "Be brief."}]})
        );
        assert_eq!(
            back["messages"][1]["content"][0]["text"],
            o["messages"][1]["content"][0]["text"]
        );
        assert_eq!(
            back["messages"][1]["content"][1]["image_url"]["url"],
            o["messages"][1]["content"][1]["image_url"]["url"]
        );
        assert_eq!(
            back["messages"][1]["content"][2]["image_url"]["url"],
            o["messages"][1]["content"][2]["image_url"]["url"]
        );
        let calls = &back["messages"][2]["tool_calls"];
        for k in 0..2 {
            assert_eq!(calls[k]["id"], o["messages"][2]["tool_calls"][k]["id"]);
            assert_eq!(
                calls[k]["function"]["name"],
                o["messages"][2]["tool_calls"][k]["function"]["name"]
            );
            let args: J =
                serde_json::from_str(calls[k]["function"]["arguments"].as_str().unwrap()).unwrap();
            let want: J = serde_json::from_str(
                o["messages"][2]["tool_calls"][k]["function"]["arguments"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap_or(json!({}));
            assert_eq!(args, want);
        }
        assert_eq!(
            back["messages"][3],
            json!({"role": "tool", "tool_call_id": "call_1", "content": "18C"})
        );
        assert_eq!(
            back["messages"][4],
            json!({"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]})
        );
        assert_eq!(
            back["messages"][5],
            json!({"role": "user", "content": "Thanks"})
        );
        assert_eq!(back["max_completion_tokens"], 300);
        assert_eq!(back["temperature"], 0.5);
        assert_eq!(back["stop"], json!(["END"]));
        assert_eq!(
            back["tool_choice"],
            json!({"type": "function", "function": {"name": "get_weather"}})
        );
        assert_eq!(back["parallel_tool_calls"], false);
        assert_eq!(back["user"], "u-7");
        assert_eq!(
            back["tools"][0]["function"]["parameters"],
            o["tools"][0]["function"]["parameters"]
        );
        assert_eq!(back["stream"], true);
    }
}
