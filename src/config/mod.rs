//! One static TOML file → an immutable [`Snapshot`], in three steps (ARCHITECTURE.md, "Configuration"):
//!
//! 1. [`raw`]: serde types with `deny_unknown_fields`, so a misspelt key is an error, never
//!    silently ignored. Syntax and type errors carry the key path (via `serde_path_to_error`)
//!    and the line, and unknown keys get a "did you mean" from the fields that exist.
//! 2. [`validate`]: the rules serde cannot express, every problem reported with its key path
//!    and the fix.
//! 3. [`snapshot`]: the compiled form the workers read — dense ids, hash indexes, credential
//!    header lines and the `/v1/models` body prepared once.
//!
//! `tollgate check --config FILE` runs all three and prints [`Snapshot::summary`].

pub mod cache;
pub mod cluster;
pub mod guardrails;
mod money;
mod operator;
mod price_file;
mod provider;
pub mod raw;
pub mod snapshot;
pub mod validate;
pub mod vertex;

use std::path::Path;

pub use provider::parse_base_url;
pub use snapshot::*;
pub use validate::Problem;

/// The config that ships with tollgate and that `tollgate serve` uses without `--config`.
pub const DEFAULT_CONFIG: &str = include_str!("../../config/tollgate.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: cannot read: {source}")]
    Read {
        origin: String,
        source: std::io::Error,
    },
    #[error("{origin}:{line}: {path}{message}")]
    Syntax {
        origin: String,
        line: usize,
        /// `models[0].deployments[1].`, or empty at the top level.
        path: String,
        message: String,
    },
    #[error("{origin}: {} problem(s):\n  {}", .problems.len(), join(.problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

fn join(p: &[Problem]) -> String {
    p.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Reads and compiles the file at `path`, taking credentials from the process environment.
pub fn load(path: &Path) -> Result<Snapshot, ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        origin: origin.clone(),
        source,
    })?;
    parse(&text, &origin, &|var| std::env::var(var).ok())
}

/// Parses and compiles config `text`; `origin` names it in errors.
pub fn parse(
    text: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Snapshot, ConfigError> {
    let raw = parse_raw(text, origin)?;
    validate::compile(&raw, env).map_err(|problems| ConfigError::Invalid {
        origin: origin.to_string(),
        problems,
    })
}

fn parse_raw(text: &str, origin: &str) -> Result<raw::RawConfig, ConfigError> {
    let syntax = |span: Option<std::ops::Range<usize>>, path: String, message: String| {
        let line = span.map_or(0, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        ConfigError::Syntax {
            origin: origin.to_string(),
            line,
            path,
            message,
        }
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| syntax(e.span(), String::new(), e.message().to_string()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = explain(inner.message());
        let path = if path == "." { String::new() } else { path };
        let path = if path.is_empty() {
            path
        } else {
            format!("{path}: ")
        };
        syntax(inner.span(), path, message)
    })
}

/// `unknown field `x`, expected …` → `x`.
fn unknown_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(&rest[..rest.find('`')?])
}

/// Rewrites serde's unknown-field message into one that suggests the nearest known key.
fn explain(msg: &str) -> String {
    let Some(field) = unknown_field(msg) else {
        return msg.to_string();
    };
    let expected: Vec<&str> = msg
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let hint = validate::suggest(field, &expected);
    if hint.is_empty() {
        format!(
            "unknown field; the keys allowed here are {}",
            expected.join(", ")
        )
    } else {
        format!("unknown field{hint}")
    }
}

/// Which monoio driver a thread runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// io_uring where the kernel allows it, epoll otherwise.
    #[default]
    Auto,
    /// io_uring only (fails to start where it is unavailable).
    #[serde(rename = "io_uring", alias = "uring")]
    Uring,
    /// epoll only.
    Epoll,
}

