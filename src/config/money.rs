//! Money in the config: the price table (bundled, overridden by `[prices]`), each deployment's
//! price, and the budgets and rate limits of keys, teams and deployments compiled into quotas.
//! Integers from here on: µ$ per million tokens, µ$ budgets.

use std::collections::{HashMap, HashSet};

use super::raw::{
    RawBudget, RawConfig, RawDeploymentPrice, RawLongContext, RawPrice, RawPriceTable,
};
use super::snapshot::*;
use super::validate::{PRICES, Problems, suggest};
use crate::calendar::Period;
use crate::usage::{LongContext, Price};

/// Compiles one scope's budget and rate limits into `quotas`; returns their ids.
/// One scope's configured limits (a key's, a team's or a deployment's).
#[derive(Clone, Copy)]
pub(super) struct ScopeLimits<'a> {
    pub budget: Option<&'a RawBudget>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

pub(super) fn scope_quotas(
    p: &mut Problems,
    path: &str,
    scope: &str,
    ScopeLimits { budget, rpm, tpm }: ScopeLimits<'_>,
    quotas: &mut Vec<Quota>,
) -> Vec<QuotaId> {
    let mut ids = Vec::new();
    let mut add = |unit, window, cap, warn, what: &str| {
        ids.push(QuotaId(quotas.len() as u32));
        quotas.push(Quota {
            name: format!("{scope}/{what}"),
            scope: scope.to_owned(),
            unit,
            window,
            cap,
            warn,
        });
    };
    if let Some(b) = budget {
        let period = match b.period.as_deref().unwrap_or("monthly") {
            "daily" => Period::Daily,
            "weekly" => Period::Weekly,
            "monthly" => Period::Monthly {
                reset_day: b.reset_day.unwrap_or(1),
            },
            "total" => Period::Total,
            other => {
                p.add(
                    format!("{path}.budget.period"),
                    format!(
                        "`{other}` is not a period; use \"daily\", \"weekly\", \"monthly\" or \
                         \"total\""
                    ),
                );
                Period::Total
            }
        };
        if let Some(d) = b.reset_day
            && !(1..=28).contains(&d)
        {
            p.add(
                format!("{path}.budget.reset_day"),
                format!("{d} is out of range; use 1..=28 (every month has those days)"),
            );
        }
        if b.reset_day.is_some() && !matches!(period, Period::Monthly { .. }) {
            p.add(
                format!("{path}.budget.reset_day"),
                "only a monthly period has a reset day",
            );
        }
        let warn_at = b.warn_at.unwrap_or(0.8);
        if !(warn_at.is_finite() && (0.0..=1.0).contains(&warn_at)) {
            p.add(
                format!("{path}.budget.warn_at"),
                format!("{warn_at} is not a fraction of the cap; use 0.0 to 1.0"),
            );
        }
        let warn = |cap: u64| Some((cap as f64 * warn_at.clamp(0.0, 1.0)) as u64);
        if b.usd.is_none() && b.tokens.is_none() {
            p.add(
                format!("{path}.budget"),
                "a budget needs a cap: usd = 25.0 and/or tokens = 1000000",
            );
        }
        if let Some(v) = b.usd {
            let cap = budget_usd(p, &format!("{path}.budget.usd"), v);
            add(
                Unit::MicroUsd,
                Window::Period(period),
                cap,
                warn(cap),
                "usd",
            );
        }
        if let Some(cap) = b.tokens {
            add(
                Unit::Tokens,
                Window::Period(period),
                cap,
                warn(cap),
                "tokens",
            );
        }
    }
    for (what, unit, v) in [("rpm", Unit::Requests, rpm), ("tpm", Unit::Tokens, tpm)] {
        if let Some(cap) = v {
            if cap == 0 {
                p.add(
                    format!("{path}.{what}"),
                    "must be at least 1 (leave it out for no limit)",
                );
            }
            add(unit, Window::Minute, cap.max(1), None, what);
        }
    }
    ids
}

