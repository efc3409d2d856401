//! parse_fields: the few request fields the gateway reads — model, stream, usage option, max
//! tokens, sticky session — and the key's policy on them.

use super::*;

/// Reads `model`, `stream`, `stream_options.include_usage` and `max_tokens` with simd-json
/// from a scratch copy (simd-json rewrites its input; the original bytes are forwarded), and
/// finds where the `model` string sits in the original body so `translate` can replace just
/// that span.
pub(super) fn parse_fields(
    w: &Worker,
    snap: &Snapshot,
    c: &Conn,
    ctx: &mut RequestCtx,
) -> Result<Fields, GatewayError> {
    let body = &c.buf[c.body.clone()];
    let invalid = |msg: String| GatewayError::new(ErrorKind::InvalidBody, msg);
    let mut guard = w.scratch.borrow_mut();
    let read = if ctx.route.is_gemini() {
        gemini_request(c.head.path(&c.buf), body)?
    } else if ctx.route.is_bedrock() {
        bedrock_request(c.head.path(&c.buf), body)?
    } else if body.len() > FULL_PARSE_MAX_BYTES {
        match scan_request(body)? {
            Some(r) => r,
            None => read_request(body, &mut guard)?,
        }
    } else {
        read_request(body, &mut guard)?
    };
    drop(guard);
    let ReadFields {
        model,
        model_span,
        stream,
        include_usage,
        max_tokens,
        session,
    } = read;
    let Some(id) = snap.model(&model) else {
        let model = String::from_utf8_lossy(&model);
        return Err(GatewayError::new(
            ErrorKind::ModelNotFound,
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .param("model"));
    };
    ctx.model = Some(id);
    ctx.stream = stream;
    // The key's policy: which models, how many tokens.
    let key = ctx.key.map(|k| &snap.keys[k.0 as usize]);
    if let Some(k) = key {
        if !k.allows(id) {
            let model = String::from_utf8_lossy(&model);
            return Err(GatewayError::new(
                ErrorKind::ModelNotAllowed,
                format!("This API key is not allowed to use the model `{model}`."),
            )
            .param("model"));
        }
        if let (Some(asked), Some(ceiling)) = (max_tokens, k.max_tokens)
            && asked > ceiling
        {
            return Err(invalid(format!(
                "max_tokens is {asked}, above this API key's limit of {ceiling}."
            ))
            .param("max_tokens"));
        }
    }
    let default_max_tokens = if max_tokens.is_none() && ctx.route != Route::Embeddings {
        key.and_then(|k| k.default_max_tokens)
    } else {
        None
    };
    ctx.max_tokens = max_tokens.or(default_max_tokens);
    Ok(Fields {
        model: id,
        model_span,
        stream,
        include_usage,
        max_tokens: max_tokens.or(default_max_tokens),
        default_max_tokens,
        session,
    })
}

/// A Gemini client's request: the model and the streaming choice are in its path; the output
/// cap is `generationConfig.maxOutputTokens`. The body must be a JSON object (its members are
/// the provider's to judge: it is forwarded byte for byte).
fn gemini_request<'a>(path: &'a [u8], body: &'a [u8]) -> Result<ReadFields<'a>, GatewayError> {
    let Some((model, stream)) = crate::dialect::gemini::client_call(path) else {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            "no model in the path",
        ));
    };
    let mut max_tokens = None;
    for m in Members::new(body) {
        let m = m.map_err(|()| {
            GatewayError::new(
                ErrorKind::InvalidBody,
                "We could not parse the JSON body of your request. The body must be a JSON object.",
            )
        })?;
        if &body[m.key.clone()] == b"generationConfig" {
            let config = &body[m.value.clone()];
            max_tokens = crate::json::scan::member(config, b"maxOutputTokens")
                .and_then(|r| crate::json::scan::uint_at(config, r.start));
        }
    }
    Ok(ReadFields {
        model: std::borrow::Cow::Borrowed(model),
        model_span: 0..0,
        stream,
        include_usage: false,
        max_tokens: max_tokens.map(|m| m.min(u64::from(u32::MAX)) as u32),
        session: None,
    })
}

/// A Bedrock client's request: the model (percent-decoded) and the streaming choice are in
/// its path; the output cap is `inferenceConfig.maxTokens`.
fn bedrock_request<'a>(path: &'a [u8], body: &'a [u8]) -> Result<ReadFields<'a>, GatewayError> {
    let bad = |m: &str| GatewayError::new(ErrorKind::InvalidBody, m.to_owned());
    let (raw, stream) =
        crate::dialect::bedrock::client_call(path).ok_or_else(|| bad("no model in the path"))?;
    let model = match memchr::memchr(b'%', raw) {
        None => std::borrow::Cow::Borrowed(raw),
        Some(_) => std::borrow::Cow::Owned(
            crate::dialect::bedrock::percent_decode(raw)
                .ok_or_else(|| bad("The model id in the path is not validly percent-encoded."))?,
        ),
    };
    let mut max_tokens = None;
    for m in Members::new(body) {
        let m = m.map_err(|()| {
            bad("We could not parse the JSON body of your request. The body must be a JSON object.")
        })?;
        if &body[m.key.clone()] == b"inferenceConfig" {
            let config = &body[m.value.clone()];
            max_tokens = crate::json::scan::member(config, b"maxTokens")
                .and_then(|r| crate::json::scan::uint_at(config, r.start));
        }
    }
    Ok(ReadFields {
        model,
        model_span: 0..0,
        stream,
        include_usage: false,
        max_tokens: max_tokens.map(|m| m.min(u64::from(u32::MAX)) as u32),
        session: None,
    })
}

