//! Audit records as JSON lines, formatted by the worker that served the request (into its
//! [`super::audit::AuditBatch`]) and written by [`super::audit`]'s thread.
//!
//! Field names follow the OpenTelemetry semantic conventions where one exists (`http.*`,
//! `error.type`, `gen_ai.*`: `gen_ai.usage.input_tokens` includes cached input and
//! `gen_ai.usage.output_tokens` includes reasoning, as those conventions say); tollgate's own
//! fields are plain snake_case. Prompts and completions are never written; a key with
//! `log_content = "sha256"` gets their SHA-256 (`prompt_sha256`: the request body as the
//! client sent it; `completion_sha256`: the response body as the client received it).

use super::record::{AuditRecord, Route, TryOutcome};
use crate::config::Snapshot;
use crate::http1::Method;
use crate::json;

/// Appends one JSON line for `r`. `snap` is the snapshot the request ran under, when the
/// coordinator still has it (names are omitted otherwise).
pub fn audit_line(out: &mut Vec<u8>, r: &AuditRecord, snap: Option<&Snapshot>) {
    out.extend_from_slice(b"{\"ts\":\"");
    rfc3339_micros(out, r.start_unix_us);
    out.extend_from_slice(b"\",\"request_id\":\"");
    request_id(out, r.worker, r.serial);
    out.extend_from_slice(b"\",\"http.request.method\":\"");
    out.extend_from_slice(method(r.method).as_bytes());
    out.extend_from_slice(b"\",\"http.route\":\"");
    out.extend_from_slice(r.route.path().as_bytes());
    out.extend_from_slice(b"\",\"http.response.status_code\":");
    json::uint(out, u64::from(r.status));
    if let Some(e) = r.error {
        out.extend_from_slice(b",\"error.type\":\"");
        out.extend_from_slice(e.label().as_bytes());
        // Whose fault: the client's, the provider's, or the gateway's own.
        out.extend_from_slice(b"\",\"error_side\":\"");
        out.extend_from_slice(e.side().label().as_bytes());
        out.push(b'"');
    }
    let key = snap.and_then(|s| r.key.and_then(|k| s.keys.get(k.0 as usize)));
    if let Some(k) = key {
        out.extend_from_slice(b",\"key\":");
        json::string(out, k.id.as_bytes());
        if let Some(t) = &k.team {
            out.extend_from_slice(b",\"team\":");
            json::string(out, t.as_bytes());
        }
        if let Some(members) = k.tags_json.get(1..) {
            out.extend_from_slice(b",\"tags\":{");
            out.extend_from_slice(members);
            out.push(b'}');
        }
    }
    if let Some(op) = r.route.operation() {
        out.extend_from_slice(b",\"gen_ai.operation.name\":\"");
        out.extend_from_slice(op.as_bytes());
        out.push(b'"');
        model_fields(out, r, snap);
    } else if r.route == Route::StoredResponse {
        // Which provider holds the response (no model was asked for, nothing generated).
        deployment_fields(out, r, snap);
    }
    out.extend_from_slice(b",\"bytes_in\":");
    json::uint(out, r.request_bytes);
    out.extend_from_slice(b",\"bytes_out\":");
    json::uint(out, r.response_bytes);
    out.extend_from_slice(b",\"duration_us\":");
    json::uint(out, r.duration_us);
    out.extend_from_slice(b"}\n");
}

