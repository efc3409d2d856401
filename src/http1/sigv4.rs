//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for a request the gateway sends, sans-IO: the
//! canonical request, the string to sign, the derived key, and the header lines to add.
//! Tested against AWS's published test suite (`tests/fixtures/sigv4/`).
//!
//! The path is canonicalised as AWS's non-S3 services do: each byte outside RFC 3986's
//! unreserved set and `/` percent-encoded *again*, so a path already encoded on the wire
//! (Bedrock's `…-v1%3A0`) is signed as `…-v1%253A0`, as the AWS SDKs sign it.
//! The signing key is derived per request (four HMACs, well under a microsecond); the
//! payload is hashed whole.

use ring::{digest, hmac};

use super::percent;

/// Long-term or temporary AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// STS temporary credentials' token, sent and signed as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What is signed: the request line's parts, the headers to sign (besides `x-amz-date` and
/// the session token, which [`sign`] adds), and the body.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a [u8],
    /// The path as sent (percent-encoded once).
    pub path: &'a [u8],
    /// The query string as sent, without `?` (empty for none).
    pub query: &'a [u8],
    /// `(name, value)`; names in any case.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    pub payload: &'a [u8],
}

/// Where and when: `region`, `service` (`bedrock`), and the time as `YYYYMMDDTHHMMSSZ`.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub amz_date: &'a [u8; 16],
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub fn amz_date(unix_secs: u64) -> [u8; 16] {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    let (y, m, d) = crate::calendar::civil_from_days(days);
    let mut out = [0u8; 16];
    let mut put = |at: usize, v: u64, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y.max(0) as u64, 4);
    put(4, u64::from(m), 2);
    put(6, u64::from(d), 2);
    put(9, secs / 3600, 2);
    put(11, secs / 60 % 60, 2);
    put(13, secs % 60, 2);
    out[8] = b'T';
    out[15] = b'Z';
    out
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// The query's `name=value` pairs, each side encoded, sorted.
fn canonical_query(out: &mut Vec<u8>, query: &[u8]) {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &b""[..]),
            };
            let (mut ek, mut ev) = (Vec::new(), Vec::new());
            // A malformed escape is kept as it is.
            let decoded = |x: &[u8]| percent::decode(x).unwrap_or_else(|| x.to_vec());
            percent::encode(&mut ek, &decoded(k), false);
            percent::encode(&mut ev, &decoded(v), false);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

/// A header value with leading and trailing space removed and inner runs of spaces as one.
fn trimmed(out: &mut Vec<u8>, v: &[u8]) {
    let mut space = false;
    for &b in v.trim_ascii() {
        if b == b' ' || b == b'\t' {
            space = true;
            continue;
        }
        if space {
            out.push(b' ');
            space = false;
        }
        out.push(b);
    }
}

/// The canonical request and the signed-header list.
fn canonical_request(r: &Request<'_>, extra: &[(&[u8], &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let mut c = Vec::with_capacity(256 + r.path.len());
    c.extend_from_slice(r.method);
    c.push(b'\n');
    if r.path.is_empty() {
        c.push(b'/');
    } else {
        percent::encode(&mut c, r.path, true);
    }
    c.push(b'\n');
    canonical_query(&mut c, r.query);
    c.push(b'\n');
    let mut headers: Vec<(Vec<u8>, &[u8])> = r
        .headers
        .iter()
        .chain(extra)
        .map(|(n, v)| (n.to_ascii_lowercase(), *v))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut signed = Vec::with_capacity(64);
    let mut i = 0;
    while i < headers.len() {
        // Repeated names: one line, values joined with commas.
        let name = &headers[i].0;
        c.extend_from_slice(name);
        c.push(b':');
        let mut first = true;
        while i < headers.len() && headers[i].0 == *name {
            if !std::mem::take(&mut first) {
                c.push(b',');
            }
            trimmed(&mut c, headers[i].1);
            i += 1;
        }
        c.push(b'\n');
        if !signed.is_empty() {
            signed.push(b';');
        }
        signed.extend_from_slice(name);
    }
    c.push(b'\n');
    c.extend_from_slice(&signed);
    c.push(b'\n');
    hex(&mut c, digest::digest(&digest::SHA256, r.payload).as_ref());
    (c, signed)
}

