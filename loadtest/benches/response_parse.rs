//! The load generator's per-response parsing work, on responses rendered by the mock:
//! head, de-chunking, SSE scanning and the dialect's content/end checks.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate::http1::{BodyDecoder, Limits, Method, ResponseHead, write};
use tollgate::sse::SseScanner;
use tollgate_loadtest::dialect::Dialect;

fn chat_json() -> Vec<u8> {
    let body = br#"{"id":"chatcmpl-mock-0-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog while a gateway counts every token it relays","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":16,"total_tokens":37}}"#;
    let mut out = Vec::new();
    write::status_line(&mut out, 200);
    write::header(&mut out, "content-type", b"application/json");
    write::header_u64(&mut out, "content-length", body.len() as u64);
    write::end_head(&mut out);
    out.extend_from_slice(body);
    out
}

fn chat_stream() -> Vec<u8> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/corpus/openai/chat_completion_stream_include_usage.sse"
    );
    let sse = std::fs::read(file).unwrap();
    let mut out = Vec::new();
    write::status_line(&mut out, 200);
    write::header(
        &mut out,
        "content-type",
        b"text/event-stream; charset=utf-8",
    );
    write::header(&mut out, "transfer-encoding", b"chunked");
    write::end_head(&mut out);
    // One chunk per event, as providers send them.
    for ev in sse
        .split_inclusive(|&b| b == b'\n')
        .collect::<Vec<_>>()
        .chunks(2)
    {
        write::chunk(&mut out, &ev.concat());
    }
    write::last_chunk(&mut out);
    out
}

/// What `Client::read_response` does with bytes already in its buffer.
fn parse(bytes: &[u8], head: &mut ResponseHead, sse: &mut SseScanner) -> (u32, bool) {
    let n = head
        .parse(bytes, &Limits::default(), Method::Post)
        .unwrap()
        .unwrap();
    let is_stream = head
        .header(bytes, "content-type")
        .is_some_and(|v| v.starts_with(b"text/event-stream"));
    let mut dec = BodyDecoder::new(head.body, u64::MAX).unwrap();
    let mut rest = &bytes[n..];
    let (mut events, mut ended, mut first) = (0u32, false, false);
    sse.reset();
    loop {
        let s = dec.decode(rest).unwrap();
        if is_stream && !s.data.is_empty() {
            sse.feed(&rest[s.data.clone()], |e| {
                events += 1;
                first |= Dialect::OpenAi.is_content(e);
                ended |= Dialect::OpenAi.is_end(e);
            })
            .unwrap();
        }
        rest = &rest[s.consumed..];
        if s.done {
            return (events, ended && (first || !is_stream));
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("response_parse");
    let mut head = ResponseHead::new();
    let mut sse = SseScanner::default();
    for (name, bytes) in [
        ("chat_json", chat_json()),
        ("chat_stream_12_events", chat_stream()),
    ] {
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| parse(black_box(&bytes), &mut head, &mut sse))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
