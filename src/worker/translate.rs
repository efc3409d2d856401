//! The translate phase: the upstream request for one deployment — the client's bytes with a
//! few spans edited, or, for a provider of another dialect, a body rewritten by
//! [`crate::translate`].

use super::*;
use crate::dialect::{anthropic, bedrock, gemini, openai};

/// Headers never forwarded upstream: hop-by-hop (RFC 9110 §7.6.1), framing the gateway
/// redoes, and the client's credentials.
pub(super) const NOT_FORWARDED: &[&str] = &[
    "host",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "upgrade",
    "expect",
];

/// The path of the client's API under the provider's base URL (same dialect).
pub(super) fn api_suffix(route: Route) -> &'static [u8] {
    match route {
        Route::Completions => openai::COMPLETIONS_PATH,
        Route::Messages => anthropic::MESSAGES_PATH,
        Route::Responses => openai::RESPONSES_PATH,
        Route::Embeddings => openai::EMBEDDINGS_PATH,
        _ => openai::CHAT_PATH,
    }
}

/// Builds the upstream request in `c.ex.ureq`: the client's body byte for byte except for a few
/// spans — the `model` value becomes the deployment's upstream model, and a streamed OpenAI
/// request that did not ask for usage gets `stream_options.include_usage = true` (so the call
/// can be metered exactly; the relay removes the extra chunk again) — and the provider
/// credential in place of the client's.
pub(super) fn translate(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    d: DeploymentId,
) -> Result<(), GatewayError> {
    let dep = snap.deployment(d);
    let provider = snap.provider(dep.provider);
    c.ex.ureq_tail = None;
    let client = client_dialect(ctx.route);
    c.ex.pair = dep
        .dialect_for(client)
        .and_then(|p| Pair::between(client, p));
    if let Some(pair) = c.ex.pair {
        return translate_across(w, snap, c, ctx, f, (d, pair));
    }
    let body = &c.buf[c.body.clone()];
    // (Anthropic's Messages API and OpenAI's Responses API always report usage.)
    let usage_splice = (f.stream
        && !f.include_usage
        && !matches!(
            ctx.route,
            Route::Embeddings | Route::Messages | Route::Responses
        ))
    .then(|| include_usage_splice(body))
    .flatten();
    ctx.attempt.inject_usage = usage_splice.is_some();
    ctx.attempt.client_usage = f.include_usage;
    let Some(ep) = &provider.endpoint else {
        // Built-in mock: answered in `forward` from the fields.
        ctx.attempt.upstream_body_bytes = body.len() as u64;
        return Ok(());
    };
    if ctx.route.is_bedrock() {
        // The model and the call are in the path; the body goes as it came, signed for the
        // provider.
        let mut path = ep.base_path.as_bytes().to_vec();
        bedrock::write_path(&mut path, dep.upstream_model.as_bytes(), f.stream);
        ctx.attempt.upstream_body_bytes = body.len() as u64;
        let out = &mut c.ex.ureq;
        out.clear();
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(&path);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        upstream_headers(out, snap, &c.head, &c.buf, d, false);
        trace_header(out, ctx);
        write::header_u64(out, "content-length", body.len() as u64);
        sign_aws(out, provider, &path, body, ctx.start_unix_us / 1_000_000);
        write::end_head(out);
        out.extend_from_slice(body);
        return Ok(());
    }
    if ctx.route.is_gemini() {
        // The model and the call are in the path; the body goes as it came, but for the key's
        // default output cap when the request sets none.
        // A guarded answer's stream is read as SSE (and written back as the client asked).
        let sse = gemini::wants_sse(c.head.query(&c.buf)) || c.meter.guards_answers();
        let (cap_at, cap) = match f.default_max_tokens {
            Some(n) => gemini_max_tokens(body, n),
            None => (body.len(), Vec::new()),
        };
        let len = body.len() + cap.len();
        ctx.attempt.upstream_body_bytes = len as u64;
        let out = &mut c.ex.ureq;
        out.clear();
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(ep.base_path.as_bytes());
        if provider.kind == ProviderKind::Vertex {
            out.extend_from_slice(b"/google");
        }
        out.extend_from_slice(b"/models/");
        out.extend_from_slice(dep.upstream_model.as_bytes());
        out.extend_from_slice(match (f.stream, sse) {
            (false, _) => b":generateContent".as_slice(),
            (true, false) => b":streamGenerateContent",
            (true, true) => b":streamGenerateContent?alt=sse",
        });
        out.extend_from_slice(b" HTTP/1.1\r\n");
        upstream_headers(out, snap, &c.head, &c.buf, d, false);
        trace_header(out, ctx);
        vertex_auth(w, provider, out)?;
        write::header_u64(out, "content-length", len as u64);
        write::end_head(out);
        out.extend_from_slice(&body[..cap_at]);
        out.extend_from_slice(&cap);
        if body.len() - cap_at >= ZERO_COPY_TAIL_BYTES {
            c.ex.ureq_tail = Some(c.body.start + cap_at..c.body.end);
        } else {
            out.extend_from_slice(&body[cap_at..]);
        }
        return Ok(());
    }
    // The JSON literal replaces the quotes too; on Vertex AI the whole `model` member gives
    // way to the body's API version (the model is in the path).
    let vertex = provider.kind == ProviderKind::Vertex;
    let (model, model_with): (Range<usize>, &[u8]) = if vertex {
        let key = memchr::memmem::rfind(&body[..f.model_span.start], b"\"model\"")
            .unwrap_or(f.model_span.start - 1);
        (key..f.model_span.end + 1, VERTEX_ANTHROPIC_VERSION_MEMBER)
    } else {
        (
            f.model_span.start - 1..f.model_span.end + 1,
            &dep.upstream_model_json,
        )
    };
    let mut max_tokens = Vec::new();
    let mut max_tokens_at = body.len()..body.len();
    if let (Some(n), Some(at)) = (f.default_max_tokens, Members::open(body)) {
        // Each API's own name for it (the dialect modules' wire facts).
        let member = match ctx.route {
            Route::Messages => anthropic::MAX_TOKENS_MEMBER,
            Route::Responses => openai::RESPONSES_MAX_TOKENS_MEMBER,
            r => openai::max_tokens_member(r == Route::ChatCompletions, false),
        };
        max_tokens.push(b'"');
        max_tokens.extend_from_slice(member);
        max_tokens.extend_from_slice(b"\":");
        crate::json::uint(&mut max_tokens, u64::from(n));
        max_tokens.push(b',');
        max_tokens_at = at..at;
    }
    let mut splices: [(Range<usize>, &[u8]); 3] = [
        (model, model_with),
        usage_splice.unwrap_or((body.len()..body.len(), b"")),
        (max_tokens_at, &max_tokens),
    ];
    splices.sort_by_key(|(r, _)| r.start);
    let len = splices
        .iter()
        .fold(body.len(), |n, (r, with)| n - r.len() + with.len());
    ctx.attempt.upstream_body_bytes = len as u64;

    let head = &c.head;
    let out = &mut c.ex.ureq;
    out.clear();
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(ep.base_path.as_bytes());
    if vertex {
        vertex_anthropic_path(out, dep.upstream_model.as_bytes(), f.stream);
    } else {
        out.extend_from_slice(api_suffix(ctx.route));
    }
    out.extend_from_slice(provider.query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    upstream_headers(out, snap, head, &c.buf, d, false);
    trace_header(out, ctx);
    vertex_auth(w, provider, out)?;
    write::header_u64(out, "content-length", len as u64);
    write::end_head(out);
    let mut at = 0;
    for (r, with) in &splices {
        out.extend_from_slice(&body[at..r.start]);
        out.extend_from_slice(with);
        at = r.end;
    }
    if body.len() - at >= ZERO_COPY_TAIL_BYTES {
        // A long prompt: the rest goes out from the read buffer, not through a copy.
        c.ex.ureq_tail = Some(c.body.start + at..c.body.end);
    } else {
        out.extend_from_slice(&body[at..]);
    }
    Ok(())
}

/// Where to insert a Gemini request's output cap `n` (the request sets none), and what:
/// `"maxOutputTokens":n,` as the first member of its `generationConfig`, or a whole
/// `"generationConfig":{…},` as the body's first member when it has none.
fn gemini_max_tokens(body: &[u8], n: u32) -> (usize, Vec<u8>) {
    let mut cap = b"\"maxOutputTokens\":".to_vec();
    crate::json::uint(&mut cap, u64::from(n));
    let config = crate::json::scan::member(body, b"generationConfig")
        .filter(|r| body[r.start] == b'{')
        .map(|r| r.start + 1);
    match (config, Members::open(body)) {
        (Some(at), _) => {
            let empty = body.get(crate::json::scan::skip_ws(body, at)) == Some(&b'}');
            if !empty {
                cap.push(b',');
            }
            (at, cap)
        }
        (None, Some(at)) => {
            let empty = body.get(crate::json::scan::skip_ws(body, at)) == Some(&b'}');
            let mut member = b"\"generationConfig\":{".to_vec();
            member.extend_from_slice(&cap);
            member.push(b'}');
            if !empty {
                member.push(b',');
            }
            (at, member)
        }
        (None, None) => (body.len(), Vec::new()),
    }
}

/// The head lines after the request line: host, the provider's credential, the client's
/// headers minus hop-by-hop ones and its credentials (and, across dialects, minus the other
/// dialect's own headers), a content type, and `anthropic-version` for Anthropic.
pub(super) fn upstream_headers(
    out: &mut Vec<u8>,
    snap: &Snapshot,
    head: &RequestHead,
    buf: &[u8],
    d: DeploymentId,
    across: bool,
) {
    let provider = snap.provider(snap.deployment(d).provider);
    if let Some(ep) = &provider.endpoint {
        write::header(out, "host", ep.authority.as_bytes());
    }
    if let Some(cred) = &provider.credential {
        out.extend_from_slice(cred);
    }
    let connection = head.header(buf, "connection").unwrap_or_default();
    let mut content_type = false;
    let mut version = false;
    for h in &head.headers {
        let name = h.name.get(buf);
        if NOT_FORWARDED
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
            || listed_in(connection, name)
            // Tracing on: the attempt's own `traceparent` replaces the client's.
            || (snap.tracing.is_some() && name.eq_ignore_ascii_case(b"traceparent"))
            || (across
                && (name.eq_ignore_ascii_case(b"content-type")
                    || anthropic::is_own_header(name)
                    || openai::OWN_HEADERS
                        .iter()
                        .any(|h| name.eq_ignore_ascii_case(h))))
        {
            continue;
        }
        content_type |= name.eq_ignore_ascii_case(b"content-type");
        version |= name.eq_ignore_ascii_case(b"anthropic-version");
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.get(buf));
        out.extend_from_slice(b"\r\n");
    }
    if !content_type {
        write::header(out, "content-type", b"application/json");
    }
    if provider.kind == ProviderKind::Anthropic && !version {
        write::header(out, "anthropic-version", anthropic::VERSION);
    }
}