impl std::str::FromStr for Driver {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Driver::Auto),
            "io_uring" | "uring" => Ok(Driver::Uring),
            "epoll" => Ok(Driver::Epoll),
            _ => Err(format!(
                "unknown io driver `{s}` (expected auto, io_uring or epoll)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "t.toml", &|_| None).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_their_path_and_the_fix() {
        let e = err(
            "[[providers]]\nname = \"m\"\nkind = \"mock\"\n[[models]]\nname = \"a\"\n\
             [[models.deployments]]\nprovider = \"m\"\nmodle = \"x\"\n",
        );
        assert!(
            e.contains("t.toml:")
                && e.contains(
                    "models[0].deployments[0].modle: unknown field, did you mean `model`?"
                ),
            "{e}"
        );
        let e = err("[server]\nlisten = \"127.0.0.1:1\"\nwrokers = 2\n");
        assert!(
            e.contains("server.wrokers: unknown field, did you mean `workers`?"),
            "{e}"
        );
        let e = err("[limitz]\n");
        assert!(
            e.contains("limitz: unknown field, did you mean `limits`?"),
            "{e}"
        );
    }

    #[test]
    fn type_errors_name_their_path() {
        let e = err("[limits]\nmax_body_bytes = \"big\"\n");
        assert!(
            e.contains("t.toml:2: limits.max_body_bytes: invalid type"),
            "{e}"
        );
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let e = err("[server]\nlisten = \"localhost:80\"\nworkers = 0\n\
             [[models]]\nname = \"a\"\n[[models.deployments]]\nprovider = \"mokc\"\n\
             [[providers]]\nname = \"mock\"\nkind = \"mock\"\n\
             [[keys]]\nid = \"k\"\nsha256 = \"nothex\"\n");
        for want in [
            "server.listen: `localhost:80` is not an IP address",
            "server.workers: 0 is out of range",
            "models[0].deployments[0].provider: no provider named `mokc`, did you mean `mock`?",
            "keys[0].sha256: must be 64 hex digits",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
    }

    #[test]
    fn cache_settings_are_checked_and_layered() {
        let base = "[[providers]]\nname = \"m\"\nkind = \"mock\"\n\
             [[models]]\nname = \"e\"\n[[models.deployments]]\nprovider = \"m\"\nprice = \"free\"\n";
        let model = |cache: &str| {
            format!(
                "{base}[[models]]\nname = \"a\"\ncache = {cache}\n[[models.deployments]]\nprovider = \"m\"\nprice = \"free\"\n"
            )
        };
        let e = err(&model(
            "{ ttl = \"1 fortnight\", max_bytes = \"lots\", scope = \"tenant\", charge = 2.0, \
             semantic = { embeddings = \"nope\", threshold = 1.5 } }",
        ));
        for want in [
            "models[1].cache.ttl: not a duration",
            "models[1].cache.max_bytes: not a size",
            "models[1].cache.scope: `tenant` is not a scope",
            "models[1].cache.charge: must be a fraction between 0 and 1",
            "models[1].cache.semantic.embeddings: no model named `nope`",
            "models[1].cache.semantic.threshold: must be between 0 and 1",
        ] {
            assert!(e.contains(want), "missing {want:?} in:\n{e}");
        }
        // The semantic cache asks the gateway itself for embeddings, over plaintext.
        let tls = format!(
            "[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n{}",
            model("{ semantic = { embeddings = \"e\" } }")
        );
        assert!(err(&tls).contains("models[1].cache.semantic: needs a plaintext listener"));
        // A key's own fields over its team's over the model's.
        let text = format!(
            "{}[[teams]]\nname = \"t\"\ncache = {{ scope = \"global\", charge = 0.5 }}\n\
             [[keys]]\nid = \"k\"\nsha256 = \"{h}\"\nteam = \"t\"\ncache = {{ scope = \"key\" }}\n\
             [[keys]]\nid = \"off\"\nsha256 = \"{h2}\"\nteam = \"t\"\ncache = false\n",
            model("{ ttl = \"90s\", max_bytes = \"2MiB\" }"),
            h = "ab".repeat(32),
            h2 = "cd".repeat(32),
        );
        let s = parse(&text, "t.toml", &|_| None).unwrap();
        let p = s.models[1].cache.as_ref().unwrap();
        assert_eq!(
            (p.ttl.as_secs(), p.max_bytes, p.scope),
            (90, 2 << 20, cache::CacheScope::Team)
        );
        let k = p.with(s.keys[0].cache.as_ref()).unwrap();
        assert_eq!((k.scope, k.charge_ppm), (cache::CacheScope::Key, 500_000));
        assert!(p.with(s.keys[1].cache.as_ref()).is_none(), "cache = false");
    }

    #[test]
    fn cutting_streams_needs_a_budget_to_cut_at() {
        let base = "[[providers]]\nname = \"m\"\nkind = \"mock\"\n[[models]]\nname = \"a\"\n\
             [[models.deployments]]\nprovider = \"m\"\nprice = \"free\"\n[[teams]]\nname = \"t\"\n\
             budget = { tokens = 100 }\n";
        let key = |extra: &str| {
            format!(
                "{base}[[keys]]\nid = \"k\"\nsha256 = \"{}\"\ncut_stream_at_cap = true\n{extra}\n",
                "ab".repeat(32)
            )
        };
        let e = err(&key("rpm = 10"));
        assert!(
            e.contains("keys[0].cut_stream_at_cap: there is no cap to cut at"),
            "{e}"
        );
        for ok in ["budget = { usd = 1.0 }", "team = \"t\""] {
            let s = parse(&key(ok), "t.toml", &|_| None).unwrap();
            assert!(s.keys[0].cut_stream_at_cap, "{ok}");
        }
    }

    #[test]
    fn large_budgets_are_budgets_not_prices() {
        let config = |usd: &str| {
            format!(
                "[[providers]]\nname = \"m\"\nkind = \"mock\"\n[[models]]\nname = \"a\"\n\
                 [[models.deployments]]\nprovider = \"m\"\nprice = \"free\"\n[[teams]]\n\
                 name = \"t\"\nbudget = {{ usd = {usd} }}\n"
            )
        };
        let s = parse(&config("2500000.0"), "t.toml", &|_| None).unwrap();
        assert_eq!(s.quotas[0].cap, 2_500_000_000_000);
        let e = err(&config("-5.0"));
        assert!(e.contains("teams[0].budget.usd: -5 is not a budget"), "{e}");
        assert!(!e.contains("price"), "{e}");
    }

    fn priced(deployment: &str, extra: &str) -> Result<crate::usage::Price, String> {
        let text = format!(
            "[[providers]]\nname = \"m\"\nkind = \"mock\"\n[[models]]\nname = \"pub\"\n\
             [[models.deployments]]\nprovider = \"m\"\n{deployment}\n{extra}"
        );
        parse(&text, "t.toml", &|_| None)
            .map(|s| s.deployments[0].price)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn prices_come_from_the_table_by_name_with_overrides() {
        use crate::usage::Price;
        let mini = Price {
            input: 150_000,
            output: 600_000,
            cache_read: 75_000,
            cache_write: 150_000,
            long: None,
        };
        // By the upstream model's name, by the public name, by reference.
        assert_eq!(priced("model = \"gpt-4o-mini\"", ""), Ok(mini));
        assert_eq!(
            priced(
                "",
                "[prices.pub]\ninput = 0.15\noutput = 0.6\ncached_input = 0.075"
            ),
            Ok(mini)
        );
        assert_eq!(priced("price = \"gpt-4o-mini\"", ""), Ok(mini));
        // Overrides of a table entry; a full price of its own; free.
        assert_eq!(
            priced("price = { from = \"gpt-4o-mini\", output = 0.7 }", ""),
            Ok(Price {
                output: 700_000,
                ..mini
            })
        );
        assert_eq!(
            priced("price = { input = 1.0, output = 2.0 }", ""),
            Ok(Price {
                input: 1_000_000,
                output: 2_000_000,
                cache_read: 1_000_000,
                cache_write: 1_000_000,
                long: None,
            })
        );
        assert_eq!(priced("price = \"free\"", ""), Ok(Price::default()));
        // Anthropic's cache write price is in the table.
        assert_eq!(
            priced("price = \"claude-sonnet-4-5\"", "").map(|p| p.cache_write),
            Ok(3_750_000)
        );
    }

    #[test]
    fn long_context_tiers_are_priced_and_kept_through_overrides() {
        use crate::usage::LongContext;
        let tier = "[prices.pub]\ninput = 1.25\noutput = 10.0\ncached_input = 0.125\n\
                    long_context = { above_tokens = 200000, input = 2.5, output = 15.0, \
                    cached_input = 0.25 }";
        let long = Some(LongContext {
            above: 200_000,
            input: 2_500_000,
            output: 15_000_000,
            cache_read: 250_000,
            // Unset: this tier's input rate.
            cache_write: 2_500_000,
        });
        assert_eq!(priced("", tier).map(|p| p.long), Ok(long));
        // An override keeps its entry's tier; a price written out in full has none unless it
        // says so.
        assert_eq!(
            priced("price = { from = \"pub\", output = 11.0 }", tier).map(|p| p.long),
            Ok(long)
        );
        assert_eq!(
            priced("price = { input = 1.0, output = 2.0 }", tier).map(|p| p.long),
            Ok(None)
        );
        assert_eq!(
            priced(
                "price = { input = 1.0, output = 2.0, long_context = { above_tokens = 10, \
                 input = 3.0, output = 4.0 } }",
                ""
            )
            .map(|p| p.long.map(|l| (l.above, l.input, l.cache_read))),
            Ok(Some((10, 3_000_000, 3_000_000)))
        );
        let e = priced(
            "",
            "[prices.pub]\ninput = 1.0\noutput = 2.0\n\
             long_context = { above_tokens = 0, input = -3.0, output = 4.0 }",
        )
        .unwrap_err();
        assert!(
            e.contains("prices.pub.long_context.above_tokens: must be at least 1"),
            "{e}"
        );
        assert!(
            e.contains("prices.pub.long_context.input: -3 is not a price"),
            "{e}"
        );
        // The bundled table carries the providers' tiers.
        let pro = priced("price = \"gemini-2.5-pro\"", "").unwrap();
        assert_eq!(
            pro.long.map(|l| (l.above, l.input)),
            Some((200_000, 2_500_000))
        );
    }

    #[test]
    fn missing_or_bad_prices_say_how_to_fix_them() {
        let e = priced("", "").unwrap_err();
        assert!(
            e.contains("models[0].deployments[0].price: no price known for `pub`"),
            "{e}"
        );
        let e = priced("price = \"gpt-4o-mni\"", "").unwrap_err();
        assert!(e.contains("did you mean `gpt-4o-mini`?"), "{e}");
        let e = priced("price = { input = -1.0, output = 1.0 }", "").unwrap_err();
        assert!(e.contains("price.input: -1 is not a price"), "{e}");
        let e = priced("price = { inptu = 1.0 }", "").unwrap_err();
        assert!(
            e.contains("inptu: unknown field, did you mean `input`?"),
            "{e}"
        );
    }

    #[test]
    fn a_litellm_price_map_goes_over_the_bundled_table() {
        let dir = std::env::temp_dir().join(format!("tollgate-prices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let map = dir.join("model_prices_and_context_window.json");
        std::fs::write(
            &map,
            r#"{"new-model-x": {"input_cost_per_token": 2e-06, "output_cost_per_token": 8e-06,
                 "cache_read_input_token_cost": 5e-07, "litellm_provider": "openai", "mode": "chat"},
                "gpt-4o-mini": {"input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06,
                 "litellm_provider": "openai", "mode": "chat"},
                "whisper-1": {"input_cost_per_second": 0.0001, "mode": "audio_transcription"}}"#,
        )
        .unwrap();
        let config = |deployment: &str, extra: &str| {
            format!(
                "[price_table]\nfile = \"{}\"\n[[providers]]\nname = \"m\"\nkind = \"mock\"\n\
                 [[models]]\nname = \"pub\"\n[[models.deployments]]\nprovider = \"m\"\n\
                 {deployment}\n{extra}",
                map.display()
            )
        };
        // An entry only the file has; the file's entry over the bundled one of the same name.
        let s = parse(&config("model = \"new-model-x\"", ""), "t.toml", &|_| None).unwrap();
        let d = &s.deployments[0];
        assert_eq!(
            (d.price.input, d.price.output, d.price.cache_read),
            (2_000_000, 8_000_000, 500_000)
        );
        assert_eq!(d.price_source, "price of new-model-x, from the price file");
        let summary = s.summary();
        assert!(
            summary.contains(
                "LiteLLM price map: 2 entries taken (openai 2); skipped 1 that are not text models"
            ),
            "{summary}"
        );
        let s = parse(&config("model = \"gpt-4o-mini\"", ""), "t.toml", &|_| None).unwrap();
        assert_eq!(s.deployments[0].price.input, 1_000_000);
        // The config's own [prices] entries win over the file's.
        let own = "[prices.\"new-model-x\"]\ninput = 3.0\noutput = 4.0";
        let s = parse(&config("model = \"new-model-x\"", own), "t.toml", &|_| None).unwrap();
        assert_eq!(s.deployments[0].price.input, 3_000_000);
        assert_eq!(s.deployments[0].price_source, "price of new-model-x");
        // A file that is missing or not a price map is a config error that says so.
        std::fs::write(&map, "[]").unwrap();
        let e = parse(&config("price = \"free\"", ""), "t.toml", &|_| None).unwrap_err();
        assert!(
            e.to_string()
                .contains("price_table.file: not LiteLLM's price map"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let e = parse(&config("price = \"free\"", ""), "t.toml", &|_| None).unwrap_err();
        assert!(
            e.to_string().contains("price_table.file: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn the_bundled_price_table_is_dated_and_complete() {
        let t: raw::RawPriceTable = toml::from_str(validate::PRICES).unwrap();
        assert!(t.table.taken.len() == 10 && t.table.taken.starts_with("20"));
        for m in [
            "gpt-4o-mini",
            "gpt-4.1",
            "claude-sonnet-4-5",
            "gemini-2.5-flash",
        ] {
            let p = &t.models[m];
            assert!(p.input > 0.0 && p.output > p.input, "{m}");
        }
    }

    #[test]
    fn providers_without_credentials_are_inactive_not_errors() {
        let text = "[[providers]]\nname = \"up\"\nkind = \"openai_compatible\"\n\
                    base_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"UP_KEY\"\n\
                    [[models]]\nname = \"a\"\n[[models.deployments]]\nprovider = \"up\"\n\
                    price = \"free\"\n";
        let s = parse(text, "t", &|_| None).unwrap();
        assert!(s.model(b"a").is_none());
        assert!(
            s.inactive[0].contains("$UP_KEY is not set"),
            "{:?}",
            s.inactive
        );
        let s = parse(text, "t", &|v| (v == "UP_KEY").then(|| "sk-1".to_string())).unwrap();
        let m = s.model(b"a").unwrap();
        let d = s.deployment(s.models[m.0 as usize].deployments[0]);
        assert_eq!(
            s.provider(d.provider).credential.as_deref(),
            Some(&b"authorization: Bearer sk-1\r\n"[..])
        );
    }
}
