//! Every capture in the corpus, metered by the relay's tap, whole and split at every byte
//! offset: the usage, cache and reasoning tokens, finish reason and the client-visible bytes
//! must match what the MANIFEST says — and, when the gateway asked for usage on the client's
//! behalf, exactly the usage-only chunks are removed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use serde::Deserialize;
use support::{capture, manifest_text, without_usage_chunks};
use tollgate::dialect::Dialect;
use tollgate::json::Scratch;
use tollgate::stream::Meter;
use tollgate::usage::{Observed, settle_usage};

#[derive(Deserialize)]
struct Manifest {
    file: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    path: String,
    kind: String,
    format: String,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    usage_present: Option<bool>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    total_tokens: Option<u64>,
    cached_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    reasoning_tokens: Option<u64>,
    output_tokens_message_start_only: Option<u64>,
    finish_reason: Option<String>,
    stop_reason: Option<String>,
    error_type: Option<String>,
    file_sha256: String,
}

fn dialect(path: &str) -> Dialect {
    if path.starts_with("openai/responses") {
        Dialect::Responses
    } else if path.starts_with("anthropic/") {
        Dialect::Anthropic
    } else if path.starts_with("gemini/") {
        Dialect::Gemini
    } else if path.starts_with("bedrock/") {
        Dialect::Bedrock
    } else {
        Dialect::OpenAi
    }
}

/// Meters `pieces` as one response; returns the client-visible bytes and what was observed.
fn meter(d: Dialect, sse: bool, strip: bool, pieces: &[&[u8]]) -> (Vec<u8>, Observed, u32) {
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    m.start(d, sse, strip, false);
    let mut out = Vec::new();
    for p in pieces {
        m.pass(p, &mut out, &mut scratch);
    }
    m.end(Some(&mut out), &mut scratch);
    (out, m.observed, m.stripped_events)
}

fn check(entry: &Entry, o: &Observed, what: &str) {
    let want = &entry.expected;
    let p = &entry.path;
    let u = &o.usage;
    if entry.kind == "error" {
        assert!(!o.input_reported && !o.output_reported, "{p}: {what}");
        return;
    }
    let present = want
        .usage_present
        .unwrap_or(want.input_tokens.is_some() || want.output_tokens.is_some());
    assert_eq!(o.input_reported, present, "{p}: {what}: input reported");
    if let Some(n) = want.input_tokens {
        // Normalised input includes both cache parts; Anthropic and Bedrock report them
        // beside it.
        let reported = if matches!(dialect(p), Dialect::Anthropic | Dialect::Bedrock) {
            u.input_tokens - u.cache_read_tokens - u.cache_creation_tokens
        } else {
            u.input_tokens
        };
        assert_eq!(reported, n, "{p}: {what}: input tokens");
    }
    if let Some(n) = want.cached_input_tokens {
        assert_eq!(u.cache_read_tokens, n, "{p}: {what}: cache read");
    }
    if let Some(n) = want.cache_creation_input_tokens {
        assert_eq!(u.cache_creation_tokens, n, "{p}: {what}: cache creation");
    }
    if let Some(n) = want.reasoning_tokens {
        assert_eq!(u.reasoning_tokens, n, "{p}: {what}: reasoning");
    }
    if let Some(n) = want.output_tokens {
        assert!(o.output_reported && o.finished, "{p}: {what}: output final");
        // Normalised output includes reasoning; Gemini reports thoughts beside it.
        let reported = if dialect(p) == Dialect::Gemini {
            u.output_tokens - u.reasoning_tokens
        } else {
            u.output_tokens
        };
        assert_eq!(reported, n, "{p}: {what}: output tokens");
    }
    if entry.format == "openai.embeddings" {
        assert!(o.output_reported && u.output_tokens == 0, "{p}: {what}");
    }
    if let Some(n) = want.total_tokens {
        assert_eq!(u.input_tokens + u.output_tokens, n, "{p}: {what}: total");
    }
    if let Some(n) = want.output_tokens_message_start_only {
        // The stream died before message_delta: the provisional figure is only a floor.
        assert!(!o.output_reported, "{p}: {what}");
        assert_eq!(u.output_tokens, n, "{p}: {what}: provisional output");
    }
    let reason = want.finish_reason.as_ref().or(want.stop_reason.as_ref());
    assert_eq!(
        reason.map(String::as_bytes),
        (!o.finish_reason.is_empty()).then(|| o.finish_reason.as_bytes()),
        "{p}: {what}: finish reason"
    );
    assert_eq!(
        o.error_event,
        want.error_type.is_some(),
        "{p}: {what}: error event"
    );
    // Settling: exact when the provider reported final usage, else an estimate — never zero.
    let (settled, estimated) = settle_usage(o, 400);
    let complete = present && want.output_tokens_message_start_only.is_none();
    assert_eq!(estimated, !complete, "{p}: {what}: usage_estimated");
    assert!(settled.input_tokens > 0, "{p}: {what}");
    if estimated && entry.kind == "stream" {
        assert!(settled.output_tokens > 0, "{p}: {what}: output estimated");
    }
}

#[test]
fn every_capture_meters_as_the_manifest_says_at_every_split() {
    let manifest: Manifest = toml::from_str(&manifest_text()).unwrap();
    let mut checked = 0;
    for entry in &manifest.file {
        if entry.format == "openai.models" {
            continue; // not a model response: never metered
        }
        let bytes = capture(&entry.path);
        let d = dialect(&entry.path);
        let sse = entry.kind == "stream";
        let (out, whole, _) = meter(d, sse, false, &[&bytes]);
        assert_eq!(
            support::sha256_hex(&out),
            entry.expected.file_sha256,
            "{}: the client sees the bytes as captured",
            entry.path
        );
        check(entry, &whole, "whole");
        for cut in 0..=bytes.len() {
            let (out, o, _) = meter(d, sse, false, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(out, bytes, "{} split at {cut}", entry.path);
            check(entry, &o, &format!("split at {cut}"));
        }
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        check(entry, &meter(d, sse, false, &pieces).1, "byte by byte");

        if sse && d == Dialect::OpenAi {
            // The gateway asked for usage on the client's behalf: exactly the usage-only
            // chunks disappear, and usage is still read from them.
            let (want, removed) = without_usage_chunks(&bytes);
            for cut in 0..=bytes.len() {
                let (out, o, stripped) = meter(d, sse, true, &[&bytes[..cut], &bytes[cut..]]);
                assert_eq!(
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&want),
                    "{} stripped, split at {cut}",
                    entry.path
                );
                assert_eq!(stripped, removed, "{}", entry.path);
                check(entry, &o, &format!("stripped, split at {cut}"));
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 32, "every metered capture in the manifest");
}
