//! The mock's worker threads and connection loop.
//!
//! Per connection: parse a head (tollgate's `http1`), read the body with `BodyDecoder`,
//! answer completely, then parse the next head from whatever is already buffered — so
//! pipelined requests are answered in order and a connection is reused only after its
//! response was written in full.

use std::cell::Cell;
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use tollgate::http1::{self, BodyDecoder, Limits, RequestHead};

use super::MockConfig;
use super::fault::Fault;
use super::ledger::{Entry, Ledger, SharedLedger};
use super::render::{self, Events, Plan};
use super::request::{self, Api, Dialect, Framing, HeadInfo, Shape};
use crate::io::{Abortable, read_more};

/// Completion tokens are capped so a request cannot make the mock allocate without bound.
const MAX_TOKENS: u32 = 1_000_000;
const READ_SPARE_BYTES: usize = 8 * 1024;

#[allow(
    clippy::disallowed_types,
    reason = "the mock's bookkeeping, not the gateway's request path"
)]
type IssuedTokens = std::sync::Mutex<std::collections::HashSet<String>>;

/// State shared (read-only) by all workers.
pub(super) struct Shared {
    cfg: MockConfig,
    defaults: Shape,
    ledgers: Vec<SharedLedger>,
    tls: Option<monoio_rustls::TlsAcceptor>,
    models_json: Vec<u8>,
    limits: Limits,
    /// Access tokens issued by the token endpoint: accepted like `--api-key`s.
    issued: IssuedTokens,
    /// `--vertex-public-key`, read.
    vertex_key: Option<Vec<u8>>,
}

impl Shared {
    pub(super) fn new(
        cfg: MockConfig,
        ledgers: Vec<SharedLedger>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> anyhow::Result<Self> {
        let mut models_json = b"{\"object\":\"list\",\"data\":[".to_vec();
        for (i, m) in cfg.models.iter().enumerate() {
            if i > 0 {
                models_json.push(b',');
            }
            models_json.extend_from_slice(b"{\"id\":");
            crate::json::string(&mut models_json, m.as_bytes());
            models_json.extend_from_slice(
                b",\"object\":\"model\",\"created\":1686935002,\"owned_by\":\"tollgate-mock\"}",
            );
        }
        models_json.extend_from_slice(b"]}");
        let vertex_key = match &cfg.vertex_public_key {
            Some(p) => Some(anyhow::Context::with_context(std::fs::read(p), || {
                p.display().to_string()
            })?),
            None => None,
        };
        Ok(Shared {
            issued: IssuedTokens::default(),
            vertex_key,
            defaults: cfg.shape()?,
            cfg,
            ledgers,
            tls: tls.map(monoio_rustls::TlsAcceptor::from),
            models_json,
            limits: Limits {
                max_head_bytes: 64 * 1024,
                max_headers: 128,
            },
        })
    }
}

pub(super) fn merged(ledgers: &[SharedLedger]) -> Ledger {
    let mut all = Ledger::default();
    for l in ledgers {
        if let Ok(l) = l.lock() {
            all.merge(&l);
        }
    }
    all
}

/// One worker's state. Lives on its thread.
struct Worker {
    id: usize,
    shared: Arc<Shared>,
    ledger: SharedLedger,
    serial: Cell<u64>,
    rng: Cell<u64>,
}

impl Worker {
    fn with_ledger(&self, f: impl FnOnce(&mut Ledger)) {
        if let Ok(mut l) = self.ledger.lock() {
            f(&mut l);
        }
    }

    /// xorshift64*: a uniform draw in [0, 1) for fault rates.
    fn draw(&self) -> f64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn rated_fault(&self) -> Option<Fault> {
        if self.shared.cfg.faults.is_empty() {
            return None;
        }
        let r = self.draw();
        let mut acc = 0.0;
        for f in &self.shared.cfg.faults {
            acc += f.rate;
            if r < acc {
                return Some(f.fault.clone());
            }
        }
        None
    }

