//! HTTP/1.1: the request head parser (against a second, independent reading of RFC 9112 —
//! request smuggling lives where two parsers frame one message differently), and the
//! response head with its body decoder.

use tollgate::http1::{
    BodyDecoder, BodyKind, Limits, Method, RequestHead, ResponseHead, Span, Version,
};

use crate::{cut, settings};

/// How the reference reads a request head: what a proxy must agree on to frame it.
#[derive(Debug, PartialEq, Eq)]
struct Framed {
    head_len: usize,
    method: Vec<u8>,
    target: Vec<u8>,
    http10: bool,
    /// `None`: no body; `Some(Some(n))`: `n` bytes; `Some(None)`: chunked.
    body: Option<Option<u64>>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A strict request-head reader written from RFC 9112 alone (no code shared with
/// `httparse`): CRLF line ends, tokens for the method and field names, no obs-fold, one
/// framing. `None`: it refuses the head (or it is incomplete).
fn reference(buf: &[u8]) -> Option<Framed> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = &buf[..end - 2];
    let mut lines = head.split(|&b| b == b'\n');
    let line = lines.next()?.strip_suffix(b"\r")?;
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    if parts.next().is_some()
        || method.is_empty()
        || !method.iter().all(|&b| is_tchar(b))
        || target.is_empty()
        || !target.iter().all(|&b| b.is_ascii_graphic())
    {
        return None;
    }
    let http10 = match version {
        b"HTTP/1.1" => false,
        b"HTTP/1.0" => true,
        _ => return None,
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue; // the split after the last CRLF
        }
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return None;
        }
        if !value
            .iter()
            .all(|&b| b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f))
        {
            return None;
        }
        let value = value.trim_ascii();
        headers.push((name.to_ascii_lowercase(), value.to_vec()));
    }
    let values = |n: &[u8]| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|(k, _)| k == n)
            .map(|(_, v)| v.as_slice())
            .collect()
    };
    let te = values(b"transfer-encoding");
    let cl = values(b"content-length");
    let body = if !te.is_empty() {
        // Chunked must be the one coding, last; with a Content-Length too, refuse (a proxy
        // that picks either is how smuggling starts).
        if http10 || !cl.is_empty() || te.len() != 1 || !te[0].eq_ignore_ascii_case(b"chunked") {
            return None;
        }
        Some(None)
    } else if cl.is_empty() {
        None
    } else {
        let first = cl[0];
        if first.is_empty()
            || first.len() > 19
            || !first.iter().all(u8::is_ascii_digit)
            || cl.iter().any(|v| *v != first)
        {
            return None;
        }
        let n: u64 = std::str::from_utf8(first).ok()?.parse().ok()?;
        (n > 0).then_some(Some(n))
    };
    Some(Framed {
        head_len: end,
        method: method.to_vec(),
        target: target.to_vec(),
        http10,
        body,
        headers,
    })
}

fn span_ok(s: Span, head_len: usize) -> bool {
    s.start <= s.end && (s.end as usize) <= head_len
}

