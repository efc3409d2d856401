//! The secret-shaped detectors: API keys and tokens found from their literal prefixes (one
//! aho-corasick searcher for all of them), JWTs, and PEM private key blocks. See `detect.rs`
//! for the table of what each matches.

use super::detect::{Found, MAX_JWT, MAX_TOKEN, Mask, is_alnum, is_b64url, is_token, span};

// ------------------------------------------------------------------------------ tokens

/// Literal prefixes of the token detectors, with the detector and the body that follows.
pub(super) const TOKEN_PREFIXES: &[(&[u8], u8)] = &[
    (b"sk-ant-", 8),
    (b"sk-", 7),
    (b"AKIA", 9),
    (b"ASIA", 9),
    (b"AGPA", 9),
    (b"AIDA", 9),
    (b"AROA", 9),
    (b"AIPA", 9),
    (b"ANPA", 9),
    (b"ANVA", 9),
    (b"ABIA", 9),
    (b"ACCA", 9),
    (b"ghp_", 10),
    (b"gho_", 10),
    (b"ghu_", 10),
    (b"ghs_", 10),
    (b"ghr_", 10),
    (b"github_pat_", 10),
    (b"eyJ", 11),
];

/// The prefix searcher (built once: its tables are shared by every guard).
fn prefixes() -> &'static aho_corasick::AhoCorasick {
    static AC: std::sync::OnceLock<aho_corasick::AhoCorasick> = std::sync::OnceLock::new();
    AC.get_or_init(|| {
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(TOKEN_PREFIXES.iter().map(|p| p.0))
            .unwrap_or_else(|_| unreachable!("literal prefixes always build"))
    })
}

pub(super) fn tokens(t: &[u8], mask: Mask, out: &mut Vec<Found>) {
    let mut last_end = 0;
    for m in prefixes().find_iter(t) {
        let s = m.start();
        if s < last_end || (s > 0 && (is_alnum(t[s - 1]) || t[s - 1] == b'_')) {
            continue;
        }
        let (prefix, det) = TOKEN_PREFIXES[m.pattern().as_usize()];
        if mask & (1 << det) == 0 {
            continue;
        }
        let body = s + prefix.len();
        let end = match det {
            7 | 8 => {
                let e = span(t, body, MAX_TOKEN, is_token);
                (e - body >= 20).then_some(e)
            }
            9 => {
                let e = span(t, body, 17, |b| {
                    b.is_ascii_uppercase() || b.is_ascii_digit()
                });
                (e - body == 16).then_some(e)
            }
            10 if prefix == b"github_pat_" => {
                let e = span(t, body, MAX_TOKEN, |b| is_alnum(b) || b == b'_');
                (e - body >= 22).then_some(e)
            }
            10 => {
                let e = span(t, body, 37, is_alnum);
                (e - body == 36).then_some(e)
            }
            _ => jwt_end(t, s),
        };
        if let Some(e) = end
            && (e == t.len() || !(is_alnum(t[e]) || t[e] == b'_'))
        {
            last_end = e;
            out.push(Found {
                at: s..e,
                detector: det,
            });
        }
    }
}

/// A JWT from `s` (at `eyJ`): three base64url segments, the first two JSON objects.
fn jwt_end(t: &[u8], s: usize) -> Option<usize> {
    let lim = (s + MAX_JWT).min(t.len());
    let h = span(t, s, lim - s, is_b64url);
    if h - s < 8 || t.get(h) != Some(&b'.') || !t[h + 1..].starts_with(b"eyJ") {
        return None;
    }
    let p = span(t, h + 1, lim - h - 1, is_b64url);
    if p - h - 1 < 8 || t.get(p) != Some(&b'.') {
        return None;
    }
    let e = span(t, p + 1, lim - p - 1, is_b64url);
    Some(e)
}

// --------------------------------------------------------------------------------- PEM

const PEM_BEGIN: &[u8] = b"-----BEGIN ";
const PEM_END: &[u8] = b"-----END ";
const PEM_TAIL: &[u8] = b"PRIVATE KEY-----";

/// The PEM private key header at `s` (`-----BEGIN … PRIVATE KEY-----`): where it ends.
fn pem_header(t: &[u8], s: usize, lead: &[u8]) -> Option<usize> {
    let rest = t.get(s + lead.len()..)?;
    let lim = rest.len().min(40);
    let k = memchr::memmem::find(&rest[..lim], PEM_TAIL)?;
    rest[..k]
        .iter()
        .all(|&b| b.is_ascii_uppercase() || b == b' ')
        .then_some(s + lead.len() + k + PEM_TAIL.len())
}

pub(super) fn pems(t: &[u8], out: &mut Vec<Found>) {
    let mut from = 0;
    while let Some(k) = memchr::memmem::find(&t[from..], PEM_BEGIN) {
        let s = from + k;
        let Some(body) = pem_header(t, s, PEM_BEGIN) else {
            from = s + 1;
            continue;
        };
        let e = pem_close(t, body).unwrap_or(t.len());
        out.push(Found {
            at: s..e,
            detector: 12,
        });
        from = e;
    }
}

/// Where the block whose body starts at `body` ends: past its `-----END … PRIVATE KEY-----`.
fn pem_close(t: &[u8], body: usize) -> Option<usize> {
    let mut from = body;
    while let Some(k) = memchr::memmem::find(&t[from..], PEM_END) {
        let s = from + k;
        if let Some(e) = pem_header(t, s, PEM_END) {
            return Some(e);
        }
        from = s + 1;
    }
    None
}

/// A PEM block that is open at the end of `t` (or a header still arriving).
pub(super) fn pem_pending(t: &[u8]) -> usize {
    let n = t.len();
    // An unclosed block.
    let mut from = 0;
    while let Some(k) = memchr::memmem::find(&t[from..], PEM_BEGIN) {
        let s = from + k;
        match pem_header(t, s, PEM_BEGIN) {
            Some(body) => match pem_close(t, body) {
                Some(e) => from = e,
                None => return s,
            },
            // A header not complete yet (or not a private key's).
            None if n - s < PEM_BEGIN.len() + 40 => return s,
            None => from = s + 1,
        }
    }
    // A header's first dashes at the very end.
    let tail = n.saturating_sub(PEM_BEGIN.len() - 1);
    (tail..n)
        .find(|&i| PEM_BEGIN.starts_with(&t[i..]))
        .unwrap_or(n)
}
