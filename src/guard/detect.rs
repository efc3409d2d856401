//! The built-in detectors: hand-written, anchored, linear-time scanners with checksums where
//! the format has one.
//!
//! Every detector finds its candidates from an *anchor* that plain prose rarely holds — a
//! digit, an `@`, a `:`, a literal prefix (`sk-`, `AKIA`, `eyJ`, `-----BEGIN`) — and expands
//! around it over a bounded class of bytes, so text without anchors is skipped at memory
//! speed and no input makes any detector do more than a bounded amount of work per byte.
//!
//! | id | what is matched | checked |
//! | --- | --- | --- |
//! | `email` | `local@domain.tld`: local `[A-Za-z0-9._%+-]{1,64}`, domain labels `[A-Za-z0-9-]` joined by dots, ≤ 253 bytes | a dot in the domain, a TLD of ≥ 2 letters |
//! | `phone` | E.164 `+` and 8–15 digits, with spaces, dashes, dots or a bracketed group; national forms of 10–11 digits with separators: `(415) 555-0100`, `415-555-0100`, `415.555.0100`, `020 7946 0958` | digit count; no letters or digits adjacent |
//! | `card` | 13–19 digits, optionally in groups split by single spaces or dashes | Luhn |
//! | `iban` | two capital letters, two check digits, 11–30 letters or digits, optionally in groups of four | ISO 13616 mod 97 = 1 |
//! | `ssn` | `ddd-dd-dddd` | area not 000, 666 or 9xx; group not 00; serial not 0000 |
//! | `ipv4` | four dotted decimal octets | each ≤ 255 |
//! | `ipv6` | hex groups and colons (`::` allowed, a dotted IPv4 tail allowed) | parses as IPv6, ≥ 2 colons and ≥ 4 hex digits, not inside a word (`std::vector` is not an address) |
//! | `openai_key` | `sk-` + ≥ 20 of `[A-Za-z0-9_-]` (`sk-proj-…`, `sk-svcacct-…`) | — |
//! | `anthropic_key` | `sk-ant-` + ≥ 20 of `[A-Za-z0-9_-]` | — |
//! | `aws_key` | `AKIA`/`ASIA`/`AGPA`/`AIDA`/`AROA`/`AIPA`/`ANPA`/`ANVA`/`ABIA`/`ACCA` + 16 of `[A-Z0-9]` | exact length |
//! | `github_token` | `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + 36 of `[A-Za-z0-9]`; `github_pat_` + ≥ 22 of `[A-Za-z0-9_]` | — |
//! | `jwt` | `eyJ…` `.` `eyJ…` `.` signature (base64url) | header and payload start as JSON objects do |
//! | `private_key` | a PEM block from `-----BEGIN … PRIVATE KEY-----` to its `-----END … PRIVATE KEY-----` (or to the end of the text when the end line never comes) | — |
//!
//! Whole-word rules: a match never starts right after, or ends right before, a letter or
//! digit (`ID123-45-6789` holds no SSN).
//!
//! Two functions per detector set: [`find`] lists the matches in a text (its end taken as
//! final), and [`pending`] says where the earliest candidate that more text could still turn
//! into a match begins — what a stream must hold back. Each bound on how far back that can
//! reach is a constant below; the longest, [`MAX_HOLD`], is the stated hold-back bound.

use std::ops::Range;

use super::secrets;

/// One detector's bit in a set of built-in detectors.
pub type Mask = u32;

/// The built-in detectors, by bit index. The order is the placeholder table's.
pub const NAMES: [&str; 13] = [
    "email",
    "phone",
    "card",
    "iban",
    "ssn",
    "ipv4",
    "ipv6",
    "openai_key",
    "anthropic_key",
    "aws_key",
    "github_token",
    "jwt",
    "private_key",
];

