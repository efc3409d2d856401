//! The request path's one error type, and the one place that turns it into a response.
//!
//! A [`GatewayError`] has orthogonal axes: what went wrong ([`ErrorKind`]), on which side
//! ([`Side`]: the client, the provider, or tollgate itself — a function of the kind, written
//! into the audit record as `error_side`), whether another attempt could succeed (`retry`,
//! decided where the error is created and read by the failover loop), and the I/O error that
//! caused it, when there was one (kept as [`std::error::Error::source`], not flattened). [`GatewayError::write_response`]
//! renders OpenAI's error shape — `{"error":{"message","type","param","code"}}` — or
//! Anthropic's, with the dialects' own writers (`crate::dialect`), and the status that goes
//! with the kind; [`ErrorKind::label`] is the metric/log label.

use std::borrow::Cow;

use crate::http1::{self, HeadError, write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Downstream,
    Upstream,
    Internal,
}

impl Side {
    pub fn label(self) -> &'static str {
        match self {
            Side::Downstream => "downstream",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed HTTP or an ambiguous frame (smuggling vector): 400, connection closed.
    BadRequest,
    /// The body is not the JSON the endpoint expects: 400.
    InvalidBody,
    /// No key was presented: 401.
    MissingKey,
    /// A key was presented and is not configured: 401.
    InvalidKey,
    /// The key is configured with `enabled = false`: 401.
    KeyDisabled,
    /// The key's `expires` has passed: 401.
    KeyExpired,
    /// The key may not use this model (`models` in its config): 403.
    ModelNotAllowed,
    /// No such route: 404.
    NotFound,
    /// The `model` is not configured (or cannot serve): 404 `model_not_found`.
    ModelNotFound,
    MethodNotAllowed,
    /// The client was too slow sending the head or body: 408.
    RequestTimeout,
    BodyTooLarge,
    HeadTooLarge,
    /// A transfer coding other than chunked: 501.
    NotImplemented,
    /// The worker is at its connection limit or draining: 503.
    Overloaded,
    /// A budget's hard cap is reached: 429 `insufficient_quota`.
    QuotaExceeded,
    /// A requests-per-minute limit: 429 `rate_limit_exceeded`, type `requests`.
    RateLimitRequests,
    /// A tokens-per-minute limit: 429 `rate_limit_exceeded`, type `tokens`.
    RateLimitTokens,
    /// Every deployment that could serve the model (and its fallbacks) is cooling down: 503.
    NoHealthyDeployment,
    /// Could not connect to the provider: 502.
    UpstreamConnect,
    /// The provider's TLS certificate or handshake was refused: 502.
    UpstreamTls,
    /// The provider did not answer (head, body gap, total) in time: 504.
    UpstreamTimeout,
    /// The provider sent something that is not valid HTTP/1.1, or closed early: 502.
    UpstreamProtocol,
    Internal,
    /// The client went away or stopped reading (logged as 499; nothing can be sent).
    ClientClosed,
    /// A guardrail with `action = "block"` matched the request or the answer: 400
    /// `guardrail_blocked`, naming the rule and the detector, never the text.
    GuardrailBlocked,
}

impl ErrorKind {
    /// Every kind, in declaration order (`ALL[k as usize] == k`: metrics count by index).
    pub const ALL: [ErrorKind; 26] = {
        use ErrorKind::*;
        [
            BadRequest,
            InvalidBody,
            MissingKey,
            InvalidKey,
            KeyDisabled,
            KeyExpired,
            ModelNotAllowed,
            NotFound,
            ModelNotFound,
            MethodNotAllowed,
            RequestTimeout,
            BodyTooLarge,
            HeadTooLarge,
            NotImplemented,
            Overloaded,
            QuotaExceeded,
            RateLimitRequests,
            RateLimitTokens,
            NoHealthyDeployment,
            UpstreamConnect,
            UpstreamTls,
            UpstreamTimeout,
            UpstreamProtocol,
            Internal,
            ClientClosed,
            GuardrailBlocked,
        ]
    };