    fn next_id(&self) -> String {
        let n = self.serial.get() + 1;
        self.serial.set(n);
        format!("{}-{n}", self.id)
    }
}

pub(super) fn run_worker(
    id: usize,
    shared: Arc<Shared>,
    listener: StdListener,
    ready: Sender<anyhow::Result<()>>,
) {
    let driver = shared.cfg.driver;
    let result = crate::io::block_on(driver, move || async move {
        let listener = match monoio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e.into()));
                return;
            }
        };
        let ledger = shared.ledgers[id].clone();
        let seed = shared
            .cfg
            .seed
            .wrapping_add(id as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            | 1;
        let w = Rc::new(Worker {
            id,
            shared,
            ledger,
            serial: Cell::new(0),
            rng: Cell::new(seed),
        });
        let _ = ready.send(Ok(()));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            w.with_ledger(|l| l.connections += 1);
            let w = w.clone();
            monoio::spawn(async move {
                match w.shared.tls.clone() {
                    None => serve(w, stream).await,
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            serve(w, tls).await;
                        }
                    }
                }
            });
        }
    });
    if let Err(e) = result {
        eprintln!("tollgate-mock: worker {id} could not start its runtime: {e}");
    }
}

/// How a response left the connection.
enum After {
    Keep,
    Close,
    Abort,
}

/// Per-connection buffers, reused across requests.
struct Conn {
    rbuf: Vec<u8>,
    out: Vec<u8>,
    body: Vec<u8>,
    events: Events,
}

async fn serve<S>(w: Rc<Worker>, mut io: S)
where
    S: AsyncReadRent + AsyncWriteRent + Abortable,
{
    let mut c = Conn {
        rbuf: Vec::with_capacity(READ_SPARE_BYTES),
        out: Vec::with_capacity(8 * 1024),
        body: Vec::new(),
        events: Events::default(),
    };
    let mut head = RequestHead::new();
    loop {
        // Read a head.
        let parsed = loop {
            match head.parse(&c.rbuf, &w.shared.limits) {
                Ok(Some(n)) => break Ok(n),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            let (res, buf) = read_more(&mut io, c.rbuf, READ_SPARE_BYTES).await;
            c.rbuf = buf;
            if !matches!(res, Ok(n) if n > 0) {
                return;
            }
        };
        let head_len = match parsed {
            Ok(n) => n,
            Err(e) => {
                w.with_ledger(|l| l.rejected += 1);
                let _ = send_error(
                    &mut io,
                    &mut c.out,
                    Dialect::OpenAi,
                    e.status(),
                    &e.to_string(),
                    Extra {
                        close: true,
                        ..Extra::default()
                    },
                )
                .await;
                return;
            }
        };
        let info = request::read_head(&head, &c.rbuf, &w.shared.defaults);
        let keep_alive = head.keep_alive;
        let expect_continue = head.expect_continue;
        let body_kind = head.body;
        c.rbuf.drain(..head_len);

        // Read the body (even for a request we will refuse, so the connection stays usable).
        if expect_continue && info.is_ok() {
            c.out.clear();
            c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            let (res, out) = io.write_all(std::mem::take(&mut c.out)).await;
            c.out = out;
            if res.is_err() {
                return;
            }
        }
        let dialect = info.as_ref().map_or(Dialect::OpenAi, |i| i.api.dialect());
        c.body.clear();
        if let Err((status, msg)) =
            read_body(&mut io, &mut c, body_kind, w.shared.cfg.max_body_bytes).await
        {
            if status != 0 {
                w.with_ledger(|l| l.rejected += 1);
                let _ = send_error(
                    &mut io,
                    &mut c.out,
                    dialect,
                    status,
                    &msg,
                    Extra {
                        close: true,
                        ..Extra::default()
                    },
                )
                .await;
            }
            return;
        }

        let after = match info {
            Err((status, msg)) => {
                w.with_ledger(|l| l.rejected += 1);
                send_error(
                    &mut io,
                    &mut c.out,
                    dialect,
                    status,
                    &msg,
                    Extra {
                        close: !keep_alive,
                        ..Extra::default()
                    },
                )
                .await
            }
            Ok(info) => answer(&w, &mut io, &mut c, info, !keep_alive).await,
        };
        match after {
            After::Keep if keep_alive => {}
            After::Abort => {
                io.abort();
                return;
            }
            _ => return,
        }
    }
}

/// Reads the request body into `c.body`. `Err((0, _))` means the peer went away (nothing to
/// answer); other statuses are answered.
async fn read_body<S: AsyncReadRent>(
    io: &mut S,
    c: &mut Conn,
    kind: http1::BodyKind,
    max: u64,
) -> Result<(), (u16, String)> {
    let mut dec = BodyDecoder::new(kind, max).map_err(|e| (413, e.to_string()))?;
    let mut pos = 0;
    loop {
        let step = dec.decode(&c.rbuf[pos..]).map_err(|e| {
            let status = if matches!(e, http1::BodyError::TooLarge(_)) {
                413
            } else {
                400
            };
            (status, e.to_string())
        })?;
        c.body
            .extend_from_slice(&c.rbuf[pos + step.data.start..pos + step.data.end]);
        pos += step.consumed;
        if step.done {
            break;
        }
        if step.consumed == 0 {
            c.rbuf.drain(..pos);
            pos = 0;
            let (res, buf) = read_more(io, std::mem::take(&mut c.rbuf), READ_SPARE_BYTES).await;
            c.rbuf = buf;
            if !matches!(res, Ok(n) if n > 0) {
                return Err((0, String::new()));
            }
        }
    }
    c.rbuf.drain(..pos);
    Ok(())
}

fn head_common(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &[u8],
    request_id: Option<&str>,
    close: bool,
) {
    out.clear();
    http1::write::status_line(out, status);
    http1::write::header(out, "content-type", content_type);
    if let Some(id) = request_id {
        http1::write::header(out, "x-request-id", id.as_bytes());
        http1::write::header(out, "request-id", id.as_bytes());
    }
    if close {
        http1::write::header(out, "connection", b"close");
    }
}

async fn write_out<S: AsyncWriteRent>(io: &mut S, out: &mut Vec<u8>) -> bool {
    let (res, buf) = io.write_all(std::mem::take(out)).await;
    *out = buf;
    res.is_ok()
}

/// What an error response carries besides its status and message.
#[derive(Clone, Copy, Default)]
struct Extra<'a> {
    retry_after: Option<u32>,
    /// The OpenAI `error.code` (default: by status).
    code: Option<&'a str>,
    /// Close the connection after the answer.
    close: bool,
}

