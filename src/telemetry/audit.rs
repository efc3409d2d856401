//! The audit writer: a thread that owns the audit output (stdout or a file rotated by size)
//! and writes the batches of JSON lines the workers format.
//!
//! Per-request work stays on the workers: each formats its own records into a local batch
//! and hands the batch over with [`AuditSink::submit`] when it holds [`BATCH_BYTES`] or at
//! its tick, so this thread does one `write` per batch (a few hundred records at full load),
//! never anything per request, and the coordinator sees no audit record at all.
//!
//! Why a thread of its own: a slow or stuck disk must block nobody. `submit` never waits:
//! when the records already queued would exceed `queue_records`, the batch is dropped and
//! counted instead (and the coordinator says so on stderr). Loss rather than backpressure,
//! on purpose: a gateway that stalls model traffic because its audit disk is slow turns a
//! disk hiccup into an outage, the loss is bounded by the queue and reported, and the money
//! is not at stake (spend travels to the ledger separately and is never dropped).
//!
//! Rotation: before a batch would take the file past `max_file_bytes`, `path.N-1` → `path.N`,
//! …, `path` → `path.1`, and a new `path` is started; at most `max_files` rotated files are
//! kept. A batch is written whole to one file (lines are never split across files).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::{Audit, AuditOutput, Snapshot};
use crate::telemetry::log::audit_line;
use crate::telemetry::record::AuditRecord;

/// A worker hands its batch over once it holds this many bytes (or at its tick).
pub const BATCH_BYTES: usize = 32 * 1024;

enum Msg {
    Batch {
        lines: Vec<u8>,
        records: u64,
    },
    Configure(Audit),
    /// Sent by the coordinator once every worker has stopped: write what is queued, then end.
    Close,
}

/// Figures shared between the workers, the coordinator and the writer thread (touched once
/// per batch, never per request).
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Records handed to the writer and not yet written.
    pub queued: AtomicU64,
    pub written: AtomicU64,
    /// Records lost: the queue was full, or the output failed.
    pub dropped: AtomicU64,
}

/// A worker's way to the writer thread.
#[derive(Clone, Debug)]
pub struct AuditSink {
    tx: Sender<Msg>,
    stats: Arc<AuditStats>,
}

impl AuditSink {
    /// Hands a batch of `records` lines to the writer; never blocks. Returns false (and counts
    /// the records as dropped) when more than `bound` records would then be queued.
    pub fn submit(&self, lines: Vec<u8>, records: u64, bound: u64) -> bool {
        let queued = self.stats.queued.fetch_add(records, Ordering::Relaxed);
        let sent = queued + records <= bound && self.tx.send(Msg::Batch { lines, records }).is_ok();
        if !sent {
            self.stats.queued.fetch_sub(records, Ordering::Relaxed);
            self.stats.dropped.fetch_add(records, Ordering::Relaxed);
        }
        sent
    }
}

/// A worker's audit lines, formatted as its requests finish and handed to the writer in
/// batches.
#[derive(Debug, Default)]
pub struct AuditBatch {
    sink: Option<AuditSink>,
    lines: Vec<u8>,
    records: u64,
}

impl AuditBatch {
    pub fn new(sink: Option<AuditSink>) -> Self {
        AuditBatch {
            sink,
            lines: Vec::new(),
            records: 0,
        }
    }

    /// Formats `r` (a request of `snap`) when `snap` writes audit records; hands the batch
    /// over once it is [`BATCH_BYTES`] long or holds a quarter of the queue's bound (so a
    /// small `queue_records` still takes whole batches).
    pub fn record(&mut self, r: &AuditRecord, snap: &Snapshot) {
        if snap.audit.output == AuditOutput::Off || self.sink.is_none() {
            return;
        }
        if self.lines.capacity() == 0 {
            self.lines.reserve(BATCH_BYTES + BATCH_BYTES / 4);
        }
        audit_line(&mut self.lines, r, Some(snap));
        self.records += 1;
        let bound = snap.audit.queue_records as u64;
        if self.lines.len() >= BATCH_BYTES || self.records >= (bound / 4).max(1) {
            self.flush(bound);
        }
    }

