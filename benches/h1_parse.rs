//! Request-head parsing and body framing throughput.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate::http1::{BodyDecoder, BodyKind, Limits, RequestHead, write};

const HEAD: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: OpenAI/Python 1.54.0\r\nAuthorization: Bearer sk-tollgate-demo-0123456789abcdef\r\nContent-Type: application/json\r\nAccept: application/json\r\nX-Stainless-Lang: python\r\nX-Stainless-Retry-Count: 0\r\nContent-Length: 181\r\n\r\n";

fn heads(c: &mut Criterion) {
    let mut g = c.benchmark_group("h1_parse");
    g.throughput(Throughput::Bytes(HEAD.len() as u64));
    let mut head = RequestHead::new();
    let limits = Limits::default();
    g.bench_function("request_head", |b| {
        b.iter(|| head.parse(black_box(HEAD), &limits).unwrap().unwrap())
    });
    g.finish();
}

fn framing(c: &mut Criterion) {
    let payload = vec![b'x'; 64 * 1024];
    let mut chunked = Vec::new();
    for piece in payload.chunks(1024) {
        write::chunk(&mut chunked, piece);
    }
    write::last_chunk(&mut chunked);
    let mut g = c.benchmark_group("h1_body");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("chunked_64k_in_1k_chunks", |b| {
        b.iter(|| {
            let mut d = BodyDecoder::new(BodyKind::Chunked, u64::MAX).unwrap();
            let mut rest = black_box(&chunked[..]);
            let mut n = 0;
            loop {
                let s = d.decode(rest).unwrap();
                n += s.data.len();
                rest = &rest[s.consumed..];
                if s.done {
                    break n;
                }
            }
        })
    });
    g.bench_function("content_length_64k", |b| {
        b.iter(|| {
            let mut d = BodyDecoder::new(BodyKind::Length(payload.len() as u64), u64::MAX).unwrap();
            d.decode(black_box(&payload)).unwrap().data.len()
        })
    });
    g.finish();
}

criterion_group!(benches, heads, framing);
criterion_main!(benches);