/// Sends a complete error response in `dialect`'s shape.
async fn send_error<S: AsyncWriteRent>(
    io: &mut S,
    out: &mut Vec<u8>,
    dialect: Dialect,
    status: u16,
    message: &str,
    extra: Extra<'_>,
) -> After {
    let close = extra.close;
    let mut body = Vec::with_capacity(256);
    render::error_body_coded(dialect, status, message, extra.code, &mut body);
    head_common(out, status, b"application/json; charset=utf-8", None, close);
    if let Some(s) = extra.retry_after {
        http1::write::header_u64(out, "retry-after", u64::from(s));
        http1::write::header_u64(out, "retry-after-ms", u64::from(s) * 1000);
        http1::write::header(out, "x-should-retry", b"true");
    }
    http1::write::header_u64(out, "content-length", body.len() as u64);
    http1::write::end_head(out);
    out.extend_from_slice(&body);
    match (write_out(io, out).await, close) {
        (true, false) => After::Keep,
        _ => After::Close,
    }
}

/// A whole response of `status` and `content_type` with `body` (content-length framed).
async fn send_body<S: AsyncWriteRent>(
    io: &mut S,
    out: &mut Vec<u8>,
    (status, content_type): (u16, &[u8]),
    body: &[u8],
    close: bool,
) -> After {
    head_common(out, status, content_type, None, close);
    http1::write::header_u64(out, "content-length", body.len() as u64);
    http1::write::end_head(out);
    out.extend_from_slice(body);
    match (write_out(io, out).await, close) {
        (true, false) => After::Keep,
        _ => After::Close,
    }
}

async fn send_json<S: AsyncWriteRent>(
    io: &mut S,
    out: &mut Vec<u8>,
    body: &[u8],
    close: bool,
) -> After {
    send_body(io, out, (200, b"application/json"), body, close).await
}

