#!/usr/bin/env bash
# The soak: MINUTES (default 30) of mixed traffic (loadtest/scenarios/soak.toml: JSON,
# streams, Anthropic and Gemini clients translated, tool calls, 100 KB prompts, clients that
# abandon a stream at the load generator's timeout) at RATE requests/s, open loop, against
# one gateway, with the mock injecting faults (429s and 503s with retry-after, 5xx, resets
# before and mid-stream, stalls past the first-token timeout, malformed and truncated
# events), and a SIGHUP reload every minute. Samples the gateway's RSS and open fds every 10 s and the latency of every
# minute; at the end checks that nothing was lost: audit records == requests served, and the
# ledger's spend == what the mock billed (tokens), per key.
#   MINUTES=30 RATE=1500 perf/soak.sh      → perf/results/<date>-<commit>/soak.{md,csv,svg}
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
MINUTES=${MINUTES:-30}
RATE=${RATE:-1500}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
cargo build --release -q --workspace
BIN=target/release
run_dirs
MOCK=18431; GW=18432; ADMIN=18433
FAULTS=(--fault status=429@0.01 --fault status=503@0.005 --fault status=500@0.01 --fault status=502@0.01
        --fault reset@0.005 --fault reset-after=3@0.01 --fault stall=3000@0.002
        --fault malformed@0.005 --fault truncate@0.005)
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 32 \
  "${FAULTS[@]}" > "$SCRATCH/mock.out" 2>&1 &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
ADMIN_KEY=sk-soak-admin
{
  cat <<TOML
[server]
listen = "127.0.0.1:$GW"
workers = 1
pin_workers = false
[admin]
listen = "127.0.0.1:$ADMIN"
key_sha256 = "$($BIN/tollgate hash-key $ADMIN_KEY)"
[ledger]
dir = "$SCRATCH/ledger"
[audit]
output = "$SCRATCH/audit.jsonl"
max_file_bytes = 1099511627776
[upstream]
ttft_timeout_ms = 2000
[routing]
max_attempts = 1
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK/v1"
[[providers]]
name = "mock-anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:$MOCK"
TOML
  for m in gpt-4o-mini claude-sonnet-4-5 gemini-2.5-flash; do
    printf '[[models]]\nname = "%s"\n[[models.deployments]]\nprovider = "mock"\nmodel = "gpt-4o-mini"\n' "$m"
  done
  for k in a b c; do
    printf '[[keys]]\nid = "team-%s"\nsha256 = "%s"\n' "$k" "$($BIN/tollgate hash-key sk-team-$k)"
  done
} > "$SCRATCH/gw.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/gw.toml" > "$SCRATCH/gw.out" 2>&1 &
GW_PID=$!
until grep -q listening "$SCRATCH/gw.out" 2>/dev/null; do sleep 0.05; done

echo "t_s,rss_kib,fds" > "$OUT/soak.csv"
sample() {
  local t=0
  while kill -0 $GW_PID 2>/dev/null; do
    echo "$t,$(awk '/VmRSS/ {print $2}' /proc/$GW_PID/status),$(ls /proc/$GW_PID/fd | wc -l)" >> "$OUT/soak.csv"
    sleep 10; t=$((t + 10))
  done
}
sample & SAMPLER=$!
echo "minute,sent,ok,errors,p50_ms,p99_ms,max_ms" > "$OUT/soak-latency.csv"
for m in $(seq "$MINUTES"); do
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --scenario loadtest/scenarios/soak.toml \
    --target "http://127.0.0.1:$GW" --rate "$RATE" --duration 60s --warmup 0s --timeout 5s \
    --json "$SCRATCH/m$m.json" > /dev/null 2>&1 || true
  python3 - "$SCRATCH/m$m.json" "$m" >> "$OUT/soak-latency.csv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); t = d["targets"][0]; l = t["latency_us"]
errors = sum(t["errors"].values()) if isinstance(t["errors"], dict) else t["errors"]
print(",".join(str(x) for x in [sys.argv[2], t["requests"], t["ok"], errors,
      round(l["p50"] / 1000, 2), round(l["p99"] / 1000, 2), round(l["max"] / 1000, 2)]))
