//! Reading JSON without a DOM: spans of values, the members of one object, and a key visitor.
//!
//! The gateway forwards request bodies byte for byte and taps provider responses as they
//! stream past, so it needs *where* a few values are, not a tree of everything. These helpers
//! work on raw bytes with `memchr`:
//!
//! - [`value_end`] skips one value (strings honour `\` escapes; containers count depth
//!   outside strings).
//! - [`Members`] walks the top-level members of an object — exact, whatever is nested in them
//!   (a `stream_options` key inside a tool's JSON schema is not the request's).
//! - [`visit_keys`] finds every `"key":` in a document in one pass over `":` pairs. A `"` is
//!   only unescaped in JSON where a string starts or ends, so `":` with an unescaped quote is
//!   always the end of an object key, at whatever depth. Provider events have known shapes, so
//!   the dialects use this to read the few keys they need from each event cheaply.
//!
//! None of these validate the document; callers that need validity parse with simd-json.

use std::ops::Range;

/// Index of the first byte at or after `i` that is not JSON whitespace.
#[inline]
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// `b[i]` opens a string: the index just past its closing quote.
#[inline]
pub fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[k] == b'"' {
            return Some(k + 1);
        }
        j = k + 2;
    }
}

/// `b[i]` starts a value: the index just past it. `None` when the value is cut off or
/// malformed in a way that makes its end unknowable.
pub fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let n = b[i..]
                .iter()
                .position(|&c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                .unwrap_or(b.len() - i);
            (n > 0).then_some(i + n)
        }
    }
}

/// The raw contents (between the quotes, escapes untouched) of the string at `b[i]`, if a
/// string starts there.
#[inline]
pub fn string_at(b: &[u8], i: usize) -> Option<&[u8]> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let end = string_end(b, i)?;
    Some(&b[i + 1..end - 1])
}

/// One member of an object: the key's raw contents and the value's span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub key: Range<usize>,
    pub value: Range<usize>,
}

/// The top-level members of the object that `b` holds (surrounding whitespace allowed).
/// Yields `Err(())` once, and then stops, at the first byte that is not a well-formed member.
#[derive(Debug)]
pub struct Members<'a> {
    b: &'a [u8],
    pos: usize,
    state: MemberState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    Start,
    Next,
    Done,
}

impl<'a> Members<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Members {
            b,
            pos: 0,
            state: MemberState::Start,
        }
    }

    /// Where the object's members start (just past `{`), once iteration has begun.
    pub fn open(b: &[u8]) -> Option<usize> {
        let i = skip_ws(b, 0);
        (b.get(i) == Some(&b'{')).then_some(i + 1)
    }

    fn step(&mut self) -> Result<Option<Member>, ()> {
        let b = self.b;
        let mut i = match self.state {
            MemberState::Done => return Ok(None),
            MemberState::Start => {
                let i = Self::open(b).ok_or(())?;
                let j = skip_ws(b, i);
                if b.get(j) == Some(&b'}') {
                    return Ok(None);
                }
                j
            }
            MemberState::Next => {
                let j = skip_ws(b, self.pos);
                match b.get(j) {
                    Some(b',') => skip_ws(b, j + 1),
                    Some(b'}') => return Ok(None),
                    _ => return Err(()),
                }
            }
        };
        if b.get(i) != Some(&b'"') {
            return Err(());
        }
        let key_end = string_end(b, i).ok_or(())?;
        let key = i + 1..key_end - 1;
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return Err(());
        }
        i = skip_ws(b, i + 1);
        let end = value_end(b, i).ok_or(())?;
        self.pos = end;
        self.state = MemberState::Next;
        Ok(Some(Member { key, value: i..end }))
    }
}

impl Iterator for Members<'_> {
    type Item = Result<Member, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.state = MemberState::Done;
                None
            }
            Err(()) => {
                self.state = MemberState::Done;
                Some(Err(()))
            }
        }
    }
}

/// The value span of the top-level member `key` of the object in `b`.
pub fn member(b: &[u8], key: &[u8]) -> Option<Range<usize>> {
    Members::new(b)
        .map_while(Result::ok)
        .find(|m| &b[m.key.clone()] == key)
        .map(|m| m.value)
}

