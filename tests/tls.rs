//! TLS to providers with real rustls on both ends: the mock provider serves a certificate
//! from a CA this test generates; the gateway verifies it (SNI / IP name, the provider's
//! `ca_file` besides the web PKI roots), pools the sessions, and refuses a wrong name or an
//! untrusted CA with a clear upstream error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use support::*;
use tollgate_loadtest::mock::MockHandle;

/// A fresh CA (`ca.pem`) and a server certificate for `names` it signed, in `dir`.
fn pki(dir: &Path, names: &[&str]) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

fn tls_mock(dir: &Path) -> MockHandle {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    start_mock(|m| {
        m.tls_cert = Some(cert);
        m.tls_key = Some(key);
    })
}

/// A gateway with model `secure` at `https://127.0.0.1:<port>/v1`, trusting `ca` if given.
fn gateway(addr: SocketAddr, ca: Option<&PathBuf>) -> tollgate::runtime::Gateway {
    let ca_line = ca.map_or(String::new(), |p| {
        format!("ca_file = {:?}\n", p.to_str().unwrap())
    });
    start(&config_text(
        None,
        1,
        &format!(
            "[[providers]]\nname = \"tls\"\nkind = \"openai_compatible\"\n\
             base_url = \"https://127.0.0.1:{}/v1\"\napi_key_env = \"TEST_UPSTREAM_KEY\"\n{ca_line}\
             [[models]]\nname = \"secure\"\n[[models.deployments]]\nprovider = \"tls\"\n\
             model = \"up-model\"\nprice = \"free\"\n[routing]\nmax_attempts = 1\n",
            addr.port()
        ),
    ))
}

#[test]
fn requests_go_over_verified_pooled_tls() {
    let dir = test_dir("tls-ok");
    pki(&dir, &["127.0.0.1"]);
    let mock = tls_mock(&dir);
    let gw = gateway(mock.addr, Some(&dir.join("ca.pem")));
    let mut c = Client::connect(gw.local_addr());
    for stream in [false, true, false, true] {
        c.send(&post("/v1/chat/completions", &chat("secure", stream)));
        let r = c.response();
        assert_eq!(r.status, 200, "{}", r.text());
        if stream {
            assert!(r.text().ends_with("data: [DONE]\n\n"));
        } else {
            assert_eq!(r.json()["model"], "up-model");
        }
    }
    let ledger = mock.ledger();
    assert_eq!(ledger.total.requests, 4);
    assert_eq!(ledger.connections, 1, "one TLS session, pooled and reused");
    gw.shutdown();
}

#[test]
fn a_wrong_name_or_an_untrusted_ca_is_refused() {
    // The certificate names another host.
    let dir = test_dir("tls-name");
    pki(&dir, &["provider.example"]);
    let mock = tls_mock(&dir);
    let gw = gateway(mock.addr, Some(&dir.join("ca.pem")));
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("secure", false)),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "upstream_tls_failed"),
        "{}",
        r.text()
    );
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("not valid for name \"127.0.0.1\""), "{msg}");
    // The provider's failure, not the client's request.
    assert_eq!(r.json()["error"]["type"], "api_error", "{}", r.text());
    gw.shutdown();
    // The right name, but a CA the gateway was not told to trust.
    let dir = test_dir("tls-ca");
    pki(&dir, &["127.0.0.1"]);
    let mock = tls_mock(&dir);
    let gw = gateway(mock.addr, None);
    let r = roundtrip(
        gw.local_addr(),
        &post("/v1/chat/completions", &chat("secure", true)),
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (502, "upstream_tls_failed")
    );
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    assert_eq!(mock.ledger().total.requests, 0, "no request was sent");
    gw.shutdown();
}

#[test]
fn tls_config_errors_name_the_key() {
    let dir = test_dir("tls-bad-listener");
    pki(&dir, &["127.0.0.1"]);
    let only_cert = config_text(None, 1, "").replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = {:?}\n",
            dir.join("cert.pem").to_str().unwrap()
        ),
        1,
    );
    let e = tollgate::config::parse(&only_cert, "t.toml", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("server.tls_key: tls_cert needs tls_key"), "{e}");
    // The key of another certificate.
    let other = test_dir("tls-bad-listener-2");
    pki(&other, &["127.0.0.1"]);
    let mismatched = tls_listener(&dir).replace(
        dir.join("key.pem").to_str().unwrap(),
        other.join("key.pem").to_str().unwrap(),
    );
    let e = tollgate::config::parse(&mismatched, "t.toml", &|_| None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server.tls_cert: certificate and key do not go together"),
        "{e}"
    );
}

#[test]
fn a_bad_ca_file_is_a_config_error() {
    let dir = test_dir("tls-bad-ca");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    for (file, want) in [
        (dir.join("missing.pem"), "cannot read"),
        (dir.join("junk.pem"), "holds no PEM certificate"),
    ] {
        let text = config_text(
            None,
            1,
            &format!(
                "[[providers]]\nname = \"tls\"\nkind = \"openai_compatible\"\n\
                 base_url = \"https://127.0.0.1:1/v1\"\nca_file = {:?}\n",
                file.to_str().unwrap()
            ),
        );
        let e = tollgate::config::parse(&text, "t.toml", &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("providers[1].ca_file") && e.contains(want),
            "{e}"
        );
    }
}

/// One request over TLS to `addr`, trusting only `ca` (PEM): the whole response, or the error.
fn https(addr: SocketAddr, ca: &Path, req: &[u8]) -> Result<String, String> {
    use std::io::{Read, Write};
    let pem = std::fs::read(ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(req).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // A peer that closes without close_notify after a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn closing(req: Vec<u8>) -> Vec<u8> {
    let s = String::from_utf8(req).unwrap();
    s.replacen("\r\n", "\r\nconnection: close\r\n", 1)
        .into_bytes()
}

/// A gateway config terminating TLS with the certificate in `dir`.
fn tls_listener(dir: &Path) -> String {
    config_text(None, 1, "").replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            dir.join("cert.pem").to_str().unwrap(),
            dir.join("key.pem").to_str().unwrap()
        ),
        1,
    )
}

