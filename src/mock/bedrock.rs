//! The mock's Bedrock Converse answers, modelled on the captures in
//! `tests/fixtures/corpus/bedrock/`: compact JSON with members in alphabetical order, a random-
//! looking `p` padding member on every stream payload, text blocks without a
//! `contentBlockStart`, usage (uncached input) in the final `metadata` message. Framed with
//! [`crate::sse::eventstream`] (framing only: the payloads are the mock's own).

use super::render::{Events, Plan, full_text, token_text, tool_arguments, tool_fragment};
use crate::json;
use crate::sse::eventstream::encode_event;

/// Padding as Bedrock sends it (`"p":"abcdefgh…"`), its length varying with `k`.
fn pad(out: &mut Vec<u8>, k: u32) {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123";
    out.extend_from_slice(b"\"p\":\"");
    out.extend_from_slice(&LETTERS[..(k as usize * 7) % 40 + 4]);
    out.push(b'"');
}

fn usage(plan: &Plan<'_>, out: &mut Vec<u8>) {
    let output = plan.completion_tokens();
    out.extend_from_slice(b"\"usage\":{");
    if plan.cached_tokens > 0 {
        out.extend_from_slice(b"\"cacheReadInputTokens\":");
        json::uint(out, plan.cached_tokens);
        out.push(b',');
    }
    out.extend_from_slice(b"\"inputTokens\":");
    json::uint(out, plan.prompt_tokens - plan.cached_tokens);
    out.extend_from_slice(b",\"outputTokens\":");
    json::uint(out, output);
    out.extend_from_slice(b",\"totalTokens\":");
    json::uint(out, plan.prompt_tokens + output);
    out.push(b'}');
}

fn tool_id(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"tooluse_mock_");
    out.extend_from_slice(plan.id.as_bytes());
    out.push(b'"');
}

pub(super) fn json(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"{\"metrics\":{\"latencyMs\":412},\"output\":{\"message\":{\"content\":[",
    );
    let stop: &[u8] = match plan.tool {
        None => {
            out.extend_from_slice(b"{\"text\":\"");
            full_text(out, plan.tokens, plan.token_bytes);
            out.extend_from_slice(b"\"}");
            b"end_turn"
        }
        Some(name) => {
            out.extend_from_slice(b"{\"toolUse\":{\"input\":");
            tool_arguments(out, plan.tokens, plan.token_bytes);
            out.extend_from_slice(b",\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"toolUseId\":");
            tool_id(plan, out);
            out.extend_from_slice(b"}}");
            b"tool_use"
        }
    };
    out.extend_from_slice(b"],\"role\":\"assistant\"}},\"stopReason\":\"");
    out.extend_from_slice(stop);
    out.extend_from_slice(b"\",");
    usage(plan, out);
    out.push(b'}');
    if plan.malformed {
        out.truncate(out.len() / 2);
    }
}

pub(super) fn stream(plan: &Plan<'_>, ev: &mut Events) {
    let n = plan.tokens;
    let last = n - 1;
    let mut p = Vec::with_capacity(256);
    p.push(b'{');
    pad(&mut p, 0);
    p.extend_from_slice(b",\"role\":\"assistant\"}");
    encode_event(&mut ev.buf, b"messageStart", &p);
    ev.end(0, 0);
    if let Some(name) = plan.tool {
        p.clear();
        p.extend_from_slice(b"{\"contentBlockIndex\":0,");
        pad(&mut p, 1);
        p.extend_from_slice(b",\"start\":{\"toolUse\":{\"name\":");
        json::string(&mut p, name.as_bytes());
        p.extend_from_slice(b",\"toolUseId\":");
        tool_id(plan, &mut p);
        p.extend_from_slice(b"}}}");
        encode_event(&mut ev.buf, b"contentBlockStart", &p);
        ev.end(0, 0);
    }
    let mut piece = Vec::with_capacity(64);
    for k in 0..n {
        piece.clear();
        p.clear();
        p.extend_from_slice(b"{\"contentBlockIndex\":0,\"delta\":");
        match plan.tool {
            None => {
                token_text(&mut piece, k, plan.token_bytes);
                p.extend_from_slice(b"{\"text\":");
                json::string(&mut p, &piece);
                p.push(b'}');
            }
            Some(_) => {
                tool_fragment(&mut piece, k, n, plan.token_bytes);
                p.extend_from_slice(b"{\"toolUse\":{\"input\":");
                json::string(&mut p, &piece);
                p.extend_from_slice(b"}}");
            }
        }
        p.push(b',');
        pad(&mut p, k + 2);
        p.push(b'}');
        encode_event(&mut ev.buf, b"contentBlockDelta", &p);
        ev.end(k, k + 1);
        if plan.malformed && k == 0 {
            // A message whose CRC does not match.
            let at = ev.buf.len();
            encode_event(&mut ev.buf, b"contentBlockDelta", &p);
            let crc_at = ev.buf.len() - 1;
            ev.buf[crc_at] ^= 0xff;
            debug_assert!(ev.buf.len() > at);
            ev.end(k, k + 1);
        }
    }
    if plan.truncate {
        return;
    }
    p.clear();
    p.extend_from_slice(b"{\"contentBlockIndex\":0,");
    pad(&mut p, n + 3);
    p.push(b'}');
    encode_event(&mut ev.buf, b"contentBlockStop", &p);
    ev.end(last, n);
    p.clear();
    p.push(b'{');
    pad(&mut p, n + 4);
    p.extend_from_slice(b",\"stopReason\":\"");
    p.extend_from_slice(if plan.tool.is_some() {
        b"tool_use"
    } else {
        b"end_turn"
    });
    p.extend_from_slice(b"\"}");
    encode_event(&mut ev.buf, b"messageStop", &p);
    ev.end(last, n);
    p.clear();
    p.extend_from_slice(b"{\"metrics\":{\"latencyMs\":412},");
    pad(&mut p, n + 5);
    p.push(b',');
    usage(plan, &mut p);
    p.push(b'}');
    encode_event(&mut ev.buf, b"metadata", &p);
    ev.mark_usage();
    ev.end(last, n);
}