/// The price table: the bundled one, a price file's entries over it, the config's `[prices]`
/// over both.
#[derive(Debug, Default)]
pub(super) struct PriceTable {
    /// µ$ per million tokens, by entry name.
    pub prices: HashMap<String, Price>,
    /// The entries that came from the price file (named so in `tollgate check`).
    pub from_file: HashSet<String>,
    /// What the table is made of, in a line.
    pub describe: String,
}

pub(super) fn price_table(p: &mut Problems, raw: &RawConfig) -> PriceTable {
    let mut table = HashMap::new();
    let meta = match toml::from_str::<RawPriceTable>(PRICES) {
        Ok(t) => {
            for (name, rp) in &t.models {
                if let Some(price) = micros(p, &format!("(bundled prices) {name}"), rp) {
                    table.insert(name.clone(), price);
                }
            }
            format!(
                "bundled table v{}, taken {} from {}",
                t.table.version, t.table.taken, t.table.source
            )
        }
        Err(e) => {
            p.add("(bundled prices)", e.to_string());
            String::new()
        }
    };
    let mut from_file = HashSet::new();
    let mut describe = meta;
    if let Some(path) = &raw.price_table.file {
        match super::price_file::read(path) {
            Ok(f) => {
                for (name, rp) in &f.entries {
                    if let Some(price) = micros(p, &format!("price_table.file: {name}"), rp) {
                        table.insert(name.clone(), price);
                        from_file.insert(name.clone());
                    }
                }
                describe = format!("{describe}; over it `{path}`: {}", f.summary);
            }
            Err(e) => p.add("price_table.file", e),
        }
    }
    for (name, rp) in &raw.prices {
        if let Some(price) = micros(p, &format!("prices.{name}"), rp) {
            table.insert(name.clone(), price);
            from_file.remove(name);
        }
    }
    PriceTable {
        prices: table,
        from_file,
        describe,
    }
}

/// USD per million tokens → µ$ per million tokens.
pub(super) fn usd(p: &mut Problems, path: &str, v: f64) -> u64 {
    if !(v.is_finite() && (0.0..=1_000_000.0).contains(&v)) {
        p.add(
            path,
            format!("{v} is not a price; use USD per million tokens, 0 to 1000000"),
        );
        return 0;
    }
    (v * 1_000_000.0).round() as u64
}

/// The largest budget accepted, in USD: micro-dollar amounts stay far inside an `i64`.
pub(super) const MAX_BUDGET_USD: f64 = 1e12;

/// A budget cap in USD → µ$.
pub(super) fn budget_usd(p: &mut Problems, path: &str, v: f64) -> u64 {
    if !(v.is_finite() && (0.0..=MAX_BUDGET_USD).contains(&v)) {
        p.add(
            path,
            format!("{v} is not a budget; use an amount in USD from 0 to {MAX_BUDGET_USD:e}"),
        );
        return 0;
    }
    (v * 1_000_000.0).round() as u64
}

pub(super) fn micros(p: &mut Problems, path: &str, r: &RawPrice) -> Option<Price> {
    let before = p.0.len();
    let [input, output, cache_read, cache_write] =
        rates(p, path, r.input, r.output, r.cached_input, r.cache_write);
    let price = Price {
        input,
        output,
        cache_read,
        cache_write,
        long: r
            .long_context
            .as_ref()
            .map(|l| long_context(p, &format!("{path}.long_context"), l)),
    };
    (p.0.len() == before).then_some(price)
}

/// Input, output, cache-read and cache-write rates in µ$ per million tokens; unset cache
/// rates follow the input rate.
fn rates(
    p: &mut Problems,
    path: &str,
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    cache_write: Option<f64>,
) -> [u64; 4] {
    let input = usd(p, &format!("{path}.input"), input);
    [
        input,
        usd(p, &format!("{path}.output"), output),
        cached_input.map_or(input, |v| usd(p, &format!("{path}.cached_input"), v)),
        cache_write.map_or(input, |v| usd(p, &format!("{path}.cache_write"), v)),
    ]
}

