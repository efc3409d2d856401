//! JSON by hand: writers that append straight into a reused buffer (the mock's bodies, the
//! audit log) and, in [`scan`], readers that find values without building a DOM.

pub mod scan;

/// simd-json's working memory and a scratch copy to parse (simd-json rewrites its input), reused
/// for every parse on one worker.
pub struct Scratch {
    pub bytes: Vec<u8>,
    pub buffers: simd_json::Buffers,
    /// A tape's allocation, kept between parses ([`Scratch::take_tape`]).
    tape: simd_json::Tape<'static>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("capacity", &self.bytes.capacity())
            .finish_non_exhaustive()
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new(1024)
    }
}

impl Scratch {
    pub fn new(bytes: usize) -> Self {
        Scratch {
            bytes: Vec::with_capacity(bytes),
            buffers: simd_json::Buffers::new(bytes),
            tape: simd_json::Tape::null(),
        }
    }

    /// Parses a copy of `src` into a tape (simd-json's flat form: no map per object), reusing
    /// the tape's allocation from the last parse; give it back with [`Scratch::keep_tape`].
    pub fn tape<'s>(&'s mut self, src: &[u8]) -> simd_json::Result<simd_json::Tape<'s>> {
        self.bytes.clear();
        self.bytes.extend_from_slice(src);
        let mut tape = std::mem::replace(&mut self.tape, simd_json::Tape::null()).reset();
        simd_json::fill_tape(&mut self.bytes, &mut self.buffers, &mut tape)?;
        Ok(tape)
    }

    /// [`Scratch::tape`], with the address of the scratch copy's first byte: simd-json
    /// unescapes strings in place, so a string's offset from it is where its raw contents
    /// start in `src`.
    pub fn tape_at<'s>(
        &'s mut self,
        src: &[u8],
    ) -> simd_json::Result<(simd_json::Tape<'s>, usize)> {
        self.bytes.clear();
        self.bytes.extend_from_slice(src);
        let base = self.bytes.as_ptr() as usize;
        let mut tape = std::mem::replace(&mut self.tape, simd_json::Tape::null()).reset();
        simd_json::fill_tape(&mut self.bytes, &mut self.buffers, &mut tape)?;
        Ok((tape, base))
    }

    /// Keeps a tape's allocation for the next [`Scratch::tape`] (`tape.reset()` empties it).
    pub fn keep_tape(&mut self, tape: simd_json::Tape<'static>) {
        self.tape = tape;
    }

    /// Parses a copy of `src` into `T` (simd-json, serde); `None` when it is not valid JSON of
    /// that shape.
    pub fn parse<T: serde::de::DeserializeOwned>(&mut self, src: &[u8]) -> Option<T> {
        self.bytes.clear();
        self.bytes.extend_from_slice(src);
        simd_json::serde::from_slice_with_buffers(&mut self.bytes, &mut self.buffers).ok()
    }

    /// Parses the JSON value that starts at `src[at]` (found by [`scan`]) into `T`.
    pub fn parse_value_at<T: serde::de::DeserializeOwned>(
        &mut self,
        src: &[u8],
        at: usize,
    ) -> Option<T> {
        let end = scan::value_end(src, at)?;
        self.parse(&src[at..end])
    }
}

/// Appends `s` as a JSON string literal (with quotes), escaping per RFC 8259 §7.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    escaped(out, s);
    out.push(b'"');
}

/// Appends `s` escaped as JSON string contents (no quotes). Runs of bytes that need no
/// escape — nearly all of them — are found eight at a time and copied whole.
pub fn escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        if let Some(chunk) = s.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = s[i];
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&s[start..]);
}

