//! Guardrail settings: the `[[guardrails]]` rule sets, and the `guardrails = [...]` a key or a
//! team names. A key's rules are its team's then its own, compiled together into one
//! `guard::Guard` (shared by every key with the same list). The guard itself is
//! `crate::guard`; this is only what the TOML says, checked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Deserialize;

use super::validate::{Problems, suggest};
use crate::guard::{Action, Guard, RuleSpec, detect};

/// One `[[guardrails]]` rule set.
///
/// ```toml
/// [[guardrails]]
/// name = "pii"
/// detectors = ["email", "phone", "card", "iban", "ssn", "secrets"]
/// patterns = { employee_id = "EMP-[0-9]{6}" }
/// deny = ["project falcon"]
/// injection = { threshold = 1.0 }
/// action = "redact"              # or "block", "log"
/// where = ["request", "response"]
/// restore = false
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuardrail {
    pub name: String,
    /// Built-in detectors: `email`, `phone`, `card`, `iban`, `ssn`, `ipv4`, `ipv6`, `ip`
    /// (both), `openai_key`, `anthropic_key`, `aws_key`, `github_token`, `jwt`,
    /// `private_key`, `secrets` (all six).
    #[serde(default)]
    pub detectors: Vec<String>,
    /// Custom regexes by id (the id names them in audit records and is their placeholder's
    /// type). Each must have a longest match (≤ 1024 bytes).
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
    /// Words or phrases, matched ignoring case.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Deny-list entries match whole words only (`ban` is not in `banner`). Default true.
    pub whole_words: Option<bool>,
    /// The prompt-injection heuristics: `true` (threshold 1.0) or `{ threshold = … }`.
    pub injection: Option<RawInjection>,
    /// `redact` (default), `block` or `log`.
    pub action: Option<String>,
    /// `request`, `response`, or both (default).
    #[serde(rename = "where")]
    pub sides: Option<Vec<String>>,
    /// Placeholders in the answer are turned back into the request's values. Default false.
    pub restore: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawInjection {
    On(bool),
    Threshold { threshold: f32 },
}

/// Checks every rule set; each comes back compiled-ready (`None` when it has problems, which
/// are in `p`).
pub(super) fn rules(p: &mut Problems, raw: &[RawGuardrail]) -> Vec<Option<RuleSpec>> {
    let mut names: Vec<&str> = Vec::new();
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let at = format!("guardrails[{i}]");
            let before = p.0.len();
            if r.name.is_empty() {
                p.add(format!("{at}.name"), "a rule set needs a name");
            } else if names.contains(&r.name.as_str()) {
                p.add(
                    format!("{at}.name"),
                    format!("`{}` is defined twice", r.name),
                );
            }
            names.push(&r.name);
            let action = match r.action.as_deref().unwrap_or("redact") {
                "redact" => Action::Redact,
                "block" => Action::Block,
                "log" => Action::Log,
                other => {
                    p.add(
                        format!("{at}.action"),
                        format!("`{other}` is not an action: `redact`, `block` or `log`"),
                    );
                    Action::Log
                }
            };
            let sides = r
                .sides
                .clone()
                .unwrap_or_else(|| vec!["request".into(), "response".into()]);
            let (mut request, mut response) = (false, false);
            for s in &sides {
                match s.as_str() {
                    "request" => request = true,
                    "response" => response = true,
                    other => p.add(
                        format!("{at}.where"),
                        format!("`{other}` is not a side: `request` or `response`"),
                    ),
                }
            }
            if !request && !response {
                p.add(
                    format!("{at}.where"),
                    "name at least one of `request`, `response`",
                );
            }
            for d in &r.detectors {
                if detect::mask_of(d).is_none() {
                    let mut known: Vec<&str> = detect::NAMES.to_vec();
                    known.extend(["ip", "secrets"]);
                    p.add(
                        format!("{at}.detectors"),
                        format!("no detector `{d}`{}", suggest(d, &known)),
                    );
                }
            }
            let injection = match r.injection {
                None | Some(RawInjection::On(false)) => None,
                Some(RawInjection::On(true)) => Some(1.0),
                Some(RawInjection::Threshold { threshold }) => Some(threshold),
            };
            if injection.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
                p.add(
                    format!("{at}.injection.threshold"),
                    "must be a positive number",
                );
            }
            if injection.is_some() && response {
                p.add(
                    format!("{at}.where"),
                    "the injection heuristics read requests: set `where = [\"request\"]`",
                );
            }
            if r.detectors.is_empty()
                && r.patterns.is_empty()
                && r.deny.is_empty()
                && injection.is_none()
            {
                p.add(
                    at.clone(),
                    "the rule set detects nothing: give it `detectors`, `patterns`, `deny` or \
                     `injection`",
                );
            }
            let restore = r.restore.unwrap_or(false);
            if restore && (action != Action::Redact || !request) {
                p.add(
                    format!("{at}.restore"),
                    "only a rule that redacts requests has placeholders to restore",
                );
            }
            let spec = RuleSpec {
                name: r.name.clone(),
                detectors: r.detectors.clone(),
                patterns: r
                    .patterns
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                deny: r.deny.clone(),
                whole_words: r.whole_words.unwrap_or(true),
                injection,
                action,
                request,
                response,
                restore,
            };
            // Compile alone once, so a bad pattern is reported at its rule set.
            if p.0.len() == before
                && let Err(why) = Guard::compile(std::slice::from_ref(&spec))
            {
                p.add(at.clone(), why);
            }
            (p.0.len() == before).then_some(spec)
        })
        .collect()
}

