//! Request and response heads: `httparse` for the syntax, then a strict reading of the few
//! fields that decide framing (RFC 9112 §6).
//!
//! A parsed head stores [`Span`]s (offsets) into the caller's buffer, so nothing is copied and
//! the head structs are reused across requests on a connection (`parse` clears them).
//!
//! Framing rules enforced here, each one a request-smuggling vector when handled loosely:
//! - `Content-Length` must be 1*DIGIT; repeated fields must all carry the same value
//!   (RFC 9110 §8.6), anything else is [`HeadError::InvalidContentLength`] /
//!   [`HeadError::ConflictingContentLength`].
//! - `Transfer-Encoding` is accepted only as exactly one `chunked` coding; any other coding is
//!   [`HeadError::UnsupportedTransferCoding`] (RFC 9112 §6.1: chunked must be final, and we
//!   implement no other coding).
//! - Both `Content-Length` and `Transfer-Encoding` → [`HeadError::ContentLengthWithTransferEncoding`]
//!   (RFC 9112 §6.3 allows "handling as an error"; a proxy must).
//! - `Transfer-Encoding` in an HTTP/1.0 message → faulty framing (RFC 9112 §6.1).
//! - obs-fold, invalid header names and bytes are rejected by `httparse`'s defaults.

use std::mem::MaybeUninit;

use super::body::BodyKind;
use super::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_HEADERS_HARD};

/// A byte range into the buffer the head was parsed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// The bytes this span covers in `buf` (the buffer the head was parsed from).
    #[inline]
    pub fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    #[inline]
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    #[inline]
    pub fn is_empty(self) -> bool {
        self.end == self.start
    }

    /// The span of `part`, which must be a sub-slice of `base`.
    #[inline]
    fn of(base: &[u8], part: &[u8]) -> Span {
        // Address arithmetic only (no dereference): `part` was handed out by httparse from
        // `base`, so it lies inside it.
        let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }
}

/// One header field as offsets into the head buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderSpan {
    pub name: Span,
    pub value: Span,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Connect,
    Trace,
    Other,
}

impl Method {
    fn from_bytes(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => Method::Other,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    Http10,
    #[default]
    Http11,
}

/// Size limits applied while parsing a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum bytes of the whole head, request/status line through the blank line.
    pub max_head_bytes: usize,
    /// Maximum number of header fields (at most [`MAX_HEADERS_HARD`]).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: MAX_HEAD_BYTES,
            max_headers: MAX_HEADERS,
        }
    }
}

/// Why a head was refused. Every variant means "do not forward; answer and close".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed HTTP head: {0}")]
    Malformed(httparse::Error),
    #[error("HTTP head larger than {0} bytes")]
    TooLarge(usize),
    #[error("more than {0} header fields")]
    TooManyHeaders(usize),
    #[error("invalid Content-Length value")]
    InvalidContentLength,
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    #[error("both Content-Length and Transfer-Encoding present")]
    ContentLengthWithTransferEncoding,
    #[error("unsupported Transfer-Encoding (only a single `chunked` is accepted)")]
    UnsupportedTransferCoding,
    #[error("Transfer-Encoding in an HTTP/1.0 message")]
    TransferEncodingInHttp10,
    /// RFC 9112 §3.2: an HTTP/1.1 request needs exactly one `Host` field.
    #[error("an HTTP/1.1 request needs a Host header")]
    MissingHost,
    #[error("more than one Host header")]
    DuplicateHost,
    /// A line ended by a bare LF. httparse accepts it (RFC 9112 §2.2 lets a recipient), but a
    /// proxy in front of the gateway that does not would read another message out of the
    /// same bytes — the disagreement request smuggling is made of (found by the
    /// `http_request_head` fuzz target's differential).
    #[error("a line of the HTTP head ends with a bare LF; lines end with CRLF")]
    BareLineFeed,
}

impl HeadError {
    /// The status a server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge(_) | HeadError::TooManyHeaders(_) => 431,
            HeadError::UnsupportedTransferCoding => 501,
            // httparse reports any junk where the version belongs as a version error, so a
            // malformed head is a 400 even then, never a 505.
            _ => 400,
        }
    }
}

