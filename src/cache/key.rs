//! The cache key: a request, normalised, hashed.
//!
//! Two requests get the same key when they mean the same to the model: the body is read as
//! JSON (simd-json's tape) and written into a canonical form — object members sorted by name,
//! no whitespace, strings unescaped, numbers by value (`1`, `1.0` and `1e0` are one number) —
//! with the members that cannot change the answer left out. The key hashes that form together
//! with the tenant scope, the public model and the client's dialect (so an entry can be
//! rendered back in that dialect's words, and two dialects never share one).
//!
//! **Out of the key** (top-level members): `stream`, `stream_options`, `user`, `metadata`,
//! `store`, `prompt_cache_key`, `safety_identifier`, `service_tier`, `request_id`, and
//! `model` (the public model is hashed by name instead: a body's model string and a path's
//! are the same model).
//!
//! **In the key**: everything else, unknown members included — messages / contents / input,
//! system and instructions, tools, tool choice, temperature, top p, max tokens, stop
//! sequences, response format, seed, reasoning settings, … A member the gateway does not know
//! might change the answer, so it counts.
//!
//! **Not cached at all** (bypass): more than one choice (`n` > 1, `candidateCount` > 1) and
//! log probabilities (`logprobs`, `top_logprobs`), which the stored answer cannot hold; a
//! Responses API `background` request.
//!
//! The hash is 128 bits (two SipHash-1-3 with keys drawn at start, shared by the workers): an
//! accidental collision is out of reach, and a deliberate one needs the keys. Entries also
//! keep their scope and model and a hit is checked against them, so no collision can ever
//! cross tenants or models.
//!
//! **Semantic split.** For the semantic cache, the request is also split into the text to
//! embed — the last turn of the conversation when it is the user's and holds only text — and
//! the rest (system prompt, tools, parameters, every earlier turn), hashed like the key. A
//! semantic hit needs the rest to be identical and only the last user turn to be similar.

use std::hash::{BuildHasher, Hasher};

use simd_json::prelude::*;
use simd_json::tape::Value;

/// The client's dialect and operation, as far as the cache is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    Chat = 1,
    Messages = 2,
    Responses = 3,
    Gemini = 4,
    Bedrock = 5,
}

impl Op {
    /// The member holding the conversation.
    fn turns(self) -> &'static str {
        match self {
            Op::Chat | Op::Messages | Op::Bedrock => "messages",
            Op::Responses => "input",
            Op::Gemini => "contents",
        }
    }
}

/// Top-level members that never change the answer.
const VOLATILE: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
    "request_id",
];

/// The keys of the two hashes, drawn once per process and shared by every worker.
#[derive(Clone, Debug, Default)]
pub struct Hashing(std::hash::RandomState, std::hash::RandomState);

impl Hashing {
    pub fn new() -> Self {
        Hashing(std::hash::RandomState::new(), std::hash::RandomState::new())
    }

    pub fn hash(&self, parts: &[&[u8]]) -> u128 {
        let (mut a, mut b) = (self.0.build_hasher(), self.1.build_hasher());
        for p in parts {
            a.write(p);
            b.write(p);
            // Length-delimited, so parts cannot slide into each other.
            a.write_usize(p.len());
            b.write_usize(p.len());
        }
        (u128::from(a.finish()) << 64) | u128::from(b.finish())
    }
}

/// Why a request is not cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotCached {
    /// Several choices or log probabilities: the stored answer holds one choice, no logprobs.
    Shape(&'static str),
    /// Not a JSON object.
    Invalid,
}

/// A request, normalised: the canonical form of the whole (for the exact key) and of the rest
/// without the last user turn, with that turn's text (for the semantic cache).
#[derive(Debug, Default)]
pub struct Normalised {
    pub whole: Vec<u8>,
    /// `Some` when the last turn is the user's and is text only.
    pub last_user_text: Option<String>,
    pub rest: Vec<u8>,
}

