//! The load engine: threads × connections × phases.
//!
//! A run is a list of [`Phase`]s (warm-up, then measured time; in A/B mode, short slices that
//! alternate between the two targets). Every thread runs every phase on its own monoio
//! runtime with its own connection pool per target, so connections stay warm across slices.
//!
//! Closed loop: `concurrency` tasks, each sending its next request when its previous one
//! completes; latency = completion − send.
//!
//! Open loop: requests have *intended* send times (constant spacing or Poisson), handed out
//! as tickets to the connection tasks. Coordinated omission is corrected at its source: a
//! ticket that is already overdue when a connection task takes it (every connection was busy —
//! the system under test was slow) is measured from its intended time, so a stall shows up as
//! latency of every request that should have been sent during it. A ticket taken early is
//! waited for with the monoio timer, whose resolution is 1 ms; lateness of that wake-up is the
//! generator's own, so such a request is measured from when it was actually sent, and the
//! lateness is reported separately (`send_lag`). (Spinning for sub-millisecond pacing is not
//! an option inside monoio: a task that wakes itself is re-queued at the front of the run
//! queue and starves I/O.) A ticket issued before the end of a phase is always sent and
//! measured, even if that runs past the end.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tollgate::http1::Method;

use super::client::{Client, ExchangeError};
use super::conn::{Stream, Target};
use super::scenario::{Arrival, Mode, RequestSpec};
use crate::dialect::Dialect;
use crate::io::Driver;

/// Histograms hold nanoseconds up to this.
const MAX_RECORDED_NS: u64 = 120_000_000_000;

/// A fully resolved run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub targets: Vec<Target>,
    pub requests: Vec<RequestSpec>,
    pub keys: Vec<String>,
    pub mode: Mode,
    pub arrival: Arrival,
    /// Open loop: requests per second over all threads.
    pub rate: f64,
    /// Closed loop: in-flight requests; open loop: connection cap. Over all threads.
    pub concurrency: usize,
    pub threads: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub slice: Duration,
    pub timeout: Duration,
    pub driver: Driver,
    pub watch_pid: Option<u32>,
    pub progress: bool,
    pub seed: u64,
    /// `--plot`: where the SVG goes.
    pub plot: Option<std::path::PathBuf>,
}

/// One stretch of time against one target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    pub target: usize,
    pub len: Duration,
    pub record: bool,
}

/// The phase list: warm-up then measurement; in A/B mode both split into alternating slices.
pub fn phases(cfg: &RunConfig) -> Vec<Phase> {
    let mut out = Vec::new();
    let n = cfg.targets.len();
    if n == 1 {
        if !cfg.warmup.is_zero() {
            out.push(Phase {
                target: 0,
                len: cfg.warmup,
                record: false,
            });
        }
        out.push(Phase {
            target: 0,
            len: cfg.duration,
            record: true,
        });
        return out;
    }
    if !cfg.warmup.is_zero() {
        for t in 0..n {
            out.push(Phase {
                target: t,
                len: cfg.warmup / n as u32,
                record: false,
            });
        }
    }
    let slice = if cfg.slice.is_zero() {
        Duration::from_secs(1)
    } else {
        cfg.slice
    };
    let mut left = cfg.duration;
    while !left.is_zero() {
        let len = slice.min(left);
        for t in 0..n {
            out.push(Phase {
                target: t,
                len,
                record: true,
            });
        }
        left -= len;
    }
    out
}

#[allow(
    clippy::expect_used,
    reason = "constant bounds, exercised by every test that records"
)]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_RECORDED_NS, 3).expect("valid histogram bounds")
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Measurements for one target.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Completion − intended send (open loop) or − send (closed loop).
    pub latency: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub ttft: Histogram<u64>,
    pub gap: Histogram<u64>,
    pub send_lag: Histogram<u64>,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub body_bytes: u64,
    pub events: u64,
    pub streams: u64,
    pub streams_ended: u64,
    /// Measured wall time spent on this target.
    pub elapsed: Duration,
    /// CPU time of the watched process during this target's phases.
    pub watched_cpu: Duration,
    /// Latency per second of the run (index: seconds since it began), for `--plot`.
    pub timeline: Vec<Second>,
}

