//! What a request asks of the mock: the route (from the head), the shaping and fault options
//! (from `x-mock-*` headers), and the few body fields that decide the answer.

use std::time::Duration;

use simd_json::prelude::*;
use tollgate::http1::{Method, RequestHead};

use super::fault::Fault;
pub use crate::dialect::Dialect;

pub use tollgate::mock::{Api, prompt_tokens};

/// Routes a request line. `Err((status, message))` for unknown paths and wrong methods.
pub fn route(method: Method, path: &[u8], query: Option<&[u8]>) -> Result<Api, (u16, String)> {
    let post = |api: Api| {
        if method == Method::Post {
            Ok(api)
        } else {
            Err(wrong_method(path))
        }
    };
    let get = |api: Api| {
        if method == Method::Get {
            Ok(api)
        } else {
            Err(wrong_method(path))
        }
    };
    match path {
        b"/mock/stats" if method == Method::Delete => return Ok(Api::Reset),
        b"/mock/stats" => return get(Api::Stats),
        b"/mock/reset" => return post(Api::Reset),
        b"/healthz" => return get(Api::Health),
        _ => {}
    }
    if path.ends_with(b"/token") {
        return post(Api::Token);
    }
    if path.ends_with(b"/v1/traces") {
        return post(Api::OtlpTraces);
    }
    if let Some((id, call)) = tollgate::dialect::responses::stored_call(path) {
        use tollgate::dialect::responses::Stored;
        let id = String::from_utf8_lossy(id).into_owned();
        return match (call, method) {
            (Stored::Response, Method::Get | Method::Delete)
            | (Stored::InputItems, Method::Get) => {
                let delete = method == Method::Delete;
                Ok(Api::StoredResponse { id, call, delete })
            }
            (Stored::Cancel, Method::Post) => Ok(Api::StoredResponse {
                id,
                call,
                delete: false,
            }),
            _ => Err(wrong_method(path)),
        };
    }
    if let Some(colon) = memchr::memrchr(b':', path) {
        let (before, verb) = (&path[..colon], &path[colon + 1..]);
        if let b"rawPredict" | b"streamRawPredict" = verb {
            // Anthropic's models on Vertex AI.
            let model = before.rsplit(|&b| b == b'/').next().unwrap_or_default();
            if !before.ends_with(&[b"/publishers/anthropic/models/", model].concat())
                || model.is_empty()
            {
                return Err(not_found(path));
            }
            let model = String::from_utf8_lossy(model).into_owned();
            let stream = verb == b"streamRawPredict";
            return post(Api::VertexMessages { model, stream });
        }
        let stream = match verb {
            b"generateContent" => false,
            b"streamGenerateContent" => true,
            _ => return Err(not_found(path)),
        };
        let model = before.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if !before.ends_with(&[b"/models/", model].concat()) || model.is_empty() {
            return Err(not_found(path));
        }
        let sse = query.is_some_and(|q| q.split(|&b| b == b'&').any(|kv| kv == b"alt=sse"));
        let model = String::from_utf8_lossy(model).into_owned();
        return post(Api::Gemini { model, stream, sse });
    }
    if let Some(rest) = path
        .strip_prefix(b"/model/")
        .or_else(|| memchr::memmem::find(path, b"/model/").map(|i| &path[i + 7..]))
        && let Some(slash) = memchr::memrchr(b'/', rest)
    {
        let (model, call) = (&rest[..slash], &rest[slash + 1..]);
        let stream = match call {
            b"converse" => false,
            b"converse-stream" => true,
            _ => return Err(not_found(path)),
        };
        let model = tollgate::dialect::bedrock::percent_decode(model)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| not_found(path))?;
        let model = String::from_utf8_lossy(&model).into_owned();
        return post(Api::Bedrock { model, stream });
    }
    if path.ends_with(b"/chat/completions") {
        post(Api::Chat)
    } else if path.ends_with(b"/completions") {
        post(Api::Completions)
    } else if path.ends_with(b"/embeddings") {
        post(Api::Embeddings)
    } else if path.ends_with(b"/messages") {
        post(Api::Messages)
    } else if path.ends_with(b"/responses") {
        post(Api::Responses)
    } else if path.ends_with(b"/models") {
        get(Api::Models)
    } else {
        Err(not_found(path))
    }
}

fn not_found(path: &[u8]) -> (u16, String) {
    (
        404,
        format!("the mock has no endpoint {}", String::from_utf8_lossy(path)),
    )
}

fn wrong_method(path: &[u8]) -> (u16, String) {
    (
        405,
        format!("wrong method for {}", String::from_utf8_lossy(path)),
    )
}

