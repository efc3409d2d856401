//! The mock provider's answers: deterministic bodies and streams in each provider's wire
//! format. Served two ways from this one renderer: by the `tollgate-mock` binary (`loadtest/`,
//! with timing shapes and faults) and by the gateway's built-in `mock` provider kind, so the
//! default config answers real requests with no API keys and no other process.

mod bedrock;
pub mod render;
mod responses;
mod text;

use crate::dialect::Dialect;

/// The endpoints the mock serves. Paths are matched by suffix so that provider-style prefixes
/// (`/openai/deployments/x/chat/completions`, `/openai/v1/...`) work too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Api {
    Chat,
    Completions,
    Embeddings,
    Models,
    Messages,
    /// OpenAI's Responses API (`…/responses`).
    Responses,
    /// `…/models/{model}:generateContent` or `:streamGenerateContent` (`sse` with `alt=sse`).
    Gemini {
        model: String,
        stream: bool,
        sse: bool,
    },
    /// Bedrock's `…/model/{modelId}/converse` or `/converse-stream` (AWS's event stream).
    Bedrock {
        model: String,
        stream: bool,
    },
    /// Anthropic's models on Vertex AI: `…/publishers/anthropic/models/{model}:rawPredict` or
    /// `:streamRawPredict` (Messages bodies, the model in the path).
    VertexMessages {
        model: String,
        stream: bool,
    },
    /// A call on a stored Responses API response (`…/responses/{id}`, `/cancel`,
    /// `/input_items`; `delete` for `DELETE …/responses/{id}`).
    StoredResponse {
        id: String,
        call: crate::dialect::responses::Stored,
        delete: bool,
    },
    /// An OAuth2 token endpoint (`…/token`): a service account's JWT for an access token.
    Token,
    /// An OpenTelemetry collector's OTLP/HTTP traces endpoint (`…/v1/traces`): accepted and
    /// counted, not decoded (a sink for the gateway's exporter in benchmarks).
    OtlpTraces,
    Stats,
    Reset,
    Health,
}

impl Api {
    pub fn dialect(&self) -> Dialect {
        match self {
            Api::Messages | Api::VertexMessages { .. } => Dialect::Anthropic,
            Api::Responses | Api::StoredResponse { .. } => Dialect::Responses,
            Api::Gemini { .. } => Dialect::Gemini,
            Api::Bedrock { .. } => Dialect::Bedrock,
            _ => Dialect::OpenAi,
        }
    }

    /// True for the provider endpoints that produce tokens (and are billed).
    pub fn generates(&self) -> bool {
        matches!(
            self,
            Api::Chat
                | Api::Completions
                | Api::Embeddings
                | Api::Messages
                | Api::Responses
                | Api::Gemini { .. }
                | Api::Bedrock { .. }
                | Api::VertexMessages { .. }
        )
    }
}

/// The mock's documented prompt-token estimate: one token per 4 bytes of request body,
/// rounded up. Deterministic, so tests predict it from the bytes they send.
pub fn prompt_tokens(body_len: usize) -> u64 {
    (body_len as u64).div_ceil(4)
}

/// What the gateway's built-in mock provider needs to answer one request.
#[derive(Clone, Copy, Debug)]
pub struct Ask<'a> {
    pub api: &'a Api,
    /// The model name as the deployment sends it upstream.
    pub model: &'a str,
    pub body_len: usize,
    pub stream: bool,
    pub include_usage: bool,
    pub max_tokens: Option<u32>,
    /// Unique per gateway process (worker, serial), for the response id.
    pub worker: u16,
    pub serial: u64,
    pub created: u64,
    /// Embeddings: the input texts.
    pub texts: &'a [String],
}

/// An embeddings request's input texts (`input`: a string or an array of strings; anything
/// else gives none, and the mock's vectors are then fixed).
pub fn embedding_inputs(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Input {
        One(String),
        Many(Vec<String>),
    }
    #[derive(serde::Deserialize)]
    struct Req {
        input: Input,
    }
    match crate::json::Scratch::default().parse::<Req>(body) {
        Some(Req {
            input: Input::One(s),
        }) => vec![s],
        Some(Req {
            input: Input::Many(v),
        }) => v,
        None => Vec::new(),
    }
}

