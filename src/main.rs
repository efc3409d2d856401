//! `tollgate`: serve, check a config, hash a virtual key, or watch a running gateway (`top`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tollgate::config;
use tollgate::runtime::Gateway;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "tollgate", version, about = "An AI gateway data plane")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the gateway. SIGHUP reloads the config file; SIGTERM/SIGINT drain and exit.
    Serve {
        /// Config file; without it, the embedded default (config/tollgate.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print what it configures.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the SHA-256 of a virtual key (for `[[keys]] sha256`). Reads stdin without KEY.
    HashKey { key: Option<String> },
    /// A live view of a running gateway, from its admin API (`GET /admin/stats`).
    Top {
        /// The admin listener (`[admin] listen`).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin: String,
        /// The environment variable holding the admin key (none needed with
        /// `metrics_public`).
        #[arg(long, default_value = "TOLLGATE_ADMIN_KEY")]
        key_env: String,
        /// Milliseconds between redraws.
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Print one frame and exit.
        #[arg(long)]
        once: bool,
    },
}

fn load(path: Option<&PathBuf>) -> Result<config::Snapshot, config::ConfigError> {
    match path {
        Some(p) => config::load(p),
        None => config::parse(
            config::DEFAULT_CONFIG,
            "embedded config/tollgate.toml",
            &|v| std::env::var(v).ok(),
        ),
    }
}

fn main() -> anyhow::Result<()> {
    tollgate::net::io::small_pages();
    let cli = Cli::parse();
    match cli.command {
        Cmd::HashKey { key } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            anyhow::ensure!(!key.is_empty(), "the key is empty");
            let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
            let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            println!("{hex}");
            Ok(())
        }
        Cmd::Check { config } => {
            let snap = load(config.as_ref())?;
            print!("config OK\n{}", snap.summary());
            Ok(())
        }
        Cmd::Serve { config } => serve(config),
        Cmd::Top {
            admin,
            key_env,
            interval_ms,
            once,
        } => {
            let key = std::env::var(&key_env).ok();
            let every = std::time::Duration::from_millis(interval_ms.max(100));
            tollgate::runtime::top::run(&admin, key.as_deref(), every, once)
                .map_err(anyhow::Error::msg)
        }
    }
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let snap = load(path.as_ref())?;
    for why in &snap.inactive {
        eprintln!("tollgate: inactive deployment: {why}");
    }
    // Registered before the workers start so no signal is missed.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .context("installing signal handlers")?;
    let scheme = if snap.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut gw = Gateway::start(snap)?;
    println!(
        "tollgate listening on {scheme}://{} ({} workers, {})",
        gw.local_addr(),
        gw.workers(),
        gw.driver()
    );
    if let Some(a) = gw.admin_addr() {
        println!("tollgate admin API on http://{a}");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    for sig in signals.forever() {
        match sig {
            SIGHUP => match load(path.as_ref()) {
                Ok(next) => match gw.reload(next) {
                    Ok(notes) => {
                        for n in notes {
                            eprintln!("tollgate: reload: {n}");
                        }
                        eprintln!("tollgate: config reloaded (generation {})", gw.generation());
                    }
                    Err(e) => eprintln!("tollgate: reload failed, keeping the running config: {e}"),
                },
                Err(e) => eprintln!("tollgate: reload failed, keeping the running config:\n{e}"),
            },
            _ => {
                eprintln!("tollgate: draining");
                let p = gw.shutdown();
                eprintln!(
                    "tollgate: stopped after {} requests ({} connections cut at the deadline)",
                    p.totals.requests, p.cut_connections
                );
                return Ok(());
            }
        }
    }
    Ok(())
}
