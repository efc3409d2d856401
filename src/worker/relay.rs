//! The relay phase: the provider's response head and body to the client as they arrive —
//! one client write per upstream read, no buffering beyond it — through the metering tap
//! (`crate::stream::Meter`: usage read on the fly, the usage chunk the gateway asked for
//! removed). After the first byte has reached the client an upstream failure cannot become
//! an error response any more: a stream ends with an SSE error event and a proper last
//! chunk, anything else is cut.
//!
//! A child of `worker` (not `stream/`) because it is a phase of the request path and works on
//! the worker's private per-connection state; the sans-IO parts it drives live in `stream/`.

use std::time::Instant;

use crate::net::ClientStream;

use super::{Conn, READ_SPARE_BYTES, RequestCtx, Worker, admit, request_id_header, send};
use crate::config::Snapshot;
use crate::error::{ErrorKind, GatewayError};
use crate::http1::{BodyDecoder, BodyKind, HeaderSpan, Version, write};
use crate::telemetry::record::Route;

use crate::dialect::Dialect;
use crate::dialect::anthropic::stream::anthropic_end;
use crate::dialect::openai::stream::OpenAiChunks;
use crate::upstream::Upstream;
use crate::usage::{ESTIMATE_BYTES_PER_TOKEN, Observed, Usage, settle_usage};

/// How the response body is framed towards the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body (204, 304, or an empty body).
    None,
    /// `Content-Length` as the provider sent it; bytes copied through.
    Length,
    /// Chunked: the data of each upstream read goes out as one chunk as soon as it arrives,
    /// whatever the provider's framing (chunked or close-delimited), so an SSE event is never
    /// held back and an error event can always be appended at a chunk boundary.
    Chunked,
    /// HTTP/1.0 client: raw bytes, end marked by closing the connection.
    Close,
}