/// Bodies up to this size are parsed whole (simd-json), which also validates them; larger
/// ones — long prompts — are read with [`scan_request`], which checks only the top-level
/// object and reads the few members the gateway needs, so a 100 KB prompt costs a scan, not
/// a DOM (ARCHITECTURE.md, "Performance budget": ≤ 15 µs more than a 1 KB one). A large body that is malformed inside
/// a member the gateway does not read is forwarded and refused by the provider.
pub(super) const FULL_PARSE_MAX_BYTES: usize = 16 * 1024;

/// The request fields the gateway reads, borrowed from the body.
pub(super) struct ReadFields<'a> {
    /// The model name (unescaped).
    model: std::borrow::Cow<'a, [u8]>,
    model_span: Range<usize>,
    stream: bool,
    include_usage: bool,
    max_tokens: Option<u32>,
    /// A sticky-routing session: the hash of `prompt_cache_key`, else of `user`.
    session: Option<u64>,
}

/// Reads the fields with simd-json from a scratch copy (simd-json rewrites its input; the
/// original bytes are forwarded), into the worker's reused tape: no allocation.
pub(super) fn read_request<'a>(
    body: &'a [u8],
    scratch: &mut Scratch,
) -> Result<ReadFields<'a>, GatewayError> {
    let (tape, base) = scratch.tape_at(body).map_err(|e| {
        invalid(format!(
            "We could not parse the JSON body of your request ({e}). The body must be a \
             JSON object."
        ))
    })?;
    let read = fields_of(body, tape.as_value(), base);
    let emptied = tape.reset();
    scratch.keep_tape(emptied);
    read
}

fn invalid(msg: String) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidBody, msg)
}

/// The fields of a parsed request (`base`: where the parsed copy of `body` starts).
fn fields_of<'a>(
    body: &'a [u8],
    v: simd_json::tape::Value<'_, '_>,
    base: usize,
) -> Result<ReadFields<'a>, GatewayError> {
    if !v.is_object() {
        return Err(invalid("The request body must be a JSON object.".into()));
    }
    let member = |k: &str| v.get(k).filter(|m| !m.is_null());
    let Some(model) = member("model").and_then(|m| m.into_string()) else {
        return Err(
            invalid("You must provide a model parameter (a string).".into()).param("model"),
        );
    };
    // simd-json leaves an unescaped string where it found it and unescapes in place, so the
    // string's offset in the scratch copy is where its raw contents start in the original.
    let start = (model.as_ptr() as usize).wrapping_sub(base);
    let model_span = raw_string_span(body, start).ok_or_else(|| {
        GatewayError::new(ErrorKind::Internal, "could not locate `model` in the body")
    })?;
    let stream = match member("stream") {
        None => false,
        Some(s) => s
            .as_bool()
            .ok_or_else(|| invalid("`stream` must be a boolean.".into()).param("stream"))?,
    };
    let include_usage = member("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|b| b.as_bool())
        .unwrap_or(false);
    let max_tokens = member("max_completion_tokens")
        .or_else(|| member("max_output_tokens"))
        .or_else(|| member("max_tokens"))
        .and_then(|m| m.as_u64())
        .map(|m| m.min(u64::from(u32::MAX)) as u32);
    let session = member("prompt_cache_key")
        .and_then(|v| v.into_string())
        .or_else(|| member("user").and_then(|v| v.into_string()))
        .filter(|s| !s.is_empty())
        .map(|s| session_hash(s.as_bytes()));
    let model = if body[model_span.clone()] == *model.as_bytes() {
        std::borrow::Cow::Borrowed(&body[model_span.clone()])
    } else {
        std::borrow::Cow::Owned(model.as_bytes().to_vec())
    };
    Ok(ReadFields {
        model,
        model_span,
        stream,
        include_usage,
        max_tokens,
        session,
    })
}