/// Calls `f(key, value_start)` for every `"key":` in `b`, in order, at any depth; `value_start`
/// is the first non-whitespace byte after the colon. `f` returns false to stop.
///
/// A `"` is only unescaped in JSON where a string starts or ends, so an unescaped quote
/// followed by `:` ends an object key, at whatever depth, and the quote before it starts that
/// key. (A string *value* that starts with `:` looks the same, but then the "key" found is
/// the structural text before it, such as `:` — never a name a dialect looks for.) A quote
/// preceded by an odd run of backslashes is escaped. JSON allows whitespace between a key
/// and its colon; no provider sends it, and such keys are not seen.
///
/// Provider events are short and dense with quotes, so the search runs 64 bytes at a time on
/// bit masks of their quotes and colons ([`QuoteColon`]), not a `memchr` call per quote.
pub fn visit_keys(b: &[u8], mut f: impl FnMut(&[u8], usize) -> bool) {
    let mut at = 0;
    while at < b.len() {
        let m = QuoteColon::of(&b[at..]);
        // The block's last byte ends a key when the next block starts with the colon.
        let colon_after = u64::from(b.get(at + 64) == Some(&b':')) << 63;
        let mut ends = m.quotes & ((m.colons >> 1) | colon_after);
        while ends != 0 {
            let bit = ends.trailing_zeros();
            ends &= ends - 1;
            let end = at + bit as usize;
            if b[end - usize::from(end > 0)] == b'\\' && escaped(b, end) {
                continue;
            }
            let before = m.quotes & ((1u64 << bit) - 1);
            let open = if before != 0 {
                at + 63 - before.leading_zeros() as usize
            } else {
                match memchr::memrchr(b'"', &b[..at]) {
                    Some(o) => o,
                    None => continue,
                }
            };
            if escaped(b, open) {
                // The key itself contains an escaped quote: not one the dialects look for.
                continue;
            }
            if !f(&b[open + 1..end], skip_ws(b, end + 2)) {
                return;
            }
        }
        at += 64;
    }
}

/// Where the quotes and colons are in (up to) 64 bytes: bit `i` of each mask for byte `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct QuoteColon {
    quotes: u64,
    colons: u64,
}

impl QuoteColon {
    /// The masks of the first 64 bytes of `b` (all of `b` when shorter: a short tail is
    /// padded with spaces, which are neither).
    #[inline]
    fn of(b: &[u8]) -> Self {
        match b.first_chunk::<64>() {
            Some(block) => Self::block(block),
            None => {
                let mut block = [b' '; 64];
                block[..b.len()].copy_from_slice(b);
                Self::block(&block)
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline]
    #[allow(
        unsafe_code,
        reason = "a #[target_feature] function; its feature is part of the target's baseline"
    )]
    fn block(block: &[u8; 64]) -> Self {
        // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
        unsafe { Self::block_sse2(block) }
    }

    /// Sixteen bytes per compare.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    fn block_sse2(block: &[u8; 64]) -> Self {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8};
        let (mut quotes, mut colons) = (0u64, 0u64);
        let (lanes, _) = block.as_chunks::<16>();
        for (k, lane) in lanes.iter().enumerate() {
            let x = u128::from_le_bytes(*lane);
            let v = _mm_set_epi64x((x >> 64) as i64, x as i64);
            let bits = |c: u8| {
                u64::from(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8))) as u16)
            };
            quotes |= bits(b'"') << (16 * k);
            colons |= bits(b':') << (16 * k);
        }
        QuoteColon { quotes, colons }
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline]
    fn block(block: &[u8; 64]) -> Self {
        Self::bytes(block)
    }

    /// One byte at a time: other architectures.
    #[cfg_attr(target_arch = "x86_64", cfg(test))]
    fn bytes(b: &[u8]) -> Self {
        let (mut quotes, mut colons) = (0u64, 0u64);
        for (i, &c) in b.iter().take(64).enumerate() {
            quotes |= u64::from(c == b'"') << i;
            colons |= u64::from(c == b':') << i;
        }
        QuoteColon { quotes, colons }
    }
}