/// The framing-relevant facts read from a head's fields.
#[derive(Default)]
struct Fields {
    content_length: Option<u64>,
    chunked: bool,
    conn_close: bool,
    conn_keep_alive: bool,
    expect_continue: bool,
    hosts: u32,
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parses a Content-Length value: 1*DIGIT, no sign, no list, no overflow.
pub(crate) fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = trim_ows(v);
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Calls `f` with each trimmed, non-empty token of a comma-separated field value.
fn for_each_token(v: &[u8], mut f: impl FnMut(&[u8])) {
    for tok in v.split(|&b| b == b',') {
        let tok = trim_ows(tok);
        if !tok.is_empty() {
            f(tok);
        }
    }
}

fn read_fields(headers: &[httparse::Header<'_>], version: Version) -> Result<Fields, HeadError> {
    let mut f = Fields::default();
    let mut te_seen = false;
    let mut te_bad = false;
    let mut chunked_count = 0u32;
    for h in headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(h.value).ok_or(HeadError::InvalidContentLength)?;
            match f.content_length {
                Some(prev) if prev != n => return Err(HeadError::ConflictingContentLength),
                _ => f.content_length = Some(n),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            let mut any = false;
            for_each_token(h.value, |tok| {
                any = true;
                if tok.eq_ignore_ascii_case(b"chunked") {
                    chunked_count += 1;
                } else {
                    te_bad = true;
                }
            });
            if !any {
                te_bad = true;
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for_each_token(h.value, |tok| {
                if tok.eq_ignore_ascii_case(b"close") {
                    f.conn_close = true;
                } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                    f.conn_keep_alive = true;
                }
            });
        } else if name.eq_ignore_ascii_case(b"host") {
            f.hosts += 1;
        } else if name.eq_ignore_ascii_case(b"expect") {
            f.expect_continue = trim_ows(h.value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    if te_seen {
        if version == Version::Http10 {
            return Err(HeadError::TransferEncodingInHttp10);
        }
        if te_bad || chunked_count != 1 {
            return Err(HeadError::UnsupportedTransferCoding);
        }
        if f.content_length.is_some() {
            return Err(HeadError::ContentLengthWithTransferEncoding);
        }
        f.chunked = true;
    }
    Ok(f)
}

fn version_of(v: Option<u8>) -> Version {
    if v == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    }
}

fn keep_alive(version: Version, f: &Fields) -> bool {
    match version {
        Version::Http11 => !f.conn_close,
        Version::Http10 => f.conn_keep_alive && !f.conn_close,
    }
}

fn store_headers(out: &mut Vec<HeaderSpan>, buf: &[u8], headers: &[httparse::Header<'_>]) {
    out.clear();
    out.extend(headers.iter().map(|h| HeaderSpan {
        name: Span::of(buf, h.name.as_bytes()),
        value: Span::of(buf, h.value),
    }));
}

fn find_header<'a>(headers: &[HeaderSpan], buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| h.value.get(buf))
}

fn map_parse_error(e: httparse::Error, max_headers: usize) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders(max_headers),
        e => HeadError::Malformed(e),
    }
}

/// A parsed request head. Reuse one per connection: [`RequestHead::parse`] overwrites it.
#[derive(Clone, Debug, Default)]
pub struct RequestHead {
    pub method: Method,
    pub method_span: Span,
    /// The request-target as sent (path and query for origin-form).
    pub target: Span,
    pub version: Version,
    pub headers: Vec<HeaderSpan>,
    /// Bytes of the head including the final blank line; the body starts here.
    pub head_len: usize,
    pub body: BodyKind,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl RequestHead {
    pub fn new() -> Self {
        RequestHead {
            headers: Vec::with_capacity(MAX_HEADERS),
            ..Default::default()
        }
    }

    /// Parses a request head at the start of `buf`.
    ///
    /// `Ok(Some(n))`: complete, `n` = head length. `Ok(None)`: need more bytes.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<usize>, HeadError> {
        let max_headers = limits.max_headers.min(MAX_HEADERS_HARD);
        let mut storage =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_HARD];
        let mut req = httparse::Request::new(&mut []);
        let status = httparse::ParserConfig::default()
            .parse_request_with_uninit_headers(&mut req, buf, &mut storage[..max_headers])
            .map_err(|e| map_parse_error(e, max_headers))?;
        let head_len = match status {
            httparse::Status::Partial => {
                if buf.len() > limits.max_head_bytes {
                    return Err(HeadError::TooLarge(limits.max_head_bytes));
                }
                return Ok(None);
            }
            httparse::Status::Complete(n) => n,
        };
        if head_len > limits.max_head_bytes {
            return Err(HeadError::TooLarge(limits.max_head_bytes));
        }
        let head = &buf[..head_len];
        if memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r') {
            return Err(HeadError::BareLineFeed);
        }
        let version = version_of(req.version);
        let fields = read_fields(req.headers, version)?;
        match fields.hosts {
            0 if version == Version::Http11 => return Err(HeadError::MissingHost),
            0 | 1 => {}
            _ => return Err(HeadError::DuplicateHost),
        }
        let method = req.method.unwrap_or_default().as_bytes();
        self.method = Method::from_bytes(method);
        self.method_span = Span::of(buf, method);
        self.target = Span::of(buf, req.path.unwrap_or_default().as_bytes());
        self.version = version;
        store_headers(&mut self.headers, buf, req.headers);
        self.head_len = head_len;
        self.body = if fields.chunked {
            BodyKind::Chunked
        } else {
            match fields.content_length {
                Some(0) | None => BodyKind::Empty,
                Some(n) => BodyKind::Length(n),
            }
        };
        self.keep_alive = keep_alive(version, &fields);
        self.expect_continue = fields.expect_continue && version == Version::Http11;
        Ok(Some(head_len))
    }

    /// First header named `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        find_header(&self.headers, buf, name)
    }

    /// The path part of the target (before `?`).
    pub fn path<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let t = self.target.get(buf);
        match memchr::memchr(b'?', t) {
            Some(i) => &t[..i],
            None => t,
        }
    }

    /// The query part of the target (after `?`), if any.
    pub fn query<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        let t = self.target.get(buf);
        memchr::memchr(b'?', t).map(|i| &t[i + 1..])
    }
}

