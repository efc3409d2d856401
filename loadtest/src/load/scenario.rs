//! Scenario files (`loadtest/scenarios/*.toml`): what to send, how much, for how long.
//!
//! ```toml
//! target = "http://127.0.0.1:8081"     # or --target; target_b / --target-b for A/B
//! mode = "open"                        # open (arrival rate) | closed (fixed concurrency)
//! rate = 5000                          # open loop: requests per second, all threads
//! arrival = "poisson"                  # constant | poisson
//! concurrency = 64                     # closed: in-flight requests; open: connection cap
//! threads = 1
//! duration = "10s"                     # measured time (per arm in A/B mode)
//! warmup = "2s"
//! keys = ["sk-a", "sk-b"]              # rotated per request
//!
//! [[request]]
//! name = "small-chat"
//! weight = 8
//! path = "/v1/chat/completions"
//! dialect = "openai"                   # openai | anthropic | gemini: auth header, stream checks
//! body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}'
//! # or body_file = "bodies/x.json", or a generated body:
//! # prompt_bytes = 102400, model = "gpt-4o-mini", stream = true, max_tokens = 16
//! headers = { "x-mock-tokens" = "16" }
//! ```
//!
//! Every key is checked: an unknown key is an error naming it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde::Deserialize;

use crate::dialect::Dialect;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Fixed concurrency, each request sent when the previous one on its connection ends.
    #[default]
    Closed,
    /// Requests sent at an arrival rate regardless of responses; latency measured from the
    /// intended send time.
    Open,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced sends.
    #[default]
    Constant,
    /// Exponentially distributed gaps (a Poisson process) with the same mean rate.
    Poisson,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub target: Option<String>,
    pub target_b: Option<String>,
    pub mode: Option<Mode>,
    pub arrival: Option<Arrival>,
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub threads: Option<usize>,
    pub duration: Option<String>,
    pub warmup: Option<String>,
    /// A/B slice length.
    pub slice: Option<String>,
    pub timeout: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default, rename = "request")]
    pub requests: Vec<RequestSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub name: String,
    #[serde(default = "one")]
    pub weight: u32,
    #[serde(default = "post")]
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub dialect: Dialect,
    pub body: Option<String>,
    pub body_file: Option<PathBuf>,
    /// Generate an OpenAI/Anthropic-style chat body whose user message has this many bytes.
    pub prompt_bytes: Option<usize>,
    pub model: Option<String>,
    pub stream: Option<bool>,
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

fn post() -> String {
    "POST".into()
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut s: Scenario =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for r in &mut s.requests {
            if let Some(f) = &r.body_file {
                r.body_file = Some(dir.join(f));
            }
        }
        Ok(s)
    }
}

impl RequestSpec {
    /// The default request: a small non-streaming (or streaming) OpenAI chat completion.
    pub fn small_chat(stream: bool) -> RequestSpec {
        RequestSpec {
            name: if stream {
                "stream-chat".into()
            } else {
                "small-chat".into()
            },
            weight: 1,
            method: "POST".into(),
            path: "/v1/chat/completions".into(),
            dialect: Dialect::OpenAi,
            body: None,
            body_file: None,
            prompt_bytes: Some(64),
            model: Some("gpt-4o-mini".into()),
            stream: Some(stream),
            max_tokens: Some(16),
            headers: BTreeMap::new(),
        }
    }

    /// The request body bytes.
    pub fn body(&self) -> anyhow::Result<Vec<u8>> {
        let sources = [
            self.body.is_some(),
            self.body_file.is_some(),
            self.prompt_bytes.is_some(),
        ];
        anyhow::ensure!(
            sources.iter().filter(|s| **s).count() <= 1,
            "request `{}`: give one of body, body_file, prompt_bytes",
            self.name
        );
        if let Some(b) = &self.body {
            return Ok(b.clone().into_bytes());
        }
        if let Some(f) = &self.body_file {
            return std::fs::read(f)
                .with_context(|| format!("request `{}`: reading {}", self.name, f.display()));
        }
        let Some(n) = self.prompt_bytes else {
            return Ok(Vec::new());
        };
        Ok(generated_body(
            self.dialect,
            self.model.as_deref(),
            n,
            self.stream.unwrap_or(false),
            self.max_tokens,
        ))
    }