    /// Whose fault it was: the client's, the provider's, or tollgate's own.
    pub fn side(self) -> Side {
        use ErrorKind::*;
        match self {
            UpstreamConnect | UpstreamTls | UpstreamTimeout | UpstreamProtocol => Side::Upstream,
            Internal | Overloaded | NoHealthyDeployment => Side::Internal,
            _ => Side::Downstream,
        }
    }

    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            BadRequest | InvalidBody | GuardrailBlocked => 400,
            MissingKey | InvalidKey | KeyDisabled | KeyExpired => 401,
            ModelNotAllowed => 403,
            NotFound | ModelNotFound => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            BodyTooLarge => 413,
            HeadTooLarge => 431,
            QuotaExceeded | RateLimitRequests | RateLimitTokens => 429,
            NotImplemented => 501,
            Overloaded | NoHealthyDeployment => 503,
            UpstreamConnect | UpstreamTls | UpstreamProtocol => 502,
            UpstreamTimeout => 504,
            Internal => 500,
            ClientClosed => 499,
        }
    }

    /// OpenAI's `error.type`.
    fn error_type(self) -> &'static str {
        use ErrorKind::*;
        match self {
            MissingKey | InvalidKey | KeyDisabled | KeyExpired => "authentication_error",
            QuotaExceeded => "insufficient_quota",
            RateLimitRequests => "requests",
            RateLimitTokens => "tokens",
            UpstreamConnect | UpstreamTls | UpstreamTimeout | UpstreamProtocol | Internal
            | Overloaded | NoHealthyDeployment => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// OpenAI's `error.code` (null where OpenAI sends null), and the metric/log label.
    pub fn label(self) -> &'static str {
        use ErrorKind::*;
        match self {
            BadRequest => "bad_request",
            InvalidBody => "invalid_request_body",
            MissingKey => "missing_api_key",
            InvalidKey => "invalid_api_key",
            KeyDisabled => "key_disabled",
            KeyExpired => "key_expired",
            ModelNotAllowed => "model_not_allowed",
            NotFound => "unknown_url",
            ModelNotFound => "model_not_found",
            MethodNotAllowed => "method_not_allowed",
            RequestTimeout => "request_timeout",
            BodyTooLarge => "request_too_large",
            HeadTooLarge => "headers_too_large",
            NotImplemented => "not_implemented",
            Overloaded => "overloaded",
            QuotaExceeded => "insufficient_quota",
            RateLimitRequests | RateLimitTokens => "rate_limit_exceeded",
            NoHealthyDeployment => "no_healthy_deployment",
            UpstreamConnect => "upstream_connect_failed",
            UpstreamTls => "upstream_tls_failed",
            UpstreamTimeout => "upstream_timeout",
            UpstreamProtocol => "upstream_protocol_error",
            Internal => "internal_error",
            ClientClosed => "client_closed",
            GuardrailBlocked => "guardrail_blocked",
        }
    }
}

#[derive(Debug)]
pub struct GatewayError {
    pub kind: ErrorKind,
    /// Another attempt (another connection or deployment) could succeed.
    pub retry: bool,
    pub message: Cow<'static, str>,
    /// The request field at fault (`model`, `messages`), when there is one.
    pub param: Option<Cow<'static, str>>,
    /// The I/O error behind it, when there was one.
    pub cause: Option<std::io::Error>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        GatewayError {
            kind,
            retry: matches!(kind, ErrorKind::UpstreamConnect),
            message: message.into(),
            param: None,
            cause: None,
        }
    }

    /// An error caused by `io`: `context` says what was being done; the message ends with
    /// the I/O error's text, and the error itself is kept as the source.
    pub fn io(kind: ErrorKind, context: &str, io: std::io::Error) -> Self {
        let mut e = GatewayError::new(kind, format!("{context}: {io}"));
        e.cause = Some(io);
        e
    }

    pub fn side(&self) -> Side {
        self.kind.side()
    }

    pub fn param(mut self, p: impl Into<Cow<'static, str>>) -> Self {
        self.param = Some(p.into());
        self
    }

    pub fn retryable(mut self, retry: bool) -> Self {
        self.retry = retry;
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// Appends the OpenAI-shaped JSON body.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let param = self.param.as_deref().map(str::as_bytes);
        crate::dialect::openai::write_error(
            out,
            self.message.as_bytes(),
            self.kind.error_type().as_bytes(),
            param,
            Some(self.kind.label().as_bytes()),
        );
    }

    /// Appends the Anthropic-shaped JSON body (for clients of the Messages API).
    pub fn write_anthropic_json(&self, out: &mut Vec<u8>) {
        let kind = crate::dialect::anthropic::error_type(self.status());
        crate::dialect::anthropic::write_error(out, kind, self.message.as_bytes());
    }

    /// Appends a complete response: head and JSON body. `close` adds `Connection: close`;
    /// `request_id` (may be empty) goes in `x-request-id`; `extra` is header lines
    /// (`name: value\r\n`, e.g. `retry-after` and `x-ratelimit-*`) added as they are.
    pub fn write_response(&self, out: &mut Vec<u8>, close: bool, request_id: &[u8], extra: &[u8]) {
        self.write_response_as(out, close, request_id, extra, ErrorShape::OpenAi);
    }

    /// [`GatewayError::write_response`] in the client's dialect's error shape.
    pub fn write_response_as(
        &self,
        out: &mut Vec<u8>,
        close: bool,
        request_id: &[u8],
        extra: &[u8],
        shape: ErrorShape,
    ) {
        let mut body = Vec::with_capacity(160);
        match shape {
            ErrorShape::OpenAi => self.write_json(&mut body),
            ErrorShape::Anthropic => self.write_anthropic_json(&mut body),
            ErrorShape::Gemini => crate::dialect::gemini::write_error(
                &mut body,
                self.status(),
                self.message.as_bytes(),
            ),
            ErrorShape::Bedrock => crate::dialect::bedrock::write_error(
                &mut body,
                self.status(),
                self.message.as_bytes(),
            ),
        }
        write::status_line(out, self.status());
        write::header(out, "content-type", b"application/json");
        write::header_u64(out, "content-length", body.len() as u64);
        if !request_id.is_empty() {
            write::header(out, "x-request-id", request_id);
        }
        if close {
            write::header(out, "connection", b"close");
        }
        if matches!(
            self.kind,
            ErrorKind::MissingKey
                | ErrorKind::InvalidKey
                | ErrorKind::KeyDisabled
                | ErrorKind::KeyExpired
        ) {
            write::header(out, "www-authenticate", b"Bearer");
        }
        out.extend_from_slice(extra);
        write::end_head(out);
        out.extend_from_slice(&body);
    }

    /// Appends an SSE event carrying the error, for a stream that has already started.
    pub fn write_sse_event(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: error\ndata: ");
        self.write_json(out);
        out.extend_from_slice(b"\n\n");
    }

    /// Anthropic's stream error event.
    pub fn write_anthropic_sse_event(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: error\ndata: ");
        self.write_anthropic_json(out);
        out.extend_from_slice(b"\n\n");
    }

    /// The Responses API's stream error event (`type: error`, with the code, message and
    /// param at the top level).
    pub fn write_responses_sse_event(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"code\":");
        crate::json::string(out, self.kind.label().as_bytes());
        out.extend_from_slice(b",\"message\":");
        crate::json::string(out, self.message.as_bytes());
        out.extend_from_slice(b",\"param\":");
        match &self.param {
            Some(p) => crate::json::string(out, p.as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}\n\n");
    }
}

