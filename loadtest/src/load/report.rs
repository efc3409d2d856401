//! The run's results: a JSON summary (`--json FILE`) and a human table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::run::{RunConfig, Stats};
use super::scenario::Mode;

/// Latency quantiles in microseconds.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Quantiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Quantiles {
    pub fn of(h: &Histogram<u64>) -> Quantiles {
        if h.is_empty() {
            return Quantiles::default();
        }
        let us = |v: u64| v as f64 / 1000.0;
        Quantiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }

    fn minus(&self, o: &Quantiles) -> Quantiles {
        Quantiles {
            count: self.count.min(o.count),
            mean: self.mean - o.mean,
            p50: self.p50 - o.p50,
            p90: self.p90 - o.p90,
            p99: self.p99 - o.p99,
            p999: self.p999 - o.p999,
            max: self.max - o.max,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WatchedCpu {
    pub pid: u32,
    pub cpu_seconds: f64,
    /// CPU microseconds the watched process spent per completed request of this target.
    pub us_per_request: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TargetSummary {
    pub name: String,
    pub url: String,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub elapsed_seconds: f64,
    /// Successful requests per second of measured time.
    pub throughput_rps: f64,
    pub latency_us: Quantiles,
    pub ttfb_us: Quantiles,
    pub ttft_us: Option<Quantiles>,
    pub gap_us: Option<Quantiles>,
    /// Open loop: how late sends left relative to their intended time.
    pub send_lag_us: Option<Quantiles>,
    pub streams: u64,
    pub streams_ended: u64,
    pub events_per_response: f64,
    pub bytes_per_response: f64,
    pub watched_cpu: Option<WatchedCpu>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub mode: String,
    pub arrival: Option<String>,
    pub rate: Option<f64>,
    pub concurrency: usize,
    pub threads: usize,
    pub duration_seconds: f64,
    pub warmup_seconds: f64,
    pub requests: Vec<String>,
    pub targets: Vec<TargetSummary>,
    /// A/B: B − A per quantile (latency added by B), microseconds.
    pub added_latency_us: Option<Quantiles>,
    /// A/B, streams: B − A time to first token.
    pub added_ttft_us: Option<Quantiles>,
}

impl Summary {
    pub fn new(cfg: &RunConfig, stats: &[Stats]) -> Summary {
        let open = cfg.mode == Mode::Open;
        let targets: Vec<TargetSummary> = stats
            .iter()
            .zip(&cfg.targets)
            .enumerate()
            .map(|(i, (s, t))| {
                let secs = s.elapsed.as_secs_f64();
                let answered: u64 = s.statuses.values().sum();
                let per = |v: u64| {
                    if answered == 0 {
                        0.0
                    } else {
                        v as f64 / answered as f64
                    }
                };
                TargetSummary {
                    name: ["A", "B", "C", "D"]
                        .get(i)
                        .map_or_else(|| i.to_string(), |s| (*s).to_owned()),
                    url: t.url.clone(),
                    requests: s.requests,
                    ok: s.ok,
                    errors: s.errors.clone(),
                    statuses: s.statuses.clone(),
                    elapsed_seconds: secs,
                    throughput_rps: if secs > 0.0 { s.ok as f64 / secs } else { 0.0 },
                    latency_us: Quantiles::of(&s.latency),
                    ttfb_us: Quantiles::of(&s.ttfb),
                    ttft_us: (!s.ttft.is_empty()).then(|| Quantiles::of(&s.ttft)),
                    gap_us: (!s.gap.is_empty()).then(|| Quantiles::of(&s.gap)),
                    send_lag_us: open.then(|| Quantiles::of(&s.send_lag)),
                    streams: s.streams,
                    streams_ended: s.streams_ended,
                    events_per_response: per(s.events),
                    bytes_per_response: per(s.body_bytes),
                    watched_cpu: cfg.watch_pid.map(|pid| WatchedCpu {
                        pid,
                        cpu_seconds: s.watched_cpu.as_secs_f64(),
                        us_per_request: if s.ok == 0 {
                            0.0
                        } else {
                            s.watched_cpu.as_secs_f64() * 1e6 / s.ok as f64
                        },
                    }),
                }
            })
            .collect();
        let (added_latency_us, added_ttft_us) = match targets.as_slice() {
            [a, b] => (
                Some(b.latency_us.minus(&a.latency_us)),
                match (&a.ttft_us, &b.ttft_us) {
                    (Some(x), Some(y)) => Some(y.minus(x)),
                    _ => None,
                },
            ),
            _ => (None, None),
        };
        Summary {
            mode: format!("{:?}", cfg.mode).to_lowercase(),
            arrival: open.then(|| format!("{:?}", cfg.arrival).to_lowercase()),
            rate: open.then_some(cfg.rate),
            concurrency: cfg.concurrency,
            threads: cfg.threads,
            duration_seconds: cfg.duration.as_secs_f64(),
            warmup_seconds: cfg.warmup.as_secs_f64(),
            requests: cfg.requests.iter().map(|r| r.name.clone()).collect(),
            targets,
            added_latency_us,
            added_ttft_us,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut o = String::new();
        let load = match self.rate {
            Some(r) => format!(
                "open loop, {r} req/s {}",
                self.arrival.as_deref().unwrap_or("")
            ),
            None => format!("closed loop, concurrency {}", self.concurrency),
        };
        let _ = writeln!(
            o,
            "tollgate-load: {load}, {} thread(s), {:.1}s measured (+{:.1}s warm-up), requests: {}",
            self.threads,
            self.duration_seconds,
            self.warmup_seconds,
            self.requests.join(", ")
        );
        let _ = writeln!(
            o,
            "{:<4} {:>10} {:>10} {:>7} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "", "requests", "ok", "errors", "ok req/s", "p50", "p90", "p99", "p99.9", "max"
        );
        for t in &self.targets {
            let q = &t.latency_us;
            let _ = writeln!(
                o,
                "{:<4} {:>10} {:>10} {:>7} {:>11.1} {:>9} {:>9} {:>9} {:>9} {:>9}   {}",
                t.name,
                t.requests,
                t.ok,
                t.errors.values().sum::<u64>(),
                t.throughput_rps,
                fmt_us(q.p50),
                fmt_us(q.p90),
                fmt_us(q.p99),
                fmt_us(q.p999),
                fmt_us(q.max),
                t.url
            );
        }
        if let Some(d) = &self.added_latency_us {
            let _ = writeln!(
                o,
                "{:<4} {:>52} {:>9} {:>9} {:>9} {:>9}",
                "B−A",
                "added latency",
                fmt_us(d.p50),
                fmt_us(d.p90),
                fmt_us(d.p99),
                fmt_us(d.p999)
            );
        }
        for t in &self.targets {
            let mut line = |label: &str, q: &Quantiles| {
                let _ = writeln!(
                    o,
                    "{:<4} {:<24} p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}",
                    t.name,
                    label,
                    fmt_us(q.p50),
                    fmt_us(q.p90),
                    fmt_us(q.p99),
                    fmt_us(q.p999),
                    fmt_us(q.max)
                );
            };
            if let Some(q) = &t.ttft_us {
                line("time to first token", q);
            }
            if let Some(q) = &t.gap_us {
                line("gap between events", q);
            }
            if let Some(q) = &t.send_lag_us {
                line("send lag (generator)", q);
            }
            if t.streams > 0 {
                let _ = writeln!(
                    o,
                    "{:<4} streams {} ended properly {}, {:.1} events and {:.0} bytes per response",
                    t.name, t.streams, t.streams_ended, t.events_per_response, t.bytes_per_response
                );
            }
            if !t.errors.is_empty() {
                let _ = writeln!(o, "{:<4} errors {:?}", t.name, t.errors);
            }
            if let Some(c) = &t.watched_cpu {
                let _ = writeln!(
                    o,
                    "{:<4} pid {} used {:.3}s CPU = {:.1} µs per ok request",
                    t.name, c.pid, c.cpu_seconds, c.us_per_request
                );
            }
        }
        if let Some(d) = &self.added_ttft_us {
            let _ = writeln!(
                o,
                "B−A  added time to first token: p50 {}  p90 {}  p99 {}  p99.9 {}",
                fmt_us(d.p50),
                fmt_us(d.p90),
                fmt_us(d.p99),
                fmt_us(d.p999)
            );
        }
        o
    }
}

fn fmt_us(us: f64) -> String {
    let a = us.abs();
    if a >= 1_000_000.0 {
        format!("{:.2}s", us / 1e6)
    } else if a >= 1000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.1}µs")
    }
}
