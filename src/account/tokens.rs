//! Vertex AI access tokens, kept by the coordinator: each service account's is fetched at
//! start (before the first request), again five minutes before it expires, and ten seconds
//! after a failed fetch; the old token serves until a new one arrives. The fetch is blocking
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

    /// Fetches every token of `snap`'s accounts that is missing or due (`unix_now`: the wall
    /// clock for the JWT). Returns the new set when it changed.
    pub fn refresh(&mut self, snap: &Snapshot, unix_now: u64) -> Option<Arc<Tokens>> {
        let now = Instant::now();
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
