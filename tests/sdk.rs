//! The official OpenAI and Anthropic SDKs (Python, pinned in sdk/requirements.txt) against the
//! gateway, unchanged: chat, streaming through each SDK's accumulating stream helper, tool
//! calls and tool results, the Responses API (create, stream, function calls), Google's
//! google-genai against the Gemini-native endpoints, and errors as the SDKs' exception
//! classes — on the same-dialect
//! route and on every translated one (the mock provider speaking OpenAI, Anthropic and
//! Gemini). The checks are in sdk/check.py; the README's test command installs the SDKs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

mod support;

use support::*;

#[test]
fn the_official_sdks_work_unchanged() {
    let mock = start_mock(|m| m.api_keys = vec![UPSTREAM_KEY.into()]);
    let m = mock.addr;
    let gw = start(&config_text(
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
             price = {{ input = 1.0, output = 2.0 }}\n"
        ),
    ));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/check.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([
            "via-openai",
            "via-anthropic",
            "via-gemini",
            "--",
            "via-anthropic",
            "via-openai",
        ])
        .env("TOLLGATE_URL", format!("http://{}", gw.local_addr()))
        .env("TOLLGATE_KEY", KEY)
        .output()
        .expect("python3 (the SDK checks need it: pip install -r sdk/requirements.txt)");
    gw.shutdown();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK checks failed (install the SDKs with `pip install -r sdk/requirements.txt`)\n\
         stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(" ok")).count(),
        11,
        "{stdout}"
    );
    assert_eq!(mock.ledger().rejected, 0);
}
