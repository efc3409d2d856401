//! Google OAuth2 access tokens for Vertex AI providers: a service account's signed assertion
//! (`config::vertex`) exchanged at its token endpoint, over a short blocking HTTP/1.1
//! exchange (TLS for https). Called by the coordinator, off every worker; the token reaches
//! workers over their control rings.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::vertex::ServiceAccount;

/// An access token and how long it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub access_token: String,
    pub expires_in_secs: u64,
}

/// The `authorization: Bearer …` line of each service account's current token, by its
/// `client_email`: what the coordinator hands the workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    pub lines: std::collections::HashMap<String, Vec<u8>>,
}

impl Tokens {
    /// The header line for `account`, if a token has been fetched.
    pub fn line(&self, account: &str) -> Option<&[u8]> {
        self.lines.get(account).map(Vec::as_slice)
    }
}

/// How long before a token expires it is replaced.
pub const REFRESH_MARGIN_SECS: u64 = 300;
/// How soon a failed fetch is tried again.
pub const RETRY_SECS: u64 = 10;
/// A token request that takes longer fails.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A token response is at most this large.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Exchanges `sa`'s assertion for an access token at Unix time `now`. Blocking (DNS, connect,
/// TLS, the exchange): the coordinator calls it, never a worker.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking DNS is allowed here: this runs on the coordinator, off every worker"
)]
pub fn fetch_token(sa: &ServiceAccount, now: u64, timeout: Duration) -> Result<Token, String> {
    let jwt = sa.jwt(now)?;
    let body =
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}");
    let endpoint = crate::config::parse_base_url(&sa.token_uri)
        .map_err(|e| format!("token_uri `{}`: {e}", sa.token_uri))?;
    let path = if endpoint.base_path.is_empty() {
        "/".to_owned()
    } else {
        endpoint.base_path.clone()
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        endpoint.authority,
        body.len()
    );
    let addr = (endpoint.host.as_str(), endpoint.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", endpoint.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", endpoint.host))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {}: {e}", endpoint.authority))?;
    let io = |e: std::io::Error| format!("token request to {}: {e}", endpoint.authority);
    tcp.set_read_timeout(Some(timeout)).map_err(io)?;
    tcp.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut response = Vec::with_capacity(2048);
    if endpoint.tls {
        let config = crate::tls::client_config(None)?;
        let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
            .map_err(|e| format!("{}: {e}", endpoint.host))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(request.as_bytes()).map_err(io)?;
        read_all(&mut tls, &mut response).map_err(io)?;
    } else {
        let mut tcp = tcp;
        tcp.write_all(request.as_bytes()).map_err(io)?;
        read_all(&mut tcp, &mut response).map_err(io)?;
    }
    parse_response(&response)
}

fn read_all(r: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_RESPONSE_BYTES {
                    return Err(std::io::Error::other("the response is too large"));
                }
            }
            // A peer that closes TLS without close_notify: what arrived is the response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// The token in a whole HTTP response (a `Content-Length` or chunked body).
fn parse_response(raw: &[u8]) -> Result<Token, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("the token endpoint sent no whole HTTP response".into()),
    };
    let chunked = res.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding") && h.value.eq_ignore_ascii_case(b"chunked")
    });
    let status = res.code.unwrap_or(0);
    let mut body = raw[head_len..].to_vec();
    if chunked {
        body = dechunk(&body).ok_or("the token response's chunked body is malformed")?;
    }
    if status != 200 {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!(
            "the token endpoint answered {status}: {}",
            text.trim()
        ));
    }
    #[derive(serde::Deserialize)]
    struct Body {
        access_token: String,
        expires_in: Option<u64>,
    }
    let b: Body = simd_json::serde::from_slice(&mut body)
        .map_err(|e| format!("the token response is not the JSON expected ({e})"))?;
    if b.access_token.is_empty() || b.access_token.bytes().any(|c| c < 0x21 || c == 0x7f) {
        return Err("the token endpoint sent an unusable access_token".into());
    }
    Ok(Token {
        access_token: b.access_token,
        expires_in_secs: b.expires_in.unwrap_or(3600),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_are_read_whole_or_chunked() {
        let whole = b"HTTP/1.1 200 OK\r\ncontent-length: 52\r\n\r\n{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"a\":1}  ";
        assert_eq!(
            parse_response(whole),
            Ok(Token {
                access_token: "ya29.x".into(),
                expires_in_secs: 3599
            })
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"access_token\":\r\n9\r\n\"ya29.y\"}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().access_token, "ya29.y");
        let refused =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 25\r\n\r\n{\"error\":\"invalid_grant\"}";
        assert!(
            parse_response(refused)
                .unwrap_err()
                .contains("invalid_grant")
        );
    }
}