/// The fields of a request to a model API.
fn model_fields(out: &mut Vec<u8>, r: &AuditRecord, snap: Option<&Snapshot>) {
    let model = snap.and_then(|s| r.model.and_then(|m| s.models.get(m.0 as usize)));
    if let Some(m) = model {
        out.extend_from_slice(b",\"gen_ai.request.model\":");
        json::string(out, m.name.as_bytes());
    }
    deployment_fields(out, r, snap);
    if let Some(n) = r.max_tokens {
        out.extend_from_slice(b",\"gen_ai.request.max_tokens\":");
        json::uint(out, u64::from(n));
    }
    if !r.response_model.is_empty() {
        out.extend_from_slice(b",\"gen_ai.response.model\":");
        json::string(out, r.response_model.as_bytes());
    }
    if !r.response_id.is_empty() {
        out.extend_from_slice(b",\"gen_ai.response.id\":");
        json::string(out, r.response_id.as_bytes());
    }
    if !r.finish_reason.is_empty() {
        out.extend_from_slice(b",\"gen_ai.response.finish_reasons\":[");
        json::string(out, r.finish_reason.as_bytes());
        out.push(b']');
    }
    let u = &r.usage;
    for (name, v) in [
        (&b",\"gen_ai.usage.input_tokens\":"[..], u.input_tokens),
        (b",\"gen_ai.usage.output_tokens\":", u.output_tokens),
        (
            b",\"gen_ai.usage.cache_read.input_tokens\":",
            u.cache_read_tokens,
        ),
        (
            b",\"gen_ai.usage.cache_creation.input_tokens\":",
            u.cache_creation_tokens,
        ),
        (
            b",\"gen_ai.usage.reasoning.output_tokens\":",
            u.reasoning_tokens,
        ),
        (b",\"cost_micro_usd\":", r.cost_micro_usd),
        (b",\"reserved_micro_usd\":", r.reserved_micro_usd),
        (
            b",\"abandoned_cost_micro_usd\":",
            r.abandoned_cost_micro_usd,
        ),
        (b",\"abandoned_tokens\":", r.abandoned_tokens),
    ] {
        out.extend_from_slice(name);
        json::uint(out, v);
    }
    let cache = &r.cache;
    if cache.outcome != crate::telemetry::record::CacheOutcome::Off {
        out.extend_from_slice(b",\"cache\":\"");
        out.extend_from_slice(cache.outcome.name().as_bytes());
        out.push(b'"');
        if cache.waited {
            out.extend_from_slice(b",\"cache_waited\":true");
        }
        if cache.shared {
            out.extend_from_slice(b",\"cache_shared\":true");
        }
        if cache.outcome.is_hit() {
            out.extend_from_slice(b",\"cache_saved_micro_usd\":");
            json::uint(out, cache.saved_micro_usd);
            out.extend_from_slice(b",\"cache_saved_tokens\":");
            json::uint(out, cache.saved_tokens);
        }
        if cache.outcome == crate::telemetry::record::CacheOutcome::SemanticHit {
            out.extend_from_slice(b",\"cache_similarity\":");
            let _ = std::io::Write::write_fmt(out, format_args!("{:.4}", cache.similarity));
        }
    }
    if r.guard.n > 0 {
        guardrails(out, r, snap);
    }
    out.extend_from_slice(b",\"usage_estimated\":");
    out.extend_from_slice(if r.usage_estimated { b"true" } else { b"false" });
    out.extend_from_slice(b",\"stream\":");
    out.extend_from_slice(if r.stream { b"true" } else { b"false" });
    out.extend_from_slice(b",\"attempts\":");
    json::uint(out, u64::from(r.attempts));
    if r.tries.n > 1 || r.tries.iter().any(|(_, o)| o != TryOutcome::Served) {
        // Failover happened: every deployment tried, and how it went.
        out.extend_from_slice(b",\"tries\":[");
        for (i, (d, o)) in r.tries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"deployment\":");
            match snap.and_then(|s| s.deployments.get(d.0 as usize)) {
                Some(dep) => json::string(out, dep.name.as_bytes()),
                None => json::uint(out, u64::from(d.0)),
            }
            out.extend_from_slice(b",\"outcome\":\"");
            out.extend_from_slice(o.name().as_bytes());
            out.push(b'"');
            if let TryOutcome::Status(st) = o {
                out.extend_from_slice(b",\"status\":");
                json::uint(out, u64::from(st));
            }
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"ttft_us\":");
    json::uint(out, r.ttft_us);
    out.extend_from_slice(b",\"upstream_us\":");
    json::uint(out, r.upstream_us);
    for (name, h) in [
        (&b",\"prompt_sha256\":\""[..], &r.prompt_sha256),
        (b",\"completion_sha256\":\"", &r.completion_sha256),
    ] {
        if let Some(h) = h {
            out.extend_from_slice(name);
            for b in h {
                out.push(b"0123456789abcdef"[usize::from(b >> 4)]);
                out.push(b"0123456789abcdef"[usize::from(b & 0xf)]);
            }
            out.push(b'"');
        }
    }
}

