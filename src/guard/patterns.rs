//! The configurable detectors: custom regular expressions, deny-lists of words and phrases,
//! and the prompt-injection heuristics. All run in linear time: regexes through
//! regex-automata's meta engine with its backtracker turned off (a lazy DFA or a PikeVM,
//! never a backtracking search), phrases through aho-corasick.

use regex_automata::dfa::{Automaton, dense};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

/// Longest match a custom regex may have (a stream holds back at most this much for it).
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Bound on a custom regex's anchored DFA (what a stream uses to tell whether a tail could
/// still become a match).
const DFA_BYTES: usize = 4 << 20;

/// A custom regex: the searcher, and an anchored DFA for streams.
#[derive(Debug)]
pub struct Custom {
    re: Regex,
    anchored: dense::DFA<Vec<u32>>,
    max_len: usize,
}

impl Custom {
    /// Compiles `pattern`; `Err` says why it cannot be used (syntax, unbounded, too large).
    pub fn new(pattern: &str) -> Result<Custom, String> {
        // ASCII classes and word boundaries unless the pattern asks for Unicode with `(?u)`:
        // a Unicode `\b` cannot run on the lazy DFA.
        let cfg = syntax::Config::new().unicode(false).utf8(false);
        let hir = syntax::parse_with(pattern, &cfg).map_err(|e| e.to_string())?;
        let max_len = hir.properties().maximum_len().ok_or_else(|| {
            "the pattern has no longest match (a `*`, `+` or `{n,}`): bound it, e.g. \
             `{1,64}`, so a stream knows how much to hold back"
                .to_owned()
        })?;
        if max_len > MAX_PATTERN_BYTES {
            return Err(format!(
                "the pattern's longest match is {max_len} bytes; at most {MAX_PATTERN_BYTES}"
            ));
        }
        if hir.properties().minimum_len() == Some(0) {
            return Err("the pattern matches the empty string".to_owned());
        }
        let re = Regex::builder()
            .syntax(cfg)
            .configure(Regex::config().backtrack(false).utf8_empty(false))
            .build(pattern)
            .map_err(|e| e.to_string())?;
        let anchored = dense::Builder::new()
            .syntax(cfg)
            .configure(
                dense::Config::new()
                    .start_kind(regex_automata::dfa::StartKind::Anchored)
                    .dfa_size_limit(Some(DFA_BYTES))
                    .determinize_size_limit(Some(DFA_BYTES)),
            )
            .build(pattern)
            .map_err(|e| format!("the pattern is too complex to scan streams with ({e})"))?;
        Ok(Custom {
            re,
            anchored,
            max_len,
        })
    }

    /// The matches in `t`.
    pub fn find(&self, t: &[u8], mut each: impl FnMut(usize, usize)) {
        for m in self.re.find_iter(t) {
            each(m.start(), m.end());
        }
    }

    /// The earliest position whose tail could still grow into a match (`t.len()` if none).
    pub fn pending(&self, t: &[u8]) -> usize {
        let n = t.len();
        'starts: for j in n.saturating_sub(self.max_len.saturating_sub(1))..n {
            let input = Input::new(t).range(j..).anchored(Anchored::Yes);
            let Ok(mut s) = self.anchored.start_state_forward(&input) else {
                continue;
            };
            for &b in &t[j..] {
                s = self.anchored.next_state(s, b);
                if self.anchored.is_dead_state(s) || self.anchored.is_quit_state(s) {
                    continue 'starts;
                }
            }
            return j;
        }
        n
    }
}

/// A deny-list: words or phrases, matched ignoring ASCII case, optionally as whole words.
#[derive(Debug)]
pub struct Phrases {
    ac: aho_corasick::AhoCorasick,
    /// The phrases lowercased and sorted, for streams' prefix checks.
    sorted: Vec<Vec<u8>>,
    longest: usize,
    whole_words: bool,
}

