//! Reading the request: its head (within the head timeout), its route, and its body (de-chunked
//! in place, within the body timeout).

use super::*;

/// Reads until `c.buf` holds a complete request head. `Ok(false)`: the connection ended
/// cleanly between requests (client closed, idle timeout, or the worker is draining).
pub(super) async fn read_head(
    w: &Worker,
    io: &mut ClientStream,
    c: &mut Conn,
) -> Result<bool, GatewayError> {
    let limits = w.snapshot.borrow().limits.clone();
    let mut deadline = None;
    loop {
        if !c.buf.is_empty() {
            if c.head.parse(&c.buf, &limits.head)?.is_some() {
                return Ok(true);
            }
            deadline.get_or_insert_with(|| Instant::now() + limits.header_timeout);
        }
        let buf = std::mem::take(&mut c.buf);
        let (res, buf) = match deadline {
            // Between requests: wait up to the idle timeout, or until the worker drains.
            None => {
                monoio::select! {
                    r = monoio::time::timeout(limits.idle_timeout, read_more(io, buf, HEAD_READ_BYTES)) => match r {
                        Ok(r) => r,
                        Err(_) => return Ok(false),
                    },
                    _ = w.drain.wait() => return Ok(false),
                }
            }
            // Inside a head: the whole head must arrive by the header deadline (slowloris).
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                match monoio::time::timeout(left, read_more(io, buf, HEAD_READ_BYTES)).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(GatewayError::new(
                            ErrorKind::RequestTimeout,
                            format!(
                                "The request head did not arrive within {} ms.",
                                limits.header_timeout.as_millis()
                            ),
                        ));
                    }
                }
            }
        };
        c.buf = buf;
        match res {
            Ok(0) | Err(_) => return Ok(false),
            Ok(_) => {}
        }
    }
}

pub(super) fn route(method: Method, path: &[u8]) -> Result<Route, GatewayError> {
    if path.starts_with(b"/v1/responses/") {
        use crate::dialect::responses::{Stored, stored_call};
        let want: &[Method] = match stored_call(path).map(|(_, call)| call) {
            Some(Stored::Response) => &[Method::Get, Method::Delete],
            Some(Stored::Cancel) => &[Method::Post],
            Some(Stored::InputItems) => &[Method::Get],
            None => return Err(unknown_url(path)),
        };
        if !want.contains(&method) {
            return Err(GatewayError::new(
                ErrorKind::MethodNotAllowed,
                format!("{} requires {want:?}.", String::from_utf8_lossy(path)),
            ));
        }
        return Ok(Route::StoredResponse);
    }
    let (route, want) = match path {
        b"/v1/chat/completions" => (Route::ChatCompletions, Method::Post),
        b"/v1/completions" => (Route::Completions, Method::Post),
        b"/v1/messages" => (Route::Messages, Method::Post),
        b"/v1/responses" => (Route::Responses, Method::Post),
        b"/v1/embeddings" => (Route::Embeddings, Method::Post),
        b"/v1/models" | b"/v1beta/models" => (Route::Models, Method::Get),
        b"/healthz" => (Route::Health, Method::Get),
        b"/readyz" => (Route::Ready, Method::Get),
        p => match (
            crate::dialect::gemini::client_call(p),
            crate::dialect::bedrock::client_call(p),
        ) {
            (Some((_, false)), _) => (Route::GenerateContent, Method::Post),
            (Some((_, true)), _) => (Route::StreamGenerateContent, Method::Post),
            (_, Some((_, false))) => (Route::Converse, Method::Post),
            (_, Some((_, true))) => (Route::ConverseStream, Method::Post),
            (None, None) => return Err(unknown_url(path)),
        },
    };
    if method != want {
        return Err(GatewayError::new(
            ErrorKind::MethodNotAllowed,
            format!("{} requires {:?}.", String::from_utf8_lossy(path), want),
        ));
    }
    Ok(route)
}

fn unknown_url(path: &[u8]) -> GatewayError {
    GatewayError::new(
        ErrorKind::NotFound,
        format!(
            "Unknown request URL: {}. Please check the URL for typos.",
            String::from_utf8_lossy(path)
        ),
    )
}

