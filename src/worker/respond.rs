//! Responses the gateway writes itself (health, models, errors), and the one way response
//! bytes reach the client ([`send`]).

use super::*;

pub(super) async fn respond_json(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    status: u16,
    body: &[u8],
) -> Result<(), GatewayError> {
    ctx.status = status;
    let out = &mut c.out;
    out.clear();
    write::status_line(out, status);
    write::header(out, "content-type", b"application/json");
    write::header_u64(out, "content-length", body.len() as u64);
    request_id_header(out, ctx);
    if !ctx.keep_alive {
        write::header(out, "connection", b"close");
    }
    write::end_head(out);
    out.extend_from_slice(body);
    send(io, c, ctx).await
}

/// `x-request-id`: ties a response to its audit record.
/// `x-request-id`: ties a response to its audit record; then the request's other headers
/// (rate limits, budget warning).
pub(super) fn request_id_header(out: &mut Vec<u8>, ctx: &RequestCtx) {
    out.extend_from_slice(b"x-request-id: ");
    crate::telemetry::log::request_id(out, ctx_worker(ctx), ctx.serial & SERIAL_MASK);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&ctx.extra_head);
}

/// Writes `e` as the response (best effort: the client may be gone).
pub(super) async fn respond_error(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
    e: &GatewayError,
) {
    ctx.status = e.status();
    ctx.error = Some(e.kind);
    c.out.clear();
    let mut id = Vec::with_capacity(32);
    crate::telemetry::log::request_id(&mut id, ctx_worker(ctx), ctx.serial & SERIAL_MASK);
    // A Messages API client gets Anthropic's error shape, a Gemini client Google's.
    let shape = match ctx.route {
        Route::Messages => crate::error::ErrorShape::Anthropic,
        r if r.is_gemini() => crate::error::ErrorShape::Gemini,
        r if r.is_bedrock() => crate::error::ErrorShape::Bedrock,
        Route::Models if google_style(c) => crate::error::ErrorShape::Gemini,
        _ => crate::error::ErrorShape::OpenAi,
    };
    e.write_response_as(&mut c.out, !ctx.keep_alive, &id, &ctx.extra_head, shape);
    let _ = send(io, c, ctx).await;
}

/// A model-list request from a Gemini client: Gemini's path, or the key sent Google's way
/// (`x-goog-api-key`, `?key=`).
pub(super) fn google_style(c: &Conn) -> bool {
    c.head.path(&c.buf) == b"/v1beta/models"
        || c.head.header(&c.buf, "x-goog-api-key").is_some()
        || c.head
            .query(&c.buf)
            .is_some_and(|q| q.split(|&b| b == b'&').any(|kv| kv.starts_with(b"key=")))
}

/// The one way response bytes reach the client: writes all of `c.out` (leaving it empty for
/// reuse) within the body timeout, so a client that stops reading cannot pin the request,
/// counts the bytes, and marks the response started (no JSON error can follow any more).
pub(super) async fn send(
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let out = std::mem::take(&mut c.out);
    let n = out.len() as u64;
    let (res, mut out) = match monoio::time::timeout(ctx.write_timeout, io.write_all(out)).await {
        Ok(r) => r,
        Err(_) => {
            return Err(GatewayError::new(
                ErrorKind::ClientClosed,
                "the client stopped reading the response",
            ));
        }
    };
    out.clear();
    c.out = out;
    res.map_err(client_gone)?;
    ctx.response_started = true;
    ctx.response_bytes += n;
    Ok(())
}

pub(super) fn client_gone(e: std::io::Error) -> GatewayError {
    GatewayError::io(ErrorKind::ClientClosed, "writing to the client", e)
}