#[test]
fn clients_can_speak_tls_and_a_reload_brings_a_new_certificate() {
    let first = test_dir("tls-ingress-1");
    pki(&first, &["127.0.0.1"]);
    let mut gw = start(&tls_listener(&first));
    let a = gw.local_addr();
    for stream in [false, true] {
        let r = https(
            a,
            &first.join("ca.pem"),
            &closing(post("/v1/chat/completions", &chat("mock-chat", stream))),
        )
        .unwrap();
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(
            if stream {
                r.contains("data: [DONE]")
            } else {
                r.contains("\"chat.completion\"")
            },
            "{r}"
        );
    }
    // Plain HTTP to the TLS listener gets no HTTP answer; TLS clients are still served.
    let mut c = Client::connect(a);
    c.send(&post("/v1/chat/completions", &chat("mock-chat", false)));
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c.s, &mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        https(
            a,
            &first.join("ca.pem"),
            &closing(post("/v1/chat/completions", &chat("mock-chat", false)))
        )
        .unwrap()
        .starts_with("HTTP/1.1 200")
    );
    // A reload (what SIGHUP does) brings a certificate from another CA for new connections.
    let second = test_dir("tls-ingress-2");
    pki(&second, &["127.0.0.1"]);
    gw.reload(snapshot(&tls_listener(&second))).unwrap();
    let req = closing(post("/v1/chat/completions", &chat("mock-chat", false)));
    assert!(
        https(a, &second.join("ca.pem"), &req)
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    let e = https(a, &first.join("ca.pem"), &req).unwrap_err();
    assert!(e.contains("invalid peer certificate"), "{e}");
    gw.shutdown();
}

/// A client that opens a connection to the TLS listener and never says hello is cut at the
/// head timeout; others are served meanwhile.
#[test]
fn a_silent_client_is_cut_at_the_head_timeout() {
    let dir = test_dir("tls-silent");
    pki(&dir, &["127.0.0.1"]);
    let text = format!("{}[limits]\nheader_timeout_ms = 300\n", tls_listener(&dir));
    let snap = snapshot(&text);
    let head_timeout = snap.limits.header_timeout;
    let gw = tollgate::runtime::Gateway::start(snap).unwrap();
    let a = gw.local_addr();
    let opened = std::time::Instant::now();
    let mut silent = Client::connect(a);
    let req = closing(post("/v1/chat/completions", &chat("mock-chat", false)));
    assert!(
        https(a, &dir.join("ca.pem"), &req)
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    let mut got = Vec::new();
    let n = std::io::Read::read_to_end(&mut silent.s, &mut got);
    let lasted = opened.elapsed();
    assert!(n.is_ok() && got.is_empty(), "{n:?} {got:?}");
    assert!(
        lasted >= head_timeout * 3 / 4,
        "not cut before the head timeout ({head_timeout:?}): {lasted:?}"
    );
    assert!(
        lasted < IO_TIMEOUT / 4,
        "closed by the gateway at its head timeout ({head_timeout:?}), \
         not the test's timeout: {lasted:?}"
    );
    gw.shutdown();
}

/// A flood of new TLS connections from four threads at once — handshakes completed and then
/// dropped, ClientHellos cut short, garbage where a ClientHello belongs — while a
/// well-behaved client makes 50 requests over TLS on the same (single) worker: every one of
/// them is served.
#[test]
fn a_flood_of_tls_handshakes_does_not_stop_the_well_behaved() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let dir = test_dir("tls-flood");
    pki(&dir, &["127.0.0.1"]);
    let gw = start(&tls_listener(&dir));
    let a = gw.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flooded = Arc::new(AtomicU64::new(0));
    let pem = std::fs::read(dir.join("ca.pem")).unwrap();
    let floods: Vec<_> = (0..4)
        .map(|kind| {
            let (stop, flooded, pem) = (stop.clone(), flooded.clone(), pem.clone());
            std::thread::spawn(move || {
                let mut roots = rustls::RootCertStore::empty();
                for c in rustls_pemfile::certs(&mut &pem[..]) {
                    roots.add(c.unwrap()).unwrap();
                }
                let cfg = Arc::new(
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
                );
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut tcp) = std::net::TcpStream::connect(a) else {
                        continue;
                    };
                    match kind {
                        // A whole handshake, then gone without a request.
                        0 | 1 => {
                            let name =
                                rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
                            let mut c = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
                            tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                            while c.is_handshaking() {
                                if c.complete_io(&mut tcp).is_err() {
                                    break;
                                }
                            }
                        }
                        // The start of a ClientHello, then gone.
                        2 => {
                            let _ =
                                tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]);
                        }
                        // Not TLS at all.
                        _ => {
                            let _ = tcp.write_all(&[0x47; 300]);
                        }
                    }
                    flooded.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let req = closing(post("/v1/chat/completions", &chat("mock-chat", false)));
    for i in 0..50 {
        let r = https(a, &dir.join("ca.pem"), &req).unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert!(r.starts_with("HTTP/1.1 200"), "request {i}: {r}");
    }
    stop.store(true, Ordering::Relaxed);
    for f in floods {
        f.join().unwrap();
    }
    let n = flooded.load(Ordering::Relaxed);
    eprintln!("tls flood: {n} hostile connections while 50 requests were served");
    assert!(n >= 50, "the flood never got going: {n}");
    gw.shutdown();
}