impl Phrases {
    pub fn new(list: &[String], whole_words: bool) -> Result<Phrases, String> {
        if list.iter().any(|p| p.trim().is_empty()) {
            return Err("a deny-list entry is empty".to_owned());
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(list)
            .map_err(|e| e.to_string())?;
        let mut sorted: Vec<Vec<u8>> = list.iter().map(|p| p.to_ascii_lowercase().into()).collect();
        sorted.sort();
        let longest = sorted.iter().map(Vec::len).max().unwrap_or(0);
        Ok(Phrases {
            ac,
            sorted,
            longest,
            whole_words,
        })
    }

    fn word(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'_'
    }

    /// The matches in `t`: leftmost, longest, not overlapping.
    pub fn find(&self, t: &[u8], mut each: impl FnMut(usize, usize)) {
        let mut all: Vec<(usize, usize)> = self
            .ac
            .find_overlapping_iter(t)
            .map(|m| (m.start(), m.end()))
            .filter(|&(s, e)| {
                !self.whole_words
                    || !((s > 0 && Self::word(t[s - 1])) || (e < t.len() && Self::word(t[e])))
            })
            .collect();
        all.sort_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
        let mut last = 0;
        for (s, e) in all {
            if s >= last {
                each(s, e);
                last = e;
            }
        }
    }

    /// The earliest position whose tail is the start of a phrase (`t.len()` if none).
    pub fn pending(&self, t: &[u8]) -> usize {
        let n = t.len();
        for j in n.saturating_sub(self.longest.saturating_sub(1))..n {
            if self.whole_words && j > 0 && Self::word(t[j - 1]) {
                continue;
            }
            let tail = &t[j..];
            let lower = |p: &[u8]| {
                p.iter()
                    .copied()
                    .cmp(tail.iter().map(u8::to_ascii_lowercase))
            };
            let i = self.sorted.partition_point(|p| lower(p).is_lt());
            if self.sorted.get(i).is_some_and(|p| {
                p.len() >= tail.len() && p[..tail.len()].eq_ignore_ascii_case(tail)
            }) {
                return j;
            }
        }
        n
    }
}

/// The prompt-injection heuristics: phrasings that try to override the system prompt or the
/// model's rules, each with a weight; a text scores the sum of the weights of the distinct
/// phrasings it holds, and the rule fires at its threshold. Caught: the common English
/// override phrasings ("ignore all previous instructions", "disregard the above"), requests
/// to reveal the system prompt, "developer mode"/"DAN" role-play openers, fake role markers
/// (`<|im_start|>system`, `[SYSTEM]`, `### system`). Not caught: paraphrases outside these
/// patterns, other languages, encoded payloads (base64, leetspeak), instructions hidden in
/// images, and indirect injection that reads as ordinary content — a phrase list is a
/// tripwire, not a classifier.
pub const INJECTION: &[(&str, f32)] = &[
    (
        r"(?i)\b(ignore|disregard|forget|override|skip)\s+(all\s+|any\s+|the\s+|your\s+|of\s+)*(previous|prior|above|earlier|preceding|former|initial|system)\s+(instructions?|prompts?|rules|directions|directives|guidelines|context|messages)",
        1.0,
    ),
    (
        r"(?i)\b(reveal|print|show|repeat|output|leak|display|tell\s+me)\s+(me\s+)?(your|the)\s+(system|hidden|initial|original|secret)\s+(prompt|instructions|message)",
        1.0,
    ),
    (
        r"(?i)\b(do\s+anything\s+now|DAN\s+mode|jailbreak(ed)?)\b",
        1.0,
    ),
    (
        r"(?i)\b(developer|god|unrestricted|debug|evil|admin)\s+mode\b",
        0.6,
    ),
    (
        r"(?i)\b(pretend|act\s+as\s+if|imagine)\s+(that\s+)?you\s+(have\s+no|are\s+not\s+bound\s+by|don'?t\s+have|are\s+free\s+of)\s+(restrictions|rules|guidelines|filters|limits|policies)",
        0.8,
    ),
    (
        r"(?i)(<\|im_start\|>\s*system|\[\s*system\s*\]|###\s*system\b|\bnew\s+instructions\s*:|\bsystem\s+override\b)",
        0.6,
    ),
    (
        r"(?i)\bwithout\s+(any\s+)?(restrictions|filters|censorship|limitations|guardrails)\b",
        0.4,
    ),
    (
        r"(?i)\bfrom\s+now\s+on,?\s+you\s+(will|must|are|shall)\b",
        0.4,
    ),
];

/// The injection heuristics, compiled once into one multi-pattern searcher.
pub fn injection() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        // ASCII word boundaries and classes: a Unicode `\b` would keep the search off the
        // lazy DFA.
        Regex::builder()
            .syntax(syntax::Config::new().unicode(false).utf8(false))
            .configure(Regex::config().backtrack(false))
            .build_many(&INJECTION.iter().map(|p| p.0).collect::<Vec<_>>())
            .unwrap_or_else(|e| unreachable!("the injection patterns compile: {e:?}"))
    })
}

/// A text's injection score: the summed weights of the distinct phrasings it holds, with
/// where the first one is.
pub fn injection_score(t: &[u8]) -> (f32, Option<(usize, usize)>) {
    let mut seen = 0u32;
    let mut score = 0.0;
    let mut first = None;
    for m in injection().find_iter(t) {
        let p = m.pattern().as_usize();
        if seen & (1 << p) == 0 {
            seen |= 1 << p;
            score += INJECTION[p].1;
        }
        first.get_or_insert((m.start(), m.end()));
    }
    (score, first)
}
