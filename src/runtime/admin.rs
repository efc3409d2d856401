//! The admin API: a separate listener (`[admin] listen`, localhost by default), off unless an
//! admin key is configured or metrics are public, served by one plain thread — it is rare, tiny traffic, and must
//! never share a worker's core time with requests.
//!
//! Every request needs `Authorization: Bearer <admin key>` (compared by SHA-256 with
//! `admin.key_sha256`), but `GET /metrics` when `admin.metrics_public` is set (the listener
//! then runs even without a key, serving only that). Routes:
//!
//! - `GET /metrics` — Prometheus' text format, or OpenMetrics when the scraper's `Accept`
//!   names it: the coordinator's merged totals (`account::scrape` lists the families); a
//!   scrape never touches a worker.
//! - `GET /` or `/dashboard` — the dashboard page (public: it holds no data; it reads
//!   `/admin/stats` with the key given in its fragment, `/dashboard#key=…`, or none when
//!   metrics are public).
//! - `GET /admin/stats` — the stats document (`account::stats`): totals, the last ten
//!   seconds, per-second and per-minute series with latency percentiles, spend per key (last
//!   hour and day), per model and deployment, budget bars, deployment health. Public with
//!   `metrics_public`, like `/metrics`. `tollgate top` draws it.
//! - `GET /admin/quotas` — every budget and rate limit: cap, spent this period (or in the
//!   bucket), remaining, granted to workers, reserved by calls in flight, free to grant,
//!   consumed since start, soft threshold crossed; keys disabled at runtime; spend per key.
//! - `POST /admin/reset` with `{"scope":"key:<id>"}` or `{"scope":"team:<name>"}` — the
//!   scope's budgets start their period over (a credit record in the ledger, so it survives a
//!   restart).
//! - `GET /admin/deployments` — each deployment's health: `healthy`, `cooling_down` (circuit
//!   open on some worker — `open_on_workers` of them; `cooldown_remaining_ms`) or `probing`;
//!   EWMA time to first byte,
//!   calls in flight, requests, failures and retries (summed over workers; reported every
//!   250 ms).
//! - `POST /admin/keys/<id>/disable`, `POST /admin/keys/<id>/enable` — at runtime, persisted
//!   in the ledger until enabled again.
//! - `POST /admin/cache/purge` with `{}` (every entry), `{"model":"<name>"}`,
//!   `{"scope":"key:<id>"|"team:<name>"|"global"}` or both — the response cache's entries on
//!   every worker; answered once every worker dropped them.
//!
//! Errors are OpenAI-shaped JSON, like the main listener's.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::account::coordinator::AdminHandle;
use crate::account::coordinator::{AdminOp, AdminReply};
use crate::config::{Unit, Window};
use crate::error::{ErrorKind, GatewayError};
use crate::http1::{BodyKind, Limits, RequestHead, write};
use crate::json;

const MAX_REQUEST_BYTES: usize = 64 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The running admin listener.
#[derive(Debug)]
pub struct Admin {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Admin {
    pub fn start(listen: SocketAddr, access: Access, handle: AdminHandle) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-admin".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        return;
                    }
                    if let Ok(s) = conn {
                        serve(s, &access, &handle);
                    }
                }
            })?;
        Ok(Admin {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Unblock the accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Who may ask what of the admin listener.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The admin key's SHA-256 (`None`: only a public `/metrics` is served).
    pub key: Option<[u8; 32]>,
    /// `GET /metrics` needs no key.
    pub metrics_public: bool,
}

/// One request per connection.
fn serve(mut s: TcpStream, access: &Access, handle: &AdminHandle) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    let mut buf = Vec::with_capacity(4096);
    let mut head = RequestHead::new();
    let mut out = Vec::with_capacity(4096);
    let r = read_request(&mut s, &mut buf, &mut head).and_then(|body| {
        let method = head.method_span.get(&buf);
        let path = head.path(&buf);
        if method == b"GET" && (path == b"/" || path == b"/dashboard") {
            // The page holds no data: it asks `/admin/stats` with the key from its fragment.
            return Ok((
                200,
                "text/html; charset=utf-8",
                DASHBOARD.as_bytes().to_vec(),
            ));
        }
        let public = access.metrics_public && (path == b"/metrics" || path == b"/admin/stats");
        let auth = head.header(&buf, "authorization");
        if !public && !access.key.is_some_and(|k| authorized(auth, &k)) {
            return Err(GatewayError::new(
                ErrorKind::InvalidKey,
                "The admin API needs Authorization: Bearer <admin key>.",
            ));
        }
        if path == b"/metrics" {
            let accept = head.header(&buf, "accept").unwrap_or_default();
            return metrics(method, accept, handle);
        }
        if path == b"/admin/stats" && method == b"GET" {
            return match handle.call(AdminOp::Stats) {
                Some(AdminReply::Metrics { content_type, text }) => {
                    Ok((200, content_type, text.into_bytes()))
                }
                _ => Err(GatewayError::new(
                    ErrorKind::Overloaded,
                    "the coordinator did not answer",
                )),
            };
        }
        route(method, path, &buf[body], handle).map(|(status, json)| (status, JSON, json))
    });
    match r {
        Ok((status, content_type, body)) => {
            write::status_line(&mut out, status);
            write::header(&mut out, "content-type", content_type.as_bytes());
            write::header_u64(&mut out, "content-length", body.len() as u64);
            write::header(&mut out, "connection", b"close");
            write::end_head(&mut out);
            out.extend_from_slice(&body);
        }
        Err(e) => e.write_response(&mut out, true, b"", b""),
    }
    let _ = s.write_all(&out);
}

