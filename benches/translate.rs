//! Translation between dialects: per event (a corpus stream through the meter's translating
//! tap, reported per provider event), per response body, and per request body — each against
//! the same-dialect path over the same bytes, so the cost of translating is the difference.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tollgate::dialect::Dialect;
use tollgate::json::Scratch;
use tollgate::stream::Meter;
use tollgate::translate::Pair;
use tollgate::translate::request::{Target, translate};

fn pair(client: Dialect, provider: Dialect) -> Pair {
    Pair::between(client, provider).unwrap()
}

fn events(bytes: &[u8]) -> u64 {
    if !bytes.starts_with(b"event:") && !bytes.starts_with(b"data:") {
        // AWS's binary event stream: count its messages by their length prefixes.
        let (mut n, mut at) = (0, 0);
        while at + 4 <= bytes.len() {
            at += u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
                as usize;
            n += 1;
        }
        return n;
    }
    memchr::memmem::find_iter(bytes, b"data:").count() as u64
}

fn streams_and_bodies(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus/");
    let mut g = c.benchmark_group("translate_response");
    let mut m = Meter::default();
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(64 * 1024);
    for (file, pair, sse) in [
        (
            "anthropic/stream_tool_use.sse",
            Pair::OPENAI_TO_ANTHROPIC,
            true,
        ),
        ("anthropic/stream_text.sse", Pair::OPENAI_TO_ANTHROPIC, true),
        (
            "gemini/stream_generate_content.sse",
            Pair::OPENAI_TO_GEMINI,
            true,
        ),
        (
            "openai/chat_completion_stream_parallel_tool_calls.sse",
            Pair::ANTHROPIC_TO_OPENAI,
            true,
        ),
        ("anthropic/message.json", Pair::OPENAI_TO_ANTHROPIC, false),
        (
            "gemini/generate_content.json",
            Pair::OPENAI_TO_GEMINI,
            false,
        ),
        (
            "openai/chat_completion.json",
            Pair::ANTHROPIC_TO_OPENAI,
            false,
        ),
        // The Responses API and Gemini on both sides.
        (
            "openai/responses_stream_function_call.sse",
            pair(Dialect::OpenAi, Dialect::Responses),
            true,
        ),
        (
            "anthropic/stream_text.sse",
            pair(Dialect::Responses, Dialect::Anthropic),
            true,
        ),
        (
            "anthropic/stream_tool_use.sse",
            pair(Dialect::Gemini, Dialect::Anthropic),
            true,
        ),
        (
            "openai/responses.json",
            pair(Dialect::Anthropic, Dialect::Responses),
            false,
        ),
        (
            "anthropic/message.json",
            pair(Dialect::Responses, Dialect::Anthropic),
            false,
        ),
        (
            "anthropic/message.json",
            pair(Dialect::Gemini, Dialect::Anthropic),
            false,
        ),
        // Bedrock's binary stream read (for an OpenAI client) and written (for a Bedrock one).
        (
            "bedrock/converse_stream_tool.bin",
            pair(Dialect::OpenAi, Dialect::Bedrock),
            true,
        ),
        (
            "anthropic/stream_tool_use.sse",
            pair(Dialect::Bedrock, Dialect::Anthropic),
            true,
        ),
        (
            "bedrock/converse_tool.json",
            pair(Dialect::OpenAi, Dialect::Bedrock),
            false,
        ),
    ] {
        let bytes = std::fs::read(format!("{dir}{file}")).unwrap();
        // Per provider event for streams, per body otherwise.
        g.throughput(Throughput::Elements(if sse { events(&bytes) } else { 1 }));
        for translated in [false, true] {
            let label = if translated {
                "translated"
            } else {
                "same_dialect"
            };
            let to = format!("{:?}", pair.client());
            g.bench_function(format!("{file}/{label}/{to}"), |b| {
                b.iter(|| {
                    out.clear();
                    m.start(pair.provider(), sse, false, false);
                    if translated {
                        m.translate(pair, true, false, 1_700_000_000);
                    }
                    for p in black_box(&bytes).chunks(1460) {
                        m.pass(p, &mut out, &mut scratch);
                    }
                    m.end(Some(&mut out), &mut scratch);
                    out.len()
                })
            });
        }
    }
    g.finish();
}

