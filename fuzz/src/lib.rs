//! tollgate's fuzz targets: one function per parser and translator, each checking properties
//! of what it read, not only that it did not panic (`fuzz/README.md`).
//!
//! The same functions run three ways: under AFL++ (`src/bin/<target>.rs`, built by
//! `cargo afl build --features afl`), over every saved corpus entry as a regression test
//! (`tests/replay.rs`, part of the workspace's `cargo test`), and from the unit tests a crash
//! became. A property that fails panics with what disagreed.
//!
//! Many targets take their first byte as settings (a dialect, a split point) and the rest as
//! the input, so one corpus explores every combination.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a fuzz target reports a broken property by panicking"
)]

pub mod http;
pub mod ledger;
pub mod stream;

use tollgate::dialect::Dialect;

/// A target: one input, checked.
pub type Target = fn(&[u8]);

/// Every target, by the name its corpus directory and binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("http_request_head", http::request_head),
    ("http_response_body", http::response_body),
    ("sse", stream::sse),
    ("eventstream", stream::eventstream),
    ("json_scan", stream::json_scan),
    ("meter", stream::meter),
    ("translate_request", stream::translate_request),
    ("translate_answer", stream::translate_answer),
    ("translate_stream", stream::translate_stream),
    ("config", ledger::config),
    ("ledger", ledger::ledger_log),
    ("journal", ledger::journal),
];

/// The dialect a settings byte names.
pub fn dialect(b: u8) -> Dialect {
    [
        Dialect::OpenAi,
        Dialect::Anthropic,
        Dialect::Gemini,
        Dialect::Responses,
        Dialect::Bedrock,
    ][usize::from(b) % 5]
}

/// The first byte as settings, and the input after it.
pub fn settings(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&s, rest)) => (s, rest),
        None => (0, &[]),
    }
}

/// A split point of `input` chosen by `seed`.
pub fn cut(input: &[u8], seed: u8) -> usize {
    if input.is_empty() {
        0
    } else {
        usize::from(seed) * 257 % (input.len() + 1)
    }
}