/// True when the quote at `b[i]` is escaped: preceded by an odd run of backslashes.
#[inline]
fn escaped(b: &[u8], i: usize) -> bool {
    b[..i].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1
}

/// True when the value at `b[i]` is an empty array (`[]`, whitespace allowed inside).
#[inline]
pub fn is_empty_array(b: &[u8], i: usize) -> bool {
    b.get(i) == Some(&b'[') && b.get(skip_ws(b, i + 1)) == Some(&b']')
}

/// The unsigned integer at `b[i]`, if one is there.
pub fn uint_at(b: &[u8], i: usize) -> Option<u64> {
    let digits = b
        .get(i..)?
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in &b[i..i + digits] {
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

/// The elements of the JSON array at the start of `b` (after whitespace), as byte ranges;
/// stops at the first malformed element.
pub fn elements(b: &[u8]) -> impl Iterator<Item = Range<usize>> + '_ {
    let open = skip_ws(b, 0);
    let mut i = if b.get(open) == Some(&b'[') {
        open + 1
    } else {
        b.len()
    };
    let mut first = true;
    std::iter::from_fn(move || {
        i = skip_ws(b, i);
        if !std::mem::take(&mut first) {
            if b.get(i) != Some(&b',') {
                i = b.len();
                return None;
            }
            i = skip_ws(b, i + 1);
        }
        if matches!(b.get(i), None | Some(b']')) {
            i = b.len();
            return None;
        }
        let end = value_end(b, i)?;
        let at = i;
        i = end;
        Some(at..end)
    })
}

/// Appends the JSON value `raw` without insignificant whitespace (strings copied as they are).
pub fn minify_into(out: &mut Vec<u8>, raw: &[u8]) {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'"' => {
                let end = string_end(raw, i).unwrap_or(raw.len());
                out.extend_from_slice(&raw[i..end]);
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_and_minify() {
        let b = br#" [ 1, {"a": [2, 3]} ,"x, y" ,[] ] "#;
        let got: Vec<&[u8]> = elements(b).map(|r| &b[r]).collect();
        assert_eq!(
            got,
            vec![&b"1"[..], br#"{"a": [2, 3]}"#, br#""x, y""#, b"[]"]
        );
        assert_eq!(elements(b"[]").count(), 0);
        assert_eq!(elements(b"{}").count(), 0);
        assert_eq!(
            elements(b"[1 2]").count(),
            1,
            "stops at a malformed element"
        );
        let mut out = Vec::new();
        minify_into(
            &mut out,
            br#"{ "a b" : [1, 2],
  "c":"x \" y" }"#,
        );
        assert_eq!(out, br#"{"a b":[1,2],"c":"x \" y"}"#);
    }

    #[test]
    fn values_end_where_they_should() {
        let b = br#"{"a":"x\"}","b":[1,{"c":"]"}],"d":12.5e3 ,"e":null}"#;
        let ms: Vec<_> = Members::new(b).collect::<Result<_, _>>().unwrap();
        let got: Vec<(&[u8], &[u8])> = ms
            .iter()
            .map(|m| (&b[m.key.clone()], &b[m.value.clone()]))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"a"[..], &br#""x\"}""#[..]),
                (b"b", br#"[1,{"c":"]"}]"#),
                (b"d", b"12.5e3"),
                (b"e", b"null"),
            ]
        );
        assert_eq!(member(b, b"d"), Some(34..40));
        assert_eq!(member(b, b"zz"), None);
    }

    #[test]
    fn members_are_top_level_only_and_malformed_input_stops() {
        let b = br#" { "tools" : [{"stream_options":1}], "stream_options" : {"x":true} } "#;
        let v = member(b, b"stream_options").unwrap();
        assert_eq!(&b[v], br#"{"x":true}"#);
        assert_eq!(Members::new(b"{}").count(), 0);
        let bad: Vec<_> = Members::new(br#"{"a":1 "b":2}"#).collect();
        assert_eq!(bad.len(), 2);
        assert!(bad[1].is_err());
        assert!(Members::new(b"[1]").next().unwrap().is_err());
        assert!(
            Members::new(br#"{"a":"unterminated}"#)
                .next()
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn visitor_sees_keys_not_string_contents() {
        let b = br#"{"id":"x","choices":[{"delta":{"content":"say \"usage\": no"}}],"usage":{"prompt_tokens":3}}"#;
        let mut keys = Vec::new();
        visit_keys(b, |k, v| {
            keys.push((String::from_utf8_lossy(k).into_owned(), b[v]));
            true
        });
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "id",
                "choices",
                "delta",
                "content",
                "usage",
                "prompt_tokens"
            ]
        );
        assert_eq!(keys[4].1, b'{');
        // Python-style spacing after the colon.
        let mut seen = None;
        visit_keys(br#"{"finish_reason": "stop"}"#, |k, v| {
            seen = Some((k.to_vec(), v));
            false
        });
        assert_eq!(seen, Some((b"finish_reason".to_vec(), 18)));
    }

    #[test]
    fn block_masks_match_byte_masks() {
        let mut b = [0u8; 64];
        for seed in 0..200u32 {
            for (i, c) in b.iter_mut().enumerate() {
                let r = (seed.wrapping_mul(2_654_435_761) ^ (i as u32).wrapping_mul(40_503)) >> 7;
                *c = [b'"', b':', b'\\', b'a', 0xa2, 0xba, b' '][(r % 7) as usize];
            }
            assert_eq!(QuoteColon::block(&b), QuoteColon::bytes(&b), "seed {seed}");
        }
    }

    /// The plain definition: every `":` whose quote is unescaped, back to the quote before it.
    fn keys_by_definition(b: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let mut out = Vec::new();
        for end in 0..b.len() {
            if b[end] != b'"' || b.get(end + 1) != Some(&b':') || escaped(b, end) {
                continue;
            }
            let Some(open) = b[..end].iter().rposition(|&c| c == b'"') else {
                continue;
            };
            if !escaped(b, open) {
                out.push((b[open + 1..end].to_vec(), skip_ws(b, end + 2)));
            }
        }
        out
    }

    #[test]
    fn visitor_agrees_with_the_definition_across_block_edges() {
        let atoms: [&[u8]; 9] = [
            br#""k":"#,
            br#""v""#,
            b",",
            br#""a\"b""#,
            br#""x\\":"#,
            b"{",
            b" ",
            br#"":""#,
            b"aaaaaaa",
        ];
        for seed in 0..3000u32 {
            let mut b = Vec::new();
            let mut r = seed.wrapping_mul(2_654_435_761).max(1);
            while b.len() < 20 + (seed as usize % 180) {
                r ^= r << 13;
                r ^= r >> 17;
                r ^= r << 5;
                b.extend_from_slice(atoms[(r % 9) as usize]);
            }
            let mut seen = Vec::new();
            visit_keys(&b, |k, v| {
                seen.push((k.to_vec(), v));
                true
            });
            assert_eq!(
                seen,
                keys_by_definition(&b),
                "{}",
                String::from_utf8_lossy(&b)
            );
        }
    }

    #[test]
    fn visitor_skips_escaped_quotes_and_backslash_runs() {
        let b = br#"{"a":"x\\","b\"c":1,"d":"\\\":no","e":{"f":2}}"#;
        let mut keys = Vec::new();
        visit_keys(b, |k, v| {
            keys.push((String::from_utf8_lossy(k).into_owned(), b[v]));
            true
        });
        // `b\"c` holds an escaped quote: not a key any dialect looks for, and not seen.
        let want = [("a", b'"'), ("d", b'"'), ("e", b'{'), ("f", b'2')];
        let want: Vec<(String, u8)> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(keys, want);
    }

    #[test]
    fn small_readers() {
        assert!(is_empty_array(b"[ ]", 0));
        assert!(!is_empty_array(b"[1]", 0));
        assert_eq!(uint_at(b"123,", 0), Some(123));
        assert_eq!(uint_at(b"null", 0), None);
        assert_eq!(string_at(br#""a\"b""#, 0), Some(&br#"a\"b"#[..]));
        assert_eq!(string_at(b"1", 0), None);
    }
}