/// Response framing for the body, overridable with `x-mock-framing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Content-Length for JSON, chunked for streams (what providers send).
    Natural,
    Chunked,
    /// No length: the body ends when the mock closes the connection.
    Close,
}

/// How the response is shaped. Server flags give the defaults; `x-mock-*` headers override
/// per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Delay before the first token (`x-mock-ttft-ms`).
    pub ttft: Duration,
    /// Gap between tokens (`x-mock-itl-ms`).
    pub itl: Duration,
    /// Completion tokens, overriding the request's max_tokens (`x-mock-tokens`).
    pub tokens: Option<u32>,
    /// Bytes of text per token (`x-mock-token-bytes`); words of 2–11 bytes when unset.
    pub token_bytes: Option<u32>,
    /// Prompt tokens reported as served from cache (`x-mock-cached-tokens`).
    pub cached_tokens: u64,
    /// Reasoning tokens added to the completion (`x-mock-reasoning-tokens`).
    pub reasoning_tokens: u32,
    pub framing: Framing,
    /// The answer's text instead of the mock's words (`x-mock-say`), cut into tokens by
    /// words or by `x-mock-token-bytes`; a tool call's arguments carry it too.
    pub say: Option<Vec<u8>>,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            tokens: None,
            token_bytes: None,
            cached_tokens: 0,
            reasoning_tokens: 0,
            framing: Framing::Natural,
            say: None,
        }
    }
}

/// Everything the mock needs from a request head, copied out so the read buffer can move on.
#[derive(Clone, Debug)]
pub struct HeadInfo {
    pub api: Api,
    /// A SigV4 signature to check once the body is read.
    pub sigv4: Option<SigCheck>,
    /// The caller's API key (Authorization Bearer, x-api-key, x-goog-api-key or `key=`).
    pub key: Option<String>,
    pub shape: Shape,
    pub fault: Option<Fault>,
    /// The W3C `traceparent` the caller sent, if any (kept in the ledger).
    pub traceparent: Option<String>,
}

/// Parses a millisecond value that may be fractional (`0.5`).
fn millis(name: &str, v: &[u8]) -> Result<Duration, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms < 86_400_000.0)
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .ok_or_else(|| {
            format!(
                "header {name}: expected milliseconds, got {:?}",
                String::from_utf8_lossy(v)
            )
        })
}

fn number<T: std::str::FromStr>(name: &str, v: &[u8]) -> Result<T, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse::<T>().ok())
        .ok_or_else(|| {
            format!(
                "header {name}: expected an integer, got {:?}",
                String::from_utf8_lossy(v)
            )
        })
}

/// What a SigV4-signed request claims, to check against the body once it is read.
#[derive(Clone, Debug)]
pub struct SigCheck {
    pub authorization: Vec<u8>,
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    pub query: Vec<u8>,
    /// The signed headers but `x-amz-date` and the token.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub amz_date: [u8; 16],
    pub token: Option<String>,
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

impl SigCheck {
    /// True when the signature is the one `secret` gives for `body`.
    pub fn holds(&self, secret: &str, body: &[u8]) -> bool {
        use tollgate::http1::sigv4;
        let headers: Vec<(&[u8], &[u8])> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .collect();
        let creds = sigv4::Credentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: secret.to_owned(),
            session_token: self.token.clone(),
        };
        let scope = sigv4::Scope {
            region: &self.region,
            service: &self.service,
            amz_date: &self.amz_date,
        };
        let r = sigv4::Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            payload: body,
        };
        sigv4::authorization(&creds, &scope, &r) == self.authorization
    }
}

/// Reads a SigV4 `Authorization` header's claims. `None` when the request is not SigV4.
fn sig_check(head: &RequestHead, buf: &[u8]) -> Option<SigCheck> {
    let auth = head.header(buf, "authorization")?;
    let rest = std::str::from_utf8(auth.strip_prefix(b"AWS4-HMAC-SHA256 ")?).ok()?;
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|f| f.trim().strip_prefix(name))
            .map(str::to_owned)
    };
    let credential = field("Credential=")?;
    let mut scope = credential.split('/');
    let access_key_id = scope.next()?.to_owned();
    let _day = scope.next()?;
    let region = scope.next()?.to_owned();
    let service = scope.next()?.to_owned();
    let mut headers = Vec::new();
    let mut amz_date = [0u8; 16];
    let mut token = None;
    for name in field("SignedHeaders=")?.split(';') {
        let value = head.header(buf, name).unwrap_or_default();
        match name {
            "x-amz-date" => amz_date.copy_from_slice(value.get(..16)?),
            "x-amz-security-token" => token = Some(String::from_utf8_lossy(value).into_owned()),
            _ => headers.push((name.as_bytes().to_vec(), value.to_vec())),
        }
    }
    Some(SigCheck {
        authorization: auth.to_vec(),
        method: head.method_span.get(buf).to_vec(),
        path: head.path(buf).to_vec(),
        query: head.query(buf).unwrap_or_default().to_vec(),
        headers,
        amz_date,
        token,
        access_key_id,
        region,
        service,
    })
}