PY
  kill -HUP $GW_PID
done
kill $SAMPLER 2>/dev/null || true
# Nothing lost: stop cleanly, then count.
curl -s -H "authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$ADMIN/admin/quotas" > "$SCRATCH/quotas.json"
curl -s "http://127.0.0.1:$MOCK/mock/stats" > "$SCRATCH/mock-stats.json" || true
kill -TERM $GW_PID; wait $GW_PID || true
cp "$SCRATCH/quotas.json" "$SCRATCH/mock-stats.json" "$OUT/" 2>/dev/null || true
python3 - "$SCRATCH" "$OUT" "$MINUTES" "$RATE" <<'PY'
import csv, json, sys, os
scratch, out, minutes, rate = sys.argv[1:]
audit = sum(1 for _ in open(os.path.join(scratch, "audit.jsonl")))
rows = list(csv.DictReader(open(os.path.join(out, "soak.csv"))))
lat = list(csv.DictReader(open(os.path.join(out, "soak-latency.csv"))))
rss = [int(r["rss_kib"]) for r in rows if r["rss_kib"]]
fds = [int(r["fds"]) for r in rows if r["fds"]]
q = json.load(open(os.path.join(scratch, "quotas.json")))
ledger_tokens = sum(s.get("input_tokens", 0) + s.get("output_tokens", 0) for s in q.get("spend", {}).values())
try:
    m = json.load(open(os.path.join(scratch, "mock-stats.json")))
    tot = m.get("ledger", m)["total"]
    billed = tot["prompt_tokens"] + tot["completion_tokens"]
except Exception:
    billed = None
def svg(series, title, unit):
    w, h, pad = 640, 240, 40
    xs = [x for x, _ in series]; ys = [y for _, y in series]
    if not xs: return ""
    x0, x1 = min(xs), max(xs) or 1; y1 = max(ys) * 1.1 or 1
    pts = " ".join(f"{pad + (x - x0) / max(x1 - x0, 1) * (w - 2 * pad):.1f},{h - pad - y / y1 * (h - 2 * pad):.1f}" for x, y in series)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"><text x="{pad}" y="20">{title}</text>'
            f'<text x="4" y="{pad}">{y1:.0f} {unit}</text><text x="4" y="{h - pad}">0</text>'
            f'<polyline fill="none" stroke="black" points="{pts}"/></svg>')
open(os.path.join(out, "soak-rss.svg"), "w").write(svg([(int(r["t_s"]), int(r["rss_kib"]) / 1024) for r in rows if r["rss_kib"]], "gateway RSS over the soak", "MiB"))
open(os.path.join(out, "soak-p99.svg"), "w").write(svg([(int(r["minute"]), float(r["p99_ms"] or 0)) for r in lat], "p99 latency per minute", "ms"))
with open(os.path.join(out, "soak.md"), "w") as f:
    f.write(f"# Soak: {minutes} min of soak.toml at {rate}/s, faults on, SIGHUP every minute\n\n")
    f.write(f"- RSS: first {rss[0] if rss else '?'} KiB, max {max(rss) if rss else '?'} KiB, last {rss[-1] if rss else '?'} KiB (soak-rss.svg, soak.csv)\n")
    f.write(f"- open fds: min {min(fds) if fds else '?'}, max {max(fds) if fds else '?'}, last {fds[-1] if fds else '?'}\n")
    f.write(f"- p99 per minute (ms): {', '.join(r['p99_ms'] for r in lat)} (soak-p99.svg)\n")
    sent = sum(int(r['sent'] or 0) for r in lat)
    f.write(f"- audit records: {audit}; requests sent: {sent} — {'PASS' if audit == sent else 'FAIL'} (one record per request)\n")
    over = f"{(ledger_tokens - billed) / billed * 100:+.3f}%" if billed else "?"
    ok = billed is not None and ledger_tokens >= billed
    f.write(f"- tokens: ledger {ledger_tokens}, mock billed {billed} ({over}) — {'PASS' if ok else 'FAIL'} (never below the bill; above it by estimates)\n")
print(open(os.path.join(out, "soak.md")).read())
PY