const JSON: &str = "application/json";

/// The dashboard: one self-contained page (no CDN, no build step; charts are plain SVG drawn by
/// its own script) that polls `/admin/stats` every 2 s.
const DASHBOARD: &str = include_str!("dashboard.html");

/// `GET /metrics`: the coordinator's totals in the format the scraper asks for.
fn metrics(
    method: &[u8],
    accept: &[u8],
    handle: &AdminHandle,
) -> Result<(u16, &'static str, Vec<u8>), GatewayError> {
    if method != b"GET" {
        return Err(GatewayError::new(
            ErrorKind::MethodNotAllowed,
            "GET /metrics",
        ));
    }
    let openmetrics = crate::telemetry::exposition::Exposition::wants_openmetrics(accept);
    match handle.call(AdminOp::Metrics { openmetrics }) {
        Some(AdminReply::Metrics { content_type, text }) => {
            Ok((200, content_type, text.into_bytes()))
        }
        _ => Err(GatewayError::new(
            ErrorKind::Overloaded,
            "the coordinator did not answer",
        )),
    }
}

/// Reads one request with the gateway's own HTTP/1.1 parser ([`crate::http1`]: the same
/// strictness about framing as the main listener) and returns where its body is in `buf`.
fn read_request(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    head: &mut RequestHead,
) -> Result<std::ops::Range<usize>, GatewayError> {
    let limits = Limits {
        max_head_bytes: MAX_REQUEST_BYTES,
        max_headers: 32,
    };
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_len) = head.parse(buf, &limits)? {
            let len = match head.body {
                BodyKind::Empty => 0,
                BodyKind::Length(n) if head_len as u64 + n <= MAX_REQUEST_BYTES as u64 => {
                    n as usize
                }
                BodyKind::Length(_) => {
                    return Err(GatewayError::new(
                        ErrorKind::BodyTooLarge,
                        "admin requests are small",
                    ));
                }
                BodyKind::Chunked | BodyKind::Close => {
                    return Err(GatewayError::new(
                        ErrorKind::BadRequest,
                        "send admin bodies with content-length",
                    ));
                }
            };
            if buf.len() >= head_len + len {
                return Ok(head_len..head_len + len);
            }
        }
        let n = s
            .read(&mut chunk)
            .map_err(|e| GatewayError::io(ErrorKind::RequestTimeout, "reading the request", e))?;
        if n == 0 {
            return Err(GatewayError::new(
                ErrorKind::BadRequest,
                "the connection closed before a complete request",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn authorized(auth: Option<&[u8]>, key: &[u8; 32]) -> bool {
    let Some(token) = auth.and_then(|a| a.strip_prefix(b"Bearer ")) else {
        return false;
    };
    let d = ring::digest::digest(&ring::digest::SHA256, token.trim_ascii());
    // Digests, not keys, are compared, and in constant time: every byte is looked at whatever
    // the first difference, so the time taken says nothing of how much of the digest matched.
    same_digest(d.as_ref(), key)
}

/// `a == b` for two digests, in time independent of where they differ.
fn same_digest(a: &[u8], b: &[u8; 32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn route(
    method: &[u8],
    path: &[u8],
    body: &[u8],
    handle: &AdminHandle,
) -> Result<(u16, Vec<u8>), GatewayError> {
    let op = match (method, path) {
        (b"GET", b"/admin/quotas") => AdminOp::State,
        (b"GET", b"/admin/deployments") => AdminOp::Deployments,
        (b"POST", b"/admin/reset") => {
            #[derive(serde::Deserialize)]
            struct Reset {
                scope: String,
            }
            let r: Reset = json::Scratch::default().parse(body).ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::InvalidBody,
                    "expected {\"scope\":\"key:<id>\"} or {\"scope\":\"team:<name>\"}",
                )
                .param("scope")
            })?;
            AdminOp::Reset(r.scope)
        }
        (b"POST", b"/admin/cache/purge") => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Purge {
                model: Option<String>,
                scope: Option<String>,
            }
            let p: Purge = if body.trim_ascii().is_empty() {
                Purge {
                    model: None,
                    scope: None,
                }
            } else {
                json::Scratch::default().parse(body).ok_or_else(|| {
                    GatewayError::new(
                        ErrorKind::InvalidBody,
                        "expected {} (everything), {\"model\":\"<name>\"} and/or \
                         {\"scope\":\"key:<id>\"|\"team:<name>\"|\"global\"}",
                    )
                })?
            };
            AdminOp::PurgeCache(crate::cache::Purge {
                model: p.model,
                scope: p.scope,
            })
        }
        (b"POST", p) if p.starts_with(b"/admin/keys/") => {
            let rest = String::from_utf8_lossy(&p[b"/admin/keys/".len()..]);
            match rest.rsplit_once('/') {
                Some((id, "disable")) => AdminOp::SetKey(id.to_owned(), false),
                Some((id, "enable")) => AdminOp::SetKey(id.to_owned(), true),
                _ => {
                    return Err(GatewayError::new(
                        ErrorKind::NotFound,
                        "no such admin route",
                    ));
                }
            }
        }
        (_, b"/admin/quotas" | b"/admin/reset" | b"/admin/deployments") => {
            return Err(GatewayError::new(
                ErrorKind::MethodNotAllowed,
                "wrong method for this admin route",
            ));
        }
        _ => {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                "no such admin route",
            ));
        }
    };
    let reply = handle.call(op).ok_or_else(|| {
        GatewayError::new(ErrorKind::Overloaded, "the coordinator did not answer")
    })?;
    let mut out = Vec::with_capacity(1024);
    match reply {
        AdminReply::State {
            quotas,
            disabled,
            spend,
            shared_spend,
        } => {
            out.extend_from_slice(b"{\"quotas\":[");
            for (i, q) in quotas.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                json::string(&mut out, q.name.as_bytes());
                out.extend_from_slice(b",\"scope\":");
                json::string(&mut out, q.scope.as_bytes());
                let unit: &[u8] = match q.unit {
                    Unit::MicroUsd => b"micro_usd",
                    Unit::Tokens => b"tokens",
                    Unit::Requests => b"requests",
                };
                out.extend_from_slice(b",\"unit\":");
                json::string(&mut out, unit);
                let window: &[u8] = match q.window {
                    Window::Minute => b"minute",
                    Window::Period(crate::calendar::Period::Daily) => b"daily",
                    Window::Period(crate::calendar::Period::Weekly) => b"weekly",
                    Window::Period(crate::calendar::Period::Monthly { .. }) => b"monthly",
                    Window::Period(crate::calendar::Period::Total) => b"total",
                };
                out.extend_from_slice(b",\"window\":");
                json::string(&mut out, window);
                for (name, v) in [
                    (&b",\"cap\":"[..], q.cap as i64),
                    (b",\"spent\":", q.spent),
                    (b",\"remaining\":", (q.cap as i64 - q.spent).max(0)),
                    (b",\"granted\":", q.granted),
                    (b",\"reserved\":", q.reserved),
                    (b",\"free\":", q.free),
                    (b",\"consumed\":", q.consumed),
                ] {
                    out.extend_from_slice(name);
                    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
                }
                out.extend_from_slice(b",\"warned\":");
                out.extend_from_slice(if q.warned { b"true" } else { b"false" });
                // `[cluster]`: every instance's figures as Redis last said, and this one's
                // lease; `spent` above is this instance's own.
                if let Some(g) = q.global {
                    out.extend_from_slice(b",\"global\":{\"spent\":");
                    out.extend_from_slice(itoa::Buffer::new().format(g.spent).as_bytes());
                    out.extend_from_slice(b",\"remaining\":");
                    let left = (q.cap as i64 - g.spent).max(0);
                    out.extend_from_slice(itoa::Buffer::new().format(left).as_bytes());
                    out.extend_from_slice(b",\"leased\":");
                    out.extend_from_slice(itoa::Buffer::new().format(g.out).as_bytes());
                    out.push(b'}');
                }
                if let Some(l) = q.leased {
                    out.extend_from_slice(b",\"instance_lease\":");
                    out.extend_from_slice(itoa::Buffer::new().format(l).as_bytes());
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"],\"disabled_keys\":[");
            for (i, k) in disabled.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json::string(&mut out, k.as_bytes());
            }
            out.extend_from_slice(b"],\"spend\":");
            spend_map(&mut out, &spend);
            // `[cluster]`: every instance's spend today, per key and team.
            if !shared_spend.is_empty() {
                out.extend_from_slice(b",\"shared_spend_today\":");
                spend_map(&mut out, &shared_spend);
            }
            out.push(b'}');
            Ok((200, out))
        }
        AdminReply::Deployments(deps) => {
            let now = std::time::Instant::now();
            out.extend_from_slice(b"{\"deployments\":[");
            for (i, d) in deps.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                json::string(&mut out, d.name.as_bytes());
                out.extend_from_slice(b",\"provider\":");
                json::string(&mut out, d.provider.as_bytes());
                out.extend_from_slice(b",\"strategy\":");
                json::string(&mut out, d.strategy.as_bytes());
                // The whole gateway: open if any worker has it open; sums; the mean EWMA of
                // the workers that measured it.
                let cooldown = d
                    .workers
                    .iter()
                    .filter_map(|w| w.open_until)
                    .map(|t| t.saturating_duration_since(now).as_millis() as u64)
                    .max();
                let measured: Vec<u64> = d
                    .workers
                    .iter()
                    .map(|w| w.ewma_ttft_us)
                    .filter(|&e| e > 0)
                    .collect();
                let ewma = measured.iter().sum::<u64>() / (measured.len().max(1) as u64);
                let state: &[u8] = match cooldown {
                    None => b"healthy",
                    Some(0) => b"probing",
                    Some(_) => b"cooling_down",
                };
                out.extend_from_slice(b",\"state\":");
                json::string(&mut out, state);
                let open_on = d.workers.iter().filter(|w| w.open_until.is_some()).count();
                for (name, v) in [
                    (&b",\"cooldown_remaining_ms\":"[..], cooldown.unwrap_or(0)),
                    (b",\"open_on_workers\":", open_on as u64),
                    (b",\"ewma_ttft_us\":", ewma),
                    (
                        b",\"inflight\":",
                        d.workers.iter().map(|w| u64::from(w.inflight)).sum(),
                    ),
                    (
                        b",\"requests\":",
                        d.workers.iter().map(|w| w.requests).sum(),
                    ),
                    (
                        b",\"failures\":",
                        d.workers.iter().map(|w| w.failures).sum(),
                    ),
                    (b",\"retries\":", d.workers.iter().map(|w| w.retries).sum()),
                ] {
                    out.extend_from_slice(name);
                    json::uint(&mut out, v);
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
            Ok((200, out))
        }
        AdminReply::Done(m) => {
            out.extend_from_slice(b"{\"ok\":true,\"message\":");
            json::string(&mut out, m.as_bytes());
            out.push(b'}');
            Ok((200, out))
        }
        AdminReply::NotFound(m) => Err(GatewayError::new(ErrorKind::NotFound, m)),
        // Served by `metrics`, never asked for here.
        AdminReply::Metrics { text, .. } => Ok((200, text.into_bytes())),
    }
}