    /// Renders the full request for `host` and `key`.
    pub fn render(&self, host: &str, key: Option<&str>) -> anyhow::Result<Bytes> {
        use tollgate::http1::write;
        let body = self.body()?;
        let mut out = Vec::with_capacity(body.len() + 256);
        write::request_line(&mut out, &self.method, self.path.as_bytes());
        write::header(&mut out, "host", host.as_bytes());
        if !body.is_empty() {
            write::header(&mut out, "content-type", b"application/json");
        }
        if let Some(k) = key {
            match self.dialect {
                Dialect::OpenAi | Dialect::Responses | Dialect::Bedrock => {
                    write::header(&mut out, "authorization", format!("Bearer {k}").as_bytes())
                }
                Dialect::Anthropic => write::header(&mut out, "x-api-key", k.as_bytes()),
                Dialect::Gemini => write::header(&mut out, "x-goog-api-key", k.as_bytes()),
            }
        }
        if self.dialect == Dialect::Anthropic && !self.headers.contains_key("anthropic-version") {
            write::header(&mut out, "anthropic-version", b"2023-06-01");
        }
        for (k, v) in &self.headers {
            anyhow::ensure!(
                !k.contains(['\r', '\n', ':']) && !v.contains(['\r', '\n']),
                "request `{}`: header `{k}` has CR, LF or ':'",
                self.name
            );
            write::header(&mut out, k, v.as_bytes());
        }
        if self.method == "POST" || !body.is_empty() {
            write::header_u64(&mut out, "content-length", body.len() as u64);
        }
        write::end_head(&mut out);
        out.extend_from_slice(&body);
        Ok(Bytes::from(out))
    }

    pub fn method(&self) -> tollgate::http1::Method {
        match self.method.as_str() {
            "GET" => tollgate::http1::Method::Get,
            "HEAD" => tollgate::http1::Method::Head,
            _ => tollgate::http1::Method::Post,
        }
    }
}

/// A chat body in `dialect` whose user message is `prompt_bytes` long (filler text).
pub fn generated_body(
    dialect: Dialect,
    model: Option<&str>,
    prompt_bytes: usize,
    stream: bool,
    max_tokens: Option<u32>,
) -> Vec<u8> {
    const FILLER: &[u8] = b"the quick brown fox jumps over the lazy dog ";
    let text: Vec<u8> = FILLER.iter().copied().cycle().take(prompt_bytes).collect();
    let mut out = Vec::with_capacity(prompt_bytes + 200);
    let model = model.unwrap_or(match dialect {
        Dialect::OpenAi | Dialect::Responses => "gpt-4o-mini",
        Dialect::Anthropic => "claude-sonnet-4-5",
        Dialect::Gemini => "gemini-2.5-flash",
        Dialect::Bedrock => "anthropic.claude-sonnet-4-5",
    });
    match dialect {
        Dialect::OpenAi | Dialect::Anthropic => {
            out.extend_from_slice(b"{\"model\":");
            crate::json::string(&mut out, model.as_bytes());
            out.extend_from_slice(b",\"messages\":[{\"role\":\"user\",\"content\":");
            crate::json::string(&mut out, &text);
            out.extend_from_slice(b"}]");
            if stream {
                out.extend_from_slice(b",\"stream\":true");
            }
            if let Some(m) = max_tokens.or((dialect == Dialect::Anthropic).then_some(16)) {
                out.extend_from_slice(b",\"max_tokens\":");
                crate::json::uint(&mut out, u64::from(m));
            }
            out.push(b'}');
        }
        Dialect::Responses => {
            out.extend_from_slice(b"{\"model\":");
            crate::json::string(&mut out, model.as_bytes());
            out.extend_from_slice(b",\"input\":");
            crate::json::string(&mut out, &text);
            if stream {
                out.extend_from_slice(b",\"stream\":true");
            }
            if let Some(m) = max_tokens {
                out.extend_from_slice(b",\"max_output_tokens\":");
                crate::json::uint(&mut out, u64::from(m));
            }
            out.push(b'}');
        }
        Dialect::Gemini => {
            out.extend_from_slice(b"{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":");
            crate::json::string(&mut out, &text);
            out.extend_from_slice(b"}]}]");
            if let Some(m) = max_tokens {
                out.extend_from_slice(b",\"generationConfig\":{\"maxOutputTokens\":");
                crate::json::uint(&mut out, u64::from(m));
                out.push(b'}');
            }
            out.push(b'}');
        }
        Dialect::Bedrock => {
            out.extend_from_slice(b"{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":");
            crate::json::string(&mut out, &text);
            out.extend_from_slice(b"}]}]");
            if let Some(m) = max_tokens {
                out.extend_from_slice(b",\"inferenceConfig\":{\"maxTokens\":");
                crate::json::uint(&mut out, u64::from(m));
                out.push(b'}');
            }
            out.push(b'}');
        }
    }
    out
}

/// Parses `250ms`, `10s`, `2m`, `1.5s`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("`{s}` is not a duration like 10s or 250ms"))?;
    anyhow::ensure!(
        v.is_finite() && v >= 0.0,
        "`{s}`: duration must be non-negative"
    );
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        _ => anyhow::bail!("`{s}`: unit must be us, ms, s or m"),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn generated_bodies_are_json_of_the_right_size() {
        for d in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini] {
            let b = generated_body(d, None, 1000, true, Some(5));
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            let text = v
                .pointer("/messages/0/content")
                .or(v.pointer("/contents/0/parts/0/text"))
                .unwrap();
            assert_eq!(text.as_str().unwrap().len(), 1000);
        }
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = toml::from_str::<Scenario>("rate = 1\nconcurency = 3\n").unwrap_err();
        assert!(e.to_string().contains("concurency"), "{e}");
    }
}