/// Request heads: spans stay inside the head; every prefix is "need more"; bytes after the
/// head change nothing; and where the reference accepts too, both frame it the same.
pub fn request_head(data: &[u8]) {
    let limits = Limits::default();
    let mut h = RequestHead::new();
    let Ok(Some(n)) = h.parse(data, &limits) else {
        return;
    };
    assert_eq!(n, h.head_len);
    assert!(n <= data.len() && n <= limits.max_head_bytes);
    assert!(span_ok(h.method_span, n) && span_ok(h.target, n));
    for hs in &h.headers {
        assert!(span_ok(hs.name, n) && span_ok(hs.value, n));
    }
    if h.body == BodyKind::Chunked {
        assert_eq!(h.version, Version::Http11, "chunked in HTTP/1.0");
    }
    // The head alone, and the head with other bytes after it: the same reading.
    let mut again = RequestHead::new();
    assert_eq!(again.parse(&data[..n], &limits), Ok(Some(n)));
    assert_eq!(
        (again.method, again.body, again.headers.len()),
        (h.method, h.body, h.headers.len())
    );
    let (seed, _) = settings(data);
    let k = cut(&data[..n], seed).min(n.saturating_sub(1));
    assert_eq!(
        RequestHead::new().parse(&data[..k], &limits),
        Ok(None),
        "prefix {k}"
    );
    // The differential: when both accept, they must frame the message alike.
    let Some(r) = reference(data) else { return };
    assert_eq!(r.head_len, n, "head length");
    assert_eq!(r.method, h.method_span.get(data), "method");
    assert_eq!(r.target, h.target.get(data), "target");
    assert_eq!(r.http10, h.version == Version::Http10, "version");
    let body = match h.body {
        BodyKind::Empty => None,
        BodyKind::Length(n) => Some(Some(n)),
        BodyKind::Chunked => Some(None),
        BodyKind::Close => panic!("a request framed by close"),
    };
    assert_eq!(
        r.body, body,
        "framing: reference {:?}, tollgate {:?}",
        r.body, h.body
    );
    assert_eq!(r.headers.len(), h.headers.len(), "header count");
    for ((name, value), hs) in r.headers.iter().zip(&h.headers) {
        assert!(name.eq_ignore_ascii_case(hs.name.get(data)), "header name");
        assert_eq!(
            value.as_slice(),
            hs.value.get(data).trim_ascii(),
            "header value"
        );
    }
    if h.method == Method::Other {
        assert!(!matches!(&r.method[..], b"GET" | b"POST" | b"HEAD"));
    }
}

/// What decoding `body` in `pieces` gives: payload, done, what was left, or the error.
fn decode(kind: BodyKind, input: &[u8], at: &[usize]) -> Result<(Vec<u8>, bool, Vec<u8>), String> {
    let mut d = BodyDecoder::new(kind, 1 << 20).map_err(|e| format!("{e:?}"))?;
    let (mut buffered, mut out) = (Vec::new(), Vec::new());
    let mut from = 0;
    for &to in at.iter().chain([&input.len()]) {
        buffered.extend_from_slice(&input[from..to.max(from)]);
        from = to.max(from);
        loop {
            let step = d.decode(&buffered).map_err(|e| format!("{e:?}"))?;
            assert!(step.consumed <= buffered.len() && step.data.end <= step.consumed);
            out.extend_from_slice(&buffered[step.data.clone()]);
            buffered.drain(..step.consumed);
            if step.done {
                assert_eq!(d.decoded(), out.len() as u64);
                buffered.extend_from_slice(&input[from..]);
                return Ok((out, true, buffered));
            }
            if step.consumed == 0 {
                break;
            }
        }
    }
    assert_eq!(d.decoded(), out.len() as u64);
    Ok((out, false, buffered))
}

/// A provider's response head and body: the body decoder gives the same payload, end and
/// leftover whether the bytes come whole or split; the payload is never more than came in
/// (nor more than a Content-Length).
pub fn response_body(data: &[u8]) {
    let (seed, input) = settings(data);
    let mut h = ResponseHead::new();
    let (kind, body) = match h.parse(input, &Limits::default(), Method::Post) {
        Ok(Some(n)) => {
            assert!(n <= input.len() && span_ok(h.reason, n));
            (h.body, &input[n..])
        }
        // Not a head: the bytes as a chunked body.
        _ => (BodyKind::Chunked, input),
    };
    if kind == BodyKind::Close {
        return;
    }
    let whole = decode(kind, body, &[]);
    let k = cut(body, seed);
    assert_eq!(decode(kind, body, &[k]), whole, "split at {k}");
    if body.len() <= 512 {
        let every: Vec<usize> = (1..body.len()).collect();
        assert_eq!(decode(kind, body, &every), whole, "byte by byte");
    }
    if let Ok((payload, done, _)) = &whole {
        assert!(payload.len() <= body.len());
        if let BodyKind::Length(n) = kind {
            assert!(payload.len() as u64 <= n);
            assert_eq!(*done, payload.len() as u64 == n);
        }
    }
}
