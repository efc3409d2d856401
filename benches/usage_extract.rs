//! The relay's tap at work: a corpus stream passed through the [`Meter`] (SSE scan, usage,
//! finish reason and ids extracted per event, client bytes produced), whole and in
//! socket-sized pieces; with and without removing the usage chunk; and JSON bodies.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate::dialect::Dialect;
use tollgate::json::Scratch;
use tollgate::stream::Meter;

fn meter(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus/");
    let mut g = c.benchmark_group("usage_extract");
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(64 * 1024);
    for (file, dialect, sse) in [
        (
            "openai/chat_completion_stream_include_usage.sse",
            Dialect::OpenAi,
            true,
        ),
        (
            "openai_compatible/vllm_stream_continuous_usage.sse",
            Dialect::OpenAi,
            true,
        ),
        ("anthropic/stream_text.sse", Dialect::Anthropic, true),
        ("gemini/stream_generate_content.sse", Dialect::Gemini, true),
        ("openai/chat_completion.json", Dialect::OpenAi, false),
    ] {
        let bytes = std::fs::read(format!("{dir}{file}")).unwrap();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let strips: &[bool] = if sse && dialect == Dialect::OpenAi {
            &[false, true]
        } else {
            &[false]
        };
        for &strip in strips {
            let label = if strip { "/strip" } else { "" };
            g.bench_function(format!("{file}/whole{label}"), |b| {
                b.iter(|| {
                    out.clear();
                    m.start(dialect, sse, strip, false);
                    m.pass(black_box(&bytes), &mut out, &mut scratch);
                    m.end(Some(&mut out), &mut scratch);
                    m.observed.usage.output_tokens
                })
            });
            g.bench_function(format!("{file}/pieces_of_1460{label}"), |b| {
                b.iter(|| {
                    out.clear();
                    m.start(dialect, sse, strip, false);
                    for p in black_box(&bytes).chunks(1460) {
                        m.pass(p, &mut out, &mut scratch);
                    }
                    m.end(Some(&mut out), &mut scratch);
                    m.observed.usage.output_tokens
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, meter);
criterion_main!(benches);
