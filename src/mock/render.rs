//! Rendering a deterministic answer in each provider's wire format, modelled on the captures
//! in `tests/fixtures/corpus/`.
//!
//! A [`Plan`] fixes every number first (prompt, cached, completion and reasoning tokens, the
//! text of each token, the tool call); the dialect functions then write either a JSON body or
//! a list of SSE events ([`Events`]), each event tagged with the *tick* at which it is due
//! (tick k = time to first token + k × inter-token gap) and the completion tokens emitted up to
//! and including it, so the writer can pace the stream and the ledger can bill a stream that
//! was cut.
//!
//! These writers are the mock's own, not the dialects' (`ARCHITECTURE.md`, "Dialects and the hub"
//! says why): they imitate the providers, accents and injected faults included, and
//! `loadtest/tests/mock_wire.rs` holds them to the captures.

use super::Api;
use crate::dialect::Dialect;
use crate::json;

pub use super::text::{Tokens, full_text, token_text, tool_arguments, tool_fragment};

/// Everything decided about one answer before any byte is written.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub api: &'a Api,
    pub model: &'a str,
    /// Unique per mock process: `<worker>-<serial>`.
    pub id: &'a str,
    pub created: u64,
    pub prompt_tokens: u64,
    /// Of the prompt tokens, how many were "cached" (≤ prompt_tokens).
    pub cached_tokens: u64,
    /// Visible completion tokens (≥ 1).
    pub tokens: u32,
    pub reasoning_tokens: u32,
    /// How the text is cut into tokens, and whose text it is.
    pub token_bytes: Tokens<'a>,
    pub tool: Option<&'a str>,
    pub include_usage: bool,
    pub malformed: bool,
    pub truncate: bool,
    /// Embeddings.
    pub inputs: u32,
    pub dimensions: u32,
    /// Embeddings: the input texts, when the request's were strings.
    pub texts: &'a [String],
}

impl Plan<'_> {
    /// Completion tokens as OpenAI counts them (visible + reasoning).
    pub fn completion_tokens(&self) -> u64 {
        u64::from(self.tokens) + u64::from(self.reasoning_tokens)
    }

    pub(super) fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens()
    }
}

/// SSE events laid out in one buffer.
#[derive(Debug, Default)]
pub struct Events {
    pub buf: Vec<u8>,
    /// `buf[ends[i-1]..ends[i]]` is event i.
    pub ends: Vec<usize>,
    /// The tick at which event i is due.
    pub ticks: Vec<u32>,
    /// Visible completion tokens emitted through event i.
    pub tokens: Vec<u32>,
    /// Index of the first event that carries the final usage, if any.
    pub usage_event: Option<usize>,
}

impl Events {
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
        self.ticks.clear();
        self.tokens.clear();
        self.usage_event = None;
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        start..self.ends[i]
    }

    pub(super) fn end(&mut self, tick: u32, tokens: u32) {
        self.ends.push(self.buf.len());
        self.ticks.push(tick);
        self.tokens.push(tokens);
    }

    pub(super) fn mark_usage(&mut self) {
        self.usage_event.get_or_insert(self.ends.len());
    }
}

/// Writes the non-streaming JSON body of `plan` into `out`.
pub fn json_body(plan: &Plan<'_>, out: &mut Vec<u8>) {
    match plan.api {
        Api::Chat => openai_chat_json(plan, out),
        Api::Completions => openai_completion_json(plan, out),
        Api::Embeddings => openai_embeddings_json(plan, out),
        Api::Messages | Api::VertexMessages { .. } => anthropic_json(plan, out),
        Api::Responses => super::responses::json(plan, out),
        Api::Gemini { .. } => gemini_json(plan, out, true),
        Api::Bedrock { .. } => super::bedrock::json(plan, out),
        Api::Models
        | Api::Stats
        | Api::Reset
        | Api::Health
        | Api::Token
        | Api::OtlpTraces
        | Api::StoredResponse { .. } => {}
    }
}