/// Response headers not copied to the client: hop-by-hop and framing (redone here).
const NOT_RELAYED: &[&str] = &[
    "connection",
    "keep-alive",
    "content-length",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// Writes the response head and relays the body as it arrives, with no buffering beyond one
/// read. After the head has gone out, an upstream failure ends a chunked (streamed) response
/// with an SSE error event in OpenAI's shape.
pub(super) async fn relay(
    w: &Worker,
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    up: &mut Upstream,
) -> Result<(), GatewayError> {
    let uh = &c.ex.uhead;
    let pair = c.ex.pair;
    // A guarded answer is rewritten: its length, like a translated one's, is known only once
    // it is written.
    let guarded = c.meter.guards_answers()
        && (200..300).contains(&uh.status)
        && ctx.route != Route::StoredResponse;
    let framing = match (uh.body, ctx.version) {
        (BodyKind::Empty, _) => Framing::None,
        (_, Version::Http10) => Framing::Close,
        // A translated body's length is known only once it is written.
        (BodyKind::Length(_), _) if pair.is_none() && !guarded => Framing::Length,
        (BodyKind::Length(_) | BodyKind::Chunked | BodyKind::Close, _) => Framing::Chunked,
    };
    if framing == Framing::Close {
        ctx.keep_alive = false;
    }
    let upstream_keep_alive = uh.keep_alive;
    // An event stream: SSE, or AWS's binary one (Bedrock).
    let sse = uh.header(&c.ex.ubuf, "content-type").is_some_and(|t| {
        t.starts_with(b"text/event-stream")
            || t.starts_with(crate::dialect::bedrock::STREAM_CONTENT_TYPE)
    });
    // A Gemini client served by another dialect's stream, without `alt=sse`, gets Gemini's
    // other framing: one JSON array.
    // (A guarded Gemini stream was asked of the provider as SSE, too.)
    let gemini_array = sse
        && (pair.is_some() || guarded)
        && pair.map_or(super::client_dialect(ctx.route), |p| p.client()) == Dialect::Gemini
        && !crate::dialect::gemini::wants_sse(c.head.query(&c.buf));
    // A failure after the first byte can end the client's body with an error event: in a
    // stream of events, not in a Gemini JSON array (cut instead).
    let events = sse && !gemini_array;
    // A translated stream whose framing differs from the provider's: the client's type.
    let client_type: Option<&[u8]> = match pair {
        Some(p) if sse => match (p.client(), p.provider()) {
            (Dialect::Gemini, _) if gemini_array => Some(b"application/json; charset=UTF-8"),
            (Dialect::Bedrock, _) => Some(crate::dialect::bedrock::STREAM_CONTENT_TYPE),
            (_, Dialect::Bedrock) => Some(b"text/event-stream"),
            _ => None,
        },
        None if gemini_array => Some(b"application/json; charset=UTF-8"),
        _ => None,
    };
    ctx.status = uh.status;
    // A stored response's calls generate nothing: what they return (a retrieved response's
    // usage too) is relayed, never metered.
    if (200..300).contains(&uh.status) && ctx.route != Route::StoredResponse {
        // Read in the provider's dialect; relayed in the client's (translated when they
        // differ). Removing the usage chunk changes the length: only where the gateway frames
        // the body.
        let dialect = pair.map_or(super::client_dialect(ctx.route), |p| p.provider());
        let strip = ctx.attempt.inject_usage && framing != Framing::Length;
        c.meter.start(dialect, sse, strip, ctx.log_hashes);
        if let Some(max) = super::cache::recording(ctx) {
            c.meter.record(max);
        }
        if let Some(p) = pair {
            c.meter.translate(
                p,
                ctx.attempt.client_usage,
                gemini_array,
                ctx.start_unix_us / 1_000_000,
            );
        } else if guarded && sse {
            // A guarded stream's text is rewritten: through the hub, to its own dialect (an
            // OpenAI client gets the usage chunk when it asked for one itself).
            c.meter.translate(
                crate::translate::Pair::same(dialect),
                !ctx.attempt.inject_usage,
                gemini_array,
                ctx.start_unix_us / 1_000_000,
            );
        }
        if guarded {
            c.meter.guard_answer();
        }
        // Ending a stream early needs the gateway to frame it.
        if let Some(t) = ctx.attempt.output_allowed
            && framing != Framing::Length
        {
            c.meter.limit_output(t * ESTIMATE_BYTES_PER_TOKEN);
        }
    } else if let Some(p) = pair
        && framing != Framing::None
    {
        c.meter.translate_error(p, uh.status, ctx.log_hashes);
    }

    // The head, with the first body bytes appended below so both go out in one write.
    let out = &mut c.out;
    out.clear();
    write::status_line(out, uh.status);
    for HeaderSpan { name, value } in &uh.headers {
        let n = name.get(&c.ex.ubuf);
        if NOT_RELAYED
            .iter()
            .any(|h| n.eq_ignore_ascii_case(h.as_bytes()))
            || (client_type.is_some() && n.eq_ignore_ascii_case(b"content-type"))
        {
            continue;
        }
        // The gateway's `x-request-id` names the audit record; the provider's is kept beside it
        // (it is what the provider's support asks for).
        if n.eq_ignore_ascii_case(b"x-request-id") {
            out.extend_from_slice(b"x-upstream-request-id");
        } else {
            out.extend_from_slice(n);
        }
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.get(&c.ex.ubuf));
        out.extend_from_slice(b"\r\n");
    }
    if let Some(t) = client_type {
        write::header(out, "content-type", t);
    }
    request_id_header(out, ctx);
    match (framing, uh.body) {
        (Framing::Length, BodyKind::Length(n)) => write::header_u64(out, "content-length", n),
        (Framing::Chunked, _) => write::header(out, "transfer-encoding", b"chunked"),
        (Framing::None, _) if !matches!(uh.status, 204 | 304) => {
            write::header(out, "content-length", b"0");
        }
        _ => {}
    }
    if !ctx.keep_alive {
        write::header(out, "connection", b"close");
    }
    write::end_head(out);

    let max = snap.upstream.max_response_bytes;
    let mut decoder = BodyDecoder::new(uh.body, max).map_err(|e| too_large(e, max))?;
    let mut pos = uh.head_len;
    let mut done = framing == Framing::None;
    // Past the first body byte the idle timeout applies, sent to the client or held.
    let mut body_seen = false;
    let sent = ctx.attempt.sent_at.unwrap_or(ctx.started);
    let total_deadline = sent + snap.upstream.total;
    let ttft_deadline = sent + snap.upstream.ttft;
    let idle = snap.upstream.body_idle;
    loop {
        // Everything buffered: decode it and stage the payload.
        let mut failure = None;
        let chunk_at = c.out.len();
        let mut payload = 0usize;
        if framing == Framing::Chunked {
            // Room for the chunk-size line, patched in below once the size is known.
            c.out.extend_from_slice(CHUNK_HEADER_SPACE);
        }
        let body_at = c.out.len();
        {
            let mut scratch = w.scratch.borrow_mut();
            while !done {
                match decoder.decode(&c.ex.ubuf[pos..]) {
                    Ok(step) => {
                        if step.consumed == 0 && !step.done {
                            break;
                        }
                        c.meter.pass(
                            &c.ex.ubuf[pos + step.data.start..pos + step.data.end],
                            &mut c.out,
                            &mut scratch,
                        );
                        pos += step.consumed;
                        done = step.done;
                        if done {
                            c.meter.end(Some(&mut c.out), &mut scratch);
                        }
                    }
                    Err(e) => {
                        failure = Some(too_large(e, max));
                        break;
                    }
                }
            }
        }
        if failure.is_none()
            && let Some(why) = c.meter.guard_blocked()
        {
            failure = Some(GatewayError::new(
                ErrorKind::GuardrailBlocked,
                why.to_owned(),
            ));
        }
        if failure.is_none()
            && let Some(why) = c.meter.translation_failed()
        {
            failure = Some(GatewayError::new(
                ErrorKind::UpstreamProtocol,
                format!("could not translate the provider's response: {why}"),
            ));
        }
        if failure.is_none() && cut_at_cap(w, snap, c, ctx).await {
            done = true;
        }
        payload += c.out.len() - body_at;
        body_seen |= payload > 0;
        if framing == Framing::Chunked {
            finish_chunk(&mut c.out, chunk_at, payload);
            if done {
                write::last_chunk(&mut c.out);
            }
        }
        if let Some(e) = failure {
            return end_with_error(io, c, ctx, framing, events, e).await;
        }
        // A cache leader's answer goes to the entry's owner before its last byte goes to the
        // client: whoever sees the answer end can count on the entry (and a purge after it).
        if done && !ctx.attempt.cut_at_cap {
            super::cache::store(w, snap, c, ctx);
        }
        // The head waits for the first body byte: until then a stall or a reset can still
        // fail over to another deployment, and the client never sees half of two answers. An
        // answer that is not a stream waits to be whole (up to `HOLD_ANSWER_BYTES`): one cut
        // half-way is retried, or answered with an error in the client's dialect, instead
        // of reaching the client as half a body on a closed connection.
        let hold = !done
            && !ctx.response_started
            && (payload == 0 || (!sse && c.out.len() < HOLD_ANSWER_BYTES));
        if !c.out.is_empty() && !hold {
            send(io, c, ctx).await?;
            if payload > 0 && ctx.ttft_us == 0 {
                let now = Instant::now();
                ctx.ttft_us =
                    (now.saturating_duration_since(ctx.started).as_micros() as u64).max(1);
                ctx.attempt.first_byte_at = Some(now);
            }
        }
        if done {
            break;
        }
        c.ex.ubuf.drain(..pos);
        pos = 0;
        let now = Instant::now();
        let until_total = total_deadline.saturating_duration_since(now);
        let left = if ctx.response_started || body_seen {
            idle.min(until_total)
        } else {
            ttft_deadline
                .saturating_duration_since(now)
                .min(until_total)
        };
        let buf = std::mem::take(&mut c.ex.ubuf);
        let (res, buf) =
            match monoio::time::timeout(left, up.read_more(buf, READ_SPARE_BYTES)).await {
                Ok(r) => r,
                Err(_) => {
                    let e = GatewayError::new(
                        ErrorKind::UpstreamTimeout,
                        if ctx.response_started || body_seen {
                            format!(
                                "the provider stalled: no response bytes for {} ms",
                                left.as_millis()
                            )
                        } else {
                            format!(
                                "the provider sent no first token within {} ms",
                                snap.upstream.ttft.as_millis()
                            )
                        },
                    );
                    return end_with_error(io, c, ctx, framing, events, e).await;
                }
            };
        c.ex.ubuf = buf;
        match res {
            Ok(0) => match decoder.finish_eof() {
                Ok(()) => {
                    done = true;
                    // A close-delimited body: whatever the meter still holds goes out now.
                    let chunk_at = c.out.len();
                    if framing == Framing::Chunked {
                        c.out.extend_from_slice(CHUNK_HEADER_SPACE);
                    }
                    let body_at = c.out.len();
                    c.meter.end(Some(&mut c.out), &mut w.scratch.borrow_mut());
                    if let Some(why) = c.meter.guard_blocked() {
                        let e = GatewayError::new(ErrorKind::GuardrailBlocked, why.to_owned());
                        return end_with_error(io, c, ctx, framing, events, e).await;
                    }
                    if let Some(why) = c.meter.translation_failed() {
                        let e = GatewayError::new(
                            ErrorKind::UpstreamProtocol,
                            format!("could not translate the provider's response: {why}"),
                        );
                        return end_with_error(io, c, ctx, framing, events, e).await;
                    }
                    cut_at_cap(w, snap, c, ctx).await;
                    if !ctx.attempt.cut_at_cap {
                        super::cache::store(w, snap, c, ctx);
                    }
                    if framing == Framing::Chunked {
                        let n = c.out.len() - body_at;
                        finish_chunk(&mut c.out, chunk_at, n);
                        write::last_chunk(&mut c.out);
                    }
                    if !c.out.is_empty() {
                        send(io, c, ctx).await?;
                    }
                    break;
                }
                Err(_) => {
                    let e = GatewayError::new(
                        ErrorKind::UpstreamProtocol,
                        "the provider closed the connection in the middle of the response",
                    );
                    return end_with_error(io, c, ctx, framing, events, e).await;
                }
            },
            Ok(_) => {}
            Err(err) => {
                let e = GatewayError::io(
                    ErrorKind::UpstreamProtocol,
                    "the provider connection failed mid-response",
                    err,
                );
                return end_with_error(io, c, ctx, framing, events, e).await;
            }
        }
    }
    // A close-delimited body ended by EOF, or stray bytes after the message: the upstream
    // connection cannot be trusted with another request.
    // Nor can one whose answer was cut short.
    if done
        && !ctx.attempt.cut_at_cap
        && upstream_keep_alive
        && pos == c.ex.ubuf.len()
        && c.ex.uhead.body != BodyKind::Close
    {
        up.release();
    }
    c.ex.ubuf.clear();
    Ok(())
}