/// `{"<name>":{"requests":…,"input_tokens":…,"output_tokens":…,"cost_micro_usd":…},…}`.
fn spend_map(out: &mut Vec<u8>, spend: &std::collections::BTreeMap<String, crate::account::Spend>) {
    out.push(b'{');
    for (i, (k, s)) in spend.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(out, k.as_bytes());
        out.extend_from_slice(b":{\"requests\":");
        json::uint(out, s.requests);
        out.extend_from_slice(b",\"estimated_requests\":");
        json::uint(out, s.estimated_requests);
        out.extend_from_slice(b",\"input_tokens\":");
        json::uint(out, s.input_tokens);
        out.extend_from_slice(b",\"output_tokens\":");
        json::uint(out, s.output_tokens);
        out.extend_from_slice(b",\"cost_micro_usd\":");
        json::uint(out, s.cost_micro_usd);
        out.push(b'}');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_key_is_checked_by_its_digest_whatever_byte_differs() {
        let mut key = [0u8; 32];
        key.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, b"sk-admin").as_ref());
        assert!(authorized(Some(b"Bearer sk-admin"), &key));
        assert!(!authorized(Some(b"Bearer sk-admix"), &key));
        assert!(
            !authorized(Some(b"sk-admin"), &key),
            "the Bearer scheme is required"
        );
        assert!(!authorized(None, &key));
        for i in 0..32 {
            let mut other = key;
            other[i] ^= 0x01;
            assert!(!same_digest(&other, &key), "byte {i}");
        }
        assert!(!same_digest(&key[..31], &key));
    }
}