/// Writes the SSE events of `plan` into `ev`.
pub fn stream_events(plan: &Plan<'_>, ev: &mut Events) {
    match plan.api {
        Api::Chat | Api::Completions => openai_stream(plan, ev),
        Api::Messages | Api::VertexMessages { .. } => anthropic_stream(plan, ev),
        Api::Responses => super::responses::stream(plan, ev),
        Api::Gemini { .. } => gemini_stream(plan, ev),
        Api::Bedrock { .. } => super::bedrock::stream(plan, ev),
        Api::Embeddings
        | Api::Models
        | Api::Stats
        | Api::Reset
        | Api::Health
        | Api::Token
        | Api::OtlpTraces
        | Api::StoredResponse { .. } => {}
    }
}

// ---------------------------------------------------------------------------------- OpenAI

fn openai_usage(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"usage\":{\"prompt_tokens\":");
    json::uint(out, plan.prompt_tokens);
    out.extend_from_slice(b",\"completion_tokens\":");
    json::uint(out, plan.completion_tokens());
    out.extend_from_slice(b",\"total_tokens\":");
    json::uint(out, plan.total_tokens());
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    json::uint(out, plan.cached_tokens);
    out.extend_from_slice(
        b",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":",
    );
    json::uint(out, u64::from(plan.reasoning_tokens));
    out.extend_from_slice(
        b",\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
    );
}

fn openai_chat_json(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":\"chatcmpl-mock-");
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"chat.completion\",\"created\":");
    json::uint(out, plan.created);
    out.extend_from_slice(b",\"model\":");
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",");
    let finish: &[u8] = match plan.tool {
        None => {
            out.extend_from_slice(b"\"content\":\"");
            full_text(out, plan.tokens, plan.token_bytes);
            out.extend_from_slice(b"\",\"refusal\":null,\"annotations\":[]}");
            b"stop"
        }
        Some(name) => {
            out.extend_from_slice(b"\"content\":null,\"tool_calls\":[{\"id\":\"call_mock_");
            out.extend_from_slice(plan.id.as_bytes());
            out.extend_from_slice(b"\",\"type\":\"function\",\"function\":{\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"arguments\":");
            let mut args = Vec::new();
            tool_arguments(&mut args, plan.tokens, plan.token_bytes);
            json::string(out, &args);
            out.extend_from_slice(b"}}],\"refusal\":null,\"annotations\":[]}");
            b"tool_calls"
        }
    };
    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":\"");
    out.extend_from_slice(finish);
    out.extend_from_slice(b"\"}],");
    openai_usage(plan, out);
    out.extend_from_slice(b",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\"}");
    if plan.malformed {
        out.truncate(out.len() / 2);
    }
}

fn openai_completion_json(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":\"cmpl-mock-");
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"text_completion\",\"created\":");
    json::uint(out, plan.created);
    out.extend_from_slice(b",\"model\":");
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"choices\":[{\"text\":\"");
    full_text(out, plan.tokens, plan.token_bytes);
    out.extend_from_slice(b"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],");
    openai_usage(plan, out);
    out.push(b'}');
    if plan.malformed {
        out.truncate(out.len() / 2);
    }
}

