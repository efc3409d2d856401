//! TLS configurations (rustls, ring), built when the config is loaded — no sockets here.
//!
//! - To providers: one `ClientConfig` per trust profile, shared read-only by every worker — the
//!   bundled web PKI roots (Mozilla's, via `webpki-roots`), plus a provider's own CA file for
//!   private deployments. ALPN offers http/1.1 only; TLS 1.2 and 1.3; session resumption
//!   (tickets and session ids) on, its cache inside the config.
//! - For clients: the listener's `ServerConfig` (TLS 1.2 and 1.3, ALPN http/1.1) from PEM
//!   files, re-read on reload so a renewed certificate serves new connections.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;

/// Which trust a connection was made under: part of the pool key, so a connection verified
/// against one provider's private CA never serves another provider that trusts differently.
pub type Profile = u64;

/// Plain TCP.
pub const PLAIN: Profile = 0;

/// A client config trusting the web PKI roots plus the certificates in `extra_ca_pem`.
pub fn client_config(extra_ca_pem: Option<&[u8]>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut n = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("not a usable CA certificate: {e}"))?;
            n += 1;
        }
        if n == 0 {
            return Err("holds no PEM certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The profile of a trust set: [`PLAIN`] is never one.
pub fn profile(extra_ca_pem: Option<&[u8]>) -> Profile {
    let d = ring::digest::digest(&ring::digest::SHA256, extra_ca_pem.unwrap_or(b"webpki"));
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_le_bytes(b) | 1
}

/// The name the certificate must carry: a DNS name, or an IP address literal.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned()).map_err(|e| format!("`{host}`: {e}"))
}

/// A server config from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()));
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{}`: not a PEM certificate chain: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no PEM certificate", cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("`{}`: {e}", key.display()))?
        .ok_or_else(|| format!("`{}` holds no PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