/// The placeholder's type name per built-in detector (`[EMAIL_1]`).
pub const LABELS: [&str; 13] = [
    "EMAIL",
    "PHONE",
    "CARD",
    "IBAN",
    "SSN",
    "IP",
    "IP",
    "SECRET",
    "SECRET",
    "SECRET",
    "SECRET",
    "SECRET",
    "PRIVATE_KEY",
];

pub const EMAIL: Mask = 1 << 0;
pub const PHONE: Mask = 1 << 1;
pub const CARD: Mask = 1 << 2;
pub const IBAN: Mask = 1 << 3;
pub const SSN: Mask = 1 << 4;
pub const IPV4: Mask = 1 << 5;
pub const IPV6: Mask = 1 << 6;
pub const OPENAI_KEY: Mask = 1 << 7;
pub const ANTHROPIC_KEY: Mask = 1 << 8;
pub const AWS_KEY: Mask = 1 << 9;
pub const GITHUB_TOKEN: Mask = 1 << 10;
pub const JWT: Mask = 1 << 11;
pub const PRIVATE_KEY: Mask = 1 << 12;
/// Every secret shape.
pub const SECRETS: Mask = OPENAI_KEY | ANTHROPIC_KEY | AWS_KEY | GITHUB_TOKEN | JWT | PRIVATE_KEY;
/// The detectors found from digits.
const NUMERIC: Mask = PHONE | CARD | IBAN | SSN | IPV4;

/// The bits a detector name in the config stands for (`ip` and `secrets` are groups).
pub fn mask_of(name: &str) -> Option<Mask> {
    match name {
        "ip" => Some(IPV4 | IPV6),
        "secrets" => Some(SECRETS),
        _ => NAMES.iter().position(|n| *n == name).map(|i| 1 << i),
    }
}

/// Longest email considered (RFC 5321: 64 + 1 + 253 would be 318; addresses past 254 bytes
/// are not deliverable).
pub const MAX_EMAIL: usize = 254;
/// Longest run of digits and separators a numeric detector looks at (an IBAN in groups: 34
/// characters and 8 spaces).
pub const MAX_NUMERIC: usize = 48;
/// Longest API key or token considered.
pub const MAX_TOKEN: usize = 256;
/// Longest JWT considered.
pub const MAX_JWT: usize = 4096;
/// Longest PEM block held back in a stream before it is cut (its start is redacted then, and
/// the rest of the block with it, whatever its length: see `stream.rs`).
pub const MAX_PEM: usize = 16 * 1024;
/// The most a stream ever holds back for the built-in detectors: a PEM private key block.
pub const MAX_HOLD: usize = MAX_PEM;

/// A match: where, and which detector (a bit index into [`NAMES`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub at: Range<usize>,
    pub detector: u8,
}

#[inline]
pub(super) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

#[inline]
fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

#[inline]
fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

#[inline]
pub(super) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
}

#[inline]
pub(super) fn is_b64url(b: u8) -> bool {
    is_token(b)
}