/// `gen_ai.provider.name` and `deployment` ("provider/upstream model") of the deployment that
/// served the request.
fn deployment_fields(out: &mut Vec<u8>, r: &AuditRecord, snap: Option<&Snapshot>) {
    let deployment = snap.and_then(|s| {
        r.deployment
            .and_then(|d| s.deployments.get(d.0 as usize))
            .map(|d| (s.provider(d.provider), d))
    });
    if let Some((p, d)) = deployment {
        out.extend_from_slice(b",\"gen_ai.provider.name\":");
        json::string(out, p.name.as_bytes());
        out.extend_from_slice(b",\"deployment\":");
        // "provider/model": the provider's literal, its closing quote turned into the slash
        // that the model's literal opens with.
        json::string(out, p.name.as_bytes());
        out.pop();
        let slash = out.len();
        json::string(out, d.upstream_model.as_bytes());
        out[slash] = b'/';
    }
}

impl Route {
    /// OpenTelemetry's `gen_ai.operation.name`, for the model APIs.
    pub fn operation(self) -> Option<&'static str> {
        match self {
            Route::ChatCompletions
            | Route::Messages
            | Route::Responses
            | Route::Converse
            | Route::ConverseStream => Some("chat"),
            Route::Completions => Some("text_completion"),
            Route::GenerateContent | Route::StreamGenerateContent => Some("generate_content"),
            Route::Embeddings => Some("embeddings"),
            _ => None,
        }
    }
}

/// The `x-request-id` a response carries: `<worker>-<serial>`.
pub fn request_id(out: &mut Vec<u8>, worker: u16, serial: u64) {
    json::uint(out, u64::from(worker));
    out.push(b'-');
    json::uint(out, serial);
}

fn method(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Patch => "PATCH",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other => "OTHER",
    }
}

/// `2026-11-21T10:00:00.000123Z` from microseconds since the Unix epoch (UTC).
pub fn rfc3339_micros(out: &mut Vec<u8>, us: u64) {
    let secs = us / 1_000_000;
    let (y, mo, d) = crate::calendar::civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let mut s = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for c in s[at..at + width].iter_mut().rev() {
            *c = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, u64::from(mo));
    put(8, 2, u64::from(d));
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 6, us % 1_000_000);
    out.extend_from_slice(&s);
}

/// `"guardrails":[{"rule","detector","where","action","count"}]`: which rules fired, never
/// what they matched.
fn guardrails(out: &mut Vec<u8>, r: &AuditRecord, snap: Option<&Snapshot>) {
    let guard = snap
        .zip(r.key)
        .and_then(|(s, k)| s.keys.get(k.0 as usize))
        .and_then(|k| k.guard.as_ref());
    let Some(g) = guard else {
        return;
    };
    out.extend_from_slice(b",\"guardrails\":[");
    for (i, h) in r.guard.hits().iter().enumerate() {
        let (Some(rule), Some(det)) = (
            g.rules.get(usize::from(h.rule)),
            g.dets.get(usize::from(h.detector)),
        ) else {
            continue;
        };
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"rule\":");
        json::string(out, rule.name.as_bytes());
        out.extend_from_slice(b",\"detector\":");
        json::string(out, det.id.as_bytes());
        out.extend_from_slice(if h.response {
            b",\"where\":\"response\""
        } else {
            b",\"where\":\"request\""
        });
        out.extend_from_slice(b",\"action\":\"");
        out.extend_from_slice(rule.action.name().as_bytes());
        out.extend_from_slice(b"\",\"count\":");
        json::uint(out, u64::from(h.count));
        out.push(b'}');
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        let mut out = Vec::new();
        super::rfc3339_micros(&mut out, 1_795_000_000_123_456);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-18T11:06:40.123456Z"
        );
        let mut out = Vec::new();
        super::rfc3339_micros(&mut out, 951_782_400_000_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
