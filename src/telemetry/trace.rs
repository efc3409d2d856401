//! Traces: one OpenTelemetry span per request and one per upstream attempt, exported over
//! OTLP/HTTP (protobuf) by a thread of their own (ARCHITECTURE.md, "Traces").
//!
//! - **Context.** A request's trace comes from its W3C `traceparent` when it has a valid one
//!   (the parent's sampled flag decides: parent-based sampling), else a new trace id, sampled
//!   at `tracing.sample`. Each upstream attempt is a child span whose id goes to the provider
//!   in a `traceparent` of its own (the client's is not forwarded once tracing is on;
//!   `tracestate` is, untouched).
//! - **Spans.** The request's span is `{operation} {model}`, kind SERVER, with the
//!   `gen_ai.*` attributes the audit record has (model, provider, response model and id,
//!   finish reasons, usage, max tokens), the HTTP ones, `tollgate.*` (key, team, cost, usage
//!   estimated, deployment), `error.type`, status ERROR for 5xx; events `gen_ai.first_token`
//!   and, for streams, `gen_ai.stream.end`. Each attempt's span is kind CLIENT, named
//!   `{operation} {upstream model}`, with the deployment, the attempt's number and outcome,
//!   status ERROR when it failed. Prompts and completions are never exported (tollgate does
//!   not keep them).
//! - **Cost.** Nothing when tracing is off (one branch per request). When on: the context on
//!   the request (a header scan, two random numbers), and, for a sampled request, its spans
//!   encoded on the worker at `finish` into a batch handed to the exporter like the audit
//!   lines (`TraceSink::submit`: never blocks; past `tracing.queue_spans` queued the batch is
//!   dropped and counted).
//! - **Export.** The exporter thread sends a request per 512 spans or per second, retries a
//!   failed one (connection error, 429, 5xx) after 100, 200, 400 ms, then drops it and counts
//!   the spans. `http://` endpoints only.

use crate::config::{Snapshot, Tracing};
use crate::error::Side;
use crate::telemetry::record::{AuditRecord, MAX_TRIES, TryOutcome};

/// A request's place in a trace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceCtx {
    pub trace_id: [u8; 16],
    /// The request's own span.
    pub span_id: [u8; 8],
    /// The caller's span, from its `traceparent`.
    pub parent: Option<[u8; 8]>,
    pub sampled: bool,
}

impl TraceCtx {
    /// The span id of upstream attempt `n` (0-based): derived from the request's, so nothing
    /// is stored per attempt.
    pub fn attempt_span(&self, n: usize) -> [u8; 8] {
        let mut x = u64::from_le_bytes(self.span_id).wrapping_add(n as u64 + 1);
        mix(&mut x).to_le_bytes()
    }

    /// `traceparent: 00-{trace}-{attempt n's span}-{flags}` for the provider (formatted on
    /// the stack, appended once).
    pub fn write_upstream_header(&self, out: &mut Vec<u8>, n: usize) {
        const D: &[u8; 16] = b"0123456789abcdef";
        let mut line = *b"traceparent: 00-00000000000000000000000000000000-0000000000000000-00\r\n";
        let span = self.attempt_span(n);
        for (i, b) in self.trace_id.iter().chain(span.iter()).enumerate() {
            // The trace id's 32 digits start at 16; the span's 16 at 49.
            let at = if i < 16 {
                16 + 2 * i
            } else {
                49 + 2 * (i - 16)
            };
            line[at] = D[usize::from(b >> 4)];
            line[at + 1] = D[usize::from(b & 15)];
        }
        if self.sampled {
            line[67] = b'1';
        }
        out.extend_from_slice(&line);
    }
}

/// A worker's source of ids and sampling decisions (splitmix64; not for secrets).
#[derive(Debug)]
pub struct Ids(u64);