fn requests(c: &mut Criterion) {
    let mut g = c.benchmark_group("translate_request");
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(64 * 1024);
    let target = Target {
        model_json: b"\"upstream-model\"",
        default_max_tokens: 1024,
        compatible: false,
        stream: false,
        vertex: false,
    };
    let chat = |turns: usize| {
        let mut m =
            vec![r#"{"role":"system","content":"You are a helpful assistant."}"#.to_owned()];
        for i in 0..turns {
            m.push(format!(
                r#"{{"role":"user","content":"Question {i}: what is the weather like in Paris today, and should I take an umbrella?"}}"#
            ));
            m.push(format!(
                r#"{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_{i}","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}}}}]}}"#
            ));
            m.push(format!(
                r#"{{"role":"tool","tool_call_id":"call_{i}","content":"18C, light rain"}}"#
            ));
        }
        format!(
            r#"{{"model":"m","stream":true,"max_tokens":256,"messages":[{}],"tools":[{{"type":"function","function":{{"name":"get_weather","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}}}}}}}}]}}"#,
            m.join(",")
        )
    };
    for turns in [1, 30] {
        let body = chat(turns);
        g.throughput(Throughput::Bytes(body.len() as u64));
        for pair in [
            Pair::OPENAI_TO_ANTHROPIC,
            Pair::OPENAI_TO_GEMINI,
            pair(Dialect::OpenAi, Dialect::Responses),
        ] {
            let name = format!("{:?}To{:?}", pair.client(), pair.provider());
            g.bench_function(format!("{name}/{}_bytes", body.len()), |b| {
                b.iter(|| {
                    translate(
                        pair,
                        black_box(body.as_bytes()),
                        &target,
                        &mut scratch,
                        &mut out,
                    )
                    .unwrap();
                    out.len()
                })
            });
        }
        // The Anthropic request of the same conversation, back to OpenAI.
        translate(
            Pair::OPENAI_TO_ANTHROPIC,
            body.as_bytes(),
            &target,
            &mut scratch,
            &mut out,
        )
        .unwrap();
        let anthropic = out.clone();
        g.bench_function(
            format!("AnthropicToOpenAi/{}_bytes", anthropic.len()),
            |b| {
                b.iter(|| {
                    translate(
                        Pair::ANTHROPIC_TO_OPENAI,
                        black_box(&anthropic),
                        &target,
                        &mut scratch,
                        &mut out,
                    )
                    .unwrap();
                    out.len()
                })
            },
        );
        // The same conversation in the Responses API's and Gemini's words, to Anthropic: their
        // readers.
        for client in [Dialect::Responses, Dialect::Gemini, Dialect::Bedrock] {
            translate(
                pair(Dialect::OpenAi, client),
                body.as_bytes(),
                &target,
                &mut scratch,
                &mut out,
            )
            .unwrap();
            let theirs = out.clone();
            let p = pair(client, Dialect::Anthropic);
            g.bench_function(
                format!("{client:?}ToAnthropic/{}_bytes", theirs.len()),
                |b| {
                    b.iter(|| {
                        translate(p, black_box(&theirs), &target, &mut scratch, &mut out).unwrap();
                        out.len()
                    })
                },
            );
        }
        // The parse alone, both ways simd-json offers: what a request translation starts with.
        let mut bytes = Vec::with_capacity(body.len());
        let mut buffers = simd_json::Buffers::new(body.len());
        g.bench_function(format!("parse_dom/{}_bytes", body.len()), |b| {
            b.iter(|| {
                bytes.clear();
                bytes.extend_from_slice(body.as_bytes());
                let v =
                    simd_json::to_borrowed_value_with_buffers(&mut bytes, &mut buffers).unwrap();
                black_box(&v);
            })
        });
        g.bench_function(format!("parse_tape/{}_bytes", body.len()), |b| {
            b.iter(|| {
                bytes.clear();
                bytes.extend_from_slice(body.as_bytes());
                let t = simd_json::to_tape_with_buffers(&mut bytes, &mut buffers).unwrap();
                black_box(&t);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, streams_and_bodies, requests);
criterion_main!(benches);