/// Reads the fields from the top-level members only (see [`FULL_PARSE_MAX_BYTES`]). `None`
/// when a member needs the full parser (an escaped model name).
pub(super) fn scan_request(body: &[u8]) -> Result<Option<ReadFields<'_>>, GatewayError> {
    let invalid = |msg: &str| GatewayError::new(ErrorKind::InvalidBody, msg.to_owned());
    let malformed = || {
        invalid("We could not parse the JSON body of your request. The body must be a JSON object.")
    };
    let mut model = None;
    let (mut stream, mut include_usage) = (false, false);
    let (mut max_tokens, mut max_completion_tokens, mut max_output_tokens) = (None, None, None);
    let (mut cache_key, mut user) = (None, None);
    for m in Members::new(body) {
        let m = m.map_err(|()| malformed())?;
        let v = &body[m.value.clone()];
        match &body[m.key.clone()] {
            b"model" => {
                if v.first() != Some(&b'"') {
                    return Err(
                        invalid("You must provide a model parameter (a string).").param("model")
                    );
                }
                let raw = m.value.start + 1..m.value.end - 1;
                if body[raw.clone()].contains(&b'\\') {
                    return Ok(None);
                }
                model = Some(raw);
            }
            b"stream" => {
                stream = match v {
                    b"true" => true,
                    b"false" | b"null" => false,
                    _ => return Err(invalid("`stream` must be a boolean.").param("stream")),
                }
            }
            b"stream_options" if v.first() == Some(&b'{') => {
                include_usage = crate::json::scan::member(v, b"include_usage")
                    .is_some_and(|r| &v[r] == b"true");
            }
            b"max_tokens" => max_tokens = crate::json::scan::uint_at(v, 0),
            b"max_completion_tokens" => max_completion_tokens = crate::json::scan::uint_at(v, 0),
            // The Responses API's name for it.
            b"max_output_tokens" => max_output_tokens = crate::json::scan::uint_at(v, 0),
            key @ (b"prompt_cache_key" | b"user") if v.first() == Some(&b'"') && v.len() >= 2 => {
                let raw = &v[1..v.len() - 1];
                // Hashed as the full parser sees it: unescaped.
                if raw.contains(&b'\\') {
                    return Ok(None);
                }
                match key {
                    b"user" => user = Some(raw),
                    _ => cache_key = Some(raw),
                }
            }
            _ => {}
        }
    }
    let Some(model_span) = model else {
        return Err(invalid("You must provide a model parameter (a string).").param("model"));
    };
    Ok(Some(ReadFields {
        model: std::borrow::Cow::Borrowed(&body[model_span.clone()]),
        model_span,
        stream,
        include_usage,
        max_tokens: max_completion_tokens
            .or(max_output_tokens)
            .or(max_tokens)
            .map(|m| m.min(u64::from(u32::MAX)) as u32),
        session: cache_key
            .or(user)
            .filter(|s| !s.is_empty())
            .map(session_hash),
    }))
}

/// The raw contents of the JSON string literal that starts at `start` in `body` (just after
/// its opening quote), up to its closing quote.
pub(super) fn raw_string_span(body: &[u8], start: usize) -> Option<Range<usize>> {
    if start == 0 || start > body.len() || body[start - 1] != b'"' {
        return None;
    }
    let mut i = start;
    loop {
        let j = i + memchr::memchr2(b'"', b'\\', &body[i..])?;
        if body[j] == b'"' {
            return Some(start..j);
        }
        i = j + 2;
        if i > body.len() {
            return None;
        }
    }
}

// Plan (the deployments to try, in order) and the failover around forward and relay: `attempt`.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_string_spans() {
        let b = br#"{"model":"gpt-4o","x":1}"#;
        assert_eq!(raw_string_span(b, 10), Some(10..16));
        let b = br#"{"model":"a\"b\\","x":1}"#;
        assert_eq!(&b[raw_string_span(b, 10).unwrap()], br#"a\"b\\"#);
        assert_eq!(raw_string_span(b, 0), None);
        assert_eq!(raw_string_span(br#"{"model":"abc"#, 10), None);
    }

    #[test]
    fn the_scan_reads_what_the_full_parse_reads() {
        let pad = "x".repeat(FULL_PARSE_MAX_BYTES);
        let mut scratch = Scratch::default();
        for body in [
            format!(r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{pad}"}}]}}"#),
            format!(
                r#" {{ "messages" : [{{"content":"{pad} \" }} ] , \\"}}], "model" : "m-1", "stream" : true, "stream_options":{{"include_usage":true}}, "max_tokens": 7 }}"#
            ),
            format!(
                r#"{{"model":"m","stream":null,"max_tokens":9,"max_completion_tokens":5,"x":"{pad}","stream_options":{{"include_usage":false}}}}"#
            ),
            format!(r#"{{"tools":[{{"model":"nested"}}],"model":"top","p":"{pad}"}}"#),
        ] {
            let full = read_request(body.as_bytes(), &mut scratch).unwrap();
            let scan = scan_request(body.as_bytes()).unwrap().unwrap();
            assert_eq!(full.model, scan.model, "{}", &body[..80.min(body.len())]);
            assert_eq!(full.model_span, scan.model_span);
            assert_eq!(
                (full.stream, full.include_usage, full.max_tokens),
                (scan.stream, scan.include_usage, scan.max_tokens)
            );
        }
        // Escaped model names go to the full parser; malformed tops and bad types are errors.
        assert!(scan_request(br#"{"model":"a\u0062"}"#).unwrap().is_none());
        for bad in [
            &br#"{"model":"m" "x":1}"#[..],
            b"[1]",
            br#"{"model":1}"#,
            br#"{"stream":"yes","model":"m"}"#,
        ] {
            assert!(
                scan_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