fn api_key(head: &RequestHead, buf: &[u8]) -> Option<String> {
    let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    if let Some(v) = head.header(buf, "authorization") {
        if v.starts_with(b"AWS4-HMAC-SHA256 ") {
            // SigV4: the key is the access key id (the signature is checked later).
            return sig_check(head, buf).map(|s| s.access_key_id);
        }
        let v = v
            .strip_prefix(b"Bearer ")
            .or_else(|| v.strip_prefix(b"bearer "))
            .unwrap_or(v);
        return Some(lossy(v));
    }
    if let Some(v) = head
        .header(buf, "x-api-key")
        .or_else(|| head.header(buf, "api-key"))
    {
        return Some(lossy(v));
    }
    if let Some(v) = head.header(buf, "x-goog-api-key") {
        return Some(lossy(v));
    }
    head.query(buf)?
        .split(|&b| b == b'&')
        .find_map(|kv| kv.strip_prefix(b"key="))
        .map(lossy)
}

/// Reads route, key, shaping and fault headers. `Err((status, message))` on bad values.
pub fn read_head(
    head: &RequestHead,
    buf: &[u8],
    defaults: &Shape,
) -> Result<HeadInfo, (u16, String)> {
    let api = route(head.method, head.path(buf), head.query(buf))?;
    let mut shape = defaults.clone();
    let mut fault = None;
    let bad = |e: String| (400, e);
    for h in &head.headers {
        let name = h.name.get(buf);
        if name.len() < 7 || !name[..7].eq_ignore_ascii_case(b"x-mock-") {
            continue;
        }
        let v = h.value.get(buf);
        let n = String::from_utf8_lossy(name).to_ascii_lowercase();
        match n.as_str() {
            "x-mock-ttft-ms" => shape.ttft = millis(&n, v).map_err(bad)?,
            "x-mock-itl-ms" => shape.itl = millis(&n, v).map_err(bad)?,
            "x-mock-tokens" => shape.tokens = Some(number(&n, v).map_err(bad)?),
            "x-mock-token-bytes" => {
                let b: u32 = number(&n, v).map_err(bad)?;
                if !(1..=65_536).contains(&b) {
                    return Err(bad(format!("header {n}: must be 1..=65536")));
                }
                shape.token_bytes = Some(b);
            }
            "x-mock-cached-tokens" => shape.cached_tokens = number(&n, v).map_err(bad)?,
            "x-mock-reasoning-tokens" => shape.reasoning_tokens = number(&n, v).map_err(bad)?,
            "x-mock-say" if !v.is_empty() => shape.say = Some(v.to_vec()),
            "x-mock-framing" => {
                shape.framing = match v {
                    b"chunked" => Framing::Chunked,
                    b"close" => Framing::Close,
                    b"natural" => Framing::Natural,
                    _ => {
                        return Err(bad(format!(
                            "header {n}: expected chunked, close or natural"
                        )));
                    }
                }
            }
            "x-mock-fault" => {
                let spec =
                    std::str::from_utf8(v).map_err(|_| bad(format!("header {n}: not UTF-8")))?;
                fault = Some(
                    spec.parse::<Fault>()
                        .map_err(|e| bad(format!("header {n}: {e}")))?,
                );
            }
            _ => {
                return Err(bad(format!(
                    "unknown header {n} (see tollgate-mock --help)"
                )));
            }
        }
    }
    Ok(HeadInfo {
        api,
        sigv4: sig_check(head, buf),
        key: api_key(head, buf),
        shape,
        fault,
        traceparent: head
            .header(buf, "traceparent")
            .map(|v| String::from_utf8_lossy(v).into_owned()),
    })
}

/// The body fields that decide the answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub model: String,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// `max_completion_tokens` / `max_tokens` / `generationConfig.maxOutputTokens`.
    pub max_tokens: Option<u32>,
    /// The tool the mock will call, when the request offers tools and does not forbid them.
    pub tool: Option<String>,
    /// Embeddings: number of inputs.
    pub inputs: u32,
    /// Embeddings: requested dimensions.
    pub dimensions: Option<u32>,
    /// Embeddings: the input texts (when they are strings).
    pub texts: Vec<String>,
}

