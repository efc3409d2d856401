//! Where the text is in a JSON body — a request or a whole answer, in any dialect — and the
//! body rewritten with that text guarded.
//!
//! One walk covers every dialect, by member name: a string is text when the member holding
//! it (directly, or through an array) is one of [`TEXT`] — `content`, `text`, `system`,
//! `instructions`, `input`, `prompt`, `arguments`, `output`, `refusal` — and every string
//! inside a tool call's or tool result's structured value ([`STRUCTURED`]: Anthropic's and
//! Bedrock's `input`, Gemini's `args` and `response`, Bedrock's `json`) is text too. Members
//! that hold media, schemas or settings ([`SKIPPED`]: `image_url`, `source`, `inlineData`,
//! `tools`, `response_format`, thinking blocks and their signatures, …) are never entered, so
//! an image's base64 is never scanned and a tool's schema never edited. Object keys, roles,
//! types, ids and model names are never text.
//!
//! Strings are scanned as the text they stand for (escapes undone); a string that changes
//! is written back escaped, so the body stays valid JSON.

use std::ops::Range;

use super::{Blocked, Session, Side};
use crate::json::scan;

/// Members whose string values (directly or in arrays) are text.
pub const TEXT: &[&[u8]] = &[
    b"content",
    b"text",
    b"system",
    b"instructions",
    b"input",
    b"prompt",
    b"arguments",
    b"output",
    b"refusal",
];

/// Members whose object value is a tool call's arguments or a tool's result: every string
/// in it is text.
pub const STRUCTURED: &[&[u8]] = &[b"input", b"args", b"response", b"json", b"arguments"];

/// Members never entered.
pub const SKIPPED: &[&[u8]] = &[
    b"image_url",
    b"image",
    b"source",
    b"inline_data",
    b"inlineData",
    b"file_data",
    b"fileData",
    b"file",
    b"input_audio",
    b"audio",
    b"document",
    b"video",
    b"tools",
    b"functions",
    b"tool_choice",
    b"toolConfig",
    b"response_format",
    b"metadata",
    b"thinking",
    b"redacted_thinking",
    b"signature",
    b"thoughtSignature",
    b"cache_control",
    b"cachePoint",
];

/// Deepest nesting walked (deeper values are left as they are; providers refuse them).
const MAX_DEPTH: usize = 64;

/// What the walk produced.
#[derive(Debug, Default)]
pub struct Rewrite {
    /// (span of a string value in the body, its replacement literal with quotes).
    edits: Vec<(Range<usize>, Vec<u8>)>,
    text: Vec<u8>,
    out: Vec<u8>,
}

impl Rewrite {
    /// The body with the edits applied, when there are any.
    pub fn apply(&self, body: &[u8]) -> Option<Vec<u8>> {
        if self.edits.is_empty() {
            return None;
        }
        let grow: usize = self.edits.iter().map(|e| e.1.len()).sum();
        let mut out = Vec::with_capacity(body.len() + grow);
        let mut at = 0;
        for (r, lit) in &self.edits {
            out.extend_from_slice(&body[at..r.start]);
            out.extend_from_slice(lit);
            at = r.end;
        }
        out.extend_from_slice(&body[at..]);
        Some(out)
    }
}

#[derive(Clone, Copy)]
struct Ctx {
    depth: usize,
    /// Strings here are text.
    text: bool,
    /// Inside a structured tool value: every string is text, whatever its key.
    structured: bool,
}

impl Session {
    /// Guards the text of the JSON `body` for `side`. `Ok(Some(new body))` when something
    /// was redacted or restored, `Ok(None)` when the body goes as it is; `Err` when a rule
    /// blocked. A body that is not JSON is left to the endpoint to refuse.
    pub fn guard_body(&mut self, side: Side, body: &[u8]) -> Result<Option<Vec<u8>>, Blocked> {
        let mut rw = Rewrite::default();
        let top = Ctx {
            depth: 0,
            text: false,
            structured: false,
        };
        self.walk(side, body, scan::skip_ws(body, 0), top, &mut rw)?;
        Ok(rw.apply(body))
    }

