#!/usr/bin/env bash
# The response cache's cost and its payoff, one run, arms interleaved, medians of RUNS:
#   direct      — the load generator straight at the mock (what a provider call costs here);
#   plain       — through a one-worker gateway, a model without a cache;
#   hit-json    — the same request again and again to a cached model: every one a hit;
#   hit-stream  — the same, streamed (a stream replayed from the entry);
#   flight      — every request `x-tollgate-cache: refresh` at c=CONC: identical requests in
#                 flight at once, so one leads (calls the provider, stores) and the others wait
#                 for it (single-flight);
#   plain-c1, miss-c1 — one request at a time, without a cache and with every request a
#                 refresh: the lookup, the provider call, the body recorded and the entry
#                 stored (a miss's full cost, against the same call uncached);
#   hit-2w      — hit-json on a two-worker gateway (both workers on GW_CORE): about half the
#                 hits are answered by the other worker's shard over the rings.
# CPU per request is the gateway process's (all threads) over the run; latency is the load
# generator's, end to end. The gateway on GW_CORE, the mock and the load generator on
# BENCH_CORE.
#   RUNS=5 DUR=3s perf/cache.sh     → perf/results/<date>-<sha>/cache.md
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-3s}
CONC=${CONC:-32}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}

cargo build --release -q --workspace
BIN=target/release
run_dirs

