//! The mock's honest ledger: what it billed, per model and per API key.
//!
//! This is the ground truth that gateway accounting is compared against, so the rule is
//! stated exactly:
//! - `requests` counts every API request the mock routed (faulted or not); `errors` those
//!   answered with an error status or reset before a response head.
//! - A request is *billed* once a success head went out: its prompt tokens, cached and
//!   reasoning tokens in full, and the completion tokens the mock actually emitted — all of
//!   them for a complete response, only those in events sent before a mid-stream reset or
//!   truncation. `completion_tokens` includes reasoning tokens (OpenAI's convention).
//! - `usage_reported` counts billed requests whose response carried a usage object the
//!   client could read (so an OpenAI stream without `include_usage` is billed but not
//!   reported).
//!
//! Each worker owns one `Ledger` behind its own mutex (uncontended on the request path); the
//! stats endpoint locks them one by one and merges.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
    pub billed: u64,
    pub usage_reported: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    pub streams: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.billed += o.billed;
        self.usage_reported += o.usage_reported;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cached_tokens += o.cached_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.streams += o.streams;
    }
}

/// One request's contribution, recorded when its response is finished (or abandoned).
#[derive(Clone, Copy, Debug, Default)]
pub struct Entry {
    pub error: bool,
    pub billed: bool,
    pub usage_reported: bool,
    pub stream: bool,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
}

impl Entry {
    fn counts(&self) -> Counts {
        let billed = u64::from(self.billed);
        Counts {
            requests: 1,
            errors: u64::from(self.error),
            billed,
            usage_reported: u64::from(self.billed && self.usage_reported),
            prompt_tokens: self.prompt_tokens * billed,
            completion_tokens: self.completion_tokens * billed,
            cached_tokens: self.cached_tokens * billed,
            reasoning_tokens: self.reasoning_tokens * billed,
            streams: u64::from(self.stream),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    pub total: Counts,
    pub models: BTreeMap<String, Counts>,
    pub keys: BTreeMap<String, Counts>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Requests refused before routing (bad HTTP, bad JSON, unknown path, bad key).
    pub rejected: u64,
    pub connections: u64,
    /// Access tokens the token endpoint issued.
    pub tokens_issued: u64,
    /// Calls on stored Responses API responses (retrieve, delete, cancel, input items).
    pub stored_calls: u64,
    /// The W3C `traceparent` headers received, the last [`KEPT_TRACEPARENTS`].
    pub traceparents: Vec<String>,
    /// OTLP/HTTP trace exports accepted, and their bytes.
    pub otlp_requests: u64,
    pub otlp_bytes: u64,
    /// The request bodies received (lossy UTF-8), the last [`KEPT_BODIES`]: what a gateway
    /// really sent upstream (a redacted prompt, say).
    pub bodies: Vec<String>,
}

/// How many request bodies a ledger keeps.
pub const KEPT_BODIES: usize = 64;

/// How many `traceparent` headers a ledger keeps.
pub const KEPT_TRACEPARENTS: usize = 1024;

impl Ledger {
    pub fn record(&mut self, model: &str, key: &str, e: &Entry) {
        let c = e.counts();
        self.total.add(&c);
        add_to(&mut self.models, model, &c);
        add_to(&mut self.keys, key, &c);
    }

    pub fn traceparent(&mut self, t: String) {
        if self.traceparents.len() >= KEPT_TRACEPARENTS {
            self.traceparents.remove(0);
        }
        self.traceparents.push(t);
    }

    pub fn body(&mut self, b: &[u8]) {
        if self.bodies.len() >= KEPT_BODIES {
            self.bodies.remove(0);
        }
        self.bodies.push(String::from_utf8_lossy(b).into_owned());
    }

    pub fn fault(&mut self, label: &str) {
        *self.faults.entry(label.to_owned()).or_default() += 1;
    }

    pub fn merge(&mut self, o: &Ledger) {
        self.total.add(&o.total);
        for (k, v) in &o.models {
            add_to(&mut self.models, k, v);
        }
        for (k, v) in &o.keys {
            add_to(&mut self.keys, k, v);
        }
        for (k, v) in &o.faults {
            *self.faults.entry(k.clone()).or_default() += v;
        }
        self.rejected += o.rejected;
        self.connections += o.connections;
        self.tokens_issued += o.tokens_issued;
        self.stored_calls += o.stored_calls;
        self.traceparents.extend(o.traceparents.iter().cloned());
        self.bodies.extend(o.bodies.iter().cloned());
        self.otlp_requests += o.otlp_requests;
        self.otlp_bytes += o.otlp_bytes;
    }
}

/// Adds `c` to the entry for `name`, allocating the name only the first time it is seen.
fn add_to(map: &mut BTreeMap<String, Counts>, name: &str, c: &Counts) {
    match map.get_mut(name) {
        Some(v) => v.add(c),
        None => {
            map.insert(name.to_owned(), *c);
        }
    }
}

/// One mock worker's ledger: the worker writes it, the stats endpoint merges every worker's.
#[allow(
    clippy::disallowed_types,
    reason = "the mock's bookkeeping, not the gateway's request path"
)]
pub type SharedLedger = std::sync::Arc<std::sync::Mutex<Ledger>>;

/// A fresh, empty [`SharedLedger`].
#[allow(
    clippy::disallowed_types,
    reason = "the mock's bookkeeping, not the gateway's request path"
)]
pub fn shared() -> SharedLedger {
    std::sync::Arc::new(std::sync::Mutex::new(Ledger::default()))
}
