//! Vertex AI access tokens, kept by the coordinator: each service account's is fetched at
//! start (before the first request), again five minutes before it expires, and ten seconds
//! after a failed fetch; the old token serves until a new one arrives (tested with a
//! controlled clock below). The fetch is blocking
//! (`upstream::gcp`), on the coordinator's thread, once an hour per account: the one place
//! the coordinator waits on the network besides DNS, which a helper thread would remove.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Snapshot;
use crate::upstream::gcp::{self, Tokens};

#[derive(Debug, Default)]
pub struct TokenKeeper {
    tokens: Arc<Tokens>,
    /// When each service account's token is next fetched (by `client_email`).
    due: HashMap<String, Instant>,
}

impl TokenKeeper {
    /// Whether some account's token is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.due.values().any(|&d| now >= d)
    }

    /// Marks the accounts of `snap` that have no token yet as due now.
    pub fn want(&mut self, snap: &Snapshot) {
        for sa in snap.providers.iter().filter_map(|p| p.vertex.as_ref()) {
            self.due
                .entry(sa.client_email.clone())
                .or_insert_with(Instant::now);
        }
    }

    /// Fetches every token of `snap`'s accounts that is missing or due at `now` (`unix_now`:
    /// the wall clock for the JWT). Returns the new set when it changed.
    pub fn refresh(&mut self, snap: &Snapshot, now: Instant, unix_now: u64) -> Option<Arc<Tokens>> {
        let mut tokens = (*self.tokens).clone();
        let mut seen = HashSet::new();
        for sa in snap.providers.iter().filter_map(|p| p.vertex.as_ref()) {
            if !seen.insert(sa.client_email.clone())
                || self.due.get(&sa.client_email).is_some_and(|&d| d > now)
            {
                continue;
            }
            let next = match gcp::fetch_token(sa, unix_now, gcp::FETCH_TIMEOUT) {
                Ok(t) => {
                    let mut line = b"authorization: Bearer ".to_vec();
                    line.extend_from_slice(t.access_token.as_bytes());
                    line.extend_from_slice(b"\r\n");
                    tokens.lines.insert(sa.client_email.clone(), line);
                    let life = t
                        .expires_in_secs
                        .saturating_sub(gcp::REFRESH_MARGIN_SECS)
                        .max(gcp::RETRY_SECS);
                    now + Duration::from_secs(life)
                }
                Err(e) => {
                    eprintln!(
                        "tollgate: vertex: no access token for {} ({e}); trying again in {} s",
                        sa.client_email,
                        gcp::RETRY_SECS
                    );
                    now + Duration::from_secs(gcp::RETRY_SECS)
                }
            };
            self.due.insert(sa.client_email.clone(), next);
        }
        // Accounts no provider uses any more.
        self.due.retain(|k, _| seen.contains(k));
        tokens.lines.retain(|k, _| seen.contains(k));
        if tokens == *self.tokens {
            return None;
        }
        self.tokens = Arc::new(tokens);
        Some(self.tokens.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A token endpoint on a free port: the n-th request gets `tok-n`, living an hour; after
    /// `serve` requests it stops listening (the endpoint goes down).
    fn token_endpoint(serve: u64) -> (String, Arc<AtomicU64>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        std::thread::spawn(move || {
            for s in l.incoming().take(serve as usize) {
                let mut s = s.unwrap();
                let mut buf = [0u8; 8192];
                let mut got = Vec::new();
                // The request: its head and a body of content-length bytes.
                while !got.windows(4).any(|w| w == b"\r\n\r\n") || !body_complete(&got) {
                    let n = s.read(&mut buf).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let body = format!(
                    "{{\"access_token\":\"tok-{n}\",\"expires_in\":3600,\"token_type\":\"Bearer\"}}"
                );
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, count)
    }

    fn body_complete(got: &[u8]) -> bool {
        let text = String::from_utf8_lossy(got).to_lowercase();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        body.len() >= len
    }

    fn vertex_snapshot(token_uri: &str) -> Snapshot {
        let mut sa: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/vertex/service-account.json"
        ))
        .unwrap();
        sa["token_uri"] = serde_json::Value::String(token_uri.to_owned());
        let path = std::env::temp_dir().join(format!(
            "tollgate-tokens-{}-{}.json",
            std::process::id(),
            token_uri.len()
        ));
        std::fs::write(&path, sa.to_string()).unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n\
             [[providers]]\nname = \"vx\"\nkind = \"vertex\"\nproject = \"p\"\n\
             region = \"us-east5\"\nservice_account_file = {:?}\n\
             [[models]]\nname = \"g\"\n[[models.deployments]]\nprovider = \"vx\"\n\
             model = \"gemini-2.5-flash\"\nprice = {{ input = 1.0, output = 1.0 }}\n\
             [audit]\noutput = \"off\"\n",
            path.to_str().unwrap()
        );
        crate::config::parse(&text, "test", &|_| None).unwrap()
    }

    #[test]
    fn tokens_are_fetched_at_start_replaced_before_expiry_and_kept_while_the_endpoint_is_down() {
        let (url, count) = token_endpoint(2);
        let snap = vertex_snapshot(&url);
        let account = snap.providers[0]
            .vertex
            .as_ref()
            .unwrap()
            .client_email
            .clone();
        let mut k = TokenKeeper::default();
        k.want(&snap);
        let t0 = Instant::now();
        let unix = 1_800_000_000;
        assert!(k.due(t0));
        let first = k.refresh(&snap, t0, unix).expect("a token at start");
        assert_eq!(
            first.line(&account),
            Some(&b"authorization: Bearer tok-1\r\n"[..])
        );
        // Not again until five minutes before the hour is out.
        let renew = t0 + Duration::from_secs(3600 - gcp::REFRESH_MARGIN_SECS);
        assert!(!k.due(renew - Duration::from_secs(1)));
        assert!(
            k.refresh(&snap, renew - Duration::from_secs(1), unix)
                .is_none()
        );
        assert_eq!(count.load(Ordering::SeqCst), 1, "no fetch before it is due");
        assert!(k.due(renew));
        let second = k.refresh(&snap, renew, unix + 3300).expect("a new token");
        assert_eq!(
            second.line(&account),
            Some(&b"authorization: Bearer tok-2\r\n"[..])
        );
        // The endpoint is gone by the next renewal: the old token stays, retried in 10 s.
        let again = renew + Duration::from_secs(3600 - gcp::REFRESH_MARGIN_SECS);
        assert!(k.refresh(&snap, again, unix + 6600).is_none());
        assert!(!k.due(again + Duration::from_secs(gcp::RETRY_SECS - 1)));
        assert!(k.due(again + Duration::from_secs(gcp::RETRY_SECS)));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
