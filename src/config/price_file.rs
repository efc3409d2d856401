//! `[price_table] file`: a price table of the user's over the bundled one, read when the
//! config is loaded (and on every reload), so newer prices need no new release.
//!
//! Two formats, by the file's extension:
//! - `.json`: LiteLLM's `model_prices_and_context_window.json`, the price map many teams
//!   already maintain. Entries are taken under their own names (`gpt-5`,
//!   `gemini/gemini-2.5-pro`, `anthropic.claude-sonnet-4-5-20250929-v1:0`): USD per token
//!   (`input_cost_per_token`, `output_cost_per_token`, `cache_read_input_token_cost`,
//!   `cache_creation_input_token_cost`) becomes USD per million tokens. Skipped, and counted:
//!   models that are not text models (`mode` other than chat, completion, responses,
//!   embedding — images, audio, video, rerank…), models without per-token prices (priced per
//!   second, per image or not at all; an embedding model may leave its output price out), and
//!   malformed entries (a price that is not a number from 0 to 1 USD per token), which are
//!   named. The long-context tier (`input_cost_per_token_above_200k_tokens` and its output and
//!   cache siblings; 128k, 272k… likewise) becomes the entry's `long_context` — the lowest
//!   threshold when an entry has several. Tiers the table does not model (batch, priority,
//!   flex, 1-hour cache writes) are not read.
//! - anything else: TOML shaped like the bundled `config/prices.toml`, every entry validated
//!   as the bundled ones are.

use std::collections::BTreeMap;

use simd_json::prelude::*;
use simd_json::{OwnedValue, StaticNode};

use super::raw::{RawLongContext, RawPrice, RawPriceTable};

/// The entries a price file gives, and a line for `tollgate check` saying what was taken.
#[derive(Debug)]
pub(super) struct PriceFile {
    pub entries: Vec<(String, RawPrice)>,
    pub summary: String,
}

/// The largest per-token price accepted from a LiteLLM map: 1 USD per token (the table's own
/// bound, a million USD per million tokens).
const MAX_USD_PER_TOKEN: f64 = 1.0;

/// Reads the price file at `path` (relative paths from the working directory, as for
/// `ca_file`).
pub(super) fn read(path: &str) -> Result<PriceFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    if path.ends_with(".json") {
        litellm(&text)
    } else {
        let t: RawPriceTable = toml::from_str(&text)
            .map_err(|e| format!("`{path}` is not a price table like config/prices.toml: {e}"))?;
        let summary = format!(
            "{} entries (v{}, taken {} from {})",
            t.models.len(),
            t.table.version,
            t.table.taken,
            t.table.source
        );
        Ok(PriceFile {
            entries: t.models.into_iter().collect(),
            summary,
        })
    }
}

