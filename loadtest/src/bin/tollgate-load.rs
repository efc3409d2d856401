//! `tollgate-load [options] [--json FILE]`: see `tollgate_loadtest::load`.

use clap::Parser;
use tollgate_loadtest::load::{LoadArgs, execute};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load generator for LLM APIs: open loop (constant or Poisson arrivals, latency from the
/// intended send time) or closed loop, stream-aware, with A/B interleaving of two targets.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.load.resolve()?;
    let summary = execute(&cfg)?;
    print!("{}", summary.table());
    if let Some(path) = &cli.load.json {
        std::fs::write(path, serde_json::to_vec_pretty(&summary)?)?;
    }
    Ok(())
}