impl Ids {
    pub fn new(seed: u64) -> Self {
        Ids(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        mix(&mut x)
    }

    /// The trace of a request with `traceparent` (the header's value, if any), under `cfg`.
    pub fn start(&mut self, cfg: &Tracing, traceparent: Option<&[u8]>) -> TraceCtx {
        let span_id = nonzero(self.next()).to_le_bytes();
        match traceparent.and_then(parse_traceparent) {
            Some((trace_id, parent, sampled)) => TraceCtx {
                trace_id,
                span_id,
                parent: Some(parent),
                sampled,
            },
            None => {
                let mut trace_id = [0; 16];
                trace_id[..8].copy_from_slice(&nonzero(self.next()).to_le_bytes());
                trace_id[8..].copy_from_slice(&self.next().to_le_bytes());
                TraceCtx {
                    trace_id,
                    span_id,
                    parent: None,
                    sampled: (self.next() % 1_000_000) < u64::from(cfg.sample_per_million),
                }
            }
        }
    }
}

fn mix(x: &mut u64) -> u64 {
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn nonzero(x: u64) -> u64 {
    if x == 0 { 1 } else { x }
}

/// W3C Trace Context's `traceparent`: `{version}-{trace id}-{parent id}-{flags}`, lower-case
/// hex. Version `00` is exactly that long; a later version may carry more after a `-`;
/// version `ff` and all-zero ids are invalid. Returns the ids and the sampled flag.
pub fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], bool)> {
    let v = v.trim_ascii();
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = unhex::<1>(&v[..2])?[0];
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let trace = unhex::<16>(&v[3..35])?;
    let parent = unhex::<8>(&v[36..52])?;
    let flags = unhex::<1>(&v[53..55])?[0];
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace, parent, flags & 1 == 1))
}

fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

// ------------------------------------------------------------------ protobuf, by hand
//
// Field numbers are opentelemetry-proto's (trace/v1/trace.proto, common/v1/common.proto,
// resource/v1/resource.proto, collector/trace/v1/trace_service.proto); tests/traces.rs
// decodes what is sent with the official definitions.

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

fn bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn fixed64(out: &mut Vec<u8>, field: u64, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn uint(out: &mut Vec<u8>, field: u64, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

/// A nested message in `field`, its body written by `f`. Its length goes in a one-byte slot
/// reserved before the body; a body of 128 bytes or more (a span, not an attribute) moves up
/// to make room for a longer varint.
fn message(out: &mut Vec<u8>, field: u64, f: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, 2);
    let at = out.len();
    out.push(0);
    f(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
        return;
    }
    let mut v = [0u8; 10];
    let mut n = 0;
    let mut x = len as u64;
    while x >= 0x80 {
        v[n] = (x as u8) | 0x80;
        x >>= 7;
        n += 1;
    }
    v[n] = x as u8;
    n += 1;
    let end = out.len();
    out.resize(end + n - 1, 0);
    out.copy_within(at + 1..end, at + n);
    out[at..at + n].copy_from_slice(&v[..n]);
}

/// A string field written from pieces, without joining them first.
fn pieces(out: &mut Vec<u8>, field: u64, parts: &[&[u8]]) {
    tag(out, field, 2);
    varint(out, parts.iter().map(|p| p.len() as u64).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
}

enum Value<'a> {
    Str(&'a [u8]),
    /// A string of pieces (`provider/model`), written without joining them.
    Parts(&'a [&'a [u8]]),
    Int(i64),
    Double(f64),
    Bool(bool),
    Strs(&'a [&'a [u8]]),
}

/// A `KeyValue` in `field` (attributes: 9 in a span, 3 in an event, 1 in a resource).
/// Short ones — nearly all — are written in one pass with their lengths known up front.
fn attr(out: &mut Vec<u8>, field: u64, key: &str, v: Value<'_>) {
    let mut scalar = [0u8; 11];
    let value: Option<&[u8]> = match v {
        Value::Str(s) if s.len() < 100 => {
            // AnyValue.string_value (1)
            Some(s)
        }
        Value::Int(i) => {
            // AnyValue.int_value (3), a varint.
            scalar[0] = 3 << 3;
            let mut x = i as u64;
            let mut n = 1;
            while x >= 0x80 {
                scalar[n] = (x as u8) | 0x80;
                x >>= 7;
                n += 1;
            }
            scalar[n] = x as u8;
            Some(&scalar[..n + 1])
        }
        Value::Bool(b) => {
            scalar[0] = 2 << 3;
            scalar[1] = u8::from(b);
            Some(&scalar[..2])
        }
        Value::Double(d) => {
            scalar[0] = 4 << 3 | 1;
            scalar[1..9].copy_from_slice(&d.to_le_bytes());
            Some(&scalar[..9])
        }
        _ => None,
    };
    if let (Some(value), true) = (value, field < 16 && key.len() < 100) {
        let string = matches!(v, Value::Str(_));
        // AnyValue's body: the string's tag and length, or the scalar as encoded.
        let any = if string { 2 + value.len() } else { value.len() };
        let kv = 2 + key.len() + 2 + any;
        if kv < 0x80 {
            out.extend_from_slice(&[(field as u8) << 3 | 2, kv as u8, 0x0a, key.len() as u8]);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&[0x12, any as u8]);
            if string {
                out.extend_from_slice(&[0x0a, value.len() as u8]);
            }
            out.extend_from_slice(value);
            return;
        }
    }
    message(out, field, |out| {
        bytes(out, 1, key.as_bytes());
        message(out, 2, |out| any(out, &v));
    });
}