/// Reads the request body into `c.buf` right after the head (de-chunking in place) and sets
/// `c.body` and `c.next`. Sends `100 Continue` first when the client asked for it.
pub(super) async fn read_body(
    snap: &Snapshot,
    io: &mut ClientStream,
    c: &mut Conn,
    ctx: &mut RequestCtx,
) -> Result<(), GatewayError> {
    let start = c.head.head_len;
    let limits = &snap.limits;
    let too_large = || {
        GatewayError::new(
            ErrorKind::BodyTooLarge,
            format!(
                "The request body is larger than the {} bytes this gateway accepts.",
                limits.max_body_bytes
            ),
        )
    };
    let deadline = Instant::now() + limits.body_timeout;
    let mut decoder = match c.head.body {
        BodyKind::Empty | BodyKind::Close => {
            c.body = start..start;
            c.next = start;
            ctx.body_read = true;
            return Ok(());
        }
        BodyKind::Length(n) if n > limits.max_body_bytes => return Err(too_large()),
        kind => BodyDecoder::new(kind, limits.max_body_bytes)?,
    };
    if c.head.expect_continue && c.buf.len() == start {
        let (r, _) = io.write_all(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]).await;
        r.map_err(client_gone)?;
    }
    if let BodyKind::Length(n) = c.head.body {
        c.buf
            .reserve((start + n as usize).saturating_sub(c.buf.len()));
    }
    // `read` is where undecoded bytes start; `end` is where decoded payload ends. The payload
    // is moved down over the chunk framing, so `end <= read` always holds.
    let mut read = start;
    let mut end = start;
    loop {
        loop {
            let step = decoder.decode(&c.buf[read..]).map_err(|e| match e {
                http1::BodyError::TooLarge(_) => too_large(),
                e => GatewayError::from(e),
            })?;
            if step.consumed == 0 && !step.done {
                break;
            }
            let data = read + step.data.start..read + step.data.end;
            if data.start != end {
                c.buf.copy_within(data.clone(), end);
            }
            end += data.len();
            read += step.consumed;
            if step.done {
                c.body = start..end;
                c.next = read;
                // Whatever follows the body (a pipelined request) moves down to `end`.
                if end != read {
                    c.buf.copy_within(read.., end);
                    let tail = c.buf.len() - read;
                    c.buf.truncate(end + tail);
                    c.next = end;
                }
                ctx.body_read = true;
                ctx.request_bytes = c.next as u64;
                return Ok(());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let buf = std::mem::take(&mut c.buf);
        match monoio::time::timeout(left, read_more(io, buf, READ_SPARE_BYTES)).await {
            Ok((Ok(0), _)) | Ok((Err(_), _)) => {
                return Err(GatewayError::new(
                    ErrorKind::BadRequest,
                    "The connection closed before the request body was complete.",
                ));
            }
            Ok((Ok(_), buf)) => c.buf = buf,
            Err(_) => {
                return Err(GatewayError::new(
                    ErrorKind::RequestTimeout,
                    format!(
                        "The request body did not arrive within {} ms.",
                        limits.body_timeout.as_millis()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(Method::Post, b"/v1/chat/completions").unwrap(),
            Route::ChatCompletions
        );
        assert_eq!(
            route(Method::Get, b"/v1/chat/completions")
                .unwrap_err()
                .kind,
            ErrorKind::MethodNotAllowed
        );
        assert_eq!(
            route(Method::Get, b"/nope").unwrap_err().kind,
            ErrorKind::NotFound
        );
        for (method, path) in [
            (Method::Get, &b"/v1/responses/resp_1"[..]),
            (Method::Delete, b"/v1/responses/resp_1"),
            (Method::Post, b"/v1/responses/resp_1/cancel"),
            (Method::Get, b"/v1/responses/resp_1/input_items"),
        ] {
            assert_eq!(route(method, path).unwrap(), Route::StoredResponse);
        }
        for (method, path, kind) in [
            (
                Method::Post,
                &b"/v1/responses/resp_1"[..],
                ErrorKind::MethodNotAllowed,
            ),
            (
                Method::Get,
                b"/v1/responses/resp_1/cancel",
                ErrorKind::MethodNotAllowed,
            ),
            (
                Method::Get,
                b"/v1/responses/resp_1/other",
                ErrorKind::NotFound,
            ),
            (Method::Get, b"/v1/responses/", ErrorKind::NotFound),
        ] {
            assert_eq!(route(method, path).unwrap_err().kind, kind);
        }
    }
}