/// Normalises `v` (the request body's root) for `op`. `split`: also the semantic split.
pub fn normalise(
    op: Op,
    v: Value<'_, '_>,
    split: bool,
    out: &mut Normalised,
) -> Result<(), NotCached> {
    out.whole.clear();
    out.rest.clear();
    out.last_user_text = None;
    let Some(root) = v.as_object() else {
        return Err(NotCached::Invalid);
    };
    refuse_shapes(op, v)?;
    let mut members: Vec<(&str, Value<'_, '_>)> =
        root.iter().filter(|(k, _)| !VOLATILE.contains(k)).collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    write_object(&mut out.whole, &members);
    if !split {
        return Ok(());
    }
    let turns = op.turns();
    let Some(list) = members
        .iter()
        .find(|m| m.0 == turns)
        .and_then(|m| m.1.as_array())
    else {
        // Responses' `input` may be one string: the user's turn, alone.
        if let Some(text) = members
            .iter()
            .find(|m| m.0 == turns)
            .and_then(|m| m.1.into_string())
        {
            out.last_user_text = Some(text.to_owned());
            let rest: Vec<_> = members.iter().filter(|m| m.0 != turns).copied().collect();
            write_object(&mut out.rest, &rest);
            out.rest.push(b'1');
        }
        return Ok(());
    };
    let n = list.len();
    let Some(last) = list.iter().last() else {
        return Ok(());
    };
    let Some(text) = user_text(op, last) else {
        return Ok(());
    };
    out.last_user_text = Some(text);
    // The rest: the members with the conversation written without its last turn.
    out.rest.push(b'{');
    len(&mut out.rest, members.len());
    for (k, x) in &members {
        string(&mut out.rest, k);
        if *k == turns {
            out.rest.push(b'[');
            len(&mut out.rest, n - 1);
            for t in list.iter().take(n - 1) {
                write(&mut out.rest, t);
            }
        } else {
            write(&mut out.rest, *x);
        }
    }
    Ok(())
}

