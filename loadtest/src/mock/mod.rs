//! `tollgate-mock`: a fake LLM provider that speaks the OpenAI, Anthropic and Gemini wire
//! formats, shapes its timing, fails on demand, and keeps an honest ledger of what it billed.
//!
//! - Thread-per-core like the gateway: `workers` threads, each with its own SO_REUSEPORT
//!   listener and monoio runtime ([`server`]).
//! - Deterministic: prompt tokens = ⌈request body bytes / 4⌉ ([`request::prompt_tokens`]);
//!   completion tokens = `x-mock-tokens`, else the request's max tokens field, else
//!   `--tokens`. Token k's text is fixed ([`render::token_text`]).
//! - Shaped by flags (defaults) and `x-mock-*` headers (per request): see [`request::Shape`].
//! - Faulty on demand: see [`fault`].
//! - Ledger at `GET /mock/stats`, reset with `POST /mock/reset` or `DELETE /mock/stats`:
//!   see [`ledger`] for exactly what counts as billed.
//! - When tools are offered (and not forbidden by `tool_choice`), the answer is a call to the
//!   named tool or else the first one, with arguments `{"input":"<the generated text>"}`.

pub mod fault;
pub mod ledger;
pub use tollgate::mock::render;
pub mod request;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

pub use fault::{Fault, RatedFault};
pub use ledger::{Ledger, SharedLedger};

use crate::io::Driver;
use request::{Framing, Shape};

/// Default models listed at `GET /v1/models`.
pub const DEFAULT_MODELS: &str =
    "gpt-4o-mini,gpt-4o,text-embedding-3-small,claude-sonnet-4-5,gemini-2.5-flash";

/// Flags of `tollgate-mock` (also the in-process configuration used by tests).
#[derive(Clone, Debug, clap::Args)]
pub struct MockConfig {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// Worker threads, each with its own listener (SO_REUSEPORT); 0 = one per core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// I/O driver.
    #[arg(long, default_value = "auto")]
    pub driver: Driver,
    /// Default time to first token, ms (fractions allowed; the timer resolves 1 ms).
    #[arg(long, default_value_t = 0.0)]
    pub ttft_ms: f64,
    /// Default gap between tokens, ms.
    #[arg(long, default_value_t = 0.0)]
    pub itl_ms: f64,
    /// Default completion tokens when the request sets no max tokens.
    #[arg(long, default_value_t = 16)]
    pub tokens: u32,
    /// Bytes of text per token (default: words of 2–11 bytes).
    #[arg(long)]
    pub token_bytes: Option<u32>,
    /// Inject a fault into a fraction of requests: SPEC@RATE, e.g. `status=429@0.05`
    /// (repeatable; see the fault table in the README).
    #[arg(long = "fault", value_name = "SPEC@RATE")]
    pub faults: Vec<RatedFault>,
    /// Seed for the fault-rate draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Accept only these API keys (repeatable); others get 401. Default: any key or none.
    #[arg(long = "api-key", value_name = "KEY")]
    pub api_keys: Vec<String>,
    /// The secret of every AWS access key id the mock accepts: a SigV4-signed request
    /// (Bedrock) is checked against it, and refused with 403 when its signature is wrong.
    #[arg(long, default_value = DEFAULT_AWS_SECRET)]
    pub aws_secret_key: String,
    /// The RSA public key (PKCS#1 DER) of the Google service account whose JWTs the token
    /// endpoint (`POST …/token`) accepts; without it, any well-formed assertion gets a token.
    #[arg(long)]
    pub vertex_public_key: Option<PathBuf>,
    /// Models listed at GET /v1/models.
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_MODELS)]
    pub models: Vec<String>,
    /// Default embedding dimensions.
    #[arg(long, default_value_t = 8)]
    pub embedding_dims: u32,
    /// Largest request body accepted, bytes.
    #[arg(long, default_value_t = 32 << 20)]
    pub max_body_bytes: u64,
    /// Serve TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// The AWS secret access key the mock checks SigV4 signatures with, unless told another.
pub const DEFAULT_AWS_SECRET: &str = "tollgate-mock-aws-secret";

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 1,
            driver: Driver::Auto,
            ttft_ms: 0.0,
            itl_ms: 0.0,
            tokens: 16,
            token_bytes: None,
            faults: Vec::new(),
            seed: 1,
            api_keys: Vec::new(),
            aws_secret_key: DEFAULT_AWS_SECRET.to_owned(),
            vertex_public_key: None,
            models: DEFAULT_MODELS.split(',').map(str::to_owned).collect(),
            embedding_dims: 8,
            max_body_bytes: 32 << 20,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl MockConfig {
    fn shape(&self) -> anyhow::Result<Shape> {
        let ms = |v: f64, name: &str| {
            anyhow::ensure!(
                v.is_finite() && v >= 0.0,
                "--{name} must be a non-negative number"
            );
            Ok(Duration::from_secs_f64(v / 1000.0))
        };
        Ok(Shape {
            ttft: ms(self.ttft_ms, "ttft-ms")?,
            itl: ms(self.itl_ms, "itl-ms")?,
            tokens: None,
            token_bytes: self.token_bytes,
            cached_tokens: 0,
            reasoning_tokens: 0,
            framing: Framing::Natural,
            say: None,
        })
    }
}

/// A running mock. The worker threads live as long as the process.
#[derive(Debug)]
pub struct MockHandle {
    pub addr: SocketAddr,
    pub tls: bool,
    ledgers: Vec<SharedLedger>,
    _threads: Vec<JoinHandle<()>>,
}

impl MockHandle {
    /// `http://ADDR` or `https://ADDR`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The merged ledger, read in-process (the same data `GET /mock/stats` serves).
    pub fn ledger(&self) -> Ledger {
        server::merged(&self.ledgers)
    }
}

/// Binds the listeners and starts the worker threads. Returns once every worker's runtime
/// is up, so the address is ready to use.
pub fn start(cfg: MockConfig) -> anyhow::Result<MockHandle> {
    let workers = match cfg.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let listeners = crate::io::bind_reuseport(cfg.listen, workers)
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listeners.first().context("no listener")?.local_addr()?;
    let tls = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(c), Some(k)) => Some(crate::tls::server_config(c, k)?),
        _ => None,
    };
    let is_tls = tls.is_some();
    let ledgers: Vec<_> = (0..workers).map(|_| ledger::shared()).collect();
    let shared = Arc::new(server::Shared::new(cfg, ledgers.clone(), tls)?);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let mut threads = Vec::with_capacity(workers);
    for (id, listener) in listeners.into_iter().enumerate() {
        let shared = shared.clone();
        let ready = ready_tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("mock-worker-{id}"))
            .spawn(move || server::run_worker(id, shared, listener, ready))?;
        threads.push(t);
    }
    drop(ready_tx);
    for _ in 0..workers {
        ready_rx
            .recv()
            .context("a mock worker exited during startup")??;
    }
    Ok(MockHandle {
        addr,
        tls: is_tls,
        ledgers,
        _threads: threads,
    })
}