/// Buckets of a [`Second`]: four per octave from 1 µs (the last holds everything over ~2 min).
pub const SECOND_BUCKETS: usize = 112;

/// The latencies measured in one second, in log-scale buckets.
#[derive(Clone, Debug)]
pub struct Second {
    pub count: u64,
    pub buckets: [u32; SECOND_BUCKETS],
}

impl Default for Second {
    fn default() -> Self {
        Second {
            count: 0,
            buckets: [0; SECOND_BUCKETS],
        }
    }
}

impl Second {
    /// The bucket of `us` microseconds: 4·log2(us + 1).
    pub fn bucket(us: u64) -> usize {
        let x = (us + 1) as f64;
        ((4.0 * x.log2()) as usize).min(SECOND_BUCKETS - 1)
    }

    /// The upper edge of bucket `i`, µs.
    pub fn edge(i: usize) -> f64 {
        2f64.powf((i + 1) as f64 / 4.0) - 1.0
    }

    /// The `q` quantile (0–1), µs (the bucket's upper edge); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return Some(Second::edge(i));
            }
        }
        Some(Second::edge(SECOND_BUCKETS - 1))
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: histogram(),
            ttfb: histogram(),
            ttft: histogram(),
            gap: histogram(),
            send_lag: histogram(),
            requests: 0,
            ok: 0,
            errors: BTreeMap::new(),
            statuses: BTreeMap::new(),
            body_bytes: 0,
            events: 0,
            streams: 0,
            streams_ended: 0,
            elapsed: Duration::ZERO,
            watched_cpu: Duration::ZERO,
            timeline: Vec::new(),
        }
    }
}

impl Stats {
    pub fn merge(&mut self, o: &Stats) {
        let _ = self.latency.add(&o.latency);
        let _ = self.ttfb.add(&o.ttfb);
        let _ = self.ttft.add(&o.ttft);
        let _ = self.gap.add(&o.gap);
        let _ = self.send_lag.add(&o.send_lag);
        self.requests += o.requests;
        self.ok += o.ok;
        for (k, v) in &o.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        self.body_bytes += o.body_bytes;
        self.events += o.events;
        self.streams += o.streams;
        self.streams_ended += o.streams_ended;
        // Threads run the same phases concurrently: wall time and CPU are not additive.
        self.elapsed = self.elapsed.max(o.elapsed);
        self.watched_cpu = self.watched_cpu.max(o.watched_cpu);
        if self.timeline.len() < o.timeline.len() {
            self.timeline.resize(o.timeline.len(), Second::default());
        }
        for (a, b) in self.timeline.iter_mut().zip(&o.timeline) {
            a.count += b.count;
            for (x, y) in a.buckets.iter_mut().zip(&b.buckets) {
                *x += y;
            }
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn error(&mut self, label: &str) {
        match self.errors.get_mut(label) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(label.to_owned(), 1);
            }
        }
    }
}

/// Counters the progress printer reads while the run goes on.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub errors: AtomicU64,
    /// Per thread: p99 latency (ns) of the measured requests so far.
    pub p99_ns: Vec<AtomicU64>,
}

/// Request bytes rendered per target, per request spec, per key.
struct Prepared {
    bytes: Vec<Vec<Vec<Bytes>>>,
    methods: Vec<Method>,
    dialects: Vec<Dialect>,
    /// Cumulative weights.
    cumulative: Vec<u64>,
}

impl Prepared {
    fn new(cfg: &RunConfig) -> anyhow::Result<Prepared> {
        anyhow::ensure!(!cfg.requests.is_empty(), "no requests to send");
        let keys: Vec<Option<&str>> = if cfg.keys.is_empty() {
            vec![None]
        } else {
            cfg.keys.iter().map(|k| Some(k.as_str())).collect()
        };
        let mut bytes = Vec::new();
        for t in &cfg.targets {
            let host = format!("{}:{}", t.host, t.addr.port());
            let mut per_req = Vec::new();
            for r in &cfg.requests {
                per_req.push(
                    keys.iter()
                        .map(|k| r.render(&host, *k))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                );
            }
            bytes.push(per_req);
        }
        let mut acc = 0u64;
        let cumulative = cfg
            .requests
            .iter()
            .map(|r| {
                acc += u64::from(r.weight);
                acc
            })
            .collect();
        anyhow::ensure!(acc > 0, "request weights add up to 0");
        Ok(Prepared {
            bytes,
            methods: cfg.requests.iter().map(RequestSpec::method).collect(),
            dialects: cfg.requests.iter().map(|r| r.dialect).collect(),
            cumulative,
        })
    }
}