fn any(out: &mut Vec<u8>, v: &Value<'_>) {
    match *v {
        Value::Str(s) => bytes(out, 1, s),
        Value::Parts(p) => pieces(out, 1, p),
        Value::Bool(b) => uint(out, 2, u64::from(b)),
        Value::Int(i) => uint(out, 3, i as u64),
        Value::Double(d) => {
            tag(out, 4, 1);
            out.extend_from_slice(&d.to_le_bytes());
        }
        Value::Strs(list) => message(out, 5, |out| {
            for s in list {
                message(out, 1, |out| bytes(out, 1, s));
            }
        }),
    }
}

const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
const STATUS_ERROR: u64 = 2;

/// Appends the spans of one finished request (a sampled one) to `out`, each as a
/// `ScopeSpans.spans` entry (field 2), ready to be concatenated into an export request.
pub fn encode_spans(out: &mut Vec<u8>, r: &AuditRecord, t: &TraceCtx, snap: &Snapshot) {
    let start_ns = r.start_unix_us * 1000;
    let end_ns = start_ns + r.duration_us * 1000;
    let op = r.route.operation().unwrap_or("http");
    let model = r.model.and_then(|m| snap.models.get(m.0 as usize));
    let dep = |d: crate::config::DeploymentId| {
        snap.deployments
            .get(d.0 as usize)
            .map(|dep| (snap.provider(dep.provider), dep))
    };
    let key = r.key.and_then(|k| snap.keys.get(k.0 as usize));
    message(out, 2, |out| {
        bytes(out, 1, &t.trace_id);
        bytes(out, 2, &t.span_id);
        if let Some(p) = &t.parent {
            bytes(out, 4, p);
        }
        let what = model.map_or(r.route.path().as_bytes(), |m| m.name.as_bytes());
        pieces(out, 5, &[op.as_bytes(), b" ", what]);
        uint(out, 6, KIND_SERVER);
        fixed64(out, 7, start_ns);
        fixed64(out, 8, end_ns);
        attr(out, 9, "http.request.method", Value::Str(method(r)));
        attr(out, 9, "http.route", Value::Str(r.route.path().as_bytes()));
        attr(
            out,
            9,
            "http.response.status_code",
            Value::Int(i64::from(r.status)),
        );
        if let Some(op) = r.route.operation() {
            attr(out, 9, "gen_ai.operation.name", Value::Str(op.as_bytes()));
        }
        if let Some(m) = model {
            attr(
                out,
                9,
                "gen_ai.request.model",
                Value::Str(m.name.as_bytes()),
            );
        }
        if let Some((p, d)) = r.deployment.and_then(dep) {
            attr(
                out,
                9,
                "gen_ai.provider.name",
                Value::Str(p.name.as_bytes()),
            );
            let label = [p.name.as_bytes(), b"/", d.upstream_model.as_bytes()];
            attr(out, 9, "tollgate.deployment", Value::Parts(&label));
        }
        if let Some(n) = r.max_tokens {
            attr(
                out,
                9,
                "gen_ai.request.max_tokens",
                Value::Int(i64::from(n)),
            );
        }
        if !r.response_model.is_empty() {
            let v = Value::Str(r.response_model.as_bytes());
            attr(out, 9, "gen_ai.response.model", v);
        }
        if !r.response_id.is_empty() {
            attr(
                out,
                9,
                "gen_ai.response.id",
                Value::Str(r.response_id.as_bytes()),
            );
        }
        if !r.finish_reason.is_empty() {
            let reasons = [r.finish_reason.as_bytes()];
            attr(
                out,
                9,
                "gen_ai.response.finish_reasons",
                Value::Strs(&reasons),
            );
        }
        if r.charged {
            let u = &r.usage;
            for (k, v, always) in [
                ("gen_ai.usage.input_tokens", u.input_tokens, true),
                ("gen_ai.usage.output_tokens", u.output_tokens, true),
                (
                    "gen_ai.usage.cache_read.input_tokens",
                    u.cache_read_tokens,
                    false,
                ),
                (
                    "gen_ai.usage.cache_creation.input_tokens",
                    u.cache_creation_tokens,
                    false,
                ),
                (
                    "gen_ai.usage.reasoning.output_tokens",
                    u.reasoning_tokens,
                    false,
                ),
            ] {
                // The optional counts only when there are some.
                if always || v > 0 {
                    attr(out, 9, k, Value::Int(v.min(i64::MAX as u64) as i64));
                }
            }
            let usd = (r.cost_micro_usd + r.abandoned_cost_micro_usd) as f64 / 1e6;
            attr(out, 9, "tollgate.cost_usd", Value::Double(usd));
            attr(
                out,
                9,
                "tollgate.usage_estimated",
                Value::Bool(r.usage_estimated),
            );
        }
        if let Some(k) = key {
            attr(out, 9, "tollgate.key", Value::Str(k.id.as_bytes()));
            if let Some(team) = &k.team {
                attr(out, 9, "tollgate.team", Value::Str(team.as_bytes()));
            }
        }
        attr(out, 9, "gen_ai.request.stream", Value::Bool(r.stream));
        if let Some(e) = r.error {
            attr(out, 9, "error.type", Value::Str(e.label().as_bytes()));
        }
        if r.ttft_us > 0 {
            message(out, 11, |out| {
                fixed64(out, 1, start_ns + r.ttft_us * 1000);
                bytes(out, 2, b"gen_ai.first_token");
            });
        }
        if r.stream && r.ttft_us > 0 {
            message(out, 11, |out| {
                fixed64(out, 1, end_ns);
                bytes(out, 2, b"gen_ai.stream.end");
            });
        }
        let failed = r.status >= 500 || r.error.is_some_and(|e| e.side() != Side::Downstream);
        if failed {
            message(out, 15, |out| {
                if let Some(e) = r.error {
                    bytes(out, 2, e.label().as_bytes());
                }
                uint(out, 3, STATUS_ERROR);
            });
        }
    });
    // One CLIENT span per upstream attempt.
    for n in 0..usize::from(r.tries.n).min(MAX_TRIES) {
        let Some((d, outcome)) = r.tries.list[n] else {
            continue;
        };
        let (from, to) = r.tries.at[n];
        // An attempt with no recorded end ran to the request's end (the one served), or was
        // cut with it (a hedge's loser).
        let to = if to == 0 {
            u32::try_from(r.duration_us).unwrap_or(u32::MAX)
        } else {
            to
        };
        message(out, 2, |out| {
            bytes(out, 1, &t.trace_id);
            bytes(out, 2, &t.attempt_span(n));
            bytes(out, 4, &t.span_id);
            let upstream = dep(d).map_or(&b""[..], |(_, d)| d.upstream_model.as_bytes());
            pieces(out, 5, &[op.as_bytes(), b" ", upstream]);
            uint(out, 6, KIND_CLIENT);
            fixed64(out, 7, start_ns + u64::from(from) * 1000);
            fixed64(out, 8, start_ns + u64::from(to.max(from)) * 1000);
            if let Some((p, dep)) = dep(d) {
                attr(
                    out,
                    9,
                    "gen_ai.provider.name",
                    Value::Str(p.name.as_bytes()),
                );
                attr(
                    out,
                    9,
                    "gen_ai.request.model",
                    Value::Str(dep.upstream_model.as_bytes()),
                );
                let label = [p.name.as_bytes(), b"/", dep.upstream_model.as_bytes()];
                attr(out, 9, "tollgate.deployment", Value::Parts(&label));
            }
            attr(out, 9, "tollgate.attempt", Value::Int(n as i64 + 1));
            attr(
                out,
                9,
                "tollgate.outcome",
                Value::Str(outcome.name().as_bytes()),
            );
            if outcome != TryOutcome::Served {
                message(out, 15, |out| {
                    bytes(out, 2, outcome.name().as_bytes());
                    uint(out, 3, STATUS_ERROR);
                });
            }
        });
    }
}