/// A parsed response head. Reuse one per connection.
#[derive(Clone, Debug, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Span,
    pub version: Version,
    pub headers: Vec<HeaderSpan>,
    pub head_len: usize,
    pub body: BodyKind,
    pub keep_alive: bool,
}

impl ResponseHead {
    pub fn new() -> Self {
        ResponseHead {
            headers: Vec::with_capacity(MAX_HEADERS),
            ..Default::default()
        }
    }

    /// Parses a response head at the start of `buf`. `request_method` decides whether a body
    /// follows (none after HEAD, per RFC 9112 §6.3 rule 1).
    ///
    /// An interim `1xx` response parses like any other head with [`BodyKind::Empty`]; callers
    /// skip it and parse again.
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        request_method: Method,
    ) -> Result<Option<usize>, HeadError> {
        let max_headers = limits.max_headers.min(MAX_HEADERS_HARD);
        let mut storage =
            [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_HARD];
        let mut res = httparse::Response::new(&mut []);
        let status = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut res, buf, &mut storage[..max_headers])
            .map_err(|e| map_parse_error(e, max_headers))?;
        let head_len = match status {
            httparse::Status::Partial => {
                if buf.len() > limits.max_head_bytes {
                    return Err(HeadError::TooLarge(limits.max_head_bytes));
                }
                return Ok(None);
            }
            httparse::Status::Complete(n) => n,
        };
        if head_len > limits.max_head_bytes {
            return Err(HeadError::TooLarge(limits.max_head_bytes));
        }
        let version = version_of(res.version);
        let fields = read_fields(res.headers, version)?;
        let code = res.code.unwrap_or_default();
        self.status = code;
        self.reason = Span::of(buf, res.reason.unwrap_or_default().as_bytes());
        self.version = version;
        store_headers(&mut self.headers, buf, res.headers);
        self.head_len = head_len;
        let bodiless = request_method == Method::Head
            || (100..200).contains(&code)
            || code == 204
            || code == 304;
        self.body = if bodiless {
            BodyKind::Empty
        } else if fields.chunked {
            BodyKind::Chunked
        } else {
            match fields.content_length {
                Some(0) => BodyKind::Empty,
                Some(n) => BodyKind::Length(n),
                None => BodyKind::Close,
            }
        };
        self.keep_alive = keep_alive(version, &fields) && self.body != BodyKind::Close;
        Ok(Some(head_len))
    }

    /// First header named `name` (ASCII case-insensitive).
    pub fn header<'a>(&self, buf: &'a [u8], name: &str) -> Option<&'a [u8]> {
        find_header(&self.headers, buf, name)
    }

    /// True for interim responses (`100 Continue` and friends) that precede the final one.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(bytes: &[u8]) -> Result<Option<RequestHead>, HeadError> {
        let mut h = RequestHead::new();
        Ok(h.parse(bytes, &Limits::default())?.map(|_| h))
    }

    #[test]
    fn parses_a_post_with_offsets() {
        let buf = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nAuthorization: Bearer k\r\n\r\nhello";
        let h = req(buf).unwrap().unwrap();
        assert_eq!(h.method, Method::Post);
        assert_eq!(h.path(buf), b"/v1/chat/completions");
        assert_eq!(h.query(buf), Some(&b"x=1"[..]));
        assert_eq!(h.header(buf, "authorization"), Some(&b"Bearer k"[..]));
        assert_eq!(h.body, BodyKind::Length(5));
        assert_eq!(&buf[h.head_len..], b"hello");
        assert!(h.keep_alive);
    }

    #[test]
    fn every_split_point_is_partial_until_complete() {
        let buf = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n";
        for cut in 0..buf.len() {
            assert!(req(&buf[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        assert_eq!(req(buf).unwrap().unwrap().head_len, buf.len());
    }

    /// The fuzzer's first finding (fuzz/crashes/http_request_head): a bare LF ended the head
    /// early for httparse, where a strict reader saw the head go on (with the
    /// Content-Length after it). Refused wherever it appears.
    #[test]
    fn a_bare_lf_anywhere_in_the_head_is_refused() {
        let cases: &[&[u8]] = &[
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n\n\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
        ];
        for c in cases {
            assert_eq!(
                req(c).map(|h| h.map(|h| h.head_len)),
                Err(HeadError::BareLineFeed),
                "{}",
                String::from_utf8_lossy(c)
            );
        }
        assert_eq!(HeadError::BareLineFeed.status(), 400);
    }

    #[test]
    fn smuggling_vectors_are_rejected() {
        let cases: &[(&[u8], HeadError)] = &[
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::ContentLengthWithTransferEncoding,
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                HeadError::ConflictingContentLength,
            ),
            (b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", HeadError::InvalidContentLength),
            (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", HeadError::InvalidContentLength),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                HeadError::InvalidContentLength,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HeadError::UnsupportedTransferCoding,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::UnsupportedTransferCoding,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
                HeadError::UnsupportedTransferCoding,
            ),
            (
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::TransferEncodingInHttp10,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                req(bytes).unwrap_err(),
                *want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
            assert_eq!(
                want.status() / 100,
                if *want == HeadError::UnsupportedTransferCoding {
                    5
                } else {
                    4
                }
            );
        }
    }

    #[test]
    fn obs_fold_and_bad_names_are_malformed() {
        for bytes in [
            &b"GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A : 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
        ] {
            assert!(
                matches!(req(bytes), Err(HeadError::Malformed(_))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn host_is_required_once_in_http_1_1() {
        // RFC 9112 §3.2: a 400 for a missing Host, or for more than one.
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n").unwrap_err(),
            HeadError::MissingHost
        );
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").unwrap_err(),
            HeadError::DuplicateHost
        );
        assert_eq!(HeadError::MissingHost.status(), 400);
        assert!(req(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        assert!(req(b"GET / HTTP/1.1\r\nHOST: a\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn identical_repeated_content_length_is_accepted() {
        let h =
            req(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(h.body, BodyKind::Length(3));
    }

    #[test]
    fn limits_are_enforced() {
        let mut big = b"GET / HTTP/1.1\r\nX-A: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD_BYTES));
        assert_eq!(req(&big).unwrap_err(), HeadError::TooLarge(MAX_HEAD_BYTES));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(
            req(&many).unwrap_err(),
            HeadError::TooManyHeaders(MAX_HEADERS)
        );
        assert_eq!(HeadError::TooManyHeaders(1).status(), 431);
    }

    #[test]
    fn connection_semantics() {
        let h = req(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = req(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = req(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h =
            req(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(h.expect_continue);
    }

    #[test]
    fn response_framing() {
        let parse = |b: &[u8], m: Method| {
            let mut h = ResponseHead::new();
            h.parse(b, &Limits::default(), m).unwrap().unwrap();
            h
        };
        let h = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            Method::Post,
        );
        assert_eq!(
            (h.status, h.body, h.keep_alive),
            (200, BodyKind::Length(10), true)
        );
        let h = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            Method::Post,
        );
        assert_eq!(h.body, BodyKind::Chunked);
        let h = parse(b"HTTP/1.1 200 OK\r\n\r\n", Method::Post);
        assert_eq!((h.body, h.keep_alive), (BodyKind::Close, false));
        let h = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
            Method::Head,
        );
        assert_eq!(h.body, BodyKind::Empty);
        let h = parse(b"HTTP/1.1 204 No Content\r\n\r\n", Method::Post);
        assert_eq!((h.body, h.keep_alive), (BodyKind::Empty, true));
        let h = parse(b"HTTP/1.1 100 Continue\r\n\r\n", Method::Post);
        assert!(h.is_interim());
        let h = parse(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
            Method::Post,
        );
        assert_eq!(
            h.header(
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
                "retry-after"
            ),
            Some(&b"2"[..])
        );
    }
}
