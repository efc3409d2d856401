//! The text of the mock's answers: its own words, or the text a request asked for
//! (`x-mock-say`), cut into tokens; and a tool call's arguments made from it.

use crate::json;

/// Words the mock "generates"; token k is `WORDS[k % len]`, with a leading space after the
/// first token.
const WORDS: &[&str] = &[
    "The", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "a", "gateway",
    "counts", "every", "token", "it", "relays", "and", "bills", "exactly", "what", "was", "used",
];

/// Where an answer's text comes from: the mock's own words (each token one word, or `bytes`
/// long), or text the request gave (`x-mock-say`), cut the same way — by words (each after
/// the first with its leading space) or every `bytes` bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tokens<'a> {
    pub bytes: Option<u32>,
    pub say: Option<&'a [u8]>,
}

impl Tokens<'_> {
    /// The words of the mock's own text, each `bytes` long when set.
    pub fn words(bytes: Option<u32>) -> Tokens<'static> {
        Tokens { bytes, say: None }
    }

    /// The pieces `say` is cut into (`None`: the mock's own words, as many as asked).
    pub fn count(&self) -> Option<u32> {
        let say = self.say?;
        let n = match self.bytes {
            Some(b) => say.len().div_ceil(b as usize),
            None => self.pieces(say).count(),
        };
        Some(u32::try_from(n.max(1)).unwrap_or(u32::MAX))
    }

    fn pieces<'s>(&self, say: &'s [u8]) -> impl Iterator<Item = &'s [u8]> {
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= say.len() {
                return None;
            }
            let from = at;
            at += 1;
            while at < say.len() && say[at] != b' ' {
                at += 1;
            }
            Some(&say[from..at])
        })
    }
}

/// Appends the text of token `k`.
pub fn token_text(out: &mut Vec<u8>, k: u32, tokens: Tokens<'_>) {
    if let Some(say) = tokens.say {
        let piece = match tokens.bytes {
            Some(b) => {
                let from = (k as usize * b as usize).min(say.len());
                &say[from..(from + b as usize).min(say.len())]
            }
            None => tokens.pieces(say).nth(k as usize).unwrap_or_default(),
        };
        json::escaped(out, piece);
        return;
    }
    let word = WORDS[k as usize % WORDS.len()].as_bytes();
    match tokens.bytes {
        None => {
            if k > 0 {
                out.push(b' ');
            }
            out.extend_from_slice(word);
        }
        Some(n) => {
            let start = out.len();
            out.push(b' ');
            while out.len() - start < n as usize {
                let need = n as usize - (out.len() - start);
                out.extend_from_slice(&word[..word.len().min(need)]);
            }
        }
    }
}

/// The full text of a plan's `n` tokens.
pub fn full_text(out: &mut Vec<u8>, n: u32, token_bytes: Tokens<'_>) {
    for k in 0..n {
        token_text(out, k, token_bytes);
    }
}

/// Fragment `k` of the tool-call arguments. Concatenated, the fragments form the JSON
/// object `{"input":"<full text>"}`.
pub fn tool_fragment(out: &mut Vec<u8>, k: u32, n: u32, token_bytes: Tokens<'_>) {
    if k == 0 {
        out.extend_from_slice(b"{\"input\":\"");
    }
    token_text(out, k, token_bytes);
    if k + 1 == n {
        out.extend_from_slice(b"\"}");
    }
}

pub fn tool_arguments(out: &mut Vec<u8>, n: u32, token_bytes: Tokens<'_>) {
    for k in 0..n {
        tool_fragment(out, k, n, token_bytes);
    }
}