/// Runs the load. Returns per-target stats and the phases that were run.
pub fn run(cfg: &RunConfig, progress: &Arc<Progress>) -> anyhow::Result<Vec<Stats>> {
    let prep = Arc::new(Prepared::new(cfg)?);
    let cfg = Arc::new(cfg.clone());
    let mut handles = Vec::new();
    let started = Instant::now();
    for tid in 0..cfg.threads {
        let (cfg, prep, progress) = (cfg.clone(), prep.clone(), progress.clone());
        let h = std::thread::Builder::new()
            .name(format!("load-{tid}"))
            .spawn(move || {
                crate::io::block_on(cfg.driver, || {
                    thread_main(tid, started, cfg.clone(), prep, progress)
                })
            })?;
        handles.push(h);
    }
    let mut total: Vec<Stats> = (0..cfg.targets.len()).map(|_| Stats::default()).collect();
    for h in handles {
        let per = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))???;
        for (t, s) in total.iter_mut().zip(per.iter()) {
            t.merge(s);
        }
    }
    Ok(total)
}

struct ThreadState {
    tid: usize,
    /// When the run began (the timeline's zero).
    started: Instant,
    cfg: Arc<RunConfig>,
    prep: Arc<Prepared>,
    progress: Arc<Progress>,
    pools: Vec<RefCell<Vec<Client<Stream>>>>,
    stats: Vec<RefCell<Stats>>,
    rng: Cell<u64>,
    next_key: Cell<usize>,
}