/// Sleeps until `t`, returning at once when `t` has passed (the monoio timer would otherwise
/// round even a zero wait up to its next 1 ms tick).
async fn sleep_until(t: Instant) {
    if t > Instant::now() {
        monoio::time::sleep_until(t.into()).await;
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn answer<S>(w: &Worker, io: &mut S, c: &mut Conn, info: HeadInfo, close: bool) -> After
where
    S: AsyncReadRent + AsyncWriteRent,
{
    let HeadInfo {
        api,
        sigv4,
        key,
        shape,
        fault,
        traceparent,
    } = info;
    if let Some(t) = traceparent {
        w.with_ledger(|l| l.traceparent(t));
    }
    match api {
        Api::Health => return send_json(io, &mut c.out, b"{\"status\":\"ok\"}", close).await,
        Api::Stats => {
            let body = serde_json::to_vec(&merged(&w.shared.ledgers)).unwrap_or_default();
            return send_json(io, &mut c.out, &body, close).await;
        }
        Api::Reset => {
            for l in &w.shared.ledgers {
                if let Ok(mut l) = l.lock() {
                    *l = Ledger::default();
                }
            }
            return send_json(io, &mut c.out, b"{\"reset\":true}", close).await;
        }
        Api::OtlpTraces => {
            let bytes = c.body.len() as u64;
            w.with_ledger(|l| {
                l.otlp_requests += 1;
                l.otlp_bytes += bytes;
            });
            let ok = (200, &b"application/x-protobuf"[..]);
            return send_body(io, &mut c.out, ok, b"", close).await;
        }
        Api::Models => {
            let body = std::mem::take(&mut c.body);
            let after = send_json(io, &mut c.out, &w.shared.models_json, close).await;
            c.body = body;
            return after;
        }
        _ => {}
    }
    if api == Api::Token {
        let (status, body) = issue_token(w, &c.body);
        if status == 200 {
            w.with_ledger(|l| l.tokens_issued += 1);
        } else {
            w.with_ledger(|l| l.rejected += 1);
        }
        return send_body(io, &mut c.out, (status, b"application/json"), &body, close).await;
    }
    let dialect = api.dialect();
    let key_label = key.as_deref().unwrap_or("(none)");
    let issued = |k: &String| w.shared.issued.lock().is_ok_and(|s| s.contains(k));
    if !w.shared.cfg.api_keys.is_empty()
        && !key
            .as_ref()
            .is_some_and(|k| w.shared.cfg.api_keys.contains(k) || issued(k))
    {
        w.with_ledger(|l| l.rejected += 1);
        let msg = "Incorrect API key provided (tollgate-mock).";
        return send_error(
            io,
            &mut c.out,
            dialect,
            401,
            msg,
            Extra {
                close,
                ..Extra::default()
            },
        )
        .await;
    }
    if let Some(sig) = &sigv4
        && !sig.holds(&w.shared.cfg.aws_secret_key, &c.body)
    {
        w.with_ledger(|l| l.rejected += 1);
        let msg = "The request signature we calculated does not match the signature you \
                   provided. (tollgate-mock)";
        return send_error(
            io,
            &mut c.out,
            dialect,
            403,
            msg,
            Extra {
                close,
                ..Extra::default()
            },
        )
        .await;
    }
    if let Api::StoredResponse { id, call, delete } = &api {
        w.with_ledger(|l| l.stored_calls += 1);
        let mut body = Vec::with_capacity(1024);
        let status =
            tollgate::mock::stored_response(id.as_bytes(), *call, *delete, now_unix(), &mut body);
        return send_body(io, &mut c.out, (status, b"application/json"), &body, close).await;
    }
    let prompt_tokens = request::prompt_tokens(c.body.len());
    w.with_ledger(|l| l.body(&c.body));
    let fields = match request::read_fields(&api, &mut c.body) {
        Ok(f) => f,
        Err(msg) => {
            w.with_ledger(|l| l.rejected += 1);
            return send_error(
                io,
                &mut c.out,
                dialect,
                400,
                &msg,
                Extra {
                    close,
                    ..Extra::default()
                },
            )
            .await;
        }
    };
    let model = fields.model.as_str();
    let fault = fault.or_else(|| w.rated_fault()).unwrap_or_default();
    if fault != Fault::default() {
        w.with_ledger(|l| l.fault(fault.label()));
    }
    let error_entry = Entry {
        error: true,
        ..Entry::default()
    };

    if let (Some(ms), None) = (fault.stall_ms, fault.stall_after) {
        monoio::time::sleep(Duration::from_millis(ms)).await;
    }
    if fault.reset {
        w.with_ledger(|l| l.record(model, key_label, &error_entry));
        return After::Abort;
    }
    if let Some(status) = fault.status {
        w.with_ledger(|l| l.record(model, key_label, &error_entry));
        let retry = fault
            .retry_after
            .or(matches!(status, 429 | 503 | 529).then_some(1));
        // An injected 400 is the one a gateway most needs to recognise: the prompt does not fit
        // (or, with `policy`, a content-policy refusal).
        let (msg, code) = match (status, fault.policy) {
            (_, true) => (
                render::POLICY_MESSAGE.to_owned(),
                Some("content_policy_violation"),
            ),
            (400, false) => (
                render::CONTEXT_MESSAGE.to_owned(),
                Some("context_length_exceeded"),
            ),
            _ => (render::fault_message(status, retry.unwrap_or(0)), None),
        };
        let extra = Extra {
            retry_after: retry,
            code,
            close,
        };
        return send_error(io, &mut c.out, dialect, status, &msg, extra).await;
    }

    let is_embeddings = api == Api::Embeddings;
    let text = render::Tokens {
        bytes: shape.token_bytes,
        say: shape.say.as_deref(),
    };
    let tokens = text
        .count()
        .or(shape.tokens)
        .or(fields.max_tokens)
        .unwrap_or(w.shared.cfg.tokens)
        .clamp(1, MAX_TOKENS);
    let id = w.next_id();
    let plan = Plan {
        api: &api,
        model,
        id: &id,
        created: now_unix(),
        prompt_tokens,
        cached_tokens: shape.cached_tokens.min(prompt_tokens),
        tokens: if is_embeddings { 0 } else { tokens },
        reasoning_tokens: if is_embeddings {
            0
        } else {
            shape.reasoning_tokens
        },
        token_bytes: text,
        tool: fields.tool.as_deref(),
        include_usage: fields.include_usage,
        malformed: fault.malformed,
        truncate: fault.truncate,
        inputs: fields.inputs,
        texts: &fields.texts,
        dimensions: fields
            .dimensions
            .unwrap_or(w.shared.cfg.embedding_dims)
            .clamp(1, 65_536),
    };
    let sse = match &api {
        Api::Gemini { stream, sse, .. } => *stream && *sse,
        Api::Bedrock { stream, .. } => *stream,
        _ => fields.stream && !is_embeddings,
    };
    let start = Instant::now();
    // Called exactly once, before the bytes that complete the answer are written, so that a
    // client that has its whole answer always finds it in the ledger.
    let record = |e: &Entry| w.with_ledger(|l| l.record(model, key_label, e));
    let job = Job {
        plan: &plan,
        shape: &shape,
        fault: &fault,
        start,
        close,
        record: &record,
    };
    if sse {
        stream_answer(io, c, &job).await
    } else {
        json_answer(io, c, &job).await
    }
}

/// One answer being written: what to send, how to pace and break it, and where to bill it.
#[derive(Clone, Copy)]
struct Job<'a, 'p> {
    plan: &'a Plan<'p>,
    shape: &'a Shape,
    fault: &'a Fault,
    /// When the request was fully read; time to first token counts from here.
    start: Instant,
    /// Close the connection after this answer.
    close: bool,
    /// Records the ledger entry; called exactly once.
    record: &'a dyn Fn(&Entry),
}

/// Bills `plan` with `sent_tokens` visible completion tokens emitted.
fn billed(plan: &Plan<'_>, sent_tokens: u32, usage_reported: bool, stream: bool) -> Entry {
    Entry {
        error: false,
        billed: true,
        usage_reported,
        stream,
        prompt_tokens: plan.prompt_tokens,
        completion_tokens: u64::from(sent_tokens) + u64::from(plan.reasoning_tokens),
        cached_tokens: plan.cached_tokens,
        reasoning_tokens: u64::from(plan.reasoning_tokens),
    }
}

async fn json_answer<S>(io: &mut S, c: &mut Conn, job: &Job<'_, '_>) -> After
where
    S: AsyncWriteRent,
{
    let Job {
        plan,
        shape,
        fault,
        start,
        close,
        record,
    } = *job;
    let mut body = std::mem::take(&mut c.body);
    body.clear();
    if let Api::Gemini { stream: true, .. } = plan.api {
        render::gemini_array(plan, &mut c.events, &mut body);
    } else {
        render::json_body(plan, &mut body);
    }
    let entry = billed(plan, plan.tokens, !plan.malformed, false);
    // The whole answer is "generated" before the head goes out.
    let due = start + shape.ttft + shape.itl * plan.tokens.saturating_sub(1);
    sleep_until(due).await;
    let close = close || shape.framing == Framing::Close;
    head_common(&mut c.out, 200, b"application/json", Some(plan.id), close);
    let chunked = shape.framing == Framing::Chunked;
    match shape.framing {
        Framing::Natural => {
            http1::write::header_u64(&mut c.out, "content-length", body.len() as u64)
        }
        Framing::Chunked => http1::write::header(&mut c.out, "transfer-encoding", b"chunked"),
        Framing::Close => {}
    }
    http1::write::end_head(&mut c.out);
    let head_len = c.out.len();
    if chunked {
        http1::write::chunk(&mut c.out, &body);
        http1::write::last_chunk(&mut c.out);
    } else {
        c.out.extend_from_slice(&body);
    }
    c.body = body;
    record(&entry);
    let after = if let Some(n) = fault.reset_after {
        c.out
            .truncate(head_len + (n as usize).min(c.out.len() - head_len));
        let _ = write_out(io, &mut c.out).await;
        After::Abort
    } else if fault.drip {
        drip(io, &mut c.out, fault.drip_ms.unwrap_or(1)).await
    } else if write_out(io, &mut c.out).await {
        After::Keep
    } else {
        After::Close
    };
    match (after, close) {
        (After::Keep, true) => After::Close,
        (a, _) => a,
    }
}

/// Writes `out` one byte per write, `gap_ms` apart.
async fn drip<S: AsyncWriteRent>(io: &mut S, out: &mut Vec<u8>, gap_ms: u64) -> After {
    let all = std::mem::take(out);
    let mut one = Vec::with_capacity(1);
    for &b in &all {
        one.clear();
        one.push(b);
        let (res, buf) = io.write_all(one).await;
        one = buf;
        if res.is_err() {
            return After::Close;
        }
        monoio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    *out = all;
    After::Keep
}

async fn stream_answer<S>(io: &mut S, c: &mut Conn, job: &Job<'_, '_>) -> After
where
    S: AsyncWriteRent,
{
    let Job {
        plan,
        shape,
        fault,
        start,
        close,
        record,
    } = *job;
    let ev = &mut c.events;
    ev.clear();
    render::stream_events(plan, ev);
    let close = close || shape.framing == Framing::Close;
    let chunked = shape.framing != Framing::Close;
    let content_type: &[u8] = match plan.api {
        Api::Gemini { .. } => b"text/event-stream",
        Api::Bedrock { .. } => tollgate::dialect::bedrock::STREAM_CONTENT_TYPE,
        _ => b"text/event-stream; charset=utf-8",
    };
    head_common(&mut c.out, 200, content_type, Some(plan.id), close);
    http1::write::header(&mut c.out, "cache-control", b"no-cache");
    if chunked {
        http1::write::header(&mut c.out, "transfer-encoding", b"chunked");
    }
    http1::write::end_head(&mut c.out);

    let frame = |out: &mut Vec<u8>, bytes: &[u8]| {
        if chunked {
            http1::write::chunk(out, bytes);
        } else {
            out.extend_from_slice(bytes);
        }
    };
    let n = ev.len();
    let usage_at = ev.usage_event;
    let entry_through = |sent: usize| {
        let tokens = if sent == 0 { 0 } else { ev.tokens[sent - 1] };
        billed(plan, tokens, usage_at.is_some_and(|u| u < sent), true)
    };

    if fault.drip {
        for i in 0..n {
            frame(&mut c.out, &ev.buf[ev.range(i)]);
        }
        if chunked {
            http1::write::last_chunk(&mut c.out);
        }
        sleep_until(start + shape.ttft).await;
        record(&entry_through(n));
        let after = drip(io, &mut c.out, fault.drip_ms.unwrap_or(1)).await;
        return if close { After::Close } else { after };
    }

    let due = |tick: u32| start + shape.ttft + shape.itl * tick;
    // Events [group..i) are due together and not yet written.
    let mut group = 0;
    let mut sent = 0;
    sleep_until(due(ev.ticks.first().copied().unwrap_or(0))).await;
    let mut i = 0;
    while i <= n {
        let cut_reset = fault.reset_after.is_some_and(|r| r as usize == i);
        let cut_stall = fault.stall_after.is_some_and(|s| s as usize == i && i > 0);
        let new_tick = i < n && i > group && !shape.itl.is_zero() && ev.ticks[i] != ev.ticks[group];
        if i == n || cut_reset || cut_stall || new_tick {
            if i > group {
                let bytes = &ev.buf[ev.range(group).start..ev.range(i - 1).end];
                frame(&mut c.out, bytes);
            }
            if i == n && chunked && !cut_reset {
                http1::write::last_chunk(&mut c.out);
            }
            if i == n || cut_reset {
                record(&entry_through(i));
            }
            if !c.out.is_empty() {
                if !write_out(io, &mut c.out).await {
                    if i < n && !cut_reset {
                        record(&entry_through(sent));
                    }
                    return After::Close;
                }
                c.out.clear();
            }
            sent = i;
            group = i;
            if cut_reset {
                return After::Abort;
            }
            if i == n {
                break;
            }
            if cut_stall {
                monoio::time::sleep(Duration::from_millis(fault.stall_ms.unwrap_or(0))).await;
            }
            sleep_until(due(ev.ticks[i])).await;
        }
        i += 1;
    }
    if close { After::Close } else { After::Keep }
}

/// The token endpoint: a form with `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
/// and an RS256 `assertion` (checked against `--vertex-public-key` when given, and for its
/// claims: the cloud-platform scope, an expiry in the future) → `(status, JSON body)`.
fn issue_token(w: &Worker, form: &[u8]) -> (u16, Vec<u8>) {
    let refuse = |why: &str| {
        let mut b = b"{\"error\":\"invalid_grant\",\"error_description\":".to_vec();
        crate::json::string(&mut b, why.as_bytes());
        b.push(b'}');
        (400, b)
    };
    let field = |name: &[u8]| {
        form.split(|&b| b == b'&').find_map(|kv| {
            kv.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    };
    if field(b"grant_type") != Some(b"urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") {
        return refuse("grant_type must be the JWT bearer grant");
    }
    let Some(jwt) = field(b"assertion").and_then(|a| std::str::from_utf8(a).ok()) else {
        return refuse("no assertion");
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, sig] = parts[..] else {
        return refuse("the assertion is not a JWT");
    };
    let (Some(header_json), Some(claims_json), Some(sig)) = (
        base64url_decode(header),
        base64url_decode(claims),
        base64url_decode(sig),
    ) else {
        return refuse("the assertion is not base64url");
    };
    let (Ok(h), Ok(c)) = (
        serde_json::from_slice::<serde_json::Value>(&header_json),
        serde_json::from_slice::<serde_json::Value>(&claims_json),
    ) else {
        return refuse("the assertion's parts are not JSON");
    };
    if h["alg"] != "RS256" {
        return refuse("alg must be RS256");
    }
    if let Some(key) = &w.shared.vertex_key {
        let signed = &jwt[..header.len() + 1 + claims.len()];
        let verified = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key,
        )
        .verify(signed.as_bytes(), &sig);
        if verified.is_err() {
            return refuse("Invalid JWT Signature.");
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if !c["scope"]
        .as_str()
        .is_some_and(|s| s.contains("https://www.googleapis.com/auth/cloud-platform"))
        || c["exp"].as_u64().is_none_or(|e| e <= now)
        || c["iss"].as_str().is_none()
    {
        return refuse("the claims need iss, the cloud-platform scope and a future exp");
    }
    let token = format!("ya29.mock-{}", w.next_id());
    if let Ok(mut s) = w.shared.issued.lock() {
        s.insert(token.clone());
    }
    let body =
        format!("{{\"access_token\":\"{token}\",\"expires_in\":3599,\"token_type\":\"Bearer\"}}");
    (200, body.into_bytes())
}

fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