/// Parses the JSON body in place (simd-json rewrites its input; the mock needs only its
/// length afterwards) and picks out [`Fields`].
pub fn read_fields(api: &Api, body: &mut [u8]) -> Result<Fields, String> {
    if body.is_empty() {
        return Err("request body is empty; expected a JSON object".into());
    }
    let v = simd_json::to_borrowed_value(body)
        .map_err(|e| format!("request body is not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err("request body must be a JSON object".into());
    }
    let str_at = |v: &simd_json::BorrowedValue<'_>, k: &str| {
        v.get(k).and_then(|x| x.as_str()).map(str::to_owned)
    };
    let u32_at = |v: &simd_json::BorrowedValue<'_>, k: &str| {
        v.get(k)
            .and_then(|x| x.as_u64())
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
    };
    let mut f = Fields {
        model: str_at(&v, "model").unwrap_or_default(),
        stream: v.get("stream").and_then(|x| x.as_bool()).unwrap_or(false),
        ..Fields::default()
    };
    match api {
        Api::Chat | Api::Completions => {
            f.include_usage = v
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(|x| x.as_bool())
                .unwrap_or(false);
            f.max_tokens = u32_at(&v, "max_completion_tokens").or_else(|| u32_at(&v, "max_tokens"));
            let choice = v.get("tool_choice");
            let forbidden = choice.and_then(|c| c.as_str()) == Some("none");
            let named = choice
                .and_then(|c| c.get("function"))
                .and_then(|c| str_at(c, "name"));
            let first = v
                .get("tools")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| t.get("function"))
                .and_then(|t| str_at(t, "name"));
            if !forbidden {
                f.tool = named.or(first);
            }
        }
        Api::Responses => {
            f.max_tokens = u32_at(&v, "max_output_tokens");
            // Function tools are flat here: {"type":"function","name":…}.
            let choice = v.get("tool_choice");
            let forbidden = choice.and_then(|c| c.as_str()) == Some("none");
            let named = choice.and_then(|c| str_at(c, "name"));
            let first = v
                .get("tools")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| str_at(t, "name"));
            if !forbidden {
                f.tool = named.or(first);
            }
        }
        Api::Messages => {
            f.max_tokens = u32_at(&v, "max_tokens");
            let choice = v.get("tool_choice");
            let kind = choice.and_then(|c| str_at(c, "type"));
            let named = if kind.as_deref() == Some("tool") {
                choice.and_then(|c| str_at(c, "name"))
            } else {
                None
            };
            let first = v
                .get("tools")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| str_at(t, "name"));
            if kind.as_deref() != Some("none") {
                f.tool = named.or(first);
            }
        }
        Api::Gemini { model, .. } => {
            f.model = model.clone();
            f.max_tokens = v
                .get("generationConfig")
                .and_then(|g| u32_at(g, "maxOutputTokens"));
            let mode = v
                .get("toolConfig")
                .and_then(|t| t.get("functionCallingConfig"))
                .and_then(|c| str_at(c, "mode"));
            let first = v
                .get("tools")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| t.get("functionDeclarations"))
                .and_then(|d| d.as_array())
                .and_then(|d| d.first())
                .and_then(|d| str_at(d, "name"));
            if mode.as_deref() != Some("NONE") {
                f.tool = first;
            }
        }
        Api::Embeddings => {
            f.inputs = match v.get("input") {
                Some(i) if i.is_str() => 1,
                Some(i) => match i.as_array() {
                    Some(a) if a.first().is_some_and(|x| x.is_str() || x.is_array()) => {
                        a.len() as u32
                    }
                    Some(a) if !a.is_empty() => 1,
                    _ => return Err("`input` must be a non-empty string or array".into()),
                },
                None => return Err("`input` is required".into()),
            };
            f.dimensions = u32_at(&v, "dimensions");
            f.texts = match v.get("input") {
                Some(i) if i.is_str() => i.as_str().map(str::to_owned).into_iter().collect(),
                Some(i) => i
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
        }
        Api::Bedrock { model, stream } => {
            f.model = model.clone();
            f.stream = *stream;
            let config = v.get("toolConfig");
            f.max_tokens = v
                .get("inferenceConfig")
                .and_then(|g| u32_at(g, "maxTokens"));
            let choice = config.and_then(|c| c.get("toolChoice"));
            let named = choice
                .and_then(|c| c.get("tool"))
                .and_then(|t| str_at(t, "name"));
            let forced = named.is_some() || choice.and_then(|c| c.get("any")).is_some();
            // Bedrock has no `none`: after a tool's result, the model answers in text (as
            // real models do) unless a call is forced.
            let answered = v
                .get("messages")
                .and_then(|m| m.as_array())
                .and_then(|m| m.last())
                .and_then(|m| m.get("content"))
                .and_then(|c| c.as_array())
                .is_some_and(|c| c.iter().any(|b| b.get("toolResult").is_some()));
            let first = config
                .and_then(|c| c.get("tools"))
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| t.get("toolSpec"))
                .and_then(|s| str_at(s, "name"));
            if forced || !answered {
                f.tool = named.or(first);
            }
        }
        Api::VertexMessages { model, stream } => {
            f.model = model.clone();
            f.stream = *stream;
            // Vertex takes the model in the path and the API version in the body.
            if v.get("anthropic_version").and_then(|x| x.as_str()) != Some("vertex-2023-10-16") {
                return Err("`anthropic_version` must be \"vertex-2023-10-16\"".into());
            }
            if v.get("model").is_some() {
                return Err("`model`: Extra inputs are not permitted".into());
            }
            f.max_tokens = u32_at(&v, "max_tokens");
            let choice = v.get("tool_choice");
            let kind = choice.and_then(|c| str_at(c, "type"));
            let first = v
                .get("tools")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
                .and_then(|t| str_at(t, "name"));
            if kind.as_deref() != Some("none") {
                f.tool = first;
            }
        }
        Api::Models
        | Api::Stats
        | Api::Reset
        | Api::Health
        | Api::Token
        | Api::OtlpTraces
        | Api::StoredResponse { .. } => {}
    }
    if f.model.is_empty() && api.generates() {
        return Err("`model` is required".into());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(Method::Post, b"/v1/chat/completions", None),
            Ok(Api::Chat)
        );
        assert_eq!(
            route(
                Method::Post,
                b"/openai/deployments/d/chat/completions",
                None
            ),
            Ok(Api::Chat)
        );
        assert_eq!(
            route(Method::Post, b"/v1/completions", None),
            Ok(Api::Completions)
        );
        assert_eq!(route(Method::Get, b"/v1/models", None), Ok(Api::Models));
        assert_eq!(
            route(
                Method::Post,
                b"/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                Some(b"alt=sse")
            ),
            Ok(Api::Gemini {
                model: "gemini-2.5-flash".into(),
                stream: true,
                sse: true
            })
        );
        assert_eq!(
            route(Method::Get, b"/v1/chat/completions", None)
                .unwrap_err()
                .0,
            405
        );
        assert_eq!(route(Method::Post, b"/nope", None).unwrap_err().0, 404);
        assert_eq!(
            route(Method::Post, b"/v1beta/models/:generateContent", None)
                .unwrap_err()
                .0,
            404
        );
    }

    #[test]
    fn fields_per_dialect() {
        let mut b =
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"max_tokens":7,
            "tools":[{"type":"function","function":{"name":"get_weather"}}]}"#
                .to_vec();
        let f = read_fields(&Api::Chat, &mut b).unwrap();
        assert_eq!(
            (f.model.as_str(), f.stream, f.include_usage, f.max_tokens),
            ("m", true, true, Some(7))
        );
        assert_eq!(f.tool.as_deref(), Some("get_weather"));
        let mut b =
            br#"{"model":"m","tool_choice":"none","tools":[{"function":{"name":"x"}}]}"#.to_vec();
        assert_eq!(read_fields(&Api::Chat, &mut b).unwrap().tool, None);
        let mut b = br#"{"model":"c","max_tokens":3,"tools":[{"name":"a"},{"name":"b"}],"tool_choice":{"type":"tool","name":"b"}}"#.to_vec();
        let f = read_fields(&Api::Messages, &mut b).unwrap();
        assert_eq!((f.max_tokens, f.tool.as_deref()), (Some(3), Some("b")));
        let mut b = br#"{"input":["a","b","c"],"model":"e"}"#.to_vec();
        assert_eq!(read_fields(&Api::Embeddings, &mut b).unwrap().inputs, 3);
        let mut b = b"{\"model\":".to_vec();
        assert!(
            read_fields(&Api::Chat, &mut b)
                .unwrap_err()
                .contains("not valid JSON")
        );
        let mut b = b"{}".to_vec();
        assert!(
            read_fields(&Api::Chat, &mut b)
                .unwrap_err()
                .contains("`model`")
        );
    }
}
