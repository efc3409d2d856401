//! Guardrails: detectors of personal data, secrets, denied phrases and prompt injection, run
//! in process over request text and answers — JSON and streamed — with three actions per
//! rule: `redact` (a typed placeholder, `[EMAIL_1]`, the same for the same value within a
//! request), `block` (the request or answer is refused, naming the rule, never the value),
//! `log` (counted only). A rule may also `restore`: placeholders the model writes back are
//! turned into the client's original values on the way out (the provider never sees them).
//!
//! - `detect`: the built-in detectors (anchored hand-written scanners, checksums).
//! - `patterns`: custom regexes (regex-automata), deny-lists (aho-corasick), injection.
//! - `body`: where text is in a request or answer body (JSON, any dialect), rewritten in place.
//! - `stream`: text arriving in fragments, scanned with a bounded hold-back.
//!
//! Sans-IO. Linear time on any input: every scanner is an automaton or a bounded expansion
//! around an anchor, and a stream re-reads only what it holds back.
//!
//! A [`Guard`] is the compiled union of the rules a key has (its own and its team's), built
//! once per config snapshot; a [`Session`] is one request's state: its placeholders, what
//! fired, and whether something blocked.

pub mod body;
pub mod detect;
pub mod patterns;
mod secrets;
pub mod stream;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use detect::{Found, Mask};
use patterns::{Custom, Phrases};

/// What a rule does when one of its detectors matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Redact,
    Block,
    Log,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Redact => "redact",
            Action::Block => "block",
            Action::Log => "log",
        }
    }
}

/// Which way the text goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client's request, before it goes upstream.
    Request = 0,
    /// The model's answer, before it reaches the client.
    Response = 1,
}

/// One rule as configured (names checked by the config; compiled with a key's other rules
/// into a [`Guard`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    /// Built-in detector names and groups (`detect::mask_of`).
    pub detectors: Vec<String>,
    /// Custom regexes: (id, pattern).
    pub patterns: Vec<(String, String)>,
    /// Deny-list phrases.
    pub deny: Vec<String>,
    pub whole_words: bool,
    /// Prompt-injection heuristics, with the score at which the rule fires.
    pub injection: Option<f32>,
    pub action: Action,
    pub request: bool,
    pub response: bool,
    pub restore: bool,
}

impl RuleSpec {
    /// A rule set that detects nothing yet, on both sides, deny-lists by whole words: set
    /// what it detects with struct update syntax.
    pub fn new(name: &str, action: Action) -> RuleSpec {
        RuleSpec {
            name: name.to_owned(),
            detectors: Vec::new(),
            patterns: Vec::new(),
            deny: Vec::new(),
            whole_words: true,
            injection: None,
            action,
            request: true,
            response: true,
            restore: false,
        }
    }
}

/// A rule in a compiled guard.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: Arc<str>,
    pub action: Action,
    pub sides: [bool; 2],
    pub restore: bool,
}

/// A detector in a compiled guard: its id (what audit records and metrics name), its
/// placeholder's type, and the rules it serves.
#[derive(Clone, Debug)]
pub struct Det {
    pub id: Arc<str>,
    label: u16,
    rules: Vec<u16>,
}

#[derive(Debug)]
enum Extra {
    Custom(Box<Custom>),
    Phrases(Phrases),
    /// The injection heuristics at this threshold.
    Injection(f32),
}

/// The rules a key has, compiled; see the module docs.
#[derive(Debug)]
pub struct Guard {
    pub rules: Vec<Rule>,
    /// Built-in detectors first (by bit index, all of them), then the configurable ones.
    pub dets: Vec<Det>,
    labels: Vec<Arc<str>>,
    extras: Vec<(u16, Extra, [bool; 2])>,
    /// Built-in detectors in force, per side.
    mask: [Mask; 2],
    /// Some rule applies to each side.
    sides: [bool; 2],
    restore: bool,
}

/// A match, by detector index in the guard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub at: Range<usize>,
    pub det: u16,
}

/// Something blocked: the rule and the detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub rule: u16,
    pub det: u16,
}

