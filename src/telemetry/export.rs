//! The trace exporter: a thread that sends the spans workers encoded to an OTLP/HTTP
//! collector, in batches, off every request's path (`trace.rs` says what is in them).
//!
//! Workers append each sampled request's spans to a local [`TraceBatch`] and hand it over with
//! [`TraceSink::submit`] (never blocking; past `tracing.queue_spans` queued, the batch is
//! dropped and counted — loss rather than backpressure, as for the audit trail). The thread
//! sends one `ExportTraceServiceRequest` per [`EXPORT_SPANS`] spans or per [`EXPORT_EVERY`],
//! retries one that failed (no connection, 429, 5xx) after 100, 200 and 400 ms, and then drops
//! it and counts its spans. A collector answering 400 gets no retry (the request would not
//! change).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::trace::{TraceCtx, encode_spans, request_prefix};
use crate::config::{Snapshot, Tracing};
use crate::telemetry::record::AuditRecord;

/// A worker hands its batch over at this many bytes (or at its tick).
const BATCH_BYTES: usize = 64 * 1024;
/// Spans per export request, at most.
pub const EXPORT_SPANS: u64 = 512;
/// A partial batch waits at most this long.
pub const EXPORT_EVERY: Duration = Duration::from_secs(1);
const RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];
const IO_TIMEOUT: Duration = Duration::from_secs(5);

enum Msg {
    Spans {
        bytes: Vec<u8>,
        spans: u64,
    },
    Configure(Option<Tracing>),
    /// Send what is queued, then end.
    Close,
}

/// Counted once per batch (never per request), read by the metrics scrape.
#[derive(Debug, Default)]
pub struct TraceStats {
    pub queued: AtomicU64,
    pub exported: AtomicU64,
    /// Spans lost: the queue was full, or the collector failed every retry.
    pub dropped: AtomicU64,
    pub failed_exports: AtomicU64,
}

/// A worker's way to the exporter.
#[derive(Clone, Debug)]
pub struct TraceSink {
    tx: Sender<Msg>,
    stats: Arc<TraceStats>,
}

impl TraceSink {
    /// Hands `spans` encoded spans over; never blocks. False (and counted as dropped) when
    /// more than `bound` spans would then be queued.
    pub fn submit(&self, bytes: Vec<u8>, spans: u64, bound: u64) -> bool {
        let queued = self.stats.queued.fetch_add(spans, Ordering::Relaxed);
        let sent = queued + spans <= bound && self.tx.send(Msg::Spans { bytes, spans }).is_ok();
        if !sent {
            self.stats.queued.fetch_sub(spans, Ordering::Relaxed);
            self.stats.dropped.fetch_add(spans, Ordering::Relaxed);
        }
        sent
    }
}

/// A worker's encoded spans, on their way to the exporter.
#[derive(Debug, Default)]
pub struct TraceBatch {
    sink: Option<TraceSink>,
    bytes: Vec<u8>,
    spans: u64,
}

impl TraceBatch {
    pub fn new(sink: Option<TraceSink>) -> Self {
        TraceBatch {
            sink,
            bytes: Vec::new(),
            spans: 0,
        }
    }

    /// Encodes the spans of a sampled request.
    pub fn record(&mut self, r: &AuditRecord, t: &TraceCtx, snap: &Snapshot) {
        let Some(cfg) = &snap.tracing else {
            return;
        };
        if self.sink.is_none() {
            return;
        }
        if self.bytes.capacity() == 0 {
            // One allocation per batch, not a doubling series.
            self.bytes.reserve(BATCH_BYTES + BATCH_BYTES / 4);
        }
        encode_spans(&mut self.bytes, r, t, snap);
        self.spans += 1 + u64::from(r.tries.n);
        if self.bytes.len() >= BATCH_BYTES {
            self.flush(cfg.queue_spans as u64);
        }
    }

    /// Hands over what is encoded (at the worker's tick and when it stops).
    pub fn flush(&mut self, bound: u64) {
        if self.spans == 0 {
            return;
        }
        let bytes = std::mem::take(&mut self.bytes);
        if let Some(sink) = &self.sink {
            sink.submit(bytes, std::mem::take(&mut self.spans), bound);
        }
    }
}

