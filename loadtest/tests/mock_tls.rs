//! The mock serves TLS (rustls) with a certificate from a CA the test generates; the load
//! generator's client verifies it, and refuses a wrong name or an untrusted CA.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::*;
use tollgate::http1::Method;
use tollgate_loadtest::dialect::Dialect;
use tollgate_loadtest::load::conn::Target;

struct Pki {
    ca_pem: String,
    dir: PathBuf,
}

/// A fresh CA and a server certificate for `localhost`, written to a temp dir.
fn pki(tag: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tollgate-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca.pem(),
        dir,
    }
}

fn spawn_tls(p: &Pki) -> MockProc {
    let cert = p.dir.join("cert.pem");
    let key = p.dir.join("key.pem");
    MockProc::spawn(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
}

fn target(mock: &MockProc, host: &str, ca_pem: &str) -> Target {
    let cfg = tollgate_loadtest::tls::client_config(ca_pem.as_bytes()).unwrap();
    Target {
        url: format!("https://{host}:{}", mock.addr.port()),
        addr: mock.addr,
        host: host.to_owned(),
        tls: Some(cfg),
    }
}

#[test]
fn tls_round_trip_and_refusals() {
    let p = pki("ok");
    let mock = spawn_tls(&p);
    assert!(mock.url.starts_with("https://"));
    let t = target(&mock, "localhost", &p.ca_pem);
    run(async move {
        let mut c = t.connect().await.unwrap();
        for stream in [false, true] {
            let body = format!(r#"{{"model":"m","messages":[],"max_tokens":4,"stream":{stream}}}"#);
            let req = post("/v1/chat/completions", &[], body.as_bytes());
            let x = ask(&mut c, req).await.unwrap();
            assert_eq!(x.status, 200);
            assert_eq!(x.is_stream, stream);
            if stream {
                assert!(x.stream_ended);
            }
        }
    });
    // The wrong name for the certificate.
    let t = target(&mock, "not-localhost.example", &p.ca_pem);
    let err = run(async move { t.connect().await.unwrap_err() });
    assert!(err.to_string().contains("TLS"), "{err}");
    // A CA the client does not trust.
    let other = pki("other");
    let t = target(&mock, "localhost", &other.ca_pem);
    let err = run(async move { t.connect().await.unwrap_err() });
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    // The mock keeps serving after refused handshakes.
    let t = target(&mock, "localhost", &p.ca_pem);
    run(async move {
        let mut c = t.connect().await.unwrap();
        let x = c
            .exchange(get("/healthz"), Method::Get, Dialect::OpenAi, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(x.status, 200);
    });
}
