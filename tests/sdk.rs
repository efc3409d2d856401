//! The official OpenAI and Anthropic SDKs (Python, pinned in sdk/requirements.txt) against the
//! gateway, unchanged: chat, streaming through each SDK's accumulating stream helper, tool
//! calls and tool results, the Responses API (create, stream, function calls), Google's
//! google-genai against the Gemini-native endpoints, and errors as the SDKs' exception
//! classes, cached answers replayed as JSON and streams — on the same-dialect
//! route and on every translated one (the mock provider speaking OpenAI, Anthropic and
//! Gemini). The checks are in sdk/check.py; the README's test command installs the SDKs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use support::*;

/// A fresh CA (`ca.pem`) and a certificate for 127.0.0.1 it signed (`cert.pem`, `key.pem`).
fn pki(dir: &std::path::Path) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL (Python's ssl) takes a leaf named like its issuer for a
    // self-signed certificate.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tollgate test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "tollgate test gateway");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// A key with guardrails (`check_guardrails` in `sdk/check.py`).
const GUARD_KEY: &str = "sk-guarded";

#[test]
fn the_official_sdks_work_unchanged() {
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let m = mock.addr;
    let text = config_text(
        None,
        2,
        &format!(
            "[[providers]]\nname = \"oai\"\nkind = \"openai\"\nbase_url = \"http://{m}/v1\"\n\
             api_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"http://{m}/v1\"\n\
             api_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[providers]]\nname = \"google\"\nkind = \"gemini\"\nbase_url = \"http://{m}/v1beta\"\n\
             api_key_env = \"TEST_UPSTREAM_KEY\"\n\
             [[models]]\nname = \"via-openai\"\n[[models.deployments]]\nprovider = \"oai\"\n\
             price = {{ input = 1.0, output = 2.0 }}\n\
             [[models]]\nname = \"via-anthropic\"\n[[models.deployments]]\nprovider = \"claude\"\n\
             price = {{ input = 1.0, output = 2.0 }}\n\
             [[models]]\nname = \"via-gemini\"\n[[models.deployments]]\nprovider = \"google\"\n\
             price = {{ input = 1.0, output = 2.0 }}\n\
             [[providers]]\nname = \"aws\"\nkind = \"bedrock\"\nregion = \"us-east-1\"\n\
             base_url = \"http://{m}\"\naws_access_key_env = \"TEST_UPSTREAM_KEY\"\n\
             aws_secret_key_env = \"TEST_AWS_SECRET\"\naws_session_token_env = \"UNSET\"\n\
             [[models]]\nname = \"via-bedrock\"\n[[models.deployments]]\nprovider = \"aws\"\n\
             model = \"anthropic.claude-3-5-sonnet-20240620-v1:0\"\n\
             price = {{ input = 1.0, output = 2.0 }}\n\
             [[models]]\nname = \"anthropic.claude-like-v1:0\"\n[[models.deployments]]\n\
             provider = \"claude\"\nprice = {{ input = 1.0, output = 2.0 }}\n\
             [[models]]\nname = \"cached\"\ncache = {{ ttl = \"1h\" }}\n[[models.deployments]]\n\
             provider = \"oai\"\nprice = {{ input = 1.0, output = 2.0 }}\n\
             [[guardrails]]\nname = \"pii\"\ndetectors = [\"email\", \"card\"]\nrestore = true\n\
             [[guardrails]]\nname = \"banned\"\ndeny = [\"project falcon\"]\naction = \"block\"\n\
             {}",
            key_entry("guarded", GUARD_KEY, "guardrails = [\"pii\", \"banned\"]")
        ),
    );
    let gw = start(&text);
    // botocore sends a Bedrock API key (bearer) only over https: a second gateway on the same
    // config terminates TLS with a certificate from a CA the script is told to trust.
    let dir = test_dir("sdk-tls");
    pki(&dir);
    let tls = start(&text.replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            dir.join("cert.pem").to_str().unwrap(),
            dir.join("key.pem").to_str().unwrap()
        ),
        1,
    ));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/check.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([
            "via-openai",
            "via-bedrock",
            "via-anthropic",
            "via-gemini",
            "--",
            "via-anthropic",
            "via-openai",
            "via-bedrock",
        ])
        .env("TOLLGATE_URL", format!("http://{}", gw.local_addr()))
        .env("TOLLGATE_KEY", KEY)
        .env("TOLLGATE_GUARD_KEY", GUARD_KEY)
        .env("TOLLGATE_MOCK_URL", format!("http://{m}"))
        .env("TOLLGATE_TLS_URL", format!("https://{}", tls.local_addr()))
        .env("TOLLGATE_CA", dir.join("ca.pem"))
        .output()
        .expect("python3 (the SDK checks need it: pip install -r sdk/requirements.txt)");
    gw.shutdown();
    tls.shutdown();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK checks failed (install the SDKs with `pip install -r sdk/requirements.txt`)\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(" ok")).count(),
        4 + 3 + 4 + 1 + 4 + 5 + 1 + 1,
        "{stdout}"
    );
    assert_eq!(mock.ledger().rejected, 0);
}