/// A response body the decoder refused: past `[upstream] max_response_bytes` (said so, with
/// the setting's name), or badly framed.
fn too_large(e: crate::http1::BodyError, max: u64) -> GatewayError {
    let why = match e {
        crate::http1::BodyError::TooLarge(_) => format!(
            "the provider's response is larger than upstream.max_response_bytes ({max} bytes); \
             it was cut"
        ),
        e => format!("the provider sent an invalid response body: {e}"),
    };
    GatewayError::new(ErrorKind::UpstreamProtocol, why)
}

/// `cut_stream_at_cap`: once the stream's content has passed what its reservation covers and
/// the key's budgets cannot cover more, ends the stream — the events read past the cap are
/// dropped, and the client gets the stream's proper end in its own dialect ([`last_events`]).
/// Returns true when it did.
async fn cut_at_cap(w: &Worker, snap: &Snapshot, c: &mut Conn, ctx: &mut RequestCtx) -> bool {
    if !c.meter.over_limit() || admit::extend_output(w, snap, c, ctx).await {
        return false;
    }
    c.meter.discard_deferred();
    ctx.attempt.cut_at_cap = true;
    let (usage, _) = settle_usage(&c.meter.observed, ctx.attempt.upstream_body_bytes);
    let mut events = Vec::with_capacity(512);
    last_events(&mut events, ctx, &c.meter.observed, &usage);
    c.meter.add_own(&events, &mut c.out);
    true
}