impl ThreadState {
    fn draw(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&self) -> f64 {
        ((self.draw() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn pick(&self) -> (usize, usize) {
        let c = &self.prep.cumulative;
        let total = c.last().copied().unwrap_or(1);
        let r = self.draw() % total;
        let req = c.partition_point(|&w| w <= r);
        let nkeys = self.prep.bytes[0][req].len();
        let k = self.next_key.get();
        self.next_key.set(k + 1);
        (req, k % nkeys)
    }
}

async fn thread_main(
    tid: usize,
    started: Instant,
    cfg: Arc<RunConfig>,
    prep: Arc<Prepared>,
    progress: Arc<Progress>,
) -> anyhow::Result<Vec<Stats>> {
    let n = cfg.targets.len();
    let st = Rc::new(ThreadState {
        tid,
        started,
        pools: (0..n).map(|_| RefCell::new(Vec::new())).collect(),
        stats: (0..n).map(|_| RefCell::new(Stats::default())).collect(),
        rng: Cell::new(
            cfg.seed
                .wrapping_add(tid as u64 + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                | 1,
        ),
        next_key: Cell::new(tid),
        cfg: cfg.clone(),
        prep,
        progress,
    });
    let ticker = monoio::spawn(p99_ticker(st.clone()));
    for phase in phases(&cfg) {
        run_phase(&st, phase).await;
    }
    drop(ticker);
    let out = st.stats.iter().map(|s| s.borrow().clone()).collect();
    Ok(out)
}

/// Publishes this thread's p99 so far for the progress line.
async fn p99_ticker(st: Rc<ThreadState>) {
    loop {
        monoio::time::sleep(Duration::from_millis(250)).await;
        let p99 = st
            .stats
            .iter()
            .map(|s| s.borrow().latency.value_at_quantile(0.99))
            .max()
            .unwrap_or(0);
        if let Some(slot) = st.progress.p99_ns.get(st.tid) {
            slot.store(p99, Ordering::Relaxed);
        }
    }
}

/// This thread's share of `total` (the first threads take the remainder).
fn share(total: usize, threads: usize, tid: usize) -> usize {
    total / threads + usize::from(tid < total % threads)
}

async fn run_phase(st: &Rc<ThreadState>, phase: Phase) {
    let cfg = &st.cfg;
    let start = Instant::now();
    let end = start + phase.len;
    let cpu_before = if phase.record && st.tid == 0 {
        cfg.watch_pid.and_then(super::cpu::process_cpu)
    } else {
        None
    };
    let tasks = share(cfg.concurrency, cfg.threads, st.tid).max(1);
    let mut joins = Vec::with_capacity(tasks);
    match cfg.mode {
        Mode::Closed => {
            for _ in 0..tasks {
                let st = st.clone();
                joins.push(monoio::spawn(async move {
                    while Instant::now() < end {
                        one_request(&st, phase, None).await;
                    }
                }));
            }
        }
        Mode::Open => {
            let rate = (cfg.rate / cfg.threads as f64).max(1e-9);
            // Threads interleave their constant schedules: thread t is offset by t/threads.
            let offset = st.tid as f64 / cfg.threads as f64 / rate;
            let schedule = Rc::new(Schedule {
                next: Cell::new(offset),
                index: Cell::new(0),
            });
            for _ in 0..tasks {
                let (st, schedule) = (st.clone(), schedule.clone());
                joins.push(monoio::spawn(async move {
                    loop {
                        let at = schedule.take(st.cfg.arrival, rate, &st);
                        let intended = start + Duration::from_secs_f64(at);
                        if intended >= end {
                            break;
                        }
                        let overdue = Instant::now() >= intended;
                        if !overdue {
                            monoio::time::sleep_until(intended.into()).await;
                        }
                        one_request(&st, phase, Some((intended, overdue))).await;
                    }
                }));
            }
        }
    }
    for j in joins {
        j.await;
    }
    if phase.record {
        let mut s = st.stats[phase.target].borrow_mut();
        s.elapsed += start.elapsed();
        if let (Some(before), Some(pid)) = (cpu_before, cfg.watch_pid)
            && let Some(after) = super::cpu::process_cpu(pid)
        {
            s.watched_cpu += after.saturating_sub(before);
        }
    }
}

/// The open-loop ticket dispenser shared by a thread's connection tasks.
struct Schedule {
    /// Seconds after phase start of the next intended send.
    next: Cell<f64>,
    index: Cell<u64>,
}

impl Schedule {
    fn take(&self, arrival: Arrival, rate: f64, st: &ThreadState) -> f64 {
        let at = self.next.get();
        let i = self.index.get() + 1;
        self.index.set(i);
        let gap = match arrival {
            Arrival::Constant => 1.0 / rate,
            Arrival::Poisson => -st.uniform().ln() / rate,
        };
        self.next.set(at + gap);
        at
    }
}

/// Sends one request. `intended` (open loop): the ticket's intended send time and whether it
/// was already overdue when taken.
async fn one_request(st: &Rc<ThreadState>, phase: Phase, intended: Option<(Instant, bool)>) {
    let t = phase.target;
    let target = &st.cfg.targets[t];
    let pooled = st.pools[t].borrow_mut().pop();
    let begin = Instant::now();
    let record = phase.record;
    let mut client = match pooled {
        Some(c) => c,
        None => match target.connect().await {
            Ok(c) => c,
            Err(e) => {
                finish_error(st, phase, &e);
                // Do not spin on a refusing target.
                monoio::time::sleep(Duration::from_millis(10)).await;
                return;
            }
        },
    };
    let (req, key) = st.pick();
    let bytes = st.prep.bytes[t][req][key].clone();
    let (method, dialect) = (st.prep.methods[req], st.prep.dialects[req]);
    let sent = Instant::now();
    let stats = &st.stats[t];
    let mut gap = |g: Duration| {
        if record {
            stats.borrow_mut().gap.saturating_record(ns(g));
        }
    };
    let result = monoio::time::timeout(
        st.cfg.timeout,
        client.exchange(bytes, method, dialect, &mut gap),
    )
    .await;
    let done = Instant::now();
    let outcome = match result {
        Ok(r) => r,
        Err(_) => Err(ExchangeError::Timeout),
    };
    match outcome {
        Ok(x) => {
            let ok = (200..300).contains(&x.status) && (!x.is_stream || x.stream_ended);
            if record {
                let mut s = stats.borrow_mut();
                s.requests += 1;
                *s.statuses.entry(x.status).or_default() += 1;
                let from = match intended {
                    Some((at, true)) => at,
                    Some((_, false)) => begin,
                    None => sent,
                };
                let latency = done.saturating_duration_since(from);
                s.latency.saturating_record(ns(latency));
                let at = done.saturating_duration_since(st.started).as_secs() as usize;
                if s.timeline.len() <= at {
                    s.timeline.resize(at + 1, Second::default());
                }
                let sec = &mut s.timeline[at];
                sec.count += 1;
                sec.buckets[Second::bucket(latency.as_micros() as u64)] += 1;
                if let Some((at, _)) = intended {
                    s.send_lag
                        .saturating_record(ns(begin.saturating_duration_since(at)));
                }
                s.ttfb.saturating_record(ns(x.ttfb));
                if let Some(tt) = x.ttft {
                    s.ttft.saturating_record(ns(tt));
                }
                s.body_bytes += x.body_bytes;
                s.events += u64::from(x.events);
                if x.is_stream {
                    s.streams += 1;
                    s.streams_ended += u64::from(x.stream_ended);
                }
                if ok {
                    s.ok += 1;
                } else if x.is_stream && !x.stream_ended {
                    s.error("stream_incomplete");
                } else {
                    s.error(status_label(x.status));
                }
            }
            st.progress.done.fetch_add(1, Ordering::Relaxed);
            if !ok {
                st.progress.errors.fetch_add(1, Ordering::Relaxed);
            }
            if x.keep_alive {
                st.pools[t].borrow_mut().push(client);
            }
        }
        Err(e) => finish_error(st, phase, &e),
    }
}

fn status_label(status: u16) -> &'static str {
    match status {
        429 => "status_429",
        400..=499 => "status_4xx",
        500..=599 => "status_5xx",
        _ => "status_other",
    }
}

fn finish_error(st: &ThreadState, phase: Phase, e: &ExchangeError) {
    if phase.record {
        let mut s = st.stats[phase.target].borrow_mut();
        s.requests += 1;
        s.error(e.label());
    }
    st.progress.done.fetch_add(1, Ordering::Relaxed);
    st.progress.errors.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(targets: usize) -> RunConfig {
        let t = Target::parse("http://127.0.0.1:1", None).unwrap();
        RunConfig {
            targets: vec![t; targets],
            requests: vec![RequestSpec::small_chat(false)],
            keys: vec![],
            mode: Mode::Closed,
            arrival: Arrival::Constant,
            rate: 1.0,
            concurrency: 1,
            threads: 1,
            duration: Duration::from_millis(2500),
            warmup: Duration::from_secs(1),
            slice: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            driver: Driver::Auto,
            watch_pid: None,
            progress: false,
            plot: None,
            seed: 1,
        }
    }

    #[test]
    fn ab_phases_alternate_and_sum_to_duration() {
        let p = phases(&cfg(2));
        assert_eq!(p.iter().filter(|p| !p.record).count(), 2);
        let measured: Vec<_> = p.iter().filter(|p| p.record).collect();
        assert_eq!(
            measured.iter().map(|p| p.target).collect::<Vec<_>>(),
            vec![0, 1, 0, 1, 0, 1]
        );
        for t in 0..2 {
            let sum: Duration = measured
                .iter()
                .filter(|p| p.target == t)
                .map(|p| p.len)
                .sum();
            assert_eq!(sum, Duration::from_millis(2500));
        }
        assert_eq!(phases(&cfg(1)).len(), 2);
    }

    #[test]
    fn shares_add_up() {
        for total in 0..20 {
            for threads in 1..5 {
                assert_eq!(
                    (0..threads)
                        .map(|t| share(total, threads, t))
                        .sum::<usize>(),
                    total
                );
            }
        }
    }
}