/// A long-context tier in µ$ per million tokens.
fn long_context(p: &mut Problems, path: &str, l: &RawLongContext) -> LongContext {
    if l.above_tokens == 0 {
        p.add(
            format!("{path}.above_tokens"),
            "must be at least 1: the prompt length (tokens) above which these rates apply",
        );
    }
    let [input, output, cache_read, cache_write] =
        rates(p, path, l.input, l.output, l.cached_input, l.cache_write);
    LongContext {
        above: l.above_tokens,
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// A deployment's price: explicit, from a named table entry (with overrides), or looked up by
/// the `names` it goes by (upstream model, then public name). No price is an error: a budget
/// can only hold if every call costs something known.
pub(super) fn price(
    p: &mut Problems,
    path: &str,
    raw: Option<&RawDeploymentPrice>,
    prices: &PriceTable,
    names: &[&str],
) -> Option<(Price, String)> {
    let table = &prices.prices;
    // "price of gpt-5", and where it came from when not from the bundled table.
    let of = |n: &str| {
        if prices.from_file.contains(n) {
            format!("price of {n}, from the price file")
        } else {
            format!("price of {n}")
        }
    };
    let lookup = |p: &mut Problems, name: &str, at: &str| -> Option<Price> {
        let found = table.get(name).copied();
        if found.is_none() {
            let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
            known.sort_unstable();
            p.add(
                at,
                format!(
                    "no price-table entry `{name}`{}; add `[prices.\"{name}\"]` with input and \
                     output (USD per million tokens), or write the prices here",
                    suggest(name, &known)
                ),
            );
        }
        found
    };
    match raw {
        Some(RawDeploymentPrice::Name(n)) if n == "free" => Some((Price::default(), "free".into())),
        Some(RawDeploymentPrice::Name(n)) => lookup(p, n, path).map(|pr| (pr, of(n))),
        Some(RawDeploymentPrice::Fields(f)) => {
            let (base, source) = match &f.from {
                Some(n) => (
                    lookup(p, n, &format!("{path}.from"))?,
                    format!("{}, overridden", of(n)),
                ),
                None if f.input.is_some() && f.output.is_some() => {
                    (Price::default(), "configured price".to_string())
                }
                None => match names.iter().find_map(|n| table.get(*n).map(|pr| (*pr, *n))) {
                    Some((pr, n)) => (pr, format!("{}, overridden", of(n))),
                    None => {
                        p.add(
                            path,
                            "set both input and output (USD per million tokens), or `from` = a \
                             price-table entry",
                        );
                        return None;
                    }
                },
            };
            let before = p.0.len();
            let input = f
                .input
                .map_or(base.input, |v| usd(p, &format!("{path}.input"), v));
            // A price written out in full: unset cache prices follow its input price.
            let explicit_input = f.from.is_none() && f.input.is_some() && f.output.is_some();
            let price = Price {
                input,
                output: f
                    .output
                    .map_or(base.output, |v| usd(p, &format!("{path}.output"), v)),
                cache_read: f.cached_input.map_or(
                    if explicit_input {
                        input
                    } else {
                        base.cache_read
                    },
                    |v| usd(p, &format!("{path}.cached_input"), v),
                ),
                cache_write: f.cache_write.map_or(
                    if explicit_input {
                        input
                    } else {
                        base.cache_write
                    },
                    |v| usd(p, &format!("{path}.cache_write"), v),
                ),
                // A price written out in full has no tier unless it says so; an override
                // keeps its entry's tier unless it replaces it.
                long: match &f.long_context {
                    Some(l) => Some(long_context(p, &format!("{path}.long_context"), l)),
                    None if explicit_input => None,
                    None => base.long,
                },
            };
            (p.0.len() == before).then_some((price, source))
        }
        None => {
            if let Some((pr, n)) = names.iter().find_map(|n| table.get(*n).map(|pr| (*pr, *n))) {
                return Some((pr, of(n)));
            }
            p.add(
                path,
                format!(
                    "no price known for `{}`: add `price = \"<price-table entry>\"`, \
                     `price = {{ input = …, output = … }}` (USD per million tokens) or \
                     `price = \"free\"`",
                    names[0]
                ),
            );
            None
        }
    }
}
