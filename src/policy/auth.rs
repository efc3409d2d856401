//! authenticate: the virtual key a request presents, and whether it may be used now.
//!
//! The key comes from `Authorization: Bearer <key>`, `x-api-key: <key>`, `x-goog-api-key:
//! <key>` or `?key=<key>` (the OpenAI, Anthropic and Gemini SDKs' ways; never forwarded) and is looked up by its SHA-256: the config holds hashes only. A key
//! is refused when it is unknown (401 `invalid_api_key`), configured off (`enabled = false`),
//! disabled at runtime by an administrator, or past its `expires` date.

use crate::config::{KeyId, Snapshot};
use crate::error::{ErrorKind, GatewayError};
use crate::http1::RequestHead;

/// The key the request in `buf` presents, if it may be used at `now_unix_s`. `disabled` says
/// whether an administrator disabled a key at runtime.
pub fn authenticate(
    snap: &Snapshot,
    head: &RequestHead,
    buf: &[u8],
    now_unix_s: u64,
    disabled: impl FnOnce(KeyId) -> bool,
) -> Result<KeyId, GatewayError> {
    let key = find_key(snap, head, buf)?;
    let k = &snap.keys[key.0 as usize];
    if !k.enabled {
        return Err(GatewayError::new(
            ErrorKind::KeyDisabled,
            "This API key has been disabled.",
        ));
    }
    if disabled(key) {
        return Err(GatewayError::new(
            ErrorKind::KeyDisabled,
            "This API key has been disabled by an administrator.",
        ));
    }
    if k.expires_unix.is_some_and(|t| now_unix_s >= t) {
        return Err(GatewayError::new(
            ErrorKind::KeyExpired,
            "This API key has expired.",
        ));
    }
    Ok(key)
}

/// The key the client presented, however it sent it.
pub fn presented_key<'b>(head: &RequestHead, buf: &'b [u8]) -> Option<&'b [u8]> {
    head.header(buf, "authorization")
        .and_then(|v| {
            let v = v.trim_ascii();
            (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| v[7..].trim_ascii())
        })
        .or_else(|| head.header(buf, "x-api-key").map(<[u8]>::trim_ascii))
        // Gemini's SDKs: a header, or `key=` in the query.
        .or_else(|| head.header(buf, "x-goog-api-key").map(<[u8]>::trim_ascii))
        .or_else(|| {
            head.query(buf)?
                .split(|&b| b == b'&')
                .find_map(|kv| kv.strip_prefix(b"key="))
        })
        .filter(|k| !k.is_empty())
}

/// The configured key whose SHA-256 matches the presented one.
fn find_key(snap: &Snapshot, head: &RequestHead, buf: &[u8]) -> Result<KeyId, GatewayError> {
    let key = presented_key(head, buf);
    let Some(key) = key else {
        return Err(GatewayError::new(
            ErrorKind::MissingKey,
            "You didn't provide an API key. Send it as `Authorization: Bearer <key>`, \
             `x-api-key: <key>` or `x-goog-api-key: <key>`.",
        ));
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, key);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    snap.key_by_hash(&hash)
        .ok_or_else(|| GatewayError::new(ErrorKind::InvalidKey, "Incorrect API key provided."))
}
