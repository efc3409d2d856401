//! `tollgate-load`: the load generator.
//!
//! - [`client`]: one keep-alive HTTP/1.1 connection, stream-aware timing.
//! - [`conn`]: targets (plain or TLS) and connecting to them.
//! - [`scenario`]: scenario TOML files and request templates.
//! - [`run`]: the engine (threads, phases, open and closed loops).
//! - [`report`]: the JSON summary and the human table.

pub mod client;
pub mod conn;
pub mod cpu;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::io::Driver;
use report::Summary;
use run::{Progress, RunConfig};
use scenario::{Arrival, Mode, RequestSpec, Scenario, parse_duration};

/// Flags of `tollgate-load`. Flags override the scenario file.
#[derive(Clone, Debug, clap::Args)]
pub struct LoadArgs {
    /// Scenario TOML (see loadtest/scenarios/).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Target base URL, e.g. http://127.0.0.1:8081.
    #[arg(long)]
    pub target: Option<String>,
    /// Second target for A/B mode: slices alternate between --target (A) and this (B).
    #[arg(long)]
    pub target_b: Option<String>,
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Open loop: requests per second (all threads).
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, value_enum)]
    pub arrival: Option<Arrival>,
    /// Closed loop: in-flight requests; open loop: connection cap (all threads).
    #[arg(long)]
    pub concurrency: Option<usize>,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Measured time (per target in A/B mode), e.g. 10s.
    #[arg(long)]
    pub duration: Option<String>,
    #[arg(long)]
    pub warmup: Option<String>,
    /// A/B slice length.
    #[arg(long)]
    pub slice: Option<String>,
    /// Per-request timeout.
    #[arg(long)]
    pub timeout: Option<String>,
    /// API keys to rotate through (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub keys: Vec<String>,
    /// Without a scenario: send streaming chat requests instead of non-streaming ones.
    #[arg(long)]
    pub stream: bool,
    /// Write the JSON summary here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an SVG of latency over time and by percentile here (A/B arms overlaid).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Report CPU time of this process per request (e.g. the gateway's pid).
    #[arg(long)]
    pub watch_pid: Option<u32>,
    /// CA certificate (PEM) to trust for https targets.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub driver: Driver,
    /// No progress lines.
    #[arg(long)]
    pub quiet: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl LoadArgs {
    /// Merges flags over the scenario file into a [`RunConfig`].
    pub fn resolve(&self) -> anyhow::Result<RunConfig> {
        let sc = match &self.scenario {
            Some(p) => Scenario::load(p)?,
            None => Scenario::default(),
        };
        let tls = match &self.ca {
            Some(p) => {
                let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                Some(crate::tls::client_config(&pem)?)
            }
            None => None,
        };
        let target = self
            .target
            .clone()
            .or(sc.target)
            .context("no target: give --target URL or `target` in the scenario")?;
        let mut targets = vec![conn::Target::parse(&target, tls.clone())?];
        if let Some(b) = self.target_b.clone().or(sc.target_b) {
            targets.push(conn::Target::parse(&b, tls)?);
        }
        let dur = |flag: &Option<String>,
                   file: Option<String>,
                   default: &str|
         -> anyhow::Result<Duration> {
            parse_duration(flag.as_deref().or(file.as_deref()).unwrap_or(default))
        };
        let mode = self.mode.or(sc.mode).unwrap_or_default();
        let rate = self.rate.or(sc.rate).unwrap_or(1000.0);
        anyhow::ensure!(rate.is_finite() && rate > 0.0, "rate must be positive");
        let threads = self.threads.or(sc.threads).unwrap_or(1).max(1);
        let concurrency = self
            .concurrency
            .or(sc.concurrency)
            .unwrap_or(if mode == Mode::Open { 256 } else { 1 });
        anyhow::ensure!(
            concurrency >= threads,
            "concurrency ({concurrency}) must be at least threads ({threads})"
        );
        let requests = if sc.requests.is_empty() {
            vec![RequestSpec::small_chat(self.stream)]
        } else {
            sc.requests
        };
        Ok(RunConfig {
            targets,
            requests,
            keys: if self.keys.is_empty() {
                sc.keys
            } else {
                self.keys.clone()
            },
            mode,
            arrival: self.arrival.or(sc.arrival).unwrap_or_default(),
            rate,
            concurrency,
            threads,
            duration: dur(&self.duration, sc.duration, "10s")?,
            warmup: dur(&self.warmup, sc.warmup, "1s")?,
            slice: dur(&self.slice, sc.slice, "1s")?,
            timeout: dur(&self.timeout, sc.timeout, "30s")?,
            driver: self.driver,
            watch_pid: self.watch_pid,
            progress: !self.quiet,
            seed: self.seed,
            plot: self.plot.clone(),
        })
    }
}

/// Runs a resolved configuration: progress lines on stderr while it runs, then the summary.
pub fn execute(cfg: &RunConfig) -> anyhow::Result<Summary> {
    let progress = Arc::new(Progress {
        p99_ns: (0..cfg.threads).map(|_| Default::default()).collect(),
        ..Default::default()
    });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let printer = cfg.progress.then(|| {
        let (progress, stop) = (progress.clone(), stop.clone());
        // Warm-up and measured time, per target.
        let total = (cfg.warmup + cfg.duration).as_secs_f64() * cfg.targets.len() as f64;
        std::thread::spawn(move || print_progress(&progress, &stop, total))
    });
    let result = run::run(cfg, &progress);
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = printer {
        let _ = p.join();
    }
    let stats = result?;
    if let Some(path) = &cfg.plot {
        std::fs::write(path, plot::svg(cfg, &stats))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Summary::new(cfg, &stats))
}

fn print_progress(p: &Progress, stop: &std::sync::atomic::AtomicBool, total: f64) {
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let start = Instant::now();
    let mut last_done = 0;
    let mut last = Instant::now();
    let tick = Duration::from_millis(50);
    while !stop.load(Ordering::Relaxed) {
        // Short naps so the printer notices the end of the run quickly.
        #[allow(
            clippy::disallowed_methods,
            reason = "the progress printer is a plain thread, not a worker"
        )]
        std::thread::sleep(tick);
        if last.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let done = p.done.load(Ordering::Relaxed);
        let rate = (done - last_done) as f64 / last.elapsed().as_secs_f64();
        let p99 = p
            .p99_ns
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        let mut err = std::io::stderr().lock();
        let elapsed = start.elapsed().as_secs_f64();
        if tty {
            // A bar redrawn in place: elapsed of total, rate, errors, p99 so far.
            let filled = ((elapsed / total).min(1.0) * 30.0) as usize;
            let _ = write!(
                err,
                "\r[{}{}] {:>5.1}/{:.0}s {:>9.0} req/s  errors {:>6}  p99 {:.1} µs ",
                "#".repeat(filled),
                "-".repeat(30 - filled),
                elapsed,
                total,
                rate,
                p.errors.load(Ordering::Relaxed),
                p99 as f64 / 1000.0
            );
        } else {
            let _ = writeln!(
                err,
                "[{:>5.1}s] {:>9.0} req/s  errors {:>6}  p99 so far {:.1} µs",
                elapsed,
                rate,
                p.errors.load(Ordering::Relaxed),
                p99 as f64 / 1000.0
            );
        }
        last_done = done;
        last = Instant::now();
    }
    if tty {
        eprintln!();
    }
}