impl Guard {
    /// Compiles `rules` (a key's and its team's, in order). `Err` names the rule and why.
    pub fn compile(rules: &[RuleSpec]) -> Result<Guard, String> {
        let mut labels: Vec<Arc<str>> = Vec::new();
        let mut label = |l: &str| -> u16 {
            match labels.iter().position(|x| &**x == l) {
                Some(i) => i as u16,
                None => {
                    labels.push(l.into());
                    (labels.len() - 1) as u16
                }
            }
        };
        let mut dets: Vec<Det> = detect::NAMES
            .iter()
            .zip(detect::LABELS)
            .map(|(id, l)| Det {
                id: (*id).into(),
                label: label(l),
                rules: Vec::new(),
            })
            .collect();
        let mut g = Guard {
            rules: Vec::new(),
            dets: Vec::new(),
            labels: Vec::new(),
            extras: Vec::new(),
            mask: [0; 2],
            sides: [false; 2],
            restore: false,
        };
        for spec in rules {
            let r = g.rules.len() as u16;
            let sides = [spec.request, spec.response];
            let fail = |why: String| format!("guardrail `{}`: {why}", spec.name);
            for d in &spec.detectors {
                let m = detect::mask_of(d).ok_or_else(|| fail(format!("no detector `{d}`")))?;
                for (bit, det) in dets.iter_mut().enumerate().take(detect::NAMES.len()) {
                    if m & (1 << bit) != 0 && !det.rules.contains(&r) {
                        det.rules.push(r);
                    }
                }
                for (side, on) in sides.iter().enumerate() {
                    if *on {
                        g.mask[side] |= m;
                    }
                }
            }
            let upper = spec.name.to_ascii_uppercase().replace(['-', ' ', '.'], "_");
            let mut extra = |id: &str, lab: &str, e: Extra| {
                dets.push(Det {
                    id: id.into(),
                    label: label(lab),
                    rules: vec![r],
                });
                g.extras.push(((dets.len() - 1) as u16, e, sides));
            };
            for (id, p) in &spec.patterns {
                let c = Custom::new(p).map_err(|e| fail(format!("pattern `{id}`: {e}")))?;
                let lab = id.to_ascii_uppercase().replace(['-', ' ', '.'], "_");
                extra(id, &lab, Extra::Custom(Box::new(c)));
            }
            if !spec.deny.is_empty() {
                let p = Phrases::new(&spec.deny, spec.whole_words).map_err(fail)?;
                extra("deny", &upper, Extra::Phrases(p));
            }
            if let Some(t) = spec.injection {
                extra("injection", "INJECTION", Extra::Injection(t));
            }
            g.sides[0] |= spec.request;
            g.sides[1] |= spec.response;
            g.restore |= spec.restore && spec.request;
            g.rules.push(Rule {
                name: spec.name.as_str().into(),
                action: spec.action,
                sides,
                restore: spec.restore,
            });
        }
        g.dets = dets;
        g.labels = labels;
        Ok(g)
    }

    /// Some rule looks at `side`.
    pub fn on(&self, side: Side) -> bool {
        self.sides[side as usize]
    }

    /// Some rule restores placeholders in answers.
    pub fn restores(&self) -> bool {
        self.restore
    }

    /// The matches in `t` of the detectors in force on `side`, by start.
    pub fn scan(&self, side: Side, t: &[u8], found: &mut Vec<Found>, hits: &mut Vec<Hit>) {
        found.clear();
        hits.clear();
        let mask = self.mask[side as usize];
        if mask != 0 {
            detect::find(t, mask, found);
            hits.extend(found.drain(..).map(|f| Hit {
                at: f.at,
                det: u16::from(f.detector),
            }));
        }
        for (det, e, sides) in &self.extras {
            if !sides[side as usize] {
                continue;
            }
            let det = *det;
            let mut push = |s: usize, e: usize| hits.push(Hit { at: s..e, det });
            match e {
                Extra::Custom(c) => c.find(t, push),
                Extra::Phrases(p) => p.find(t, push),
                Extra::Injection(threshold) => {
                    if let (score, Some((s, e))) = patterns::injection_score(t)
                        && score >= *threshold
                    {
                        push(s, e);
                    }
                }
            }
        }
        if !self.extras.is_empty() {
            hits.sort_by_key(|h| (h.at.start, std::cmp::Reverse(h.at.end)));
        }
    }