/// The end of a stream the gateway cut at the key's budget cap, in the client's dialect, by
/// the translators' own writers: for an OpenAI client a last chunk with `finish_reason:
/// "length"`, the usage chunk if it asked for one, and `[DONE]`; for an Anthropic client the
/// open content block's stop, `message_delta` with `stop_reason: "max_tokens"` and the usage,
/// and `message_stop`.
fn last_events(out: &mut Vec<u8>, ctx: &RequestCtx, o: &Observed, u: &Usage) {
    if super::client_dialect(ctx.route) == Dialect::Anthropic {
        anthropic_end(out, o.open_block.map(u64::from), b"max_tokens", u);
        return;
    }
    let (id, model) = (o.response_id.as_bytes(), o.response_model.as_bytes());
    let created = ctx.start_unix_us / 1_000_000;
    let mut chunks = OpenAiChunks::default();
    if ctx.route == Route::Completions {
        chunks.start_as(id, model, created, b"text_completion");
        chunks.choice(out, |out| {
            out.extend_from_slice(
                b"{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"length\"}",
            );
        });
    } else {
        chunks.start(id, model, created);
        chunks.chunk(out, Some(b"length"), |out| out.extend_from_slice(b"{}"));
    }
    if ctx.attempt.client_usage {
        chunks.usage(out, u);
    }
    OpenAiChunks::done(out);
}

