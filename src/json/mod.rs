//! JSON by hand: writers that append straight into a reused buffer (the mock's bodies, the
//! audit log) and, in [`scan`], readers that find values without building a DOM.

pub mod scan;

/// simd-json's working memory and a scratch copy to parse (simd-json rewrites its input), reused
/// for every parse on one worker.
pub struct Scratch {
    pub bytes: Vec<u8>,
    pub buffers: simd_json::Buffers,
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
        }
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
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
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
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Appends a decimal integer.
#[inline]
pub fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_round_trip() {
        let s = "a\"b\\c\nd\u{1}é";
        let mut out = Vec::new();
        super::string(&mut out, s.as_bytes());
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, s);
    }
}
