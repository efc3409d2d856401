//! Percent-encoding (RFC 3986 §2.1) for paths and query parts the gateway writes or reads:
//! Bedrock model ids in a path (`…-v1:0` is sent as `…-v1%3A0`) and SigV4's canonical forms.

/// Appends `s` with every byte outside RFC 3986's unreserved set (and `/`, when `keep_slash`)
/// written as `%XX`, upper-case hex.
pub fn encode(out: &mut Vec<u8>, s: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// `s` with its `%XX` escapes decoded; `None` when an escape is malformed.
pub fn decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let h = s.get(i + 1).copied().and_then(hex)?;
            let l = s.get(i + 2).copied().and_then(hex)?;
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_escapes() {
        let mut e = Vec::new();
        encode(&mut e, b"a.b-c_d~e:f/g h", false);
        assert_eq!(e, b"a.b-c_d~e%3Af%2Fg%20h");
        let mut k = Vec::new();
        encode(&mut k, b"/x:y", true);
        assert_eq!(k, b"/x%3Ay");
        assert_eq!(decode(&e).as_deref(), Some(&b"a.b-c_d~e:f/g h"[..]));
        assert_eq!(decode(b"bad%3"), None);
        assert_eq!(decode(b"bad%zz"), None);
    }
}