/// Compiled guards, one per distinct list of rule sets.
#[derive(Debug, Default)]
pub(super) struct Guards(HashMap<Vec<usize>, Arc<Guard>>);

impl Guards {
    /// The guard for the rule sets a team (`team`) and a key (`own`) name, checking the names;
    /// `None` when they name none.
    pub(super) fn for_lists(
        &mut self,
        p: &mut Problems,
        specs: (&[RawGuardrail], &[Option<RuleSpec>]),
        team: Option<&[String]>,
        own: (&str, Option<&[String]>),
    ) -> Option<Arc<Guard>> {
        let (raw, compiled) = specs;
        let mut ids: Vec<usize> = Vec::new();
        for (path, list) in [("", team), (own.0, own.1)] {
            for name in list.unwrap_or_default() {
                match raw.iter().position(|r| &r.name == name) {
                    Some(i) if !ids.contains(&i) => ids.push(i),
                    Some(_) => {}
                    // A team's list is checked where the team is.
                    None if path.is_empty() => {}
                    None => {
                        let known: Vec<&str> = raw.iter().map(|r| r.name.as_str()).collect();
                        p.add(
                            format!("{path}.guardrails"),
                            format!(
                                "no `[[guardrails]]` named `{name}`{}",
                                suggest(name, &known)
                            ),
                        );
                    }
                }
            }
        }
        if ids.is_empty() {
            return None;
        }
        if let Some(g) = self.0.get(&ids) {
            return Some(g.clone());
        }
        let specs: Option<Vec<RuleSpec>> = ids.iter().map(|&i| compiled[i].clone()).collect();
        let guard = Arc::new(Guard::compile(&specs?).ok()?);
        self.0.insert(ids, guard.clone());
        Some(guard)
    }

    /// Checks the names a team lists.
    pub(super) fn check_team(p: &mut Problems, path: &str, raw: &[RawGuardrail], list: &[String]) {
        for name in list {
            if !raw.iter().any(|r| &r.name == name) {
                let known: Vec<&str> = raw.iter().map(|r| r.name.as_str()).collect();
                p.add(
                    format!("{path}.guardrails"),
                    format!(
                        "no `[[guardrails]]` named `{name}`{}",
                        suggest(name, &known)
                    ),
                );
            }
        }
    }
}