/// A deterministic embedding of `text`: each lower-cased word (letters and digits) adds ±1 to
/// one of `dims` dimensions chosen by its hash; the sum is scaled to unit length. Two texts'
/// cosine similarity is then about the share of words they have in common.
pub fn bag_of_words(text: &str, dims: u32) -> Vec<f64> {
    let mut v = vec![0f64; dims.max(1) as usize];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let sign = if h >> 63 == 1 { -1.0 } else { 1.0 };
        let n = v.len() as u64;
        v[(h % n) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

fn openai_embeddings_json(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for i in 0..plan.inputs {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        json::uint(out, u64::from(i));
        out.extend_from_slice(b",\"embedding\":[");
        let words = plan
            .texts
            .get(i as usize)
            .map(|t| bag_of_words(t, plan.dimensions));
        for j in 0..plan.dimensions {
            if j > 0 {
                out.push(b',');
            }
            let v = match &words {
                // The text's words, hashed into the dimensions: prompts sharing words are
                // close, prompts sharing none far apart (in ±0.9999, 4 decimals).
                Some(w) => (w[j as usize] * 9999.0).round() as i64,
                // A fixed, deterministic value in (-0.1, 0.1) with 4 decimals.
                None => (i64::from(i) * 7919 + i64::from(j) * 104_729) % 1999 - 999,
            };
            if v < 0 {
                out.push(b'-');
            }
            out.extend_from_slice(b"0.");
            let a = v.unsigned_abs();
            out.extend_from_slice(&[
                b'0' + (a / 1000 % 10) as u8,
                b'0' + (a / 100 % 10) as u8,
                b'0' + (a / 10 % 10) as u8,
                b'0' + (a % 10) as u8,
            ]);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"],\"model\":");
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"usage\":{\"prompt_tokens\":");
    json::uint(out, plan.prompt_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    json::uint(out, plan.prompt_tokens);
    out.extend_from_slice(b"}}");
}

/// The common prefix of every OpenAI chunk, up to and including `"choices":[`.
fn openai_chunk_head(plan: &Plan<'_>, out: &mut Vec<u8>) {
    let chat = *plan.api == Api::Chat;
    out.extend_from_slice(if chat {
        b"data: {\"id\":\"chatcmpl-mock-"
    } else {
        b"data: {\"id\":\"cmpl-mock-"
    });
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(if chat {
        b"\",\"object\":\"chat.completion.chunk\",\"created\":"
    } else {
        b"\",\"object\":\"text_completion\",\"created\":"
    });
    json::uint(out, plan.created);
    out.extend_from_slice(b",\"model\":");
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"system_fingerprint\":\"fp_mock\",\"choices\":[");
}

fn openai_chunk_tail(plan: &Plan<'_>, out: &mut Vec<u8>) {
    // With include_usage, every chunk carries "usage":null, as api.openai.com sends it.
    out.extend_from_slice(if plan.include_usage {
        b"],\"usage\":null}\n\n"
    } else {
        b"]}\n\n"
    });
}

fn openai_stream(plan: &Plan<'_>, ev: &mut Events) {
    let chat = *plan.api == Api::Chat;
    let n = plan.tokens;
    let last = n - 1;
    if chat {
        // Role chunk (and the tool call's identity).
        openai_chunk_head(plan, &mut ev.buf);
        match plan.tool {
            None => ev.buf.extend_from_slice(
                b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}",
            ),
            Some(name) => {
                ev.buf.extend_from_slice(
                    b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_",
                );
                ev.buf.extend_from_slice(plan.id.as_bytes());
                ev.buf.extend_from_slice(b"\",\"type\":\"function\",\"function\":{\"name\":");
                json::string(&mut ev.buf, name.as_bytes());
                ev.buf.extend_from_slice(b",\"arguments\":\"\"}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}");
            }
        }
        openai_chunk_tail(plan, &mut ev.buf);
        ev.end(0, 0);
    }
    let mut piece = Vec::with_capacity(64);
    for k in 0..n {
        piece.clear();
        openai_chunk_head(plan, &mut ev.buf);
        match (chat, plan.tool) {
            (true, None) => {
                token_text(&mut piece, k, plan.token_bytes);
                ev.buf
                    .extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":");
                json::string(&mut ev.buf, &piece);
                ev.buf
                    .extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}");
            }
            (true, Some(_)) => {
                tool_fragment(&mut piece, k, n, plan.token_bytes);
                ev.buf.extend_from_slice(b"{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
                json::string(&mut ev.buf, &piece);
                ev.buf
                    .extend_from_slice(b"}}]},\"logprobs\":null,\"finish_reason\":null}");
            }
            (false, _) => {
                token_text(&mut piece, k, plan.token_bytes);
                ev.buf.extend_from_slice(b"{\"text\":");
                json::string(&mut ev.buf, &piece);
                ev.buf
                    .extend_from_slice(b",\"index\":0,\"logprobs\":null,\"finish_reason\":null}");
            }
        }
        openai_chunk_tail(plan, &mut ev.buf);
        ev.end(k, k + 1);
        if plan.malformed && k == 0 {
            openai_chunk_head(plan, &mut ev.buf);
            ev.buf
                .extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":\"tru\n\n");
            ev.end(k, k + 1);
        }
    }
    if plan.truncate {
        return;
    }
    openai_chunk_head(plan, &mut ev.buf);
    let finish: &[u8] = if plan.tool.is_some() && chat {
        b"tool_calls"
    } else {
        b"stop"
    };
    if chat {
        ev.buf
            .extend_from_slice(b"{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
    } else {
        ev.buf.extend_from_slice(
            b"{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"",
        );
    }
    ev.buf.extend_from_slice(finish);
    ev.buf.extend_from_slice(b"\"}");
    openai_chunk_tail(plan, &mut ev.buf);
    ev.end(last, n);
    if plan.include_usage {
        openai_chunk_head(plan, &mut ev.buf);
        ev.buf.extend_from_slice(b"],");
        openai_usage(plan, &mut ev.buf);
        ev.buf.extend_from_slice(b"}\n\n");
        ev.mark_usage();
        ev.end(last, n);
    }
    ev.buf.extend_from_slice(b"data: [DONE]\n\n");
    ev.end(last, n);
}