/// Whether the raw JSON string contents `raw` (escapes kept) are valid as they stand: UTF-8,
/// no control character, no unescaped quote, every escape one of JSON's, surrogates in pairs.
/// A provider's string that is not gets [`repair_string_content`] before it is copied into
/// an answer (found by the `translate_stream` fuzz target).
pub fn is_string_content(raw: &[u8]) -> bool {
    let hex = |at: usize| -> Option<u32> {
        let h = raw.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let mut i = 0;
    while i < raw.len() {
        if let Some(chunk) = raw.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        match raw[i] {
            0..=0x1f | b'"' => return false,
            b'\\' => match raw.get(i + 1) {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => match hex(i + 2) {
                    Some(0xD800..=0xDBFF)
                        if raw.get(i + 6..i + 8) == Some(b"\\u")
                            && hex(i + 8).is_some_and(|lo| (0xDC00..0xE000).contains(&lo)) =>
                    {
                        i += 12
                    }
                    Some(0xD800..=0xDFFF) | None => return false,
                    Some(_) => i += 6,
                },
                _ => return false,
            },
            _ => i += 1,
        }
    }
    std::str::from_utf8(raw).is_ok()
}

/// Appends `raw` (string contents that failed [`is_string_content`]) as valid contents: its
/// text read as well as it can be (bad escapes kept as text, bad UTF-8 as U+FFFD), escaped.
pub fn repair_string_content(raw: &[u8], out: &mut Vec<u8>) {
    let mut text = Vec::with_capacity(raw.len());
    unescape(raw, &mut text);
    escaped(out, String::from_utf8_lossy(&text).as_bytes());
}

/// Whether any of the eight bytes in `w` is a control character, `"` or `\\` (SWAR: a byte
/// below 0x20, or one that XORs to zero with the quote or the backslash).
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    (below(w, 0x20) | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))) != 0
}

/// Appends the text the raw JSON string contents `raw` stand for. Malformed escapes are kept
/// as they are (the provider refuses the body; the guard still scans what it can read).
pub fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let Some(k) = memchr::memchr(b'\\', &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            return;
        };
        out.extend_from_slice(&raw[i..i + k]);
        i += k;
        let Some(&e) = raw.get(i + 1) else {
            out.push(b'\\');
            return;
        };
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
            continue;
        }
        let hex = |at: usize| -> Option<u32> {
            let h = raw.get(at..at + 4)?;
            u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
        };
        match (e, hex(i + 2)) {
            (b'u', Some(hi)) => {
                let mut cp = hi;
                let mut used = 6;
                if (0xD800..0xDC00).contains(&hi)
                    && raw.get(i + 6..i + 8) == Some(b"\\u")
                    && let Some(lo) = hex(i + 8)
                    && (0xDC00..0xE000).contains(&lo)
                {
                    cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    used = 12;
                }
                let c = char::from_u32(cp).unwrap_or('\u{FFFD}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += used;
            }
            _ => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
}

/// Appends a decimal integer.
#[inline]
pub fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `translate_stream` fuzz target's findings: a provider's string with bad UTF-8, a raw
    /// control character, a bad escape or a lone surrogate was copied into the client's event
    /// as it came. Now each is recognised and repaired into valid contents.
    #[test]
    fn string_contents_are_checked_and_repaired() {
        for good in [
            &b"plain"[..],
            b"esc \\\" \\n \\u00e9 \\ud83d\\ude00",
            "h\u{e9}llo".as_bytes(),
            b"",
        ] {
            assert!(is_string_content(good), "{}", String::from_utf8_lossy(good));
        }
        for bad in [
            &b"re\x9bp_00"[..],
            b"\x00\x18 control",
            b"resp\\0050",
            b"lone \\ud800 surrogate",
            b"trailing \\",
            b"quote \" inside",
            b"short \\u12",
        ] {
            assert!(!is_string_content(bad), "{}", String::from_utf8_lossy(bad));
            let mut fixed = Vec::new();
            repair_string_content(bad, &mut fixed);
            assert!(
                is_string_content(&fixed),
                "{}",
                String::from_utf8_lossy(&fixed)
            );
            let mut quoted = b"\"".to_vec();
            quoted.extend_from_slice(&fixed);
            quoted.push(b'"');
            assert!(std::str::from_utf8(&quoted).is_ok());
        }
    }

    #[test]
    fn escapes_are_found_at_every_offset() {
        // Each escapable byte at each position of a string longer than one word.
        for special in [b'"', b'\\', b'\n', 0x01, 0x1f] {
            for at in 0..20 {
                let mut s = vec![b'a'; 20];
                s[at] = special;
                s.push(0xc3);
                s.push(0xa9);
                let mut out = Vec::new();
                super::string(&mut out, &s);
                let back: String = serde_json::from_slice(&out).unwrap();
                assert_eq!(back.as_bytes(), &s[..], "{special:#x} at {at}");
            }
        }
        // Bytes that only look close to the special ones pass through.
        let mut out = Vec::new();
        super::string(&mut out, b"!#[]]^_ ~\x7f0123456789");
        assert_eq!(out, b"\"!#[]]^_ ~\x7f0123456789\"");
    }

    #[test]
    fn escapes_round_trip() {
        let s = "a\"b\\c\nd\u{1}é";
        let mut out = Vec::new();
        super::string(&mut out, s.as_bytes());
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, s);
    }
}
