//! Google Cloud service accounts for Vertex AI providers: the JSON key file, read and checked
//! at config load, and the signed JWT (RS256) a token request presents (RFC 7523, Google's
//! `urn:ietf:params:oauth:grant-type:jwt-bearer` grant). Fetching the token is I/O and lives
//! in `upstream::gcp`; it runs on the coordinator, never on a worker.

use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// The OAuth scope Vertex AI calls need.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long a minted JWT (and so the token request) is valid.
pub const JWT_LIFETIME_SECS: u64 = 3600;

/// A service account's key, ready to sign with.
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    pub token_uri: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: String,
    token_uri: String,
}

impl ServiceAccount {
    /// Reads a service-account JSON key (`"type": "service_account"`).
    pub fn from_json(text: &[u8]) -> Result<ServiceAccount, String> {
        let mut copy = text.to_vec();
        let f: KeyFile = simd_json::serde::from_slice(&mut copy)
            .map_err(|e| format!("is not a service-account JSON key ({e})"))?;
        if f.kind != "service_account" {
            return Err(format!(
                "has `type: {}`; a service-account key says `service_account`",
                f.kind
            ));
        }
        let der = match rustls_pemfile::private_key(&mut f.private_key.as_bytes()) {
            Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(k))) => k.secret_pkcs8_der().to_vec(),
            _ => return Err("has no PKCS#8 `private_key`".into()),
        };
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("has a `private_key` that is not an RSA key ({e})"))?;
        Ok(ServiceAccount {
            client_email: f.client_email,
            private_key_id: f.private_key_id,
            token_uri: f.token_uri,
            key,
        })
    }

    /// The signed assertion for a token request at Unix time `now`.
    pub fn jwt(&self, now: u64) -> Result<String, String> {
        let mut header = b"{\"alg\":\"RS256\",\"typ\":\"JWT\"".to_vec();
        if !self.private_key_id.is_empty() {
            header.extend_from_slice(b",\"kid\":");
            crate::json::string(&mut header, self.private_key_id.as_bytes());
        }
        header.push(b'}');
        let mut claims = b"{\"iss\":".to_vec();
        crate::json::string(&mut claims, self.client_email.as_bytes());
        claims.extend_from_slice(b",\"scope\":");
        crate::json::string(&mut claims, SCOPE.as_bytes());
        claims.extend_from_slice(b",\"aud\":");
        crate::json::string(&mut claims, self.token_uri.as_bytes());
        claims.extend_from_slice(b",\"iat\":");
        crate::json::uint(&mut claims, now);
        claims.extend_from_slice(b",\"exp\":");
        crate::json::uint(&mut claims, now + JWT_LIFETIME_SECS);
        claims.push(b'}');
        let mut out = String::with_capacity(1024);
        base64url(&mut out, &header);
        out.push('.');
        base64url(&mut out, &claims);
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                out.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "the RSA signature failed".to_owned())?;
        out.push('.');
        base64url(&mut out, &sig);
        Ok(out)
    }
}

/// Base64url without padding (RFC 4648 §5), as JWTs use it.
pub fn base64url(out: &mut String, bytes: &[u8]) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = include_bytes!("../../tests/fixtures/vertex/service-account.json");
    const PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/vertex/public.der");

    fn base64url_decode(s: &str) -> Vec<u8> {
        let val = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0);
        for &c in s.as_bytes() {
            acc = acc << 6 | u32::from(val(c));
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn base64url_matches_rfc_4648() {
        for (raw, want) in [
            (&b""[..], ""),
            (b"f", "Zg"),
            (b"fo", "Zm8"),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg"),
            (b"\xfb\xff", "-_8"),
        ] {
            let mut s = String::new();
            base64url(&mut s, raw);
            assert_eq!(s, want);
            assert_eq!(base64url_decode(want), raw);
        }
    }

    #[test]
    fn the_assertion_is_an_rs256_jwt_the_public_key_verifies() {
        let sa = ServiceAccount::from_json(KEY).unwrap();
        let jwt = sa.jwt(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&base64url_decode(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        let claims: serde_json::Value =
            serde_json::from_slice(&base64url_decode(parts[1])).unwrap();
        assert_eq!(
            claims["iss"],
            "gateway@tollgate-test.iam.gserviceaccount.com"
        );
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600);
        let signed = &jwt[..parts[0].len() + 1 + parts[1].len()];
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            PUBLIC,
        )
        .verify(signed.as_bytes(), &base64url_decode(parts[2]))
        .unwrap();
        assert!(ServiceAccount::from_json(br#"{"type":"user"}"#).is_err());
    }
}
