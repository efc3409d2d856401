//! The response cache's parts, one at a time: the key (a request normalised and hashed, 1 KB
//! and 100 KB prompts), an entry filled from a provider's JSON body and from its stream, a hit
//! rendered (verbatim JSON, JSON through a writer, a stream through a writer), a shard's
//! lookup and a lead-then-fill, and the semantic search — exact dot products over a model's
//! vectors, quantised — at the sizes a configuration can ask for.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tollgate::cache::entry::{Entry, StreamForm, Tag};
use tollgate::cache::key::{Hashing, Normalised, Op, normalise};
use tollgate::cache::{Limits, Reply, Shard, Waiter};
use tollgate::dialect::Dialect;
use tollgate::json::Scratch;
use tollgate::usage::Observed;

const TAG: Tag<'static> = Tag {
    scope: "team:bench",
    model: "gpt-4o-mini",
    op: Op::Chat,
};

fn request(prompt_bytes: usize) -> Vec<u8> {
    let words = "the quick brown fox jumps over the lazy dog ";
    let text: String = words.chars().cycle().take(prompt_bytes).collect();
    format!(
        r#"{{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":64,"stream":false,"messages":[{{"role":"system","content":"You are terse."}},{{"role":"user","content":"{text}"}}]}}"#
    )
    .into_bytes()
}

fn key(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache_key");
    let h = Hashing::new();
    let mut scratch = Scratch::default();
    let mut n = Normalised::default();
    for (name, size, split) in [
        ("1KB", 1024, false),
        ("1KB_semantic_split", 1024, true),
        ("100KB", 100 * 1024, false),
    ] {
        let body = request(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let tape = scratch.tape(black_box(&body)).unwrap();
                normalise(Op::Chat, tape.as_value(), split, &mut n).unwrap();
                let empty: simd_json::Tape<'static> = tape.reset();
                scratch.keep_tape(empty);
                black_box(h.hash(&[b"team:bench", b"gpt-4o-mini", &[1], &n.whole]))
            })
        });
    }
    g.finish();
}

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/corpus/openai/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn entry(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache_entry");
    let json = corpus("chat_completion.json");
    let stream = corpus("chat_completion_stream_include_usage.sse");
    let mut scratch = Scratch::default();
    let o = Observed::default();
    g.bench_function("fill_from_json", |b| {
        b.iter(|| {
            Entry::from_body(
                &TAG,
                Dialect::OpenAi,
                false,
                black_box(&json),
                &o,
                &mut scratch,
            )
        })
    });
    g.bench_function("fill_from_stream", |b| {
        b.iter(|| {
            Entry::from_body(
                &TAG,
                Dialect::OpenAi,
                true,
                black_box(&stream),
                &o,
                &mut scratch,
            )
        })
    });
    let mut e = Entry::from_body(&TAG, Dialect::OpenAi, true, &stream, &o, &mut scratch).unwrap();
    let mut out = Vec::with_capacity(16 * 1024);
    g.bench_function("render_json_written", |b| {
        b.iter(|| {
            out.clear();
            e.write_json(Dialect::OpenAi, 1, &mut out);
        })
    });
    g.bench_function("render_json_to_anthropic", |b| {
        b.iter(|| {
            out.clear();
            e.write_json(Dialect::Anthropic, 1, &mut out);
        })
    });
    g.bench_function("render_stream", |b| {
        b.iter(|| {
            out.clear();
            e.write_stream(Dialect::OpenAi, StreamForm::default(), &mut out);
        })
    });
    e.verbatim = Some(json.clone().into_boxed_slice());
    g.bench_function("render_json_verbatim", |b| {
        b.iter(|| {
            out.clear();
            e.write_json(Dialect::OpenAi, 1, &mut out);
        })
    });
    g.finish();
}

const LIMITS: Limits = Limits {
    max_entries: 1 << 20,
    max_bytes: 1 << 34,
    ttl: Duration::from_secs(3600),
    max_waiters: 1000,
    lead_timeout: Duration::from_secs(60),
    max_vectors: 1 << 20,
};

fn shard(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache_shard");
    let mut scratch = Scratch::default();
    let o = Observed::default();
    let e = Arc::new(
        Entry::from_body(
            &TAG,
            Dialect::OpenAi,
            false,
            &corpus("chat_completion.json"),
            &o,
            &mut scratch,
        )
        .unwrap(),
    );
    let mut s = Shard::default();
    let now = Instant::now();
    let mut out = Vec::new();
    let who = Waiter {
        worker: 0,
        ticket: 0,
    };
    // 100 000 entries held, one looked up.
    for k in 0..100_000u128 {
        s.ask(
            (k * 0x9e37_79b9_7f4a_7c15, false),
            who,
            &LIMITS,
            now,
            &mut out,
        );
        s.fill(
            k * 0x9e37_79b9_7f4a_7c15,
            Some(e.clone()),
            &LIMITS,
            now,
            &mut out,
        );
    }
    let hot = 777u128 * 0x9e37_79b9_7f4a_7c15;
    g.bench_function("hit_of_100k", |b| {
        b.iter(
            || match s.ask((black_box(hot), false), who, &LIMITS, now, &mut out) {
                Some(Reply::Hit(e, _)) => black_box(e),
                _ => unreachable!(),
            },
        )
    });
    let mut k = 1u128 << 100;
    g.bench_function("lead_then_fill", |b| {
        b.iter(|| {
            k += 1;
            s.ask((k, false), who, &LIMITS, now, &mut out);
            s.fill(k, Some(e.clone()), &LIMITS, now, &mut out);
        })
    });
    g.finish();
}

fn semantic(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache_semantic");
    g.sample_size(20);
    let mut scratch = Scratch::default();
    let o = Observed::default();
    let mut base = Entry::from_body(
        &TAG,
        Dialect::OpenAi,
        false,
        &corpus("chat_completion.json"),
        &o,
        &mut scratch,
    )
    .unwrap();
    base.stored_us = 1;
    let e = Arc::new(base);
    for (n, dims) in [(1024usize, 256usize), (1024, 1536), (4096, 1536)] {
        let mut s = Shard::default();
        let mut seed = 1u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for _ in 0..n {
            let mut v: Vec<f32> = (0..dims).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            s.add_vector(7, &v, e.clone(), &LIMITS);
        }
        let q: Vec<f32> = (0..dims).map(|_| next()).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("nearest_{n}x{dims}"), |b| {
            b.iter(|| black_box(s.nearest("gpt-4o-mini", 7, black_box(&q), 0.95, 0)))
        });
    }
    g.finish();
}

criterion_group!(benches, key, entry, shard, semantic);
criterion_main!(benches);