    /// Guards every string in the JSON value `v` (a tool call's arguments sent whole).
    pub fn guard_value(&mut self, side: Side, v: &[u8]) -> Result<Option<Vec<u8>>, Blocked> {
        let mut rw = Rewrite::default();
        let all = Ctx {
            depth: 0,
            text: true,
            structured: true,
        };
        self.walk(side, v, scan::skip_ws(v, 0), all, &mut rw)?;
        Ok(rw.apply(v))
    }

    /// Walks the value at `at` (one pass: containers are read as they are walked, never
    /// skipped first), guarding its text; returns where the value ends (`None` when the body
    /// is malformed there: the walk stops, and the endpoint refuses the body).
    fn walk(
        &mut self,
        side: Side,
        b: &[u8],
        at: usize,
        ctx: Ctx,
        rw: &mut Rewrite,
    ) -> Result<Option<usize>, Blocked> {
        let depth = ctx.depth + 1;
        if depth > MAX_DEPTH {
            return Ok(scan::value_end(b, at));
        }
        match b.get(at) {
            Some(b'"') => {
                let Some(end) = scan::string_end(b, at) else {
                    return Ok(None);
                };
                if ctx.text || ctx.structured {
                    self.string(side, b, at..end, rw)?;
                }
                Ok(Some(end))
            }
            Some(b'{') => {
                let mut i = scan::skip_ws(b, at + 1);
                if b.get(i) == Some(&b'}') {
                    return Ok(Some(i + 1));
                }
                loop {
                    if b.get(i) != Some(&b'"') {
                        return Ok(None);
                    }
                    let Some(key_end) = scan::string_end(b, i) else {
                        return Ok(None);
                    };
                    let key = &b[i + 1..key_end - 1];
                    i = scan::skip_ws(b, key_end);
                    if b.get(i) != Some(&b':') {
                        return Ok(None);
                    }
                    i = scan::skip_ws(b, i + 1);
                    let child = if ctx.structured {
                        Some(Ctx { depth, ..ctx })
                    } else if SKIPPED.contains(&key) {
                        None
                    } else if STRUCTURED.contains(&key) && b.get(i) == Some(&b'{') {
                        Some(Ctx {
                            depth,
                            text: true,
                            structured: true,
                        })
                    } else {
                        Some(Ctx {
                            depth,
                            text: TEXT.contains(&key),
                            structured: false,
                        })
                    };
                    let end = match child {
                        Some(c) => self.walk(side, b, i, c, rw)?,
                        None => scan::value_end(b, i),
                    };
                    let Some(end) = end else {
                        return Ok(None);
                    };
                    i = scan::skip_ws(b, end);
                    match b.get(i) {
                        Some(b',') => i = scan::skip_ws(b, i + 1),
                        Some(b'}') => return Ok(Some(i + 1)),
                        _ => return Ok(None),
                    }
                }
            }
            Some(b'[') => {
                let mut i = scan::skip_ws(b, at + 1);
                if b.get(i) == Some(&b']') {
                    return Ok(Some(i + 1));
                }
                loop {
                    let Some(end) = self.walk(side, b, i, Ctx { depth, ..ctx }, rw)? else {
                        return Ok(None);
                    };
                    i = scan::skip_ws(b, end);
                    match b.get(i) {
                        Some(b',') => i = scan::skip_ws(b, i + 1),
                        Some(b']') => return Ok(Some(i + 1)),
                        _ => return Ok(None),
                    }
                }
            }
            Some(_) => Ok(scan::value_end(b, at)),
            None => Ok(None),
        }
    }

    /// One string value (`v`, quotes included).
    fn string(
        &mut self,
        side: Side,
        b: &[u8],
        v: Range<usize>,
        rw: &mut Rewrite,
    ) -> Result<(), Blocked> {
        let raw = &b[v.start + 1..v.end - 1];
        let mut text = std::mem::take(&mut rw.text);
        text.clear();
        let t: &[u8] = if memchr::memchr(b'\\', raw).is_some() {
            crate::json::unescape(raw, &mut text);
            &text
        } else {
            raw
        };
        let mut out = std::mem::take(&mut rw.out);
        out.clear();
        let r = self.apply(side, t, &mut out);
        if let Ok(true) = r {
            let mut lit = Vec::with_capacity(out.len() + 2);
            crate::json::string(&mut lit, &out);
            rw.edits.push((v, lit));
        }
        rw.text = text;
        rw.out = out;
        r.map(|_| ())
    }
}