    /// Hands over what is formatted (at the worker's tick and when it stops).
    pub fn flush(&mut self, bound: u64) {
        if self.records == 0 {
            return;
        }
        let lines = std::mem::take(&mut self.lines);
        if let Some(sink) = &self.sink {
            sink.submit(lines, std::mem::take(&mut self.records), bound);
        }
    }
}

/// Says on stderr when audit records were dropped: at most once per [`DROP_REPORT_INTERVAL`],
/// and at exit.
#[derive(Debug, Default)]
pub struct DropReport {
    reported: u64,
    next: Option<std::time::Instant>,
}

/// Dropped audit records are reported on stderr at most this often.
pub const DROP_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl DropReport {
    /// `dropped` records were dropped since start; `last`: the process is exiting.
    pub fn report(&mut self, dropped: u64, last: bool) {
        let now = std::time::Instant::now();
        if dropped > self.reported && (last || self.next.is_none_or(|t| now >= t)) {
            eprintln!(
                "tollgate: {} audit record(s) dropped ({} in total): the audit output or the \
                 coordinator is not keeping up; spend figures are unaffected",
                dropped - self.reported,
                dropped
            );
            self.reported = dropped;
            self.next = Some(now + DROP_REPORT_INTERVAL);
        }
    }
}

/// The coordinator's handle on the writer thread.
#[derive(Debug)]
pub struct AuditWriter {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    done: Option<Receiver<()>>,
    pub stats: Arc<AuditStats>,
}

impl AuditWriter {
    /// Opens the output (so a bad path fails at start, not later) and starts the thread.
    pub fn start(cfg: &Audit) -> io::Result<Self> {
        let out = Output::open(cfg)?;
        let stats = Arc::new(AuditStats::default());
        let (tx, rx) = channel();
        let (done_tx, done) = channel();
        let s = stats.clone();
        let thread = std::thread::Builder::new()
            .name("tollgate-audit".into())
            .spawn(move || {
                // Normal priority, unlike the coordinator: its work is a `write` per batch, and
                // at the lower priority a saturated worker on its core starved it until its
                // queue overflowed (two `perf/peers.sh` runs at fc7ceb0: 10,142 and 20,010
                // records dropped at nice 10; none since, of 1.3-1.4 million a run).
                run(out, rx, &s);
                let _ = done_tx.send(());
            })?;
        Ok(AuditWriter {
            tx: Some(tx),
            thread: Some(thread),
            done: Some(done),
            stats,
        })
    }

    /// A handle for one worker.
    pub fn sink(&self) -> Option<AuditSink> {
        Some(AuditSink {
            tx: self.tx.clone()?,
            stats: self.stats.clone(),
        })
    }

    /// A reload changed the `[audit]` table: reopen (in order with the batches before it).
    pub fn configure(&mut self, cfg: &Audit) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Configure(cfg.clone()));
        }
    }

    /// Flushes and stops the writer, waiting at most `wait` for it (a stuck output must not
    /// hold the process forever). Returns false if it did not finish in time. Batches workers
    /// submitted before this call are written; later ones are dropped and counted.
    pub fn close(&mut self, wait: Duration) -> bool {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Close);
        }
        let finished = self
            .done
            .take()
            .is_some_and(|d| d.recv_timeout(wait).is_ok());
        if finished && let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        finished
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

fn run(mut out: Output, rx: Receiver<Msg>, stats: &AuditStats) {
    let mut failing = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Batch { lines, records } => {
                let r = out.write(&lines);
                stats.queued.fetch_sub(records, Ordering::Relaxed);
                match r {
                    Ok(()) => {
                        stats.written.fetch_add(records, Ordering::Relaxed);
                        failing = false;
                    }
                    Err(e) => {
                        stats.dropped.fetch_add(records, Ordering::Relaxed);
                        if !failing {
                            eprintln!("tollgate: audit log: {e}; records are being dropped");
                        }
                        failing = true;
                    }
                }
                // Flush when caught up: batches are already coalesced by the workers.
                if stats.queued.load(Ordering::Relaxed) == 0 {
                    let _ = out.flush();
                }
            }
            Msg::Close => break,
            Msg::Configure(cfg) => {
                if cfg.output == out.cfg.output {
                    out.cfg = cfg;
                    continue;
                }
                let _ = out.flush();
                match Output::open(&cfg) {
                    Ok(o) => out = o,
                    Err(e) => eprintln!("tollgate: audit log: {e}; keeping the old output"),
                }
            }
        }
    }
    let _ = out.flush();
}