#[inline]
fn is_hex_or_colon(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Lists the matches of the detectors in `mask` in `t`, in order of start (overlaps are
/// left to the caller). The end of `t` is taken as the end of the text.
pub fn find(t: &[u8], mask: Mask, out: &mut Vec<Found>) {
    let from = out.len();
    if mask & EMAIL != 0 {
        emails(t, out);
    }
    if mask & NUMERIC != 0 {
        numerics(t, mask, out);
    }
    if mask & IPV6 != 0 {
        ipv6s(t, out);
    }
    if mask & (SECRETS & !PRIVATE_KEY) != 0 {
        secrets::tokens(t, mask, out);
    }
    if mask & PRIVATE_KEY != 0 {
        secrets::pems(t, out);
    }
    out[from..].sort_by_key(|f| (f.at.start, std::cmp::Reverse(f.at.end)));
}

/// Where, in `t`, the earliest candidate of a detector in `mask` begins that more text after
/// `t` could still complete or extend (`t.len()` when none).
pub fn pending(t: &[u8], mask: Mask) -> usize {
    let n = t.len();
    let mut p = n;
    if mask & (EMAIL | IPV6 | SECRETS & !PRIVATE_KEY) != 0 {
        // Emails, addresses and tokens are runs of word-ish bytes: the trailing run.
        let class = |b: u8| is_local(b) || b == b'@' || b == b':';
        let start = run_start(t, class);
        if start < n {
            let cap = n.saturating_sub(MAX_JWT.max(MAX_EMAIL + 64));
            let mut q = start.max(cap);
            if mask & EMAIL == 0 {
                // Without emails, only a run that could start an address or a token.
                q = word_pending(t, q, mask);
            }
            p = p.min(q);
        }
    }
    if mask & NUMERIC != 0 {
        p = p.min(numeric_pending(t));
    }
    if mask & PRIVATE_KEY != 0 {
        p = p.min(secrets::pem_pending(t));
    }
    p
}

/// Start of the trailing run of bytes in `class` (`t.len()` when the last byte is not).
fn run_start(t: &[u8], class: impl Fn(u8) -> bool) -> usize {
    let mut i = t.len();
    while i > 0 && class(t[i - 1]) {
        i -= 1;
    }
    i
}

/// Within the trailing run from `from`: the first position where an IPv6 address or a
/// secret token could be starting.
fn word_pending(t: &[u8], from: usize, mask: Mask) -> usize {
    let n = t.len();
    for i in from..n {
        if i > 0 && (is_alnum(t[i - 1]) || t[i - 1] == b'_') {
            continue;
        }
        let rest = &t[i..];
        if mask & IPV6 != 0 && rest.iter().all(|&b| is_hex_or_colon(b)) {
            return i;
        }
        if mask & SECRETS != 0 && secrets::TOKEN_PREFIXES.iter().any(|p| viable(rest, p.0)) {
            return i;
        }
    }
    n
}

/// `rest` could be the start of a token with prefix `p`: one is a prefix of the other.
fn viable(rest: &[u8], p: &[u8]) -> bool {
    let k = rest.len().min(p.len());
    rest[..k] == p[..k]
}

// ------------------------------------------------------------------------------- email

fn emails(t: &[u8], out: &mut Vec<Found>) {
    let mut last_end = 0;
    for at in memchr::memchr_iter(b'@', t) {
        if at < last_end {
            continue;
        }
        if let Some(r) = email_at(t, at) {
            last_end = r.end;
            out.push(Found { at: r, detector: 0 });
        }
    }
}

/// The email around the `@` at `at`, if there is one.
fn email_at(t: &[u8], at: usize) -> Option<Range<usize>> {
    let lo = at.saturating_sub(64);
    let mut s = at;
    while s > lo && is_local(t[s - 1]) {
        s -= 1;
    }
    // Not inside a longer run of local characters, and not starting with a dot.
    while s < at && t[s] == b'.' {
        s += 1;
    }
    if s == at || (s > 0 && is_local(t[s - 1])) {
        return None;
    }
    let hi = (at + 1 + 253).min(t.len());
    let mut e = at + 1;
    while e < hi && is_domain(t[e]) {
        e += 1;
    }
    // A sentence's full stop or a dash is not the domain's.
    while e > at + 1 && matches!(t[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &t[at + 1..e];
    let dot = memchr::memrchr(b'.', domain)?;
    let tld = &domain[dot + 1..];
    if tld.len() < 2
        || !tld.iter().all(u8::is_ascii_alphabetic)
        || domain.split(|&b| b == b'.').any(<[u8]>::is_empty)
        || domain[0] == b'-'
    {
        return None;
    }
    Some(s..e)
}

// ---------------------------------------------------------------------- numeric family

/// A run of digit groups joined by single separators, with where each group is.
struct Groups {
    /// Digit groups: (start, end) in the text.
    g: [(u32, u32); 12],
    n: usize,
}

fn numerics(t: &[u8], mask: Mask, out: &mut Vec<Found>) {
    let mut i = 0;
    while i < t.len() {
        let Some(start) = next_digit(t, i) else {
            return;
        };
        // Digits inside a word (`p99`, `v2`) start no number, except an IBAN's check digits.
        if start > 0 && (t[start - 1].is_ascii_lowercase() || t[start - 1] == b'_') {
            i = span(t, start, usize::MAX, |b| b.is_ascii_digit());
            continue;
        }
        let end = numeric_run(t, start, mask, out);
        i = end.max(start + 1);
    }
}

/// The first ASCII digit at or after `i`, eight bytes at a time (SWAR: per byte, the low
/// seven bits compared against `0` and past `9` by addition, which cannot carry across
/// bytes; a byte with its high bit set is no digit).
fn next_digit(t: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = t.get(i..i + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let w = u64::from_le_bytes(w);
        let low = w & !HIGH;
        let ge0 = low.wrapping_add(ONES * (0x80 - u64::from(b'0'))) & HIGH;
        let gt9 = low.wrapping_add(ONES * (0x80 - u64::from(b'9') - 1)) & HIGH;
        let digits = ge0 & !gt9 & !w & HIGH;
        if digits != 0 {
            return Some(i + (digits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    t[i.min(t.len())..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|d| i + d)
}

/// Separators allowed between digit groups.
#[inline]
fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')')
}

/// Reads the run of digit groups starting at the digit `start`, records what it holds, and
/// returns where the run ends.
fn numeric_run(t: &[u8], start: usize, mask: Mask, out: &mut Vec<Found>) -> usize {
    let mut gs = Groups {
        g: [(0, 0); 12],
        n: 0,
    };
    let mut i = start;
    let limit = (start + MAX_NUMERIC).min(t.len());
    loop {
        let gstart = i;
        while i < limit && t[i].is_ascii_digit() {
            i += 1;
        }
        gs.g[gs.n] = (gstart as u32, i as u32);
        gs.n += 1;
        if gs.n == gs.g.len() || i >= limit {
            break;
        }
        // One separator (or `) ` / ` (`) then a digit continues the run.
        let mut j = i;
        let mut seps = 0;
        while j < limit && is_sep(t[j]) && seps < 2 {
            j += 1;
            seps += 1;
        }
        if seps == 0 || j >= limit || !t[j].is_ascii_digit() {
            break;
        }
        if seps == 2 && !matches!(&t[i..j], b") " | b" (" | b") -" | b" -" | b"- ") {
            break;
        }
        i = j;
    }
    let run_end = gs.g[gs.n - 1].1 as usize;
    let digits: u32 = gs.g[..gs.n].iter().map(|&(a, b)| b - a).sum();
    let capitals = start >= 2 && t[start - 1].is_ascii_uppercase();
    // Nothing numeric is shorter than 8 digits (an E.164 number) but an IPv4 address, which
    // has four groups; an IBAN follows capitals.
    if digits < 8 && gs.n < 4 && !capitals {
        return run_end;
    }
    // An IBAN's check digits follow two capital letters.
    if mask & IBAN != 0
        && start >= 2
        && t[start - 1].is_ascii_uppercase()
        && t[start - 2].is_ascii_uppercase()
        && (start == 2 || !is_alnum(t[start - 3]))
        && let Some(r) = iban_at(t, start - 2)
    {
        out.push(Found { at: r, detector: 3 });
        return run_end;
    }
    // A '+' or '(' just before the first group belongs to a phone number.
    let lead = if start > 0 && matches!(t[start - 1], b'+' | b'(') {
        start - 1
    } else {
        start
    };
    if lead > 0 && (is_alnum(t[lead - 1]) || t[lead - 1] == b'_') {
        return run_end;
    }
    // The longest shape from each group on; after a match, continue past it.
    let mut a = 0;
    'groups: while a < gs.n {
        let s = if a == 0 { lead } else { gs.g[a].0 as usize };
        for b in (a..gs.n).rev() {
            let e = gs.g[b].1 as usize;
            if e < t.len() && (is_alnum(t[e]) || t[e] == b'_') {
                continue;
            }
            if let Some(det) = classify(t, s, &gs.g[a..=b], mask) {
                out.push(Found {
                    at: s..e,
                    detector: det,
                });
                a = b + 1;
                continue 'groups;
            }
        }
        a += 1;
    }
    run_end
}

/// Which numeric detector (if any) the groups `g` (starting at `s`, where a `+` or `(` may
/// lead) make up as a whole.
fn classify(t: &[u8], s: usize, g: &[(u32, u32)], mask: Mask) -> Option<u8> {
    let digits: usize = g.iter().map(|&(a, b)| (b - a) as usize).sum();
    let span = &t[s..g[g.len() - 1].1 as usize];
    let sep_between = |k: usize| &t[g[k].1 as usize..g[k + 1].0 as usize];
    let seps_all = |want: &[u8]| (0..g.len() - 1).all(|k| sep_between(k) == want);
    let len = |k: usize| (g[k].1 - g[k].0) as usize;
    // SSN: ddd-dd-dddd.
    if mask & SSN != 0
        && g.len() == 3
        && (len(0), len(1), len(2)) == (3, 2, 4)
        && seps_all(b"-")
        && t[s].is_ascii_digit()
    {
        let d = |k: usize| &t[g[k].0 as usize..g[k].1 as usize];
        let area = d(0);
        if area != b"000" && area != b"666" && area[0] != b'9' && d(1) != b"00" && d(2) != b"0000" {
            return Some(4);
        }
    }
    // IPv4: four dotted octets.
    if mask & IPV4 != 0
        && g.len() == 4
        && seps_all(b".")
        && t[s].is_ascii_digit()
        && g.iter().all(|&(a, b)| {
            let o = &t[a as usize..b as usize];
            o.len() <= 3
                && (o.len() == 1 || o[0] != b'0')
                && o.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0')) <= 255
        })
    {
        return Some(5);
    }
    // Card: 13–19 digits, one kind of separator (space or dash) or none; Luhn.
    if mask & CARD != 0
        && (13..=19).contains(&digits)
        && t[s].is_ascii_digit()
        && (g.len() == 1 || seps_all(b" ") || seps_all(b"-"))
        && luhn(span)
    {
        return Some(2);
    }
    if mask & PHONE != 0 && phone(t, s, g, digits) {
        return Some(1);
    }
    None
}

fn phone(t: &[u8], s: usize, g: &[(u32, u32)], digits: usize) -> bool {
    let end = g[g.len() - 1].1 as usize;
    let span = &t[s..end];
    // Brackets: at most one pair, balanced.
    let opens = span.iter().filter(|&&b| b == b'(').count();
    let closes = span.iter().filter(|&&b| b == b')').count();
    if opens != closes || opens > 1 {
        return false;
    }
    if t[s] == b'+' {
        // E.164: a country code that does not start with 0, 8 to 15 digits.
        return (8..=15).contains(&digits) && t[s + 1] != b'0';
    }
    // National forms need separators between groups (a bare run of digits is anything).
    if g.len() < 2 || !(10..=11).contains(&digits) {
        return false;
    }
    let len = |k: usize| (g[k].1 - g[k].0) as usize;
    // NANP: 3-3-4; others: a trunk 0 and groups of 2 to 5.
    if digits == 10 && g.len() == 3 && (len(0), len(1), len(2)) == (3, 3, 4) {
        return true;
    }
    t[g[0].0 as usize] == b'0' && (2..=5).contains(&len(0)) && (0..g.len()).all(|k| len(k) >= 2)
}

/// Luhn's check over the digits of `span` (separators skipped).
pub fn luhn(span: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in span.iter().rev() {
        if !b.is_ascii_digit() {
            continue;
        }
        let mut d = u32::from(b - b'0');
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum.is_multiple_of(10)
}

/// The IBAN starting at `s` (two capital letters), if its characters check out (mod 97).
fn iban_at(t: &[u8], s: usize) -> Option<Range<usize>> {
    let limit = (s + MAX_NUMERIC).min(t.len());
    let mut chars = 0usize;
    let mut i = s;
    let mut best = None;
    // Characters, with single spaces between groups.
    while i < limit && chars < 34 {
        let b = t[i];
        if b.is_ascii_uppercase() || b.is_ascii_digit() {
            chars += 1;
            i += 1;
            let at_boundary = i >= t.len() || !is_alnum(t[i]);
            if chars >= 15 && at_boundary && iban_valid(&t[s..i]) {
                best = Some(s..i);
            }
        } else if b == b' ' && i + 1 < limit && is_alnum(t[i + 1]) && t[i - 1] != b' ' {
            i += 1;
        } else {
            break;
        }
    }
    if chars < 4 || !t[s + 2].is_ascii_digit() || !t[s + 3].is_ascii_digit() {
        return None;
    }
    best
}

/// ISO 13616: move the first four characters to the end, letters as 10..35, mod 97 = 1.
pub fn iban_valid(s: &[u8]) -> bool {
    let chars: Vec<u8> = s.iter().copied().filter(|&b| b != b' ').collect();
    if chars.len() < 15 || chars.len() > 34 || !chars.iter().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let mut r = 0u32;
    for &b in chars[4..].iter().chain(&chars[..4]) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r == 1
}

/// The start of a numeric candidate at the end of `t` that more digits could extend (or
/// turn into a match).
fn numeric_pending(t: &[u8]) -> usize {
    let n = t.len();
    let lo = n.saturating_sub(MAX_NUMERIC);
    let mut i = n;
    // Trailing digits, separators, '+', and capital letters (an IBAN's country and groups).
    while i > lo
        && (t[i - 1].is_ascii_digit()
            || is_sep(t[i - 1])
            || t[i - 1] == b'+'
            || t[i - 1].is_ascii_uppercase())
    {
        i -= 1;
    }
    // Start at the first byte that can start a number: a digit, '+', '(', or a capital
    // letter at a word start.
    while i < n {
        let b = t[i];
        let word_start = i == 0 || !is_alnum(t[i - 1]);
        if b.is_ascii_digit() || b == b'+' || b == b'(' || (b.is_ascii_uppercase() && word_start) {
            break;
        }
        i += 1;
    }
    i
}

// ------------------------------------------------------------------------------- IPv6

fn ipv6s(t: &[u8], out: &mut Vec<Found>) {
    let mut last_end = 0;
    for at in memchr::memchr_iter(b':', t) {
        if at < last_end {
            continue;
        }
        let mut s = at;
        while s > 0 && is_hex_or_colon(t[s - 1]) && at - s < 45 {
            s -= 1;
        }
        let mut e = at + 1;
        while e < t.len() && is_hex_or_colon(t[e]) && e - s < 45 {
            e += 1;
        }
        // A trailing dot or lone colon is punctuation.
        while e > s && t[e - 1] == b'.' {
            e -= 1;
        }
        last_end = e;
        let word = |b: u8| is_alnum(b) || b == b'_';
        if (s > 0 && word(t[s - 1])) || (e < t.len() && word(t[e])) {
            continue;
        }
        let cand = &t[s..e];
        let colons = cand.iter().filter(|&&b| b == b':').count();
        let hex = cand.iter().filter(|b| b.is_ascii_hexdigit()).count();
        if colons >= 2
            && hex >= 4
            && std::str::from_utf8(cand)
                .ok()
                .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
                .is_some()
        {
            out.push(Found {
                at: s..e,
                detector: 6,
            });
        }
    }
}

/// End of the run of `class` bytes from `from`, at most `max` long.
pub(super) fn span(t: &[u8], from: usize, max: usize, class: impl Fn(u8) -> bool) -> usize {
    let lim = from.saturating_add(max).min(t.len());
    let mut e = from;
    while e < lim && class(t[e]) {
        e += 1;
    }
    e
}