// ------------------------------------------------------------------------------- Anthropic

fn anthropic_usage(plan: &Plan<'_>, out: &mut Vec<u8>, output_tokens: u64) {
    out.extend_from_slice(b"{\"input_tokens\":");
    json::uint(out, plan.prompt_tokens - plan.cached_tokens);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":");
    json::uint(out, plan.cached_tokens);
    out.extend_from_slice(b",\"output_tokens\":");
    json::uint(out, output_tokens);
    out.push(b'}');
}

fn anthropic_json(plan: &Plan<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"model\":");
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"id\":\"msg_mock_");
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[");
    let stop: &[u8] = match plan.tool {
        None => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"");
            full_text(out, plan.tokens, plan.token_bytes);
            out.extend_from_slice(b"\"}");
            b"end_turn"
        }
        Some(name) => {
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"toolu_mock_");
            out.extend_from_slice(plan.id.as_bytes());
            out.extend_from_slice(b"\",\"name\":");
            json::string(out, name.as_bytes());
            out.extend_from_slice(b",\"input\":");
            tool_arguments(out, plan.tokens, plan.token_bytes);
            out.push(b'}');
            b"tool_use"
        }
    };
    out.extend_from_slice(b"],\"stop_reason\":\"");
    out.extend_from_slice(stop);
    out.extend_from_slice(b"\",\"stop_sequence\":null,\"usage\":");
    anthropic_usage(plan, out, plan.completion_tokens());
    out.push(b'}');
    if plan.malformed {
        out.truncate(out.len() / 2);
    }
}

fn anthropic_event(ev: &mut Events, name: &[u8]) {
    ev.buf.extend_from_slice(b"event: ");
    ev.buf.extend_from_slice(name);
    ev.buf.extend_from_slice(b"\ndata: ");
}