/// Requests whose answer the cache cannot hold.
fn refuse_shapes(op: Op, v: Value<'_, '_>) -> Result<(), NotCached> {
    let get = |k: &str| v.as_object().and_then(|o| o.get(k));
    let many = |x: Option<Value<'_, '_>>| x.and_then(|x| x.as_u64()).is_some_and(|n| n > 1);
    let truthy = |x: Option<Value<'_, '_>>| {
        x.is_some_and(|x| x.as_bool() == Some(true) || x.as_u64().is_some_and(|n| n > 0))
    };
    match op {
        Op::Chat if many(get("n")) => Err(NotCached::Shape("n")),
        Op::Chat if truthy(get("logprobs")) || truthy(get("top_logprobs")) => {
            Err(NotCached::Shape("logprobs"))
        }
        Op::Responses if truthy(get("background")) => Err(NotCached::Shape("background")),
        Op::Responses if truthy(get("top_logprobs")) => Err(NotCached::Shape("top_logprobs")),
        Op::Gemini => {
            let g = get("generationConfig");
            let g = |k: &str| g.and_then(|g| g.as_object()).and_then(|o| o.get(k));
            if many(g("candidateCount")) {
                Err(NotCached::Shape("candidateCount"))
            } else if truthy(g("responseLogprobs")) {
                Err(NotCached::Shape("responseLogprobs"))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The text of a user turn that holds only text (`None` otherwise).
fn user_text(op: Op, turn: Value<'_, '_>) -> Option<String> {
    let o = turn.as_object()?;
    let role = o.get("role").and_then(|r| r.into_string());
    let is_user = match op {
        // Gemini's role may be left out for the user.
        Op::Gemini => role.is_none_or(|r| r == "user"),
        _ => role == Some("user"),
    };
    if !is_user {
        return None;
    }
    let content = match op {
        Op::Gemini => o.get("parts")?,
        _ => o.get("content")?,
    };
    if let Some(s) = content.into_string() {
        return Some(s.to_owned());
    }
    let mut text = String::new();
    for part in content.as_array()?.iter() {
        let p = part.as_object()?;
        let kind = p.get("type").and_then(|t| t.into_string());
        let ok = match op {
            Op::Gemini | Op::Bedrock => p.len() == 1,
            Op::Chat | Op::Messages => kind == Some("text"),
            Op::Responses => matches!(kind, Some("input_text" | "text")),
        };
        let t = p.get("text").and_then(|t| t.into_string());
        match t {
            Some(t) if ok => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            _ => return None,
        }
    }
    Some(text)
}

fn len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b's');
    len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn write_object(out: &mut Vec<u8>, sorted: &[(&str, Value<'_, '_>)]) {
    out.push(b'{');
    len(out, sorted.len());
    for (k, x) in sorted {
        string(out, k);
        write(out, *x);
    }
}

/// The canonical form of one value.
fn write(out: &mut Vec<u8>, v: Value<'_, '_>) {
    if let Some(o) = v.as_object() {
        let mut members: Vec<(&str, Value<'_, '_>)> = o.iter().collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        write_object(out, &members);
    } else if let Some(a) = v.as_array() {
        out.push(b'[');
        len(out, a.len());
        for x in a.iter() {
            write(out, x);
        }
    } else if let Some(s) = v.into_string() {
        string(out, s);
    } else if let Some(b) = v.as_bool() {
        out.push(if b { b't' } else { b'f' });
    } else if let Some(i) = v.as_i64() {
        integer(out, i128::from(i));
    } else if let Some(u) = v.as_u64() {
        integer(out, i128::from(u));
    } else if let Some(f) = v.as_f64() {
        // A float with an integer value is that integer: `1.0` is `1`.
        if f.fract() == 0.0 && f.abs() < 9.0e18 {
            integer(out, f as i128);
        } else {
            out.push(b'd');
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
    } else {
        out.push(b'n');
    }
}

fn integer(out: &mut Vec<u8>, i: i128) {
    out.push(b'i');
    out.extend_from_slice(&i.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::Scratch;

    fn norm(op: Op, body: &str) -> Result<Normalised, NotCached> {
        let mut s = Scratch::default();
        let tape = s.tape(body.as_bytes()).unwrap();
        let mut n = Normalised::default();
        normalise(op, tape.as_value(), true, &mut n)?;
        Ok(n)
    }

    fn same(a: &str, b: &str) -> bool {
        norm(Op::Chat, a).unwrap().whole == norm(Op::Chat, b).unwrap().whole
    }

    const BASE: &str =
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}"#;

    #[test]
    fn json_semantics_not_bytes() {
        assert!(same(
            BASE,
            r#"{ "temperature" : 5e-1, "messages":[{"content":"h\u0069","role":"user"}],"model":"m" }"#
        ));
        assert!(same(
            r#"{"messages":[],"max_tokens":10}"#,
            r#"{"max_tokens":10.0,"messages":[]}"#
        ));
        assert!(same(
            r#"{"messages":[],"seed":1}"#,
            r#"{"messages":[],"seed":1e0}"#
        ));
    }

    #[test]
    fn volatile_members_are_out() {
        for extra in [
            r#""stream":true"#,
            r#""stream_options":{"include_usage":true}"#,
            r#""user":"u-1""#,
            r#""metadata":{"a":"b"}"#,
            r#""store":true"#,
            r#""prompt_cache_key":"x""#,
            r#""safety_identifier":"x""#,
            r#""service_tier":"flex""#,
            r#""request_id":"r""#,
            r#""model":"other""#,
        ] {
            let with = format!("{},{extra}}}", &BASE[..BASE.len() - 1]);
            assert!(same(BASE, &with), "{extra} should not change the key");
        }
    }

    #[test]
    fn what_changes_the_answer_is_in() {
        for extra in [
            r#""system":"be brief""#,
            r#""tools":[{"type":"function","function":{"name":"f"}}]"#,
            r#""tool_choice":"none""#,
            r#""max_tokens":5"#,
            r#""max_completion_tokens":5"#,
            r#""response_format":{"type":"json_object"}"#,
            r#""seed":7"#,
            r#""top_p":0.1"#,
            r#""stop":["x"]"#,
            r#""reasoning_effort":"low""#,
            r#""frequency_penalty":1"#,
            r#""some_new_member":1"#,
        ] {
            let with = format!("{},{extra}}}", &BASE[..BASE.len() - 1]);
            assert!(!same(BASE, &with), "{extra} must change the key");
        }
        assert!(!same(BASE, &BASE.replace("0.5", "0.7")));
        assert!(!same(BASE, &BASE.replace("hi", "hi!")));
        assert!(!same(BASE, &BASE.replace("user", "assistant")));
    }

    #[test]
    fn shapes_the_cache_cannot_hold_are_refused() {
        for (op, body) in [
            (Op::Chat, r#"{"messages":[],"n":2}"#),
            (Op::Chat, r#"{"messages":[],"logprobs":true}"#),
            (Op::Responses, r#"{"input":"x","background":true}"#),
            (
                Op::Gemini,
                r#"{"contents":[],"generationConfig":{"candidateCount":3}}"#,
            ),
        ] {
            assert!(matches!(norm(op, body), Err(NotCached::Shape(_))), "{body}");
        }
        assert!(norm(Op::Chat, r#"{"messages":[],"n":1,"logprobs":false}"#).is_ok());
        assert_eq!(norm(Op::Chat, "[1]").unwrap_err(), NotCached::Invalid);
    }

    #[test]
    fn the_semantic_split_takes_the_last_user_turn() {
        let a = norm(
            Op::Chat,
            r#"{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"what is rust"}]}],"temperature":0}"#,
        )
        .unwrap();
        assert_eq!(a.last_user_text.as_deref(), Some("what is rust"));
        let b = norm(
            Op::Chat,
            r#"{"temperature":0,"messages":[{"role":"system","content":"s"},{"role":"user","content":"tell me what rust is"}]}"#,
        )
        .unwrap();
        assert_eq!(a.rest, b.rest, "only the last user turn differs");
        assert_ne!(a.whole, b.whole);
        // A different system prompt is a different rest.
        let c = norm(
            Op::Chat,
            r#"{"temperature":0,"messages":[{"role":"system","content":"t"},{"role":"user","content":"what is rust"}]}"#,
        )
        .unwrap();
        assert_ne!(a.rest, c.rest);
        // The last turn not the user's, or not only text: nothing to embed.
        let d = norm(
            Op::Chat,
            r#"{"messages":[{"role":"assistant","content":"x"}]}"#,
        )
        .unwrap();
        assert!(d.last_user_text.is_none());
        let e = norm(
            Op::Chat,
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}"#,
        )
        .unwrap();
        assert!(e.last_user_text.is_none());
        for (op, body, want) in [
            (
                Op::Gemini,
                r#"{"contents":[{"parts":[{"text":"g"}]}]}"#,
                "g",
            ),
            (
                Op::Messages,
                r#"{"messages":[{"role":"user","content":"m"}]}"#,
                "m",
            ),
            (Op::Responses, r#"{"input":"r"}"#, "r"),
            (
                Op::Bedrock,
                r#"{"messages":[{"role":"user","content":[{"text":"b"}]}]}"#,
                "b",
            ),
        ] {
            assert_eq!(
                norm(op, body).unwrap().last_user_text.as_deref(),
                Some(want)
            );
        }
    }

    #[test]
    fn the_hash_depends_on_every_part() {
        let h = Hashing::new();
        let base = h.hash(&[b"team:a", b"m", b"x"]);
        assert_eq!(base, h.hash(&[b"team:a", b"m", b"x"]));
        assert_ne!(base, h.hash(&[b"team:b", b"m", b"x"]));
        assert_ne!(base, h.hash(&[b"team:a", b"mx", b""]));
        assert_ne!(base, Hashing::new().hash(&[b"team:a", b"m", b"x"]));
    }
}