/// The attempt's own `traceparent` (tracing on): the provider's spans are its children.
pub(super) fn trace_header(out: &mut Vec<u8>, ctx: &RequestCtx) {
    if let Some(t) = &ctx.trace {
        t.write_upstream_header(out, usize::from(ctx.tries.n));
    }
}

/// The client's dialect on `route`.
pub(super) fn client_dialect(route: Route) -> Dialect {
    match route {
        Route::Messages => Dialect::Anthropic,
        Route::Responses => Dialect::Responses,
        Route::GenerateContent | Route::StreamGenerateContent => Dialect::Gemini,
        Route::Converse | Route::ConverseStream => Dialect::Bedrock,
        _ => Dialect::OpenAi,
    }
}

/// Builds the upstream request for a provider of another dialect: the body is rewritten
/// whole by [`crate::translate::request`] (a field it cannot carry over is a 400 naming it),
/// the path is the provider's own endpoint for the call.
pub(super) fn translate_across(
    w: &Worker,
    snap: &Snapshot,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    f: &Fields,
    (d, pair): (DeploymentId, Pair),
) -> Result<(), GatewayError> {
    let dep = snap.deployment(d);
    let provider = snap.provider(dep.provider);
    ctx.attempt.inject_usage = false;
    ctx.attempt.client_usage = f.include_usage;
    let target = request::Target {
        model_json: &dep.upstream_model_json,
        default_max_tokens: f.max_tokens.unwrap_or(dep.default_max_tokens),
        compatible: provider.compatible,
        stream: f.stream,
        vertex: provider.kind == ProviderKind::Vertex,
    };
    let mut body = std::mem::take(&mut c.ex.ubuf);
    let r = request::translate(
        pair,
        &c.buf[c.body.clone()],
        &target,
        &mut w.scratch.borrow_mut(),
        &mut body,
    );
    if let Err(e) = r {
        body.clear();
        c.ex.ubuf = body;
        let what = match pair.provider() {
            Dialect::Anthropic => "Anthropic",
            Dialect::Gemini => "Gemini",
            Dialect::OpenAi => "an OpenAI-dialect provider",
            Dialect::Responses => "OpenAI's Responses API",
            Dialect::Bedrock => "Bedrock",
        };
        return Err(GatewayError::new(
            ErrorKind::InvalidBody,
            format!(
                "This request goes to {what} and cannot be translated faithfully: {}.",
                e.message
            ),
        )
        .param(e.param));
    }
    ctx.attempt.upstream_body_bytes = body.len() as u64;
    let Some(ep) = &provider.endpoint else {
        return Err(GatewayError::new(
            ErrorKind::Internal,
            "a translated request needs a provider endpoint",
        ));
    };
    let out = &mut c.ex.ureq;
    out.clear();
    out.extend_from_slice(b"POST ");
    let path_at = out.len();
    out.extend_from_slice(ep.base_path.as_bytes());
    let vertex = provider.kind == ProviderKind::Vertex;
    match pair.provider() {
        Dialect::Anthropic if vertex => {
            vertex_anthropic_path(out, dep.upstream_model.as_bytes(), f.stream);
        }
        Dialect::Anthropic => out.extend_from_slice(anthropic::MESSAGES_PATH),
        Dialect::OpenAi => out.extend_from_slice(openai::CHAT_PATH),
        Dialect::Gemini => {
            if vertex {
                out.extend_from_slice(b"/google");
            }
            gemini::write_path(out, dep.upstream_model.as_bytes(), f.stream);
        }
        Dialect::Responses => out.extend_from_slice(openai::RESPONSES_PATH),
        Dialect::Bedrock => bedrock::write_path(out, dep.upstream_model.as_bytes(), f.stream),
    }
    if matches!(pair.provider(), Dialect::OpenAi | Dialect::Responses) {
        out.extend_from_slice(provider.query.as_bytes());
    }
    let path = out[path_at..].to_vec();
    out.extend_from_slice(b" HTTP/1.1\r\n");
    upstream_headers(out, snap, &c.head, &c.buf, d, true);
    trace_header(out, ctx);
    if let Err(e) = vertex_auth(w, provider, out) {
        body.clear();
        c.ex.ubuf = body;
        return Err(e);
    }
    write::header_u64(out, "content-length", body.len() as u64);
    sign_aws(out, provider, &path, &body, ctx.start_unix_us / 1_000_000);
    write::end_head(out);
    out.extend_from_slice(&body);
    body.clear();
    c.ex.ubuf = body;
    Ok(())
}

