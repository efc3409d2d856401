//! SSE scanning throughput over a real capture, whole and in socket-sized pieces.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate::sse::SseScanner;

fn scan(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus/");
    let mut g = c.benchmark_group("sse_scan");
    for file in [
        "openai/chat_completion_stream_include_usage.sse",
        "anthropic/stream_text.sse",
        "gemini/stream_generate_content.sse",
    ] {
        let bytes = std::fs::read(format!("{dir}{file}")).unwrap();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut s = SseScanner::default();
        g.bench_function(format!("{file}/whole"), |b| {
            b.iter(|| {
                s.reset();
                let mut n = 0usize;
                s.feed(black_box(&bytes), |e| n += e.data.len()).unwrap();
                n
            })
        });
        g.bench_function(format!("{file}/pieces_of_1460"), |b| {
            b.iter(|| {
                s.reset();
                let mut n = 0usize;
                for p in black_box(&bytes).chunks(1460) {
                    s.feed(p, |e| n += e.data.len()).unwrap();
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
