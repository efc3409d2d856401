//! Every stream capture in the corpus through a guarded relay: with the default PII and
//! secrets set guarding answers, each capture — read whole, or split into two reads at every
//! byte offset — comes out exactly as the same stream relayed through the hub without
//! guardrails (the captures hold no personal data: nothing may change, nothing may be lost or
//! reordered by the hold-back), and the same is true with an email and a card number spliced
//! into the text, which then come out redacted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::sync::Arc;

use support::{capture, manifest_json};
use tollgate::dialect::Dialect;
use tollgate::dialect::norm::Event;
use tollgate::guard::{Action, Guard, RuleSpec, Session};
use tollgate::json::Scratch;
use tollgate::stream::Meter;
use tollgate::translate::Pair;

fn guard() -> Arc<Guard> {
    Arc::new(
        Guard::compile(&[RuleSpec {
            detectors: ["email", "phone", "card", "iban", "ssn", "ip", "secrets"]
                .map(String::from)
                .to_vec(),
            ..RuleSpec::new("pii", Action::Redact)
        }])
        .unwrap(),
    )
}

fn dialect(path: &str) -> Dialect {
    match path.split('/').next().unwrap() {
        "anthropic" => Dialect::Anthropic,
        "gemini" => Dialect::Gemini,
        "bedrock" => Dialect::Bedrock,
        _ if path.contains("responses") => Dialect::Responses,
        _ => Dialect::OpenAi,
    }
}

/// The client's bytes for `pieces` of a stream in dialect `d`, through the hub to the same
/// dialect, guarded or not.
fn relay(d: Dialect, pieces: &[&[u8]], guarded: Option<&Arc<Guard>>) -> Vec<u8> {
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    m.guard = guarded.map(|g| Box::new(Session::new(g.clone())));
    m.start(d, true, false, false);
    m.translate(Pair::same(d), true, false, 1_700_000_000);
    if guarded.is_some() {
        m.guard_answer();
    }
    let mut out = Vec::new();
    for p in pieces {
        m.pass(p, &mut out, &mut scratch);
    }
    m.end(Some(&mut out), &mut scratch);
    out
}

/// What a client reads from a stream in dialect `d`: its text, each tool call's arguments
/// (both concatenated, wherever the events split them), and every other event in order.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    text: String,
    args: Vec<String>,
    others: Vec<String>,
}

fn read(d: Dialect, bytes: &[u8]) -> Read {
    let mut r = Read {
        text: String::new(),
        args: Vec::new(),
        others: Vec::new(),
    };
    tollgate::translate::stream::read_stream(d, bytes, |e| match e {
        Event::Text(t) => r.text.push_str(&String::from_utf8_lossy(t)),
        Event::ToolArgs { index, raw } => {
            let i = index as usize;
            if r.args.len() <= i {
                r.args.resize(i + 1, String::new());
            }
            r.args[i].push_str(&String::from_utf8_lossy(raw));
        }
        other => r.others.push(format!("{other:?}")),
    })
    .unwrap_or_else(|e| panic!("not a valid stream: {e:?}"));
    r
}

fn stream_paths() -> Vec<String> {
    manifest_json()["file"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "stream")
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_guarded_relay_changes_nothing_in_streams_without_personal_data_at_every_split() {
    let g = guard();
    let mut checked = 0;
    for path in stream_paths() {
        let d = dialect(&path);
        let bytes = capture(&path);
        let plain = read(d, &relay(d, &[&bytes], None));
        assert!(!plain.others.is_empty(), "{path}");
        assert_eq!(
            read(d, &relay(d, &[&bytes], Some(&g))),
            plain,
            "{path}: whole"
        );
        for cut in 0..=bytes.len() {
            let got = read(d, &relay(d, &[&bytes[..cut], &bytes[cut..]], Some(&g)));
            assert_eq!(got, plain, "{path}: split at {cut}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} captures");
}

#[test]
fn values_spliced_into_captured_text_are_redacted_at_every_split() {
    let g = guard();
    let mut checked = 0;
    // SSE captures whose text deltas can take a spliced value (JSON string contents).
    for path in stream_paths().iter().filter(|p| p.ends_with(".sse")) {
        let d = dialect(path);
        let bytes = capture(path);
        let text = String::from_utf8(bytes.clone()).unwrap();
        // The first text delta's value gets an email and a card number in front.
        let keys: &[&str] = match d {
            Dialect::OpenAi => &["\"content\":\"", "\"content\": \""],
            Dialect::Anthropic => &["\"text\":\"", "\"text\": \""],
            Dialect::Gemini => &["\"text\":\"", "\"text\": \""],
            Dialect::Responses => &["\"delta\":\"", "\"delta\": \""],
            Dialect::Bedrock => continue,
        };
        // The first text delta that is not empty.
        let found = keys
            .iter()
            .filter_map(|k| {
                text.match_indices(k)
                    .map(|(i, _)| i + k.len())
                    .find(|&at| !text[at..].starts_with('"'))
            })
            .min();
        let Some(at) = found else { continue };
        let spliced = format!(
            "{}mail jo.doe@corp.example.com, card 4111 1111 1111 1111. {}",
            &text[..at],
            &text[at..]
        );
        let b = spliced.as_bytes();
        let plain = read(d, &relay(d, &[b], None));
        let whole = read(d, &relay(d, &[b], Some(&g)));
        // The value landed in the text or in a tool call's arguments: redacted where it is.
        let redact = |t: &str| {
            t.replace("jo.doe@corp.example.com", "[EMAIL_1]")
                .replace("4111 1111 1111 1111", "[CARD_1]")
        };
        let want = Read {
            text: redact(&plain.text),
            args: plain.args.iter().map(|a| redact(a)).collect(),
            others: plain.others.clone(),
        };
        if want == plain {
            // The splice landed where a client reads nothing (a thought part).
            continue;
        }
        assert_eq!(whole, want, "{path}");
        for cut in 0..=b.len() {
            let got = read(d, &relay(d, &[&b[..cut], &b[cut..]], Some(&g)));
            assert_eq!(got, whole, "{path}: split at {cut}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "{checked} captures");
}
