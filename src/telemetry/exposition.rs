//! Writing metrics in Prometheus' text exposition format (0.0.4) or OpenMetrics 1.0 text, the
//! one a scraper asks for. The two differ here only in a counter family's name on its
//! `# TYPE` line (OpenMetrics names the family without `_total`), the content type, and
//! OpenMetrics' closing `# EOF`.

use std::fmt::Write as _;

use super::metrics::Hist;

pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One scrape's text.
#[derive(Debug, Default)]
pub struct Exposition {
    pub out: String,
    openmetrics: bool,
}

impl Exposition {
    /// OpenMetrics text, or Prometheus' text format.
    pub fn new(openmetrics: bool) -> Exposition {
        Exposition {
            out: String::with_capacity(64 * 1024),
            openmetrics,
        }
    }

    /// Whether a scraper's `Accept` asks for OpenMetrics (Prometheus sends it first, with the
    /// text format as a fallback).
    pub fn wants_openmetrics(accept: &[u8]) -> bool {
        memchr::memmem::find(accept, b"application/openmetrics-text").is_some()
    }

    pub fn content_type(&self) -> &'static str {
        if self.openmetrics {
            OPENMETRICS_CONTENT_TYPE
        } else {
            TEXT_CONTENT_TYPE
        }
    }

    /// A family's `# HELP` and `# TYPE`. A counter's `name` is without `_total`; its samples
    /// are written with it.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let (ty, total) = match kind {
            Kind::Counter => ("counter", !self.openmetrics),
            Kind::Gauge => ("gauge", false),
            Kind::Histogram => ("histogram", false),
        };
        let suffix = if total { "_total" } else { "" };
        let _ = writeln!(self.out, "# HELP {name}{suffix} {help}");
        let _ = writeln!(self.out, "# TYPE {name}{suffix} {ty}");
    }

    /// One sample: `name{labels} value`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        self.out.push(' ');
        number(&mut self.out, value);
        self.out.push('\n');
    }

    /// A histogram's `_bucket` (cumulative, `+Inf` last), `_sum` and `_count` samples; bounds
    /// and sum are divided by `per_unit` (µs → s: 1e6; a division by a power of ten rounds
    /// to the nearest `f64`, so `le="0.00001"` is written as such).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        (h, bounds, per_unit): (&Hist, &[u64], f64),
    ) {
        let mut cumulative = 0;
        let mut le = String::new();
        for (i, n) in h.counts.iter().enumerate().take(bounds.len() + 1) {
            cumulative += n;
            le.clear();
            match bounds.get(i) {
                Some(&b) => number(&mut le, b as f64 / per_unit),
                None => le.push_str("+Inf"),
            }
            self.out.push_str(name);
            self.out.push_str("_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.out.push_str(name);
        self.out.push_str("_sum");
        self.labels(labels, None);
        self.out.push(' ');
        number(&mut self.out, h.sum as f64 / per_unit);
        self.out.push('\n');
        self.out.push_str(name);
        self.out.push_str("_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {cumulative}");
    }

    /// The finished text.
    pub fn finish(mut self) -> String {
        if self.openmetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|l| ("le", l))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            for c in v.chars() {
                match c {
                    '\\' => self.out.push_str("\\\\"),
                    '"' => self.out.push_str("\\\""),
                    '\n' => self.out.push_str("\\n"),
                    c => self.out.push(c),
                }
            }
            self.out.push('"');
        }
        self.out.push('}');
    }
}

/// A sample value: integers without a fraction, others as Rust's shortest round-trip form.
fn number(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_openmetrics() {
        for (accept, om) in [
            (&b"text/plain;version=0.0.4;q=0.5,*/*;q=0.1"[..], false),
            (
                b"application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
                true,
            ),
        ] {
            assert_eq!(Exposition::wants_openmetrics(accept), om);
            let mut e = Exposition::new(om);
            e.family("tollgate_requests", Kind::Counter, "Requests.");
            e.sample("tollgate_requests_total", &[("key", "a\"b\\c\nd")], 3.0);
            e.family("tollgate_overhead_seconds", Kind::Histogram, "Overhead.");
            let mut h = Hist::default();
            h.record(&[10, 100], 5);
            h.record(&[10, 100], 500);
            e.histogram("tollgate_overhead_seconds", &[], (&h, &[10, 100], 1e6));
            let ty = e.content_type();
            let text = e.finish();
            let family = if om {
                "# TYPE tollgate_requests counter\n"
            } else {
                "# TYPE tollgate_requests_total counter\n"
            };
            assert!(text.contains(family), "{text}");
            assert!(
                text.contains("tollgate_requests_total{key=\"a\\\"b\\\\c\\nd\"} 3\n"),
                "{text}"
            );
            assert!(text.contains("tollgate_overhead_seconds_bucket{le=\"0.00001\"} 1\n"));
            assert!(text.contains("tollgate_overhead_seconds_bucket{le=\"0.0001\"} 1\n"));
            assert!(text.contains("tollgate_overhead_seconds_bucket{le=\"+Inf\"} 2\n"));
            assert!(
                text.contains("tollgate_overhead_seconds_sum 0.000505\n"),
                "{text}"
            );
            assert!(text.contains("tollgate_overhead_seconds_count 2\n"));
            assert_eq!(text.ends_with("# EOF\n"), om);
            assert_eq!(ty.starts_with("application/openmetrics-text"), om);
        }
    }
}
