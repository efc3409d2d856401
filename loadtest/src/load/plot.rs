//! `--plot FILE.svg`: latency over the run (p50 and p99 per second) and the whole run's
//! latency by percentile (the HDR curve, percentiles on a log scale: 50, 90, 99, 99.9, 99.99),
//! one colour per target, so an A/B run's arms lie over each other. Plain SVG, no dependency.

use std::fmt::Write as _;

use super::run::{RunConfig, Stats};

const W: f64 = 900.0;
const H: f64 = 300.0;
const PAD: f64 = 56.0;
const COLOURS: [&str; 2] = ["#2f5fd0", "#d07a1f"];

/// The SVG for a run's per-target stats.
pub fn svg(cfg: &RunConfig, stats: &[Stats]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        2.0 * H + 40.0
    );
    let names: Vec<String> = cfg
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "{} {}:{}",
                ["A", "B"].get(i).unwrap_or(&"?"),
                t.host,
                t.addr.port()
            )
        })
        .collect();
    over_time(&mut o, stats, &names);
    by_percentile(&mut o, stats, &names);
    o.push_str("</svg>\n");
    o
}

/// The frame of a panel at `top`: axes, a title, y ticks (µs values shown as ms).
fn panel(o: &mut String, top: f64, title: &str, y_max: f64, x_label: &str) {
    let (x0, y0, y1) = (PAD, top + H - 30.0, top + 24.0);
    let _ = write!(
        o,
        "<text x=\"{PAD}\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{title}</text>\n\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"#999\"/>\n\
         <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#999\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#666\">{x_label}</text>\n",
        top + 14.0,
        W - 10.0,
        W - 10.0,
        y0 + 24.0
    );
    for k in 0..=4 {
        let v = y_max * f64::from(k) / 4.0;
        let y = y0 - (y0 - y1) * f64::from(k) / 4.0;
        let _ = write!(
            o,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#666\">{:.2} ms</text>\n\
             <line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#eee\"/>\n",
            x0 - 4.0,
            y + 4.0,
            v / 1000.0,
            W - 10.0
        );
    }
}

fn polyline(o: &mut String, points: &[(f64, f64)], colour: &str, dash: bool) {
    if points.is_empty() {
        return;
    }
    let pts: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let _ = writeln!(
        o,
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"{} points=\"{}\"/>",
        if dash {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        },
        pts.join(" ")
    );
}

fn legend(o: &mut String, top: f64, names: &[String], what: &str) {
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(
            o,
            "<text x=\"{}\" y=\"{}\" fill=\"{}\">{n} {what}</text>",
            W - 330.0,
            top + 14.0 + 14.0 * i as f64,
            COLOURS[i % 2]
        );
    }
}

/// p50 (solid) and p99 (dashed) per second.
fn over_time(o: &mut String, stats: &[Stats], names: &[String]) {
    let secs = stats
        .iter()
        .map(|s| s.timeline.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let y_max = stats
        .iter()
        .flat_map(|s| s.timeline.iter().filter_map(|t| t.quantile(0.99)))
        .fold(1.0, f64::max);
    panel(
        o,
        0.0,
        "Latency per second: p50 (solid), p99 (dashed)",
        y_max,
        "seconds",
    );
    let (y0, y1) = (H - 30.0, 24.0);
    for (i, s) in stats.iter().enumerate() {
        for (q, dash) in [(0.5, false), (0.99, true)] {
            let pts: Vec<(f64, f64)> = s
                .timeline
                .iter()
                .enumerate()
                .filter_map(|(k, t)| {
                    let v = t.quantile(q)?;
                    let x = PAD + (W - 10.0 - PAD) * k as f64 / (secs - 1) as f64;
                    Some((x, y0 - (y0 - y1) * v / y_max))
                })
                .collect();
            polyline(o, &pts, COLOURS[i % 2], dash);
        }
    }
    legend(o, 0.0, names, "");
}

/// The HDR curve: latency at each percentile, percentiles spaced by log10(1/(1−p)).
fn by_percentile(o: &mut String, stats: &[Stats], names: &[String]) {
    let top = H + 20.0;
    let depth = 4.0; // up to 99.99%
    let y_max = stats
        .iter()
        .map(|s| s.latency.value_at_quantile(0.9999) as f64 / 1000.0)
        .fold(1.0, f64::max);
    panel(
        o,
        top,
        "Latency by percentile (whole run)",
        y_max,
        "percentile",
    );
    let (y0, y1) = (top + H - 30.0, top + 24.0);
    let x_of = |p: f64| PAD + (W - 10.0 - PAD) * ((1.0 / (1.0 - p)).log10() / depth);
    for (label, p) in [
        ("50%", 0.5),
        ("90%", 0.9),
        ("99%", 0.99),
        ("99.9%", 0.999),
        ("99.99%", 0.9999),
    ] {
        let x = x_of(p);
        let _ = writeln!(
            o,
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{label}</text>",
            y0 + 14.0
        );
    }
    for (i, s) in stats.iter().enumerate() {
        if s.latency.is_empty() {
            continue;
        }
        let pts: Vec<(f64, f64)> = (0..=80)
            .map(|k| {
                // 0 → p = 0, 80 → p = 1 − 10^-4.
                let p = 1.0 - 10f64.powf(-depth * f64::from(k) / 80.0);
                let v = s.latency.value_at_quantile(p) as f64 / 1000.0;
                (x_of(p), y0 - (y0 - y1) * v / y_max)
            })
            .collect();
        polyline(o, &pts, COLOURS[i % 2], false);
    }
    legend(o, top, names, "");
}