/// The body member that takes `model`'s place for Anthropic's models on Vertex AI.
const VERTEX_ANTHROPIC_VERSION_MEMBER: &[u8] = b"\"anthropic_version\":\"vertex-2023-10-16\"";

/// `/anthropic/models/{model}:rawPredict` (`:streamRawPredict` for a stream), under a Vertex
/// provider's `…/publishers` base path.
fn vertex_anthropic_path(out: &mut Vec<u8>, model: &[u8], stream: bool) {
    out.extend_from_slice(b"/anthropic/models/");
    out.extend_from_slice(model);
    out.extend_from_slice(if stream {
        b":streamRawPredict".as_slice()
    } else {
        b":rawPredict"
    });
}

/// For a Vertex AI provider: its service account's current access token, as the
/// `authorization` line. Before the coordinator has fetched one, the deployment cannot be
/// called (a retryable 502 `upstream_connect_failed`: another deployment may serve).
fn vertex_auth(
    w: &Worker,
    provider: &crate::config::Provider,
    out: &mut Vec<u8>,
) -> Result<(), GatewayError> {
    let Some(sa) = &provider.vertex else {
        return Ok(());
    };
    match w.tokens.borrow().line(&sa.client_email) {
        Some(line) => {
            out.extend_from_slice(line);
            Ok(())
        }
        None => Err(GatewayError::new(
            ErrorKind::UpstreamConnect,
            format!(
                "Provider `{}` has no Vertex AI access token yet (see the gateway's log).",
                provider.name
            ),
        )
        .retryable(true)),
    }
}