fn anthropic_stream(plan: &Plan<'_>, ev: &mut Events) {
    let n = plan.tokens;
    let last = n - 1;
    anthropic_event(ev, b"message_start");
    ev.buf
        .extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_");
    ev.buf.extend_from_slice(plan.id.as_bytes());
    ev.buf
        .extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    json::string(&mut ev.buf, plan.model.as_bytes());
    ev.buf.extend_from_slice(
        b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":",
    );
    anthropic_usage(plan, &mut ev.buf, 1);
    ev.buf.extend_from_slice(b"}}\n\n");
    ev.end(0, 0);

    anthropic_event(ev, b"content_block_start");
    match plan.tool {
        None => ev.buf.extend_from_slice(
            b"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        ),
        Some(name) => {
            ev.buf.extend_from_slice(
                b"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_mock_",
            );
            ev.buf.extend_from_slice(plan.id.as_bytes());
            ev.buf.extend_from_slice(b"\",\"name\":");
            json::string(&mut ev.buf, name.as_bytes());
            ev.buf.extend_from_slice(b",\"input\":{}}}\n\n");
        }
    }
    ev.end(0, 0);
    anthropic_event(ev, b"ping");
    ev.buf.extend_from_slice(b"{\"type\": \"ping\"}\n\n");
    ev.end(0, 0);

    let mut piece = Vec::with_capacity(64);
    for k in 0..n {
        piece.clear();
        anthropic_event(ev, b"content_block_delta");
        ev.buf
            .extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":");
        match plan.tool {
            None => {
                token_text(&mut piece, k, plan.token_bytes);
                ev.buf
                    .extend_from_slice(b"{\"type\":\"text_delta\",\"text\":");
            }
            Some(_) => {
                tool_fragment(&mut piece, k, n, plan.token_bytes);
                ev.buf
                    .extend_from_slice(b"{\"type\":\"input_json_delta\",\"partial_json\":");
            }
        }
        json::string(&mut ev.buf, &piece);
        ev.buf.extend_from_slice(b"}}\n\n");
        ev.end(k, k + 1);
        if plan.malformed && k == 0 {
            anthropic_event(ev, b"content_block_delta");
            ev.buf.extend_from_slice(
                b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_de\n\n",
            );
            ev.end(k, k + 1);
        }
    }
    if plan.truncate {
        return;
    }
    anthropic_event(ev, b"content_block_stop");
    ev.buf
        .extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":0}\n\n");
    ev.end(last, n);
    anthropic_event(ev, b"message_delta");
    ev.buf
        .extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
    ev.buf.extend_from_slice(if plan.tool.is_some() {
        b"tool_use"
    } else {
        b"end_turn"
    });
    ev.buf
        .extend_from_slice(b"\",\"stop_sequence\":null},\"usage\":");
    anthropic_usage(plan, &mut ev.buf, plan.completion_tokens());
    ev.buf.extend_from_slice(b"}\n\n");
    ev.mark_usage();
    ev.end(last, n);
    anthropic_event(ev, b"message_stop");
    ev.buf.extend_from_slice(b"{\"type\":\"message_stop\"}\n\n");
    ev.end(last, n);
}

// ---------------------------------------------------------------------------------- Gemini

fn gemini_usage(plan: &Plan<'_>, out: &mut Vec<u8>, candidates: u64) {
    out.extend_from_slice(b"\"usageMetadata\": {\"promptTokenCount\": ");
    json::uint(out, plan.prompt_tokens);
    out.extend_from_slice(b",\"candidatesTokenCount\": ");
    json::uint(out, candidates);
    out.extend_from_slice(b",\"totalTokenCount\": ");
    json::uint(
        out,
        plan.prompt_tokens + candidates + u64::from(plan.reasoning_tokens),
    );
    if plan.cached_tokens > 0 {
        out.extend_from_slice(b",\"cachedContentTokenCount\": ");
        json::uint(out, plan.cached_tokens);
    }
    if plan.reasoning_tokens > 0 {
        out.extend_from_slice(b",\"thoughtsTokenCount\": ");
        json::uint(out, u64::from(plan.reasoning_tokens));
    }
    out.push(b'}');
}