MOCK=18451; P1=18452; P2=18453; PA=18454
{
  machine_header
  echo "- pinning: gateways on core $GW_CORE; mock + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 64 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
config() { # PORT WORKERS [ADMIN_PORT]
  [ -n "${3:-}" ] && printf '[admin]\nlisten = "127.0.0.1:%s"\nmetrics_public = true\n' "$3"
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
workers = $2
pin_workers = false
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK/v1"
[[models]]
name = "gpt-4o-mini"
[[models.deployments]]
provider = "mock"
[[models]]
name = "cached"
cache = { ttl = "1h", max_entries = 1000000, max_bytes = "4GiB" }
[[models.deployments]]
provider = "mock"
model = "gpt-4o-mini"
[[keys]]
id = "bench"
sha256 = "$HASH"
[audit]
output = "off"
TOML
}
config $P1 1 $PA > "$SCRATCH/g1.toml"
config $P2 2 > "$SCRATCH/g2.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/g1.toml" > "$SCRATCH/g1.out" 2>&1 &
G1=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/g2.toml" > "$SCRATCH/g2.out" 2>&1 &
G2=$!
until grep -q listening "$SCRATCH/g1.out" 2>/dev/null && grep -q listening "$SCRATCH/g2.out" 2>/dev/null; do sleep 0.05; done

scenario() { # NAME TARGET MODEL STREAM HEADERS [CONCURRENCY]
  cat > "$SCRATCH/$1.toml" <<TOML
target = "$2"
mode = "closed"
concurrency = ${6:-$CONC}
duration = "$DUR"
warmup = "1s"
keys = ["$KEY"]
[[request]]
name = "$1"
path = "/v1/chat/completions"
model = "$3"
prompt_bytes = 1000
max_tokens = 64
stream = $4
headers = { $5 }
TOML
}
scenario direct "http://127.0.0.1:$MOCK" gpt-4o-mini false ""
scenario plain "http://127.0.0.1:$P1" gpt-4o-mini false ""
scenario hit-json "http://127.0.0.1:$P1" cached false ""
scenario hit-stream "http://127.0.0.1:$P1" cached true ""
scenario flight "http://127.0.0.1:$P1" cached false '"x-tollgate-cache" = "refresh"'
scenario plain-c1 "http://127.0.0.1:$P1" gpt-4o-mini false "" 1
scenario miss-c1 "http://127.0.0.1:$P1" cached false '"x-tollgate-cache" = "refresh"' 1
scenario hit-2w "http://127.0.0.1:$P2" cached false ""
ARMS="direct plain hit-json hit-stream flight plain-c1 miss-c1 hit-2w"

declare -A V
for i in $(seq "$RUNS"); do
  for arm in $ARMS; do
    pid=$G1
    [ $arm = hit-2w ] && pid=$G2
    f="$SCRATCH/$arm-$i.json"
    watch=(--watch-pid "$pid")
    [ $arm = direct ] && watch=()
    taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --scenario "$SCRATCH/$arm.toml" "${watch[@]}" --json "$f" > /dev/null
    V[$arm.p50]+=" $(field "$f" targets.0.latency_us.p50)"
    V[$arm.p99]+=" $(field "$f" targets.0.latency_us.p99)"
    V[$arm.rps]+=" $(field "$f" targets.0.throughput_rps)"
    [ $arm != direct ] && V[$arm.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
  done
  echo "  run $i: plain $(echo ${V[plain.cpu]} | awk '{print $NF}') µs/req, hit $(echo ${V[hit-json.cpu]} | awk '{print $NF}') µs/req, miss-c1 $(echo ${V[miss-c1.cpu]} | awk '{print $NF}') µs/req" >&2
done
med() { median ${V[$1]}; }

# Memory per cached KB: N distinct requests (a 1 KB prompt each) fill N entries on the
# one-worker gateway; its RSS before and after, against what the cache says it holds.
N=${N:-20000}
RSS0=$(awk '/VmRSS/ {print $2}' /proc/$G1/status)
python3 - "$P1" "$KEY" "$N" <<'PY'
import http.client, json, sys
port, key, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
pad = "the quick brown fox jumps over the lazy dog " * 22
for i in range(n):
    body = json.dumps({"model": "cached", "max_tokens": 64,
                       "messages": [{"role": "user", "content": f"{i} {pad}"}]})
    c.request("POST", "/v1/chat/completions", body,
              {"authorization": f"Bearer {key}", "content-type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200 and r.getheader("x-tollgate-cache") == "miss", (r.status, i)
PY
RSS1=$(awk '/VmRSS/ {print $2}' /proc/$G1/status)
until curl -s "http://127.0.0.1:$PA/metrics" | grep -q "tollgate_cache_entries{model=\"cached\"} $((N + 1))"; do sleep 0.1; done
HELD=$(curl -s "http://127.0.0.1:$PA/metrics" | awk '/^tollgate_cache_bytes\{model="cached"\}/ {print $2}')
{
  echo "# The response cache ($(git rev-parse --short HEAD))"
  echo
  echo "Closed loop, c=$CONC (the -c1 arms: c=1), 1 KB prompts, 64-token answers (~350 B of text), medians of $RUNS"
  echo "interleaved runs of $DUR. Command: \`RUNS=$RUNS DUR=$DUR perf/cache.sh\`."
  echo
  echo "| arm | gateway CPU per request (µs) | latency p50 / p99 (µs) | req/s |"
  echo "|---|---|---|---|"
  for arm in $ARMS; do
    cpu="–"
    [ $arm != direct ] && cpu=$(med $arm.cpu)
    echo "| $arm | $cpu | $(med $arm.p50) / $(med $arm.p99) | $(med $arm.rps) |"
  done
  echo
  echo "Memory: $N distinct requests filled $N entries (~1 KB answers: ~350 B of text, the"
  echo "provider's JSON kept verbatim) on the one-worker gateway. RSS ${RSS0} → ${RSS1} KiB:"
  echo "$(python3 -c "print(f'{($RSS1-$RSS0)*1024/$N:.0f}')") B of RSS per entry; the cache accounts"
  echo "$(python3 -c "print(f'{$HELD/($N+1):.0f}')") B per entry (tollgate_cache_bytes)."
  echo "That is $(python3 -c "print(f'{($RSS1-$RSS0)/($HELD/1024):.2f}')") KB of RSS per KB the cache accounts for."
  for arm in $ARMS; do
    [ $arm != direct ] && echo "Per-run CPU $arm:${V[$arm.cpu]}."
  done
} > "$OUT/cache.md"
cat "$OUT/cache.md"