/// For a Bedrock provider that signs with SigV4: the `x-amz-date`, session-token and
/// `authorization` lines for a POST of `body` to `path` (as sent), at `unix_secs`.
fn sign_aws(
    out: &mut Vec<u8>,
    provider: &crate::config::Provider,
    path: &[u8],
    body: &[u8],
    unix_secs: u64,
) {
    use crate::http1::sigv4;
    let (Some(aws), Some(ep)) = (&provider.aws, &provider.endpoint) else {
        return;
    };
    let date = sigv4::amz_date(unix_secs);
    let headers: [(&[u8], &[u8]); 1] = [(b"host", ep.authority.as_bytes())];
    sigv4::write_headers(
        out,
        &aws.credentials,
        &sigv4::Scope {
            region: &aws.region,
            service: "bedrock",
            amz_date: &date,
        },
        &sigv4::Request {
            method: b"POST",
            path,
            query: b"",
            headers: &headers,
            payload: body,
        },
    );
}

/// A request body tail at least this long is written upstream straight from the read buffer
/// (one more write, one less copy of the bulk of a long prompt).
pub(super) const ZERO_COPY_TAIL_BYTES: usize = 16 * 1024;

/// The edit that makes a request ask for usage: `(span of the body to replace, with what)`.
/// `None` when `stream_options` is present but not an object or null (the provider will
/// refuse the request; it is forwarded as the client wrote it).
pub(super) fn include_usage_splice(body: &[u8]) -> Option<(Range<usize>, &'static [u8])> {
    const MEMBER: &[u8] = b"\"stream_options\":{\"include_usage\":true},";
    const OBJECT: &[u8] = b"{\"include_usage\":true}";
    let Some(opts) = member(body, b"stream_options") else {
        let at = Members::open(body)?;
        return Some((at..at, MEMBER));
    };
    let value = &body[opts.clone()];
    match value.first() {
        Some(b'n') => Some((opts, OBJECT)),
        Some(b'{') => match member(value, b"include_usage") {
            Some(v) => Some((opts.start + v.start..opts.start + v.end, b"true")),
            None if Members::new(value).next().is_none() => Some((opts, OBJECT)),
            None => {
                let at = opts.start + Members::open(value)?;
                Some((at..at, b"\"include_usage\":true,"))
            }
        },
        _ => None,
    }
}