/// LiteLLM's price map: a JSON object of model name → fields.
fn litellm(text: &str) -> Result<PriceFile, String> {
    let not_a_map = |e: &dyn std::fmt::Display| {
        format!("not LiteLLM's price map (a JSON object of model name → prices): {e}")
    };
    let mut bytes = text.as_bytes().to_vec();
    let doc = simd_json::to_owned_value(&mut bytes).map_err(|e| not_a_map(&e))?;
    let map = doc.as_object().ok_or_else(|| not_a_map(&"not an object"))?;
    let mut entries = Vec::new();
    let mut by_provider: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut not_text, mut unpriced) = (0usize, 0usize);
    let mut malformed = Vec::new();
    for (name, v) in map.iter() {
        // LiteLLM documents its fields in an entry of that name.
        if name == "sample_spec" {
            continue;
        }
        let Some(o) = v.as_object() else {
            malformed.push(name.as_str());
            continue;
        };
        let mode = o.get("mode").and_then(|m| m.as_str());
        if !matches!(
            mode,
            None | Some("chat" | "completion" | "responses" | "embedding")
        ) {
            not_text += 1;
            continue;
        }
        let price = |field: &str| -> Result<Option<f64>, ()> {
            match o.get(field) {
                None | Some(OwnedValue::Static(StaticNode::Null)) => Ok(None),
                Some(OwnedValue::Static(
                    n @ (StaticNode::F64(_) | StaticNode::I64(_) | StaticNode::U64(_)),
                )) => n
                    .cast_f64()
                    .filter(|x| x.is_finite() && (0.0..=MAX_USD_PER_TOKEN).contains(x))
                    .map(|usd_per_token| Some(usd_per_token * 1e6))
                    .ok_or(()),
                Some(_) => Err(()),
            }
        };
        let (Ok(input), Ok(output), Ok(cached_input), Ok(cache_write)) = (
            price("input_cost_per_token"),
            price("output_cost_per_token"),
            price("cache_read_input_token_cost"),
            price("cache_creation_input_token_cost"),
        ) else {
            malformed.push(name.as_str());
            continue;
        };
        let output = if mode == Some("embedding") {
            output.or(Some(0.0))
        } else {
            output
        };
        let (Some(input), Some(output)) = (input, output) else {
            unpriced += 1;
            continue;
        };
        // The long-context tier: `…_above_200k_tokens` (or 128k, 272k…); the lowest when
        // there are several.
        let above_k = o
            .keys()
            .filter_map(|k| {
                k.strip_prefix("input_cost_per_token_above_")?
                    .strip_suffix("k_tokens")?
                    .parse::<u64>()
                    .ok()
            })
            .filter(|k| o.contains_key(format!("output_cost_per_token_above_{k}k_tokens").as_str()))
            .min();
        let long_context = match above_k {
            None => None,
            Some(k) => {
                let tier = |field: &str| price(&format!("{field}_above_{k}k_tokens"));
                let (Ok(Some(input)), Ok(Some(output)), Ok(cached_input), Ok(cache_write)) = (
                    tier("input_cost_per_token"),
                    tier("output_cost_per_token"),
                    tier("cache_read_input_token_cost"),
                    tier("cache_creation_input_token_cost"),
                ) else {
                    malformed.push(name.as_str());
                    continue;
                };
                Some(RawLongContext {
                    above_tokens: k * 1000,
                    input,
                    output,
                    cached_input,
                    cache_write,
                })
            }
        };
        let provider = o
            .get("litellm_provider")
            .and_then(|p| p.as_str())
            .unwrap_or("unnamed");
        *by_provider.entry(provider).or_default() += 1;
        entries.push((
            name.clone(),
            RawPrice {
                input,
                output,
                cached_input,
                cache_write,
                long_context,
            },
        ));
    }
    malformed.sort_unstable();
    let mut providers: Vec<(&str, usize)> = by_provider.into_iter().collect();
    providers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let most: Vec<String> = providers
        .iter()
        .take(6)
        .map(|(p, n)| format!("{p} {n}"))
        .collect();
    let mut summary = format!(
        "LiteLLM price map: {} entries taken ({}{}); skipped {not_text} that are not text \
         models, {unpriced} without per-token prices, {} malformed",
        entries.len(),
        most.join(", "),
        if providers.len() > 6 { ", …" } else { "" },
        malformed.len()
    );
    if !malformed.is_empty() {
        let shown: Vec<&str> = malformed.iter().take(5).copied().collect();
        summary.push_str(&format!(
            " ({}{})",
            shown.join(", "),
            if malformed.len() > 5 { ", …" } else { "" }
        ));
    }
    Ok(PriceFile { entries, summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"{
        "sample_spec": {"input_cost_per_token": "docs", "mode": "one of: chat, …"},
        "gpt-5": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                  "cache_read_input_token_cost": 1.25e-07, "input_cost_per_token_batches": 6.25e-07,
                  "litellm_provider": "openai", "mode": "chat"},
        "claude-sonnet-4-5": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                  "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
                  "litellm_provider": "anthropic", "mode": "chat"},
        "gemini/gemini-2.5-pro": {"input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                  "input_cost_per_token_above_200k_tokens": 2.5e-06,
                  "output_cost_per_token_above_200k_tokens": 1.5e-05,
                  "cache_read_input_token_cost_above_200k_tokens": 2.5e-07,
                  "input_cost_per_token_above_200k_tokens_priority": 4.5e-06,
                  "litellm_provider": "gemini", "mode": "chat"},
        "text-embedding-3-small": {"input_cost_per_token": 2e-08,
                  "litellm_provider": "openai", "mode": "embedding"},
        "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai",
                  "mode": "image_generation"},
        "some-per-second-model": {"input_cost_per_second": 0.001, "mode": "chat"},
        "broken": {"input_cost_per_token": "free", "output_cost_per_token": 1e-06, "mode": "chat"},
        "negative": {"input_cost_per_token": -1e-06, "output_cost_per_token": 1e-06},
        "not-an-object": 3
    }"#;

    #[test]
    fn litellm_map_read_in_usd_per_million() {
        let f = litellm(MAP).unwrap();
        let get = |n: &str| {
            f.entries
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, p)| p.clone())
        };
        let gpt5 = get("gpt-5").unwrap();
        assert!((gpt5.input - 1.25).abs() < 1e-9 && (gpt5.output - 10.0).abs() < 1e-9);
        assert!((gpt5.cached_input.unwrap() - 0.125).abs() < 1e-9);
        assert_eq!(gpt5.cache_write, None);
        let claude = get("claude-sonnet-4-5").unwrap();
        assert!((claude.cache_write.unwrap() - 3.75).abs() < 1e-9);
        let emb = get("text-embedding-3-small").unwrap();
        assert!((emb.input - 0.02).abs() < 1e-9 && emb.output == 0.0);
        let long = get("gemini/gemini-2.5-pro").unwrap().long_context.unwrap();
        assert_eq!(long.above_tokens, 200_000);
        assert!((long.input - 2.5).abs() < 1e-9 && (long.output - 15.0).abs() < 1e-9);
        assert!((long.cached_input.unwrap() - 0.25).abs() < 1e-9 && long.cache_write.is_none());
        assert!(gpt5.long_context.is_none());
        assert_eq!(f.entries.len(), 4);
        for skipped in ["sample_spec", "dall-e-3", "some-per-second-model", "broken"] {
            assert!(get(skipped).is_none(), "{skipped}");
        }
        assert!(
            f.summary.contains("4 entries taken (openai 2, anthropic 1, gemini 1)")
                && f.summary.contains("skipped 1 that are not text models, 1 without per-token prices, 3 malformed (broken, negative, not-an-object)"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn a_file_that_is_not_a_price_map_is_refused() {
        assert!(
            litellm("[1, 2]")
                .unwrap_err()
                .contains("not LiteLLM's price map")
        );
        assert!(litellm("{\"a\": ").is_err());
    }
}
