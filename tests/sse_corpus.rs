//! Every stream capture in the corpus, scanned whole and split at every byte offset, must
//! give the events the MANIFEST derives from it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use serde::Deserialize;
use support::{capture, manifest_text};
use tollgate::sse::SseScanner;

#[derive(Deserialize)]
struct Manifest {
    file: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    path: String,
    kind: String,
    expected: Expected,
}

#[derive(Deserialize)]
struct Expected {
    events: Option<usize>,
    ends_with_blank_line: Option<bool>,
    done_marker: Option<bool>,
    data_events_after_done: Option<usize>,
    event_type_mismatches: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
struct Ev {
    event: Vec<u8>,
    data: Vec<u8>,
    terminated: bool,
}

fn scan(pieces: &[&[u8]]) -> Vec<Ev> {
    let mut s = SseScanner::default();
    let mut out = Vec::new();
    let mut push = |e: &tollgate::sse::SseEvent<'_>| {
        out.push(Ev {
            event: e.event.to_vec(),
            data: e.data.to_vec(),
            terminated: e.terminated,
        })
    };
    for p in pieces {
        s.feed(p, &mut push).unwrap();
    }
    s.finish(&mut push);
    out
}

#[test]
fn every_stream_capture_scans_as_the_manifest_says_at_every_split() {
    let manifest: Manifest = toml::from_str(&manifest_text()).unwrap();
    let mut checked = 0;
    // Bedrock's streams are binary frames, not SSE (`src/sse/eventstream.rs` has their tests).
    for entry in manifest
        .file
        .iter()
        .filter(|e| e.kind == "stream" && !e.path.starts_with("bedrock/"))
    {
        let bytes = capture(&entry.path);
        let whole = scan(&[&bytes]);
        let want = &entry.expected;
        let terminated: Vec<&Ev> = whole.iter().filter(|e| e.terminated).collect();
        assert_eq!(
            Some(terminated.len()),
            want.events,
            "{}: events",
            entry.path
        );
        assert_eq!(
            Some(whole.iter().all(|e| e.terminated)),
            want.ends_with_blank_line,
            "{}: ends with blank line",
            entry.path
        );
        if let Some(done) = want.done_marker {
            let at = whole.iter().position(|e| e.data == b"[DONE]");
            assert_eq!(at.is_some(), done, "{}: [DONE]", entry.path);
            let after = at.map_or(0, |i| whole.len() - i - 1);
            assert_eq!(
                after,
                want.data_events_after_done.unwrap_or(0),
                "{}",
                entry.path
            );
        }
        if want.event_type_mismatches.is_some() {
            // Anthropic: every event names its type, and the JSON carries the same type.
            for e in &whole {
                let needle = [b"\"type\":\"".as_slice(), &e.event, b"\""].concat();
                let needle_sp = [b"\"type\": \"".as_slice(), &e.event, b"\""].concat();
                let data = &e.data;
                assert!(
                    data.windows(needle.len()).any(|w| w == needle)
                        || data.windows(needle_sp.len()).any(|w| w == needle_sp),
                    "{}: event {:?}",
                    entry.path,
                    String::from_utf8_lossy(&e.event)
                );
            }
        }
        for cut in 0..=bytes.len() {
            assert_eq!(
                scan(&[&bytes[..cut], &bytes[cut..]]),
                whole,
                "{} split at {cut}",
                entry.path
            );
        }
        // Read sizes a socket might really deliver.
        for size in [1, 7, 64, 1460] {
            let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
            assert_eq!(scan(&pieces), whole, "{} in pieces of {size}", entry.path);
        }
        checked += 1;
    }
    assert_eq!(
        checked, 18,
        "every stream capture in the manifest was checked"
    );
}