/// True when `name` is one of the comma-separated tokens of a `Connection` header value.
pub(super) fn listed_in(connection: &[u8], name: &[u8]) -> bool {
    !connection.is_empty()
        && connection
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spliced(body: &str) -> Option<String> {
        let (r, with) = include_usage_splice(body.as_bytes())?;
        let mut out = body.as_bytes()[..r.start].to_vec();
        out.extend_from_slice(with);
        out.extend_from_slice(&body.as_bytes()[r.end..]);
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn include_usage_is_spliced_into_every_shape_of_request() {
        let usage = |s: &str| -> serde_json::Value {
            serde_json::from_str::<serde_json::Value>(s).unwrap()["stream_options"].clone()
        };
        for (body, want) in [
            (
                r#"{"model":"m","stream":true}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#" { "model":"m","stream_options":null}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#"{"model":"m","stream_options":{}}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#"{"model":"m","stream_options":{"include_usage":false}}"#,
                r#"{"include_usage":true}"#,
            ),
            (
                r#"{"model":"m","stream_options":{"continuous_usage_stats":true}}"#,
                r#"{"include_usage":true,"continuous_usage_stats":true}"#,
            ),
            (
                // A nested `stream_options` (a tool's schema) is not the request's.
                r#"{"tools":[{"parameters":{"stream_options":{}}}],"model":"m"}"#,
                r#"{"include_usage":true}"#,
            ),
        ] {
            let out = spliced(body).unwrap_or_else(|| panic!("{body}"));
            let want: serde_json::Value = serde_json::from_str(want).unwrap();
            assert_eq!(usage(&out), want, "{body} → {out}");
        }
        assert_eq!(spliced(r#"{"model":"m","stream_options":"x"}"#), None);
    }

    #[test]
    fn connection_tokens() {
        assert!(listed_in(b"keep-alive, X-Foo", b"x-foo"));
        assert!(!listed_in(b"", b"x-foo"));
    }
}