/// One `GenerateContentResponse` object: `parts` written by `parts`, then finish and usage.
fn gemini_object(
    plan: &Plan<'_>,
    out: &mut Vec<u8>,
    finish: bool,
    candidates: u64,
    parts: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(b"{\"candidates\": [{\"content\": {\"parts\": [");
    parts(out);
    out.extend_from_slice(b"],\"role\": \"model\"},");
    if finish {
        out.extend_from_slice(b"\"finishReason\": \"STOP\",");
    }
    out.extend_from_slice(b"\"index\": 0}],");
    gemini_usage(plan, out, candidates);
    out.extend_from_slice(b",\"modelVersion\": ");
    json::string(out, plan.model.as_bytes());
    out.extend_from_slice(b",\"responseId\": \"mock-");
    out.extend_from_slice(plan.id.as_bytes());
    out.extend_from_slice(b"\"}");
}

fn gemini_call(plan: &Plan<'_>, name: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"functionCall\": {\"name\": ");
    json::string(out, name.as_bytes());
    out.extend_from_slice(b",\"args\": ");
    tool_arguments(out, plan.tokens, plan.token_bytes);
    out.extend_from_slice(b"}}");
}

fn gemini_json(plan: &Plan<'_>, out: &mut Vec<u8>, _whole: bool) {
    gemini_object(plan, out, true, u64::from(plan.tokens), |out| {
        match plan.tool {
            None => {
                out.extend_from_slice(b"{\"text\": \"");
                full_text(out, plan.tokens, plan.token_bytes);
                out.extend_from_slice(b"\"}");
            }
            Some(name) => gemini_call(plan, name, out),
        }
    });
    if plan.malformed {
        out.truncate(out.len() / 2);
    }
}

fn gemini_stream(plan: &Plan<'_>, ev: &mut Events) {
    let n = plan.tokens;
    if let Some(name) = plan.tool {
        if plan.truncate {
            return;
        }
        ev.buf.extend_from_slice(b"data: ");
        gemini_object(plan, &mut ev.buf, true, u64::from(n), |out| {
            gemini_call(plan, name, out)
        });
        ev.buf.extend_from_slice(b"\r\n\r\n");
        ev.mark_usage();
        ev.end(n - 1, n);
        return;
    }
    let mut piece = Vec::with_capacity(64);
    for k in 0..n {
        let last = k + 1 == n;
        if last && plan.truncate {
            return;
        }
        piece.clear();
        token_text(&mut piece, k, plan.token_bytes);
        ev.buf.extend_from_slice(b"data: ");
        gemini_object(plan, &mut ev.buf, last, u64::from(k + 1), |out| {
            out.extend_from_slice(b"{\"text\": ");
            json::string(out, &piece);
            out.push(b'}');
        });
        ev.buf.extend_from_slice(b"\r\n\r\n");
        if last {
            ev.mark_usage();
        }
        ev.end(k, k + 1);
        if plan.malformed && k == 0 {
            ev.buf.extend_from_slice(
                b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"te\r\n\r\n",
            );
            ev.end(k, k + 1);
        }
    }
}

/// `streamGenerateContent` without `alt=sse`: the chunks as one JSON array.
pub fn gemini_array(plan: &Plan<'_>, ev: &mut Events, out: &mut Vec<u8>) {
    ev.clear();
    gemini_stream(plan, ev);
    out.push(b'[');
    for i in 0..ev.len() {
        if i > 0 {
            out.extend_from_slice(b",\r\n");
        }
        let e = &ev.buf[ev.range(i)];
        let e = e.strip_prefix(b"data: ").unwrap_or(e);
        let e = e.strip_suffix(b"\r\n\r\n").unwrap_or(e);
        out.extend_from_slice(e);
    }
    out.push(b']');
}

/// Writes an error body in `dialect`'s shape for `status`.
pub fn error_body(dialect: Dialect, status: u16, message: &str, out: &mut Vec<u8>) {
    error_body_coded(dialect, status, message, None, out);
}

