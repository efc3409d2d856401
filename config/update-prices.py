#!/usr/bin/env python3
"""Regenerates config/prices.toml from LiteLLM's price map.

    pip download litellm --no-deps -d /tmp/l && unzip -o /tmp/l/litellm-*.whl \
        'litellm/model_prices_and_context_window_backup.json' -d /tmp/l
    python3 config/update-prices.py /tmp/l/litellm/model_prices_and_context_window_backup.json \
        LITELLM_VERSION > config/prices.toml.new && mv config/prices.toml.new config/prices.toml

Takes the first-party text models of OpenAI, Anthropic, Google (AI Studio and Vertex AI) and
Amazon Bedrock, under the names their users send: `gpt-5`, `claude-sonnet-4-5`,
`gemini-2.5-pro` (AI Studio), `vertex_ai/gemini-2.5-pro`, `vertex_ai/claude-sonnet-4-5`,
`anthropic.claude-sonnet-4-5-20250929-v1:0` (Bedrock model ids, with their cross-region
`us.`/`eu.`/… forms). Entries of the previous table that the map no longer has are kept, in
a section of their own. Run by hand when prices change; the gateway only reads the result.
"""
import datetime
import json
import re
import sys

TEXT = {None, "chat", "completion", "responses", "embedding"}


def per_million(usd_per_token):
    v = round(usd_per_token * 1e6, 6)
    return repr(float(v))


def wanted(name, v):
    """The name an entry goes by in the table, or None to leave it out."""
    p = v.get("litellm_provider")
    if name.startswith("ft:"):
        return None
    if p in ("openai", "text-completion-openai", "anthropic") and "/" not in name:
        return name
    if p == "gemini":
        return name.removeprefix("gemini/") if name.count("/") <= 1 else None
    if p in ("vertex_ai-language-models", "vertex_ai-anthropic_models", "vertex_ai-embedding-models"):
        return name if name.startswith("vertex_ai/") else "vertex_ai/" + name
    if p in ("bedrock", "bedrock_converse") and "/" not in name:
        return name
    return None


SECTIONS = [
    ("OpenAI", ("openai", "text-completion-openai")),
    ("Anthropic (cache_write: 5-minute cache writes)", ("anthropic",)),
    ("Google Gemini API, AI Studio (prompts up to 200k tokens)", ("gemini",)),
    ("Google Vertex AI: Gemini, Anthropic and embedding models (prompts up to 200k tokens)",
     ("vertex_ai-language-models", "vertex_ai-anthropic_models", "vertex_ai-embedding-models")),
    ("Amazon Bedrock (model ids; `us.`/`eu.`/`apac.`/`global.` are cross-region profiles)",
     ("bedrock_converse", "bedrock")),
]


def entry(name, input_, output, cached=None, write=None, long=None):
    lines = [f'[models."{name}"]', f"input = {input_}"]
    if cached is not None and cached != input_:
        lines.append(f"cached_input = {cached}")
    if write is not None and write != input_:
        lines.append(f"cache_write = {write}")
    lines.append(f"output = {output}")
    if long is not None:
        above, li, lo, lc, lw = long
        fields = [f"above_tokens = {above}", f"input = {li}"]
        if lc is not None and lc != li:
            fields.append(f"cached_input = {lc}")
        if lw is not None and lw != li:
            fields.append(f"cache_write = {lw}")
        fields.append(f"output = {lo}")
        lines.append("long_context = { " + ", ".join(fields) + " }")
    return "\n".join(lines)


def long_tier(v):
    """The lowest `…_above_Nk_tokens` tier with both an input and an output rate."""
    ks = sorted(
        int(m.group(1))
        for f in v
        for m in [re.fullmatch(r"input_cost_per_token_above_(\d+)k_tokens", f)]
        if m and isinstance(v.get(f"output_cost_per_token_above_{m.group(1)}k_tokens"), (int, float))
    )
    if not ks:
        return None
    k = ks[0]
    num = lambda f: per_million(v[f]) if isinstance(v.get(f), (int, float)) else None
    return (
        k * 1000,
        num(f"input_cost_per_token_above_{k}k_tokens"),
        num(f"output_cost_per_token_above_{k}k_tokens"),
        num(f"cache_read_input_token_cost_above_{k}k_tokens"),
        num(f"cache_creation_input_token_cost_above_{k}k_tokens"),
    )


def main():
    path, version = sys.argv[1], sys.argv[2]
    data = json.load(open(path))
    old = open("config/prices.toml").read()
    taken = datetime.date.today().isoformat()
    chosen = {}
    for name, v in data.items():
        if not isinstance(v, dict) or v.get("mode") not in TEXT:
            continue
        inp, out = v.get("input_cost_per_token"), v.get("output_cost_per_token")
        if v.get("mode") == "embedding" and out is None:
            out = 0.0
        if not isinstance(inp, (int, float)) or not isinstance(out, (int, float)):
            continue
        key = wanted(name, v)
        if key is None or (key in chosen and chosen[key][0] != v.get("litellm_provider")):
            continue
        cached = v.get("cache_read_input_token_cost")
        write = v.get("cache_creation_input_token_cost")
        chosen[key] = (
            v.get("litellm_provider"),
            entry(key, per_million(inp), per_million(out),
                  per_million(cached) if isinstance(cached, (int, float)) else None,
                  per_million(write) if isinstance(write, (int, float)) else None,
                  long_tier(v)),
        )
    print(f"""# tollgate's bundled price table: list prices of text models, in USD per million tokens.
#
# Deployments refer to an entry by name (`price = "gpt-4o"`), override fields of one
# (`price = {{ from = "gpt-4o", output = 12.0 }}`), or get the entry named like their upstream
# model (else their public model name) when they set no price. `[price_table] file` puts a
# newer table over this one (LiteLLM's price map, or a file shaped like this one); a config's
# own `[prices."name"]` tables add entries or replace both.
#
# `cached_input`: input tokens served from the provider's prompt cache (default: input).
# `cache_write`: input tokens written to the cache — Anthropic's 5-minute cache write
# (default: input).
# `long_context`: the rates for every token of a call whose prompt is longer than
# `above_tokens` (Gemini over 200k, Claude's 1M context over 200k, OpenAI over 272k).
# Not modelled: batch, flex and priority tiers, 1-hour cache writes, audio and image tokens.
#
# Generated by config/update-prices.py from LiteLLM {version}'s model price map (itself kept
# from the providers' pricing pages); entries the map no longer has are kept at the end with
# the values of table v1 (2025-08-15). Check prices against the providers' pages before
# relying on them for budgets.

[table]
version = 2
taken = "{taken}"
source = "LiteLLM {version} model_prices_and_context_window_backup.json (openai.com/api/pricing, anthropic.com/pricing, ai.google.dev/gemini-api/docs/pricing, cloud.google.com/vertex-ai/generative-ai/pricing, aws.amazon.com/bedrock/pricing)"
""")
    for title, providers in SECTIONS:
        names = sorted(k for k, (p, _) in chosen.items() if p in providers)
        print(f"# --- {title} {'-' * max(3, 88 - len(title) - 7)}")
        for k in names:
            print(chosen[k][1])
            print()
    kept = []
    for m in re.finditer(r'\[models\."([^"]+)"\]\n((?:[a-z_]+ = [0-9.]+\n)+)', old):
        if m.group(1) not in chosen:
            kept.append(f'[models."{m.group(1)}"]\n{m.group(2)}')
    if kept:
        print("# --- Kept from table v1 (2025-08-15): not in LiteLLM's map any more " + "-" * 20)
        print("\n".join(kept).rstrip())


main()