/// The coordinator's handle on the exporter thread.
#[derive(Debug)]
pub struct TraceExporter {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<TraceStats>,
}

impl TraceExporter {
    /// Starts the thread (idle while tracing is off).
    pub fn start(cfg: Option<Tracing>) -> io::Result<Self> {
        let stats = Arc::new(TraceStats::default());
        let (tx, rx) = channel();
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-traces".into())
            .spawn(move || run(rx, cfg, &st))?;
        Ok(TraceExporter {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    pub fn sink(&self) -> Option<TraceSink> {
        Some(TraceSink {
            tx: self.tx.clone()?,
            stats: self.stats.clone(),
        })
    }

    /// A reload's `[tracing]` (a new collector applies to the next export).
    pub fn configure(&self, cfg: Option<Tracing>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Configure(cfg));
        }
    }

    /// Sends what is queued (with its retries) and stops the thread.
    pub fn close(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Close);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TraceExporter {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(rx: Receiver<Msg>, mut cfg: Option<Tracing>, stats: &TraceStats) {
    // The workers' batches as they came (sent one after another, never joined).
    let mut pending: Vec<Vec<u8>> = Vec::new();
    let mut spans = 0u64;
    let mut since = Instant::now();
    loop {
        // Nothing pending: wait for spans as long as it takes; else until the batch is due.
        let got = if spans == 0 {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(EXPORT_EVERY.saturating_sub(since.elapsed()))
        };
        let closing = match got {
            Ok(Msg::Spans { bytes, spans: n }) => {
                stats.queued.fetch_sub(n, Ordering::Relaxed);
                if pending.is_empty() {
                    since = Instant::now();
                }
                pending.push(bytes);
                spans += n;
                false
            }
            Ok(Msg::Configure(c)) => {
                cfg = c;
                false
            }
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        };
        let due = spans >= EXPORT_SPANS || (spans > 0 && since.elapsed() >= EXPORT_EVERY);
        if (due || closing) && spans > 0 {
            match &cfg {
                Some(c) if export(c, &pending, stats) => {
                    stats.exported.fetch_add(spans, Ordering::Relaxed);
                }
                _ => {
                    stats.dropped.fetch_add(spans, Ordering::Relaxed);
                }
            }
            pending.clear();
            spans = 0;
            since = Instant::now();
        }
        if closing {
            return;
        }
    }
}

/// POSTs one export request for `spans` (batches of concatenated `ScopeSpans.spans` entries),
/// with retries. True once the collector accepted it.
#[allow(
    clippy::disallowed_methods,
    reason = "the exporter's own thread waits between retries; no worker runs here"
)]
fn export(cfg: &Tracing, spans: &[Vec<u8>], stats: &TraceStats) -> bool {
    let spans_len = spans.iter().map(Vec::len).sum();
    let prefix = request_prefix(cfg, spans_len);
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-protobuf\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        cfg.path,
        cfg.authority,
        prefix.len() + spans_len
    )
    .into_bytes();
    head.extend_from_slice(&prefix);
    for wait in std::iter::once(Duration::ZERO).chain(RETRIES) {
        std::thread::sleep(wait);
        match post(cfg, &head, spans) {
            Ok(s) if (200..300).contains(&s) => return true,
            // The collector refused the data itself: sending it again changes nothing.
            Ok(s) if (400..500).contains(&s) && s != 429 && s != 408 => break,
            _ => {}
        }
    }
    stats.failed_exports.fetch_add(1, Ordering::Relaxed);
    false
}

/// One request on a fresh connection; the response's status.
#[allow(
    clippy::disallowed_methods,
    reason = "the exporter thread resolves its collector itself, off every worker"
)]
fn post(cfg: &Tracing, head: &[u8], body: &[Vec<u8>]) -> io::Result<u16> {
    let addr = (cfg.host.as_str(), cfg.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.write_all(head)?;
    for b in body {
        s.write_all(b)?;
    }
    // The whole response (`connection: close`; a collector's answer is small), so that the
    // collector is not cut off while it writes.
    let mut answer = Vec::new();
    s.take(64 * 1024).read_to_end(&mut answer)?;
    // "HTTP/1.1 200 …": the status is bytes 9..12.
    std::str::from_utf8(answer.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an HTTP response"))
}
