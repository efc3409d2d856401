//! Serialising heads and chunks into a reused `Vec<u8>`.
//!
//! These helpers only append bytes; callers own the buffer and decide when it is written.
//! Header values must already be valid field values (no CR/LF) — callers write values they
//! produced or values that came out of the parser, which refuses CR/LF.

/// Appends a status line: `HTTP/1.1 200 OK\r\n`.
pub fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(n.format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a request line: `POST /v1/chat/completions HTTP/1.1\r\n`.
pub fn request_line(out: &mut Vec<u8>, method: &str, target: &[u8]) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// Appends `name: value\r\n`.
#[inline]
pub fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: <decimal>\r\n`.
#[inline]
pub fn header_u64(out: &mut Vec<u8>, name: &str, value: u64) {
    let mut n = itoa::Buffer::new();
    header(out, name, n.format(value).as_bytes());
}

/// Ends the head (the blank line).
#[inline]
pub fn end_head(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body. Empty `data` is skipped: a zero-size chunk would end
/// the body.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut i = hex.len();
    let mut n = data.len();
    loop {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section.
pub fn last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// The canonical reason phrase for the status codes tollgate emits.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::{BodyDecoder, BodyKind, Limits, Method, ResponseHead};

    #[test]
    fn written_response_parses_back() {
        let mut out = Vec::new();
        status_line(&mut out, 200);
        header(&mut out, "content-type", b"text/event-stream");
        header(&mut out, "transfer-encoding", b"chunked");
        end_head(&mut out);
        let body_at = out.len();
        chunk(&mut out, b"data: x\n\n");
        chunk(&mut out, &[b'a'; 300]);
        chunk(&mut out, b"");
        last_chunk(&mut out);

        let mut h = ResponseHead::new();
        assert_eq!(
            h.parse(&out, &Limits::default(), Method::Post).unwrap(),
            Some(body_at)
        );
        assert_eq!(h.body, BodyKind::Chunked);
        let mut d = BodyDecoder::new(h.body, u64::MAX).unwrap();
        let mut rest = &out[body_at..];
        let mut payload = Vec::new();
        loop {
            let s = d.decode(rest).unwrap();
            payload.extend_from_slice(&rest[s.data.clone()]);
            rest = &rest[s.consumed..];
            if s.done {
                break;
            }
        }
        assert_eq!(payload.len(), 9 + 300);
        assert!(rest.is_empty());
    }
}