/// The string to sign for a canonical request.
fn string_to_sign(canonical: &[u8], s: &Scope<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"AWS4-HMAC-SHA256\n");
    out.extend_from_slice(s.amz_date);
    out.push(b'\n');
    credential_scope(&mut out, s);
    out.push(b'\n');
    hex(
        &mut out,
        digest::digest(&digest::SHA256, canonical).as_ref(),
    );
    out
}

fn credential_scope(out: &mut Vec<u8>, s: &Scope<'_>) {
    out.extend_from_slice(&s.amz_date[..8]);
    out.push(b'/');
    out.extend_from_slice(s.region.as_bytes());
    out.push(b'/');
    out.extend_from_slice(s.service.as_bytes());
    out.extend_from_slice(b"/aws4_request");
}

fn mac(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// The `Authorization` value for `r`, and the extra headers it signed (`x-amz-date`, the
/// session token) which the caller must send: `(authorization, [(name, value)])`.
pub fn authorization(c: &Credentials, s: &Scope<'_>, r: &Request<'_>) -> Vec<u8> {
    let token = c.session_token.as_deref().map(str::as_bytes);
    let mut extra: Vec<(&[u8], &[u8])> = vec![(b"x-amz-date", s.amz_date)];
    if let Some(t) = token {
        extra.push((b"x-amz-security-token", t));
    }
    let (canonical, signed) = canonical_request(r, &extra);
    let to_sign = string_to_sign(&canonical, s);
    let mut secret = b"AWS4".to_vec();
    secret.extend_from_slice(c.secret_access_key.as_bytes());
    let k = mac(&secret, &s.amz_date[..8]);
    let k = mac(k.as_ref(), s.region.as_bytes());
    let k = mac(k.as_ref(), s.service.as_bytes());
    let k = mac(k.as_ref(), b"aws4_request");
    let sig = mac(k.as_ref(), &to_sign);
    let mut out = Vec::with_capacity(200);
    out.extend_from_slice(b"AWS4-HMAC-SHA256 Credential=");
    out.extend_from_slice(c.access_key_id.as_bytes());
    out.push(b'/');
    credential_scope(&mut out, s);
    out.extend_from_slice(b", SignedHeaders=");
    out.extend_from_slice(&signed);
    out.extend_from_slice(b", Signature=");
    hex(&mut out, sig.as_ref());
    out
}

/// Writes the header lines a signed request adds: `x-amz-date`, the session token, and
/// `authorization`.
pub fn write_headers(out: &mut Vec<u8>, c: &Credentials, s: &Scope<'_>, r: &Request<'_>) {
    let auth = authorization(c, s, r);
    super::write::header(out, "x-amz-date", s.amz_date);
    if let Some(t) = &c.session_token {
        super::write::header(out, "x-amz-security-token", t.as_bytes());
    }
    super::write::header(out, "authorization", &auth);
}

/// For tests and the mock: the canonical request and string to sign, as the test suite
/// spells them (`.creq`, `.sts`).
pub fn debug_strings(c: &Credentials, s: &Scope<'_>, r: &Request<'_>) -> (String, String) {
    let token = c.session_token.as_deref().map(str::as_bytes);
    let mut extra: Vec<(&[u8], &[u8])> = vec![(b"x-amz-date", s.amz_date)];
    if let Some(t) = token {
        extra.push((b"x-amz-security-token", t));
    }
    let (canonical, _) = canonical_request(r, &extra);
    let sts = string_to_sign(&canonical, s);
    (
        String::from_utf8_lossy(&canonical).into_owned(),
        String::from_utf8_lossy(&sts).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        assert_eq!(&amz_date(1_440_938_160), b"20150830T123600Z");
        assert_eq!(&amz_date(0), b"19700101T000000Z");
    }

    #[test]
    fn the_path_is_encoded_again_as_the_sdks_sign_it() {
        let mut c = Vec::new();
        percent::encode(&mut c, b"/model/anthropic.claude-v2%3A1/converse", true);
        assert_eq!(c, b"/model/anthropic.claude-v2%253A1/converse");
    }
}