/// [`error_body`] with OpenAI's `error.code` given (`None`: the status's usual one).
pub fn error_body_coded(
    dialect: Dialect,
    status: u16,
    message: &str,
    code: Option<&str>,
    out: &mut Vec<u8>,
) {
    use crate::dialect::{anthropic, gemini, openai};
    match dialect {
        Dialect::OpenAi | Dialect::Responses => {
            let (kind, usual): (&[u8], Option<&[u8]>) = match status {
                401 => (b"invalid_request_error", Some(b"invalid_api_key")),
                404 => (b"invalid_request_error", Some(b"not_found")),
                429 => (b"requests", Some(b"rate_limit_exceeded")),
                400..=499 => (b"invalid_request_error", None),
                _ => (b"server_error", None),
            };
            let code = code.map(str::as_bytes).or(usual);
            openai::write_error(out, message.as_bytes(), kind, None, code);
        }
        Dialect::Anthropic => {
            anthropic::write_error(out, anthropic::error_type(status), message.as_bytes());
        }
        Dialect::Gemini => gemini::write_error(out, status, message.as_bytes()),
        Dialect::Bedrock => {
            crate::dialect::bedrock::write_error(out, status, message.as_bytes());
        }
    }
}

/// The message an injected error status carries.
/// An injected 400: OpenAI's context-length error.
pub const CONTEXT_MESSAGE: &str = "This model's maximum context length is 8192 tokens. However, \
    your messages resulted in 9000 tokens. Please reduce the length of the messages. \
    (tollgate-mock)";
/// The `policy` fault: a content-policy refusal.
pub const POLICY_MESSAGE: &str = "Your request was rejected as a result of our safety system. \
    (tollgate-mock)";

pub fn fault_message(status: u16, retry_after: u32) -> String {
    match status {
        429 => format!(
            "Rate limit reached for requests (tollgate-mock). Please try again in {retry_after}s."
        ),
        503 => "The server is overloaded or not ready yet. (tollgate-mock)".into(),
        529 => "Overloaded".into(),
        500 => "The server had an error while processing your request. (tollgate-mock)".into(),
        _ => format!("injected error {status} (tollgate-mock)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(api: &Api) -> Plan<'_> {
        Plan {
            api,
            model: "m",
            id: "0-1",
            created: 1,
            prompt_tokens: 10,
            cached_tokens: 0,
            tokens: 3,
            reasoning_tokens: 0,
            token_bytes: Tokens::default(),
            tool: None,
            include_usage: true,
            malformed: false,
            truncate: false,
            inputs: 2,
            dimensions: 4,
            texts: &[],
        }
    }

    #[test]
    fn json_bodies_are_valid_json() {
        for api in [
            Api::Chat,
            Api::Completions,
            Api::Embeddings,
            Api::Messages,
            Api::Gemini {
                model: "g".into(),
                stream: false,
                sse: false,
            },
        ] {
            for tool in [None, Some("f\"n")] {
                let mut p = plan(&api);
                p.tool = tool;
                let mut out = Vec::new();
                json_body(&p, &mut out);
                serde_json::from_slice::<serde_json::Value>(&out)
                    .unwrap_or_else(|e| panic!("{api:?}: {e}: {}", String::from_utf8_lossy(&out)));
            }
        }
    }

    #[test]
    fn token_bytes_are_exact() {
        let mut out = Vec::new();
        for k in 0..50 {
            out.clear();
            token_text(&mut out, k, Tokens::words(Some(13)));
            assert_eq!(out.len(), 13);
        }
        let mut args = Vec::new();
        tool_arguments(&mut args, 5, Tokens::words(Some(3)));
        let v: serde_json::Value = serde_json::from_slice(&args).unwrap();
        assert_eq!(v["input"].as_str().unwrap().len(), 15);
    }
}
