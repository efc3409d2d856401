//! `tollgate-mock --listen ADDR [options]`: see `tollgate_loadtest::mock`.

use std::io::Write;

use clap::Parser;
use tollgate_loadtest::mock;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A mock LLM provider: OpenAI, Anthropic and Gemini wire formats, shaped timing,
/// faults on demand, and a ledger of what it billed at GET /mock/stats.
#[derive(Parser)]
#[command(version, about, long_about = None, after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    mock: mock::MockConfig,
}

const AFTER_HELP: &str = "\
Per-request headers (override the flags for one request):
  x-mock-ttft-ms, x-mock-itl-ms       time to first token / gap between tokens (ms)
  x-mock-tokens                       completion tokens (else max_tokens, else --tokens)
  x-mock-say                          the answer's text (cut by words or x-mock-token-bytes)
  x-mock-token-bytes                  bytes of text per token
  x-mock-cached-tokens                prompt tokens reported as cached
  x-mock-reasoning-tokens             reasoning tokens added to the completion
  x-mock-framing                      chunked | close | natural
  x-mock-fault                        e.g. status=429,retry-after=2 | reset | reset-after=3 |
                                      stall=500[,stall-after=2] | malformed | truncate | drip

Prompt tokens are ceil(request body bytes / 4).";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let handle = mock::start(cli.mock)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "tollgate-mock listening on {}", handle.url())?;
    out.flush()?;
    drop(out);
    // Workers serve until the process is killed.
    loop {
        std::thread::park();
    }
}