struct Output {
    cfg: Audit,
    sink: Sink,
}

enum Sink {
    Off,
    Stdout(io::BufWriter<io::Stdout>),
    File {
        path: PathBuf,
        file: io::BufWriter<File>,
        size: u64,
    },
}

impl Output {
    fn open(cfg: &Audit) -> io::Result<Output> {
        let sink = match &cfg.output {
            AuditOutput::Off => Sink::Off,
            AuditOutput::Stdout => Sink::Stdout(io::BufWriter::new(io::stdout())),
            AuditOutput::File(path) => {
                let file = open_append(path)?;
                let size = file.metadata()?.len();
                Sink::File {
                    path: path.clone(),
                    file: io::BufWriter::with_capacity(64 * 1024, file),
                    size,
                }
            }
        };
        Ok(Output {
            cfg: cfg.clone(),
            sink,
        })
    }

    fn write(&mut self, lines: &[u8]) -> io::Result<()> {
        match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Stdout(w) => w.write_all(lines),
            Sink::File { path, file, size } => {
                let len = lines.len() as u64;
                if *size > 0 && *size + len > self.cfg.max_file_bytes {
                    file.flush()?;
                    rotate(path, self.cfg.max_files)?;
                    *file = io::BufWriter::with_capacity(64 * 1024, open_append(path)?);
                    *size = 0;
                }
                file.write_all(lines)?;
                *size += len;
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Stdout(w) => w.flush(),
            Sink::File { file, .. } => file.flush(),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// `path.N-1` → `path.N`, …, `path` → `path.1` (the oldest, `path.N`, is replaced).
fn rotate(path: &Path, keep: u32) -> io::Result<()> {
    let numbered = |n: u32| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    };
    for n in (1..keep).rev() {
        let from = numbered(n);
        if from.exists() {
            std::fs::rename(&from, numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_lines_whole() {
        let dir = std::env::temp_dir().join(format!("tollgate-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let cfg = Audit {
            output: AuditOutput::File(path.clone()),
            max_file_bytes: 100,
            max_files: 2,
            queue_records: 1000,
        };
        let mut w = AuditWriter::start(&cfg).unwrap();
        let sink = w.sink().unwrap();
        for i in 0..10 {
            let line = format!("{{\"n\":{i:02},\"pad\":\"{}\"}}\n", "x".repeat(20));
            assert!(sink.submit(line.into_bytes(), 1, 1000));
        }
        assert!(w.close(Duration::from_secs(10)));
        assert_eq!(w.stats.written.load(Ordering::Relaxed), 10);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let files = [
            path.clone(),
            dir.join("audit.jsonl.1"),
            dir.join("audit.jsonl.2"),
        ];
        for f in &files {
            let text = read(f);
            assert!(text.len() <= 100, "{}: {} bytes", f.display(), text.len());
            for l in text.lines() {
                assert!(
                    l.starts_with("{\"n\":") && l.ends_with("\"}"),
                    "whole line: {l}"
                );
            }
        }
        assert!(!dir.join("audit.jsonl.3").exists(), "only max_files kept");
        // The newest records are in `path`, older ones in .1, then .2; nothing out of order.
        let all: Vec<String> = files
            .iter()
            .rev()
            .flat_map(|f| read(f).lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(all.len(), 6, "three files of two lines each: {all:?}");
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        assert!(all[5].contains("\"n\":09"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let cfg = Audit {
            output: AuditOutput::Off,
            max_file_bytes: 4096,
            max_files: 1,
            queue_records: 16,
        };
        let w = AuditWriter::start(&cfg).unwrap();
        let sink = w.sink().unwrap();
        w.stats.queued.store(10, Ordering::Relaxed); // as if the writer were stuck
        assert!(!sink.submit(b"x\n".repeat(7), 7, 16));
        assert_eq!(w.stats.dropped.load(Ordering::Relaxed), 7);
        assert_eq!(w.stats.queued.load(Ordering::Relaxed), 10);
        assert!(sink.submit(b"x\n".repeat(6), 6, 16));
    }
}
