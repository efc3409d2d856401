//! One provider entry compiled: its kind, endpoint, credential and TLS trust.

use super::raw::RawProvider;
use super::snapshot::*;
use super::validate::{Problems, suggest};

/// Compiles one provider; the second value says why it is inactive, if it is.
pub(super) fn provider(
    p: &mut Problems,
    path: &str,
    r: &RawProvider,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Provider, Option<String>) {
    let mut out = Provider {
        name: r.name.clone(),
        kind: ProviderKind::Mock,
        endpoint: None,
        credential: None,
        active: false,
        compatible: r.kind == "openai_compatible",
        query: String::new(),
        tls: None,
        aws: None,
        vertex: None,
    };
    match r.kind.as_str() {
        "mock" => {
            for (field, set) in [
                ("base_url", r.base_url.is_some()),
                ("api_key_env", r.api_key_env.is_some()),
                ("auth", r.auth.is_some()),
                ("ca_file", r.ca_file.is_some()),
                ("api_version", r.api_version.is_some()),
            ] {
                if set {
                    p.add(
                        format!("{path}.{field}"),
                        "a `mock` provider is served inside the gateway; remove this key",
                    );
                }
            }
            return (out, None);
        }
        "openai" | "openai_compatible" => out.kind = ProviderKind::OpenAi,
        "anthropic" => out.kind = ProviderKind::Anthropic,
        "gemini" => out.kind = ProviderKind::Gemini,
        "bedrock" => out.kind = ProviderKind::Bedrock,
        "vertex" => out.kind = ProviderKind::Vertex,
        other => {
            p.add(
                format!("{path}.kind"),
                format!(
                    "unknown provider kind `{other}`; expected `mock`, `openai`, \
                     `openai_compatible`, `anthropic`, `gemini`, `bedrock` or `vertex`{}",
                    suggest(
                        other,
                        &[
                            "mock",
                            "openai",
                            "openai_compatible",
                            "anthropic",
                            "gemini",
                            "bedrock",
                            "vertex"
                        ]
                    )
                ),
            );
            return (out, None);
        }
    }
    let bedrock_url = r
        .region
        .as_ref()
        .map(|region| format!("https://bedrock-runtime.{region}.amazonaws.com"));
    let vertex_url = r.region.as_ref().map(|region| match region.as_str() {
        "global" => "https://aiplatform.googleapis.com".to_owned(),
        r => format!("https://{r}-aiplatform.googleapis.com"),
    });
    let default_url = match r.kind.as_str() {
        "openai" => Some("https://api.openai.com/v1"),
        "anthropic" => Some("https://api.anthropic.com/v1"),
        "gemini" => Some("https://generativelanguage.googleapis.com/v1beta"),
        "bedrock" => bedrock_url.as_deref(),
        "vertex" => vertex_url.as_deref(),
        _ => None,
    };
    let aws_fields = [
        ("region", r.region.is_some()),
        ("aws_access_key_env", r.aws_access_key_env.is_some()),
        ("aws_secret_key_env", r.aws_secret_key_env.is_some()),
        ("aws_session_token_env", r.aws_session_token_env.is_some()),
    ];
    if out.kind == ProviderKind::Vertex && !vertex(p, path, r, &mut out) {
        return (out, None);
    }
    if matches!(out.kind, ProviderKind::Bedrock | ProviderKind::Vertex) {
        let region_ok = r.region.as_deref().is_some_and(|g| {
            !g.is_empty() && g.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !region_ok {
            p.add(
                format!("{path}.region"),
                "a Bedrock or Vertex provider needs its region, e.g. \"us-east-1\"",
            );
            return (out, None);
        }
    } else {
        for (field, set) in aws_fields {
            if set {
                p.add(
                    format!("{path}.{field}"),
                    "only `bedrock` providers take this key",
                );
            }
        }
    }
    if let Some(v) = &r.api_version {
        if out.kind != ProviderKind::OpenAi {
            p.add(
                format!("{path}.api_version"),
                "only OpenAI-dialect providers (Azure OpenAI) take an api-version",
            );
        } else if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            p.add(
                format!("{path}.api_version"),
                "letters, digits, `-`, `.` and `_` only (e.g. \"2024-10-21\")",
            );
        } else {
            out.query = format!("?api-version={v}");
        }
    }
    let Some(url) = r.base_url.as_deref().or(default_url) else {
        p.add(
            format!("{path}.base_url"),
            "required for `openai_compatible` (e.g. \"http://127.0.0.1:8000/v1\")",
        );
        return (out, None);
    };
    match parse_base_url(url) {
        Ok(mut e) => {
            if let (Some(project), Some(region)) = (&r.project, &r.region)
                && out.kind == ProviderKind::Vertex
            {
                // Calls go to …/publishers/{google|anthropic}/models/{model}:{method}.
                e.base_path = format!(
                    "{}/v1/projects/{project}/locations/{region}/publishers",
                    e.base_path
                );
            }
            out.endpoint = Some(e);
        }
        Err(why) => {
            p.add(format!("{path}.base_url"), why);
            return (out, None);
        }
    }
    let default_auth = match out.kind {
        ProviderKind::Anthropic => "x_api_key",
        ProviderKind::Gemini => "x_goog_api_key",
        _ => "bearer",
    };
    let header = match r.auth.as_deref().unwrap_or(default_auth) {
        "bearer" => "authorization: Bearer ",
        "api_key" => "api-key: ",
        "x_api_key" => "x-api-key: ",
        "x_goog_api_key" => "x-goog-api-key: ",
        other => {
            p.add(
                format!("{path}.auth"),
                format!(
                    "unknown auth scheme `{other}`; expected bearer, api_key, x_api_key or \
                     x_goog_api_key"
                ),
            );
            return (out, None);
        }
    };
    let mut inactive = None;
    if out.kind == ProviderKind::Bedrock && r.api_key_env.is_none() {
        // SigV4 from the named (or the standard) variables.
        let var = |v: &Option<String>, default: &str| v.clone().unwrap_or(default.to_owned());
        let id_var = var(&r.aws_access_key_env, "AWS_ACCESS_KEY_ID");
        let secret_var = var(&r.aws_secret_key_env, "AWS_SECRET_ACCESS_KEY");
        let token_var = var(&r.aws_session_token_env, "AWS_SESSION_TOKEN");
        let get = |v: &str| {
            env(v)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        match (get(&id_var), get(&secret_var)) {
            (Some(access_key_id), Some(secret_access_key)) => {
                let session_token = get(&token_var);
                if session_token
                    .as_ref()
                    .is_some_and(|t| t.bytes().any(|b| b < 0x20))
                {
                    p.add(
                        format!("{path}.aws_session_token_env"),
                        format!("${token_var} contains a control character"),
                    );
                }
                out.aws = Some(AwsSigning {
                    region: r.region.clone().unwrap_or_default(),
                    credentials: crate::http1::sigv4::Credentials {
                        access_key_id,
                        secret_access_key,
                        session_token,
                    },
                });
            }
            _ => inactive = Some(format!("${id_var} or ${secret_var} is not set")),
        }
    }
    if let Some(var) = &r.api_key_env {
        match env(var) {
            Some(v) if !v.is_empty() => {
                if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                    p.add(
                        format!("{path}.api_key_env"),
                        format!("${var} contains a line break or NUL; it cannot go in a header"),
                    );
                }
                let mut line = header.as_bytes().to_vec();
                line.extend_from_slice(v.trim().as_bytes());
                line.extend_from_slice(b"\r\n");
                out.credential = Some(line);
            }
            _ => inactive = Some(format!("${var} is not set")),
        }
    }
    let tls = out.endpoint.as_ref().is_some_and(|e| e.tls);
    if let Some(f) = &r.ca_file
        && !tls
    {
        p.add(
            format!("{path}.ca_file"),
            format!("`{f}` would not be used: {url} is not https"),
        );
    }
    if tls {
        let extra = match &r.ca_file {
            None => Ok(None),
            Some(f) => std::fs::read(f)
                .map(Some)
                .map_err(|e| format!("cannot read `{f}`: {e}")),
        };
        let built = extra.and_then(|pem| {
            crate::tls::client_config(pem.as_deref())
                .map(|c| (c, crate::tls::profile(pem.as_deref())))
                .map_err(|e| match &r.ca_file {
                    Some(f) => format!("`{f}` {e}"),
                    None => e,
                })
        });
        match built {
            Ok(t) => out.tls = Some(t),
            Err(e) => p.add(format!("{path}.ca_file"), e),
        }
    }
    (out, inactive)
}

/// A Vertex AI provider's project and service account; false (with the problem added) when
/// they are missing or unreadable.
fn vertex(p: &mut Problems, path: &str, r: &RawProvider, out: &mut Provider) -> bool {
    let project_ok = r.project.as_deref().is_some_and(|g| {
        !g.is_empty() && g.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !project_ok {
        p.add(
            format!("{path}.project"),
            "a Vertex provider needs its Google Cloud project id (letters, digits, `-`)",
        );
        return false;
    }
    let Some(file) = &r.service_account_file else {
        p.add(
            format!("{path}.service_account_file"),
            "a Vertex provider needs a service account's JSON key file",
        );
        return false;
    };
    let account = std::fs::read(file)
        .map_err(|e| format!("cannot read `{file}`: {e}"))
        .and_then(|text| {
            super::vertex::ServiceAccount::from_json(&text).map_err(|e| format!("`{file}` {e}"))
        });
    match account {
        Ok(a) => {
            out.vertex = Some(std::sync::Arc::new(a));
            true
        }
        Err(e) => {
            p.add(format!("{path}.service_account_file"), e);
            false
        }
    }
}

/// `http[s]://host[:port][/path]` → [`Endpoint`].
pub fn parse_base_url(url: &str) -> Result<Endpoint, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(format!("`{url}` must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some(end) = v6.find(']') else {
            return Err(format!("`{url}`: unclosed `[` in the host"));
        };
        let port = match &v6[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("`{url}`: bad port"))?,
        };
        (v6[..end].to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("`{url}`: bad port `{p}`"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || host.bytes().any(|b| b.is_ascii_whitespace() || b == b'@') {
        return Err(format!("`{url}`: missing or invalid host"));
    }
    if path.contains(['?', '#', ' ']) {
        return Err(format!("`{url}`: a base URL has no query or fragment"));
    }
    Ok(Endpoint {
        host,
        port,
        tls,
        authority: authority.to_string(),
        base_path: path.trim_end_matches('/').to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let e = parse_base_url("http://127.0.0.1:8000/v1/").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 8000, false));
        assert_eq!(e.base_path, "/v1");
        let e = parse_base_url("https://api.openai.com/v1").unwrap();
        assert_eq!(
            (e.port, e.tls, e.authority.as_str()),
            (443, true, "api.openai.com")
        );
        let e = parse_base_url("http://[::1]:9/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("::1", 9, "")
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("http://:80").is_err());
        assert!(parse_base_url("http://h:x").is_err());
    }
}