/// The bytes of an `ExportTraceServiceRequest` that come before its spans, when `spans_len`
/// bytes of concatenated `ScopeSpans.spans` entries follow: one resource (`service.name`,
/// `service.version`) and one scope (`tollgate`). The spans are then sent as they are, never
/// copied into one body.
pub fn request_prefix(cfg: &Tracing, spans_len: usize) -> Vec<u8> {
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let mut resource = Vec::with_capacity(64);
    attr(
        &mut resource,
        1,
        "service.name",
        Value::Str(cfg.service_name.as_bytes()),
    );
    attr(&mut resource, 1, "service.version", Value::Str(version));
    let mut scope = Vec::with_capacity(32);
    bytes(&mut scope, 1, b"tollgate");
    bytes(&mut scope, 2, version);
    let field = |len: usize| 1 + varint_len(len as u64) + len;
    let scope_spans = field(scope.len()) + spans_len;
    let resource_spans = field(resource.len()) + field(scope_spans);
    let mut out = Vec::with_capacity(128);
    tag(&mut out, 1, 2);
    varint(&mut out, resource_spans as u64);
    bytes(&mut out, 1, &resource);
    tag(&mut out, 2, 2);
    varint(&mut out, scope_spans as u64);
    bytes(&mut out, 1, &scope);
    out
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn method(r: &AuditRecord) -> &'static [u8] {
    use crate::http1::Method;
    match r.method {
        Method::Get => b"GET",
        Method::Head => b"HEAD",
        Method::Post => b"POST",
        Method::Put => b"PUT",
        Method::Delete => b"DELETE",
        Method::Options => b"OPTIONS",
        Method::Patch => b"PATCH",
        _ => b"_OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(out: &mut Vec<u8>, b: &[u8]) {
        const D: &[u8; 16] = b"0123456789abcdef";
        for &x in b {
            out.push(D[usize::from(x >> 4)]);
            out.push(D[usize::from(x & 15)]);
        }
    }

    #[test]
    fn traceparent_as_w3c_trace_context_says() {
        let ok = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let (trace, parent, sampled) = parse_traceparent(ok).unwrap();
        let mut h = Vec::new();
        hex(&mut h, &trace);
        assert_eq!(h, b"4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent, [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]);
        assert!(sampled);
        assert!(
            !parse_traceparent(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
                .unwrap()
                .2
        );
        // A later version may carry more; version 00 may not.
        assert!(
            parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_some()
        );
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"[..],
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"",
        ] {
            assert_eq!(
                parse_traceparent(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn short_attributes_encode_as_the_nested_form_does() {
        let generic = |key: &str, v: Value<'_>| {
            let mut out = Vec::new();
            message(&mut out, 9, |out| {
                bytes(out, 1, key.as_bytes());
                message(out, 2, |out| any(out, &v));
            });
            out
        };
        for (key, v) in [
            ("gen_ai.request.model", Value::Str(b"gpt-4o-mini")),
            ("http.response.status_code", Value::Int(200)),
            ("gen_ai.usage.input_tokens", Value::Int(1 << 40)),
            ("x", Value::Int(-1)),
            ("tollgate.usage_estimated", Value::Bool(true)),
            ("tollgate.cost_usd", Value::Double(0.000123)),
            ("k", Value::Str(&[b'v'; 99])),
        ] {
            let mut fast = Vec::new();
            let want = generic(
                key,
                match &v {
                    Value::Str(s) => Value::Str(s),
                    Value::Int(i) => Value::Int(*i),
                    Value::Bool(b) => Value::Bool(*b),
                    Value::Double(d) => Value::Double(*d),
                    _ => unreachable!(),
                },
            );
            attr(&mut fast, 9, key, v);
            assert_eq!(fast, want, "{key}");
        }
    }

    #[test]
    fn varints_and_nested_lengths() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        // A nested message longer than 127 bytes gets a two-byte length.
        message(&mut out, 1, |o| o.extend_from_slice(&[7; 200]));
        assert_eq!(&out[..3], &[0x0a, 0xc8, 0x01]);
        assert_eq!(out.len(), 3 + 200);
    }

    #[test]
    fn attempt_spans_differ_from_the_request_and_each_other() {
        let t = Ids::new(7).start(
            &Tracing {
                host: String::new(),
                port: 0,
                authority: String::new(),
                path: String::new(),
                sample_per_million: 1_000_000,
                service_name: String::new(),
                queue_spans: 1,
            },
            None,
        );
        assert!(t.sampled && t.parent.is_none());
        let ids = [
            t.span_id,
            t.attempt_span(0),
            t.attempt_span(1),
            t.attempt_span(2),
        ];
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                assert_ne!(ids[i], ids[j]);
            }
        }
        let mut h = Vec::new();
        t.write_upstream_header(&mut h, 1);
        let line = String::from_utf8(h).unwrap();
        let value = line.strip_prefix("traceparent: ").unwrap().trim_end();
        let (trace, span, sampled) = parse_traceparent(value.as_bytes()).unwrap();
        assert_eq!(
            (trace, span, sampled),
            (t.trace_id, t.attempt_span(1), true)
        );
    }
}