/// Completion tokens the built-in mock emits when the request sets no `max_tokens`.
pub const BUILTIN_TOKENS: u32 = 16;
/// Upper bound on what one built-in mock answer can make the gateway render.
pub const BUILTIN_MAX_TOKENS: u32 = 4096;
/// Embedding dimensions of the built-in mock.
pub const BUILTIN_EMBEDDING_DIMS: u32 = 8;

/// The body (into `out`) and status of a call on a stored Responses API response. The mock
/// stores nothing: an id it issued (`resp_mock-…`) stands for a completed text response,
/// rebuilt from the id; any other is 404, as OpenAI answers an unknown id.
pub fn stored_response(
    id: &[u8],
    call: crate::dialect::responses::Stored,
    delete: bool,
    created: u64,
    out: &mut Vec<u8>,
) -> u16 {
    responses::stored(id, call, delete, created, out)
}

/// Renders a complete HTTP/1.1 response (head and body) for the built-in mock provider into
/// `out`: JSON with `Content-Length`, or SSE with one chunk per event. The gateway relays it
/// through the same code path as a response read from a socket.
pub fn respond(ask: &Ask<'_>, out: &mut Vec<u8>) {
    use crate::http1::write;
    if let Api::StoredResponse { id, call, delete } = ask.api {
        let mut body = Vec::with_capacity(1024);
        let status = stored_response(id.as_bytes(), *call, *delete, ask.created, &mut body);
        write::status_line(out, status);
        write::header(out, "content-type", b"application/json");
        write::header_u64(out, "content-length", body.len() as u64);
        write::end_head(out);
        out.extend_from_slice(&body);
        return;
    }
    let id = format!("mock-{}-{}", ask.worker, ask.serial);
    let plan = render::Plan {
        api: ask.api,
        model: ask.model,
        id: &id,
        created: ask.created,
        prompt_tokens: prompt_tokens(ask.body_len),
        cached_tokens: 0,
        tokens: ask
            .max_tokens
            .unwrap_or(BUILTIN_TOKENS)
            .clamp(1, BUILTIN_MAX_TOKENS),
        reasoning_tokens: 0,
        token_bytes: render::Tokens::default(),
        tool: None,
        include_usage: ask.include_usage,
        malformed: false,
        truncate: false,
        inputs: ask.texts.len().max(1) as u32,
        dimensions: BUILTIN_EMBEDDING_DIMS,
        texts: ask.texts,
    };
    write::status_line(out, 200);
    // A stream in the client's own dialect: OpenAI chunks, Anthropic's events, or Gemini's
    // SSE (`streamGenerateContent?alt=sse`; without `alt=sse` Gemini streams a JSON array).
    let streams = match ask.api {
        Api::Chat | Api::Completions | Api::Messages | Api::Responses => ask.stream,
        Api::VertexMessages { stream, .. } => *stream,
        Api::Gemini { stream, sse, .. } => *stream && *sse,
        Api::Bedrock { stream, .. } => *stream,
        _ => false,
    };
    if streams {
        let mut ev = render::Events::default();
        render::stream_events(&plan, &mut ev);
        let content_type: &[u8] = match ask.api {
            Api::Bedrock { .. } => crate::dialect::bedrock::STREAM_CONTENT_TYPE,
            _ => b"text/event-stream",
        };
        write::header(out, "content-type", content_type);
        write::header(out, "cache-control", b"no-cache");
        write::header(out, "transfer-encoding", b"chunked");
        write::end_head(out);
        for i in 0..ev.len() {
            write::chunk(out, &ev.buf[ev.range(i)]);
        }
        write::last_chunk(out);
    } else {
        let mut body = Vec::with_capacity(512);
        match ask.api {
            Api::Gemini { stream: true, .. } => {
                render::gemini_array(&plan, &mut render::Events::default(), &mut body);
            }
            _ => render::json_body(&plan, &mut body),
        }
        write::header(out, "content-type", b"application/json");
        write::header_u64(out, "content-length", body.len() as u64);
        write::end_head(out);
        out.extend_from_slice(&body);
    }
}