/// How much of an answer that is not a stream is held until it is whole (LLM answers are a
/// few KiB; a larger body, e.g. many embeddings, is relayed as it comes).
const HOLD_ANSWER_BYTES: usize = 1 << 20;

/// Placeholder for a chunk-size line: 8 hex digits cover chunks up to 4 GiB.
const CHUNK_HEADER_SPACE: &[u8] = b"00000000\r\n";

/// Turns the reserved header at `at` into the size line of a `len`-byte chunk (dropping it
/// when `len` is 0, which would otherwise read as the last chunk).
fn finish_chunk(out: &mut Vec<u8>, at: usize, len: usize) {
    if len == 0 {
        out.truncate(at);
        return;
    }
    let mut hex = [0u8; 8];
    let mut n = len;
    for d in hex.iter_mut().rev() {
        *d = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out[at..at + 8].copy_from_slice(&hex);
    out.extend_from_slice(b"\r\n");
}

/// An upstream failure during the relay. Before the first byte reached the client it is an
/// ordinary error response; after it, a stream gets an error event (and its proper end, and
/// the connection is kept) and anything else is cut and the connection closed, so the client
/// never mistakes a partial body for a whole one.
async fn end_with_error(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    framing: Framing,
    events: bool,
    e: GatewayError,
) -> Result<(), GatewayError> {
    if !ctx.response_started {
        // Nothing reached the client: another deployment may still answer (a guardrail's
        // block stands: the answer was refused, not lost).
        c.out.clear();
        let retry = e.kind != ErrorKind::GuardrailBlocked;
        return Err(e.retryable(retry));
    }
    if framing == Framing::Chunked && events {
        c.out.clear();
        let mut event = Vec::with_capacity(256);
        match ctx.route {
            Route::Messages => e.write_anthropic_sse_event(&mut event),
            Route::Responses => e.write_responses_sse_event(&mut event),
            Route::GenerateContent | Route::StreamGenerateContent => {
                event.extend_from_slice(b"data: ");
                crate::dialect::gemini::write_error(&mut event, e.status(), e.message.as_bytes());
                event.extend_from_slice(b"\n\n");
            }
            Route::Converse | Route::ConverseStream => {
                let mut payload = Vec::with_capacity(e.message.len() + 16);
                payload.extend_from_slice(b"{\"message\":");
                crate::json::string(&mut payload, e.message.as_bytes());
                payload.push(b'}');
                crate::sse::eventstream::encode_exception(
                    &mut event,
                    b"modelStreamErrorException",
                    &payload,
                );
            }
            _ => e.write_sse_event(&mut event),
        }
        write::chunk(&mut c.out, &event);
        write::last_chunk(&mut c.out);
        // The stream ends in good order (the client read a whole response, its last event an
        // error): the connection carries on. A client whose next request is already on its
        // way would otherwise lose it to the close.
        ctx.response_ended = send(io, c, ctx).await.is_ok();
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_headers() {
        let mut out = b"HEAD".to_vec();
        out.extend_from_slice(CHUNK_HEADER_SPACE);
        out.extend_from_slice(b"hello");
        finish_chunk(&mut out, 4, 5);
        assert_eq!(out, b"HEAD00000005\r\nhello\r\n");
        let mut out = b"HEAD".to_vec();
        out.extend_from_slice(CHUNK_HEADER_SPACE);
        finish_chunk(&mut out, 4, 0);
        assert_eq!(out, b"HEAD");
    }
}
