//! Guardrails, one part at a time: the default PII and secrets set as raw scan throughput
//! over prose (GB/s), a request body guarded (1 KB and 100 KB prompts, with nothing to find
//! and with values to redact), and a stream's text guarded per event (the cost each delta
//! pays, and what a whole answer pays).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate::guard::stream::Channel;
use tollgate::guard::{Action, Guard, RuleSpec, Session, Side};

/// The issue's default set: every built-in detector, redacting both ways.
fn default_set() -> Arc<Guard> {
    Arc::new(
        Guard::compile(&[RuleSpec {
            detectors: ["email", "phone", "card", "iban", "ssn", "ip", "secrets"]
                .map(String::from)
                .to_vec(),
            ..RuleSpec::new("pii", Action::Redact)
        }])
        .unwrap(),
    )
}

/// English prose with the digits, punctuation and capitals real prompts have (dates,
/// amounts, versions, times), and no personal data.
fn prose(bytes: usize) -> String {
    let para = "On March 3, 2024 the team shipped version 2.4.1 of the billing service. \
        Latency at p99 fell from 180 ms to 95 ms, and the error rate stayed under 0.1%. \
        Next: migrate the EU cluster (about 1,200 nodes) before 09:30 UTC on Friday; \
        see the runbook, section 4.2, for the rollback plan. Questions go to the \
        on-call channel. ";
    para.chars().cycle().take(bytes).collect()
}

fn body(prompt: &str) -> Vec<u8> {
    format!(
        r#"{{"model":"gpt-4o-mini","max_tokens":64,"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"{prompt}"}}]}}"#
    )
    .into_bytes()
}

fn scan(c: &mut Criterion) {
    let g0 = default_set();
    let mut g = c.benchmark_group("guard_scan");
    for kb in [1usize, 100] {
        let text = prose(kb * 1024);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("default_set_prose_{kb}kb"), |b| {
            let mut s = Session::new(g0.clone());
            let mut out = Vec::with_capacity(text.len());
            b.iter(|| {
                out.clear();
                black_box(s.apply(Side::Request, black_box(text.as_bytes()), &mut out)).unwrap();
            });
        });
    }
    g.finish();
}

fn request(c: &mut Criterion) {
    let g0 = default_set();
    let mut g = c.benchmark_group("guard_request");
    for kb in [1usize, 100] {
        let clean = body(&prose(kb * 1024));
        let dirty = body(&format!(
            "{} mail jo@corp.example.com, card 4111 1111 1111 1111",
            prose(kb * 1024 - 60)
        ));
        g.bench_function(format!("clean_{kb}kb"), |b| {
            b.iter(|| {
                let mut s = Session::new(g0.clone());
                black_box(s.guard_body(Side::Request, black_box(&clean)).unwrap());
            });
        });
        g.bench_function(format!("two_values_{kb}kb"), |b| {
            b.iter(|| {
                let mut s = Session::new(g0.clone());
                black_box(s.guard_body(Side::Request, black_box(&dirty)).unwrap());
            });
        });
    }
    g.finish();
}

fn stream(c: &mut Criterion) {
    let g0 = default_set();
    let mut g = c.benchmark_group("guard_stream");
    // Token-sized deltas, as a provider streams them.
    let text = prose(4096);
    let deltas: Vec<&str> = text.split_inclusive(' ').collect();
    g.throughput(Throughput::Elements(deltas.len() as u64));
    g.bench_function("per_event_4kb_answer", |b| {
        let mut s = Session::new(g0.clone());
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            let mut ch = Channel::default();
            out.clear();
            for d in &deltas {
                s.stream(Side::Response, &mut ch, d.as_bytes(), false, &mut out)
                    .unwrap();
            }
            s.stream(Side::Response, &mut ch, b"", true, &mut out)
                .unwrap();
            black_box(&out);
        });
    });
    g.finish();
}

/// The injection heuristics alone, over the same prose.
fn injection(c: &mut Criterion) {
    let g0 = Arc::new(
        Guard::compile(&[RuleSpec {
            injection: Some(1.0),
            response: false,
            ..RuleSpec::new("injection", Action::Block)
        }])
        .unwrap(),
    );
    let mut g = c.benchmark_group("guard_injection");
    for kb in [1usize, 100] {
        let text = prose(kb * 1024);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(format!("prose_{kb}kb"), |b| {
            let mut s = Session::new(g0.clone());
            let mut out = Vec::with_capacity(text.len());
            b.iter(|| {
                out.clear();
                black_box(s.apply(Side::Request, black_box(text.as_bytes()), &mut out)).unwrap();
            });
        });
    }
    g.finish();
}

criterion_group!(benches, scan, request, stream, injection);
criterion_main!(benches);