/// Whose error body a client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error":{"message","type","param","code"}}` (OpenAI's APIs).
    OpenAi,
    /// `{"type":"error","error":{"type","message"}}`.
    Anthropic,
    /// `{"error":{"code","message","status"}}`.
    Gemini,
    /// `{"__type","message"}` (AWS's JSON protocols).
    Bedrock,
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.message)
    }
}

impl std::error::Error for GatewayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<HeadError> for GatewayError {
    fn from(e: HeadError) -> Self {
        let kind = match e.status() {
            431 => ErrorKind::HeadTooLarge,
            501 => ErrorKind::NotImplemented,
            _ => ErrorKind::BadRequest,
        };
        GatewayError::new(kind, e.to_string())
    }
}

impl From<http1::BodyError> for GatewayError {
    fn from(e: http1::BodyError) -> Self {
        let kind = match e {
            http1::BodyError::TooLarge(_) => ErrorKind::BodyTooLarge,
            _ => ErrorKind::BadRequest,
        };
        GatewayError::new(kind, format!("request body: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_at_its_index() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?}");
        }
        // A kind added after the last would be missed: the last is the last declared.
        assert_eq!(
            ErrorKind::GuardrailBlocked as usize + 1,
            ErrorKind::ALL.len()
        );
    }

    #[test]
    fn openai_shape() {
        let mut out = Vec::new();
        GatewayError::new(ErrorKind::ModelNotFound, "The model `x` does not exist")
            .param("model")
            .write_response(&mut out, false, b"", b"");
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["message"], "The model `x` does not exist");
    }

    #[test]
    fn provider_failures_are_the_providers() {
        for kind in [
            ErrorKind::UpstreamTls,
            ErrorKind::UpstreamConnect,
            ErrorKind::UpstreamTimeout,
            ErrorKind::UpstreamProtocol,
        ] {
            let e = GatewayError::new(kind, "x");
            assert_eq!(e.side(), Side::Upstream, "{kind:?}");
            let mut out = Vec::new();
            e.write_json(&mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["error"]["type"], "api_error", "{kind:?}");
        }
        assert_eq!(ErrorKind::InvalidBody.side(), Side::Downstream);
    }

    #[test]
    fn io_causes_are_kept() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = GatewayError::io(ErrorKind::UpstreamProtocol, "reading the response", io);
        assert_eq!(e.message, "reading the response: reset by peer");
        let source = e
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap();
        assert_eq!(source.kind(), std::io::ErrorKind::ConnectionReset);
    }
}