    /// Where the earliest candidate in `t` begins that more text could still complete, for
    /// the detectors in force on `side` (`t.len()` when none).
    pub fn pending(&self, side: Side, t: &[u8]) -> usize {
        let mut p = detect::pending(t, self.mask[side as usize]);
        for (_, e, sides) in &self.extras {
            if sides[side as usize] {
                p = p.min(match e {
                    Extra::Custom(c) => c.pending(t),
                    Extra::Phrases(ph) => ph.pending(t),
                    // Whole texts only (requests): a stream is never scored.
                    Extra::Injection(_) => t.len(),
                });
            }
        }
        p
    }
}

/// How often one rule's detector fired in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub rule: u16,
    pub det: u16,
    pub side: Side,
    pub n: u32,
}

/// One request's guardrail state.
#[derive(Debug)]
pub struct Session {
    pub guard: Arc<Guard>,
    /// (label, value) → placeholder number.
    numbers: HashMap<(u16, Box<[u8]>), u32>,
    /// Placeholder (label, number) → value, for those a restoring rule made on the request.
    restorable: HashMap<(u16, u32), Box<[u8]>>,
    next: Vec<u32>,
    pub counts: Vec<Count>,
    pub blocked: Option<(Blocked, Side)>,
    found: Vec<Found>,
    hits: Vec<Hit>,
    tmp: Vec<u8>,
}

impl Session {
    pub fn new(guard: Arc<Guard>) -> Session {
        let labels = guard.labels.len();
        Session {
            guard,
            numbers: HashMap::new(),
            restorable: HashMap::new(),
            next: vec![0; labels],
            counts: Vec::new(),
            blocked: None,
            found: Vec::new(),
            hits: Vec::new(),
            tmp: Vec::new(),
        }
    }

    /// The rule and detector names of what blocked.
    pub fn blocked_names(&self) -> Option<(&str, &str, Side)> {
        let (b, side) = self.blocked?;
        Some((
            &self.guard.rules[b.rule as usize].name,
            &self.guard.dets[b.det as usize].id,
            side,
        ))
    }

    fn count(&mut self, rule: u16, det: u16, side: Side) {
        match self
            .counts
            .iter_mut()
            .find(|c| c.rule == rule && c.det == det && c.side == side)
        {
            Some(c) => c.n += 1,
            None => self.counts.push(Count {
                rule,
                det,
                side,
                n: 1,
            }),
        }
    }

    /// Redacts, blocks or counts the whole text `t` for `side` into `out` (restoring
    /// placeholders in answers). `Ok(true)` when `out` differs from `t`; `Err` when a rule
    /// blocked (also kept in `blocked`).
    pub fn apply(&mut self, side: Side, t: &[u8], out: &mut Vec<u8>) -> Result<bool, Blocked> {
        let guard = self.guard.clone();
        let mut found = std::mem::take(&mut self.found);
        let mut hits = std::mem::take(&mut self.hits);
        guard.scan(side, t, &mut found, &mut hits);
        let r = self.act(side, t, 0..t.len(), &hits, out);
        self.found = found;
        self.hits = hits;
        r
    }

    /// Applies `hits` (sorted, within `region` of `t`) to `t[region]`, appending to `out`.
    fn act(
        &mut self,
        side: Side,
        t: &[u8],
        region: Range<usize>,
        hits: &[Hit],
        out: &mut Vec<u8>,
    ) -> Result<bool, Blocked> {
        let guard = self.guard.clone();
        let restoring = side == Side::Response && !self.restorable.is_empty();
        let start = out.len();
        let mut changed = false;
        let mut at = region.start;
        let dst = if restoring {
            self.tmp.clear();
            &mut std::mem::take(&mut self.tmp)
        } else {
            &mut *out
        };
        let mut result = Ok(());
        for h in hits {
            if h.at.start < at || h.at.end > region.end {
                continue;
            }
            let det = &guard.dets[h.det as usize];
            let mut redact = false;
            for &r in &det.rules {
                let rule = &guard.rules[r as usize];
                if !rule.sides[side as usize] {
                    continue;
                }
                self.count(r, h.det, side);
                match rule.action {
                    Action::Block => {
                        let b = Blocked {
                            rule: r,
                            det: h.det,
                        };
                        self.blocked.get_or_insert((b, side));
                        result = Err(b);
                    }
                    Action::Redact => redact = true,
                    Action::Log => {}
                }
            }
            if redact {
                dst.extend_from_slice(&t[at..h.at.start]);
                let restore = side == Side::Request
                    && det.rules.iter().any(|&r| guard.rules[r as usize].restore);
                self.placeholder(det.label, &t[h.at.clone()], restore, dst);
                at = h.at.end;
                changed = true;
            }
        }
        dst.extend_from_slice(&t[at..region.end]);
        if restoring {
            let tmp = std::mem::take(dst);
            changed |= self.restore(&tmp, out);
            self.tmp = tmp;
        }
        if let Err(b) = result {
            out.truncate(start);
            return Err(b);
        }
        Ok(changed)
    }

    /// Writes the placeholder for `value` (the same one each time within the session).
    fn placeholder(&mut self, label: u16, value: &[u8], restore: bool, out: &mut Vec<u8>) {
        let key = (label, Box::<[u8]>::from(value));
        let n = match self.numbers.get(&key) {
            Some(&n) => n,
            None => {
                self.next[label as usize] += 1;
                let n = self.next[label as usize];
                self.numbers.insert(key, n);
                n
            }
        };
        if restore {
            self.restorable
                .entry((label, n))
                .or_insert_with(|| value.into());
        }
        out.push(b'[');
        out.extend_from_slice(self.guard.labels[label as usize].as_bytes());
        out.push(b'_');
        crate::json::uint(out, u64::from(n));
        out.push(b']');
    }

    /// Copies `t` to `out` with the restorable placeholders in it replaced by their values.
    /// True when any was.
    fn restore(&self, t: &[u8], out: &mut Vec<u8>) -> bool {
        let mut at = 0;
        let mut changed = false;
        for open in memchr::memchr_iter(b'[', t) {
            if open < at {
                continue;
            }
            if let Some((end, value)) = self.placeholder_at(t, open) {
                out.extend_from_slice(&t[at..open]);
                out.extend_from_slice(value);
                at = end;
                changed = true;
            }
        }
        out.extend_from_slice(&t[at..]);
        changed
    }

    /// A restorable placeholder at `open` (`[LABEL_n]`): where it ends and its value.
    fn placeholder_at(&self, t: &[u8], open: usize) -> Option<(usize, &[u8])> {
        let rest = &t[open + 1..t.len().min(open + 1 + MAX_PLACEHOLDER)];
        let close = memchr::memchr(b']', rest)?;
        let inner = &rest[..close];
        let us = memchr::memrchr(b'_', inner)?;
        let n: u32 = std::str::from_utf8(&inner[us + 1..]).ok()?.parse().ok()?;
        let label = self
            .guard
            .labels
            .iter()
            .position(|l| l.as_bytes() == &inner[..us])?;
        let value = self.restorable.get(&(label as u16, n))?;
        Some((open + 1 + close + 1, value))
    }

    /// Whether anything was made restorable (a stream must then watch for placeholders).
    pub fn restoring(&self) -> bool {
        !self.restorable.is_empty()
    }
}

/// Longest placeholder body looked at (`LABEL_n`).
const MAX_PLACEHOLDER: usize = 64;

/// The start of a placeholder that may still be arriving at the end of `t`.
fn placeholder_pending(t: &[u8]) -> usize {
    let n = t.len();
    let lo = n.saturating_sub(MAX_PLACEHOLDER + 1);
    let mut i = n;
    while i > lo {
        let b = t[i - 1];
        if b == b'[' {
            return i - 1;
        }
        if !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            break;
        }
        i -= 1;
    }
    n
}

#[cfg(test)]
mod tests;
