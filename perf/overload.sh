#!/usr/bin/env bash
# Overload (issue 22): well-behaved clients' latency while the gateway is under attack, and
# its memory. One worker per gateway on GW_CORE; the mock, the load generator and the
# attackers (perf/hostile.py) on BENCH_CORE. Arms, interleaved, RUNS each, DUR of closed-loop
# load (CONC connections of small chats):
#   plain      — a plain-HTTP gateway, nobody else
#   slowloris  — the same gateway holding SLOW (10,000) connections of half a request head
#   tls        — a TLS gateway, nobody else
#   tls-flood  — the same TLS gateway under a flood of new connections (handshakes completed
#                and dropped, cut ClientHellos, garbage)
# Reports p50/p99 latency and throughput of the well-behaved, and the gateway's RSS.
#   RUNS=5 DUR=3s perf/overload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-3s}
CONC=${CONC:-8}
SLOW=${SLOW:-10000}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
cargo build --release -q --workspace
BIN=target/release
run_dirs

make_certs "$SCRATCH"
MOCK=18441; GP=18442; GT=18443
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 > "$SCRATCH/mock.out" 2>&1 &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
# Heads may take a minute: the slow connections stay held for the whole arm.
limits='[limits]\nheader_timeout_ms = 60000\nmax_connections = 20000\n[audit]\noutput = "off"\n'
{ gateway_config $GP $MOCK "$HASH"; printf "$limits"; } > "$SCRATCH/plain.toml"
{ gateway_config $GT $MOCK "$HASH" | sed "s|^workers = 1|&\ntls_cert = \"$SCRATCH/cert.pem\"\ntls_key = \"$SCRATCH/key.pem\"|"
  printf "$limits"; } > "$SCRATCH/tls.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/plain.toml" > "$SCRATCH/plain.out" 2>&1 &
P_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/tls.toml" > "$SCRATCH/tls.out" 2>&1 &
T_PID=$!
until grep -q listening "$SCRATCH/plain.out" 2>/dev/null && grep -q listening "$SCRATCH/tls.out" 2>/dev/null; do sleep 0.05; done
{
  machine_header
  echo "- pinning: gateways on core $GW_CORE; mock, load generator and attackers on core $BENCH_CORE"
} > "$OUT/machine.md"

rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A V
arm() { # arm NAME URL PID [attack args...]
  local name=$1 url=$2 pid=$3; shift 3
  local f="$SCRATCH/$name.json" hp=""
  if [ $# -gt 0 ]; then
    taskset -c "$BENCH_CORE" python3 perf/hostile.py "$@" > "$SCRATCH/hostile.out" 2> "$SCRATCH/hostile.err" &
    hp=$!
    until [ -s "$SCRATCH/hostile.out" ]; do sleep 0.05; done
  fi
  local t0 c0; t0=$(date +%s%N); c0=$(cpu_ticks "$pid")
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --target "$url" --ca "$SCRATCH/ca.pem" \
    --concurrency "$CONC" --duration "$DUR" --warmup 1s --json "$f" > /dev/null
  local r; r=$(rss "$pid")
  # The gateway's share of its core over the arm: saturated, or waiting on the clients' core.
  V[$name.cpu]+=" $(( ($(cpu_ticks "$pid") - c0) * 100 * 1000000 / $(getconf CLK_TCK) / (($(date +%s%N) - t0) / 1000) ))"
  if [ -n "$hp" ]; then kill -TERM $hp; wait $hp 2>/dev/null || true; fi
  V[$name.p50]+=" $(field "$f" targets.0.latency_us.p50)"
  V[$name.p99]+=" $(field "$f" targets.0.latency_us.p99)"
  V[$name.rps]+=" $(field "$f" targets.0.throughput_rps)"
  V[$name.ok]+=" $(( $(field "$f" targets.0.ok) * 100 / $(field "$f" targets.0.requests) ))"
  V[$name.rss]+=" $(( r / 1024 ))"
}
for i in $(seq "$RUNS"); do
  arm plain "http://127.0.0.1:$GP" $P_PID
  arm slowloris "http://127.0.0.1:$GP" $P_PID slowloris "$SLOW" $GP
  arm tls "https://127.0.0.1:$GT" $T_PID
  arm tls-flood "https://127.0.0.1:$GT" $T_PID tls-flood $GT
  echo "run $i: p99 plain ${V[plain.p99]##* } slowloris ${V[slowloris.p99]##* } tls ${V[tls.p99]##* } flood ${V[tls-flood.p99]##* } µs" >&2
done
med() { median ${V[$1]}; }
{
  echo "# Overload: the well-behaved under attack (medians of $RUNS runs, $DUR each, c=$CONC)"
  echo
  echo "| | plain | + $SLOW slowloris | TLS | + TLS handshake flood |"
  echo "|---|---|---|---|---|"
  for m in p50 p99; do
    echo "| latency $m (µs) | $(med plain.$m) | $(med slowloris.$m) | $(med tls.$m) | $(med tls-flood.$m) |"
  done
  echo "| throughput (req/s) | $(med plain.rps) | $(med slowloris.rps) | $(med tls.rps) | $(med tls-flood.rps) |"
  echo "| well-behaved served (%) | $(med plain.ok) | $(med slowloris.ok) | $(med tls.ok) | $(med tls-flood.ok) |"
  echo "| gateway CPU, % of its core | $(med plain.cpu) | $(med slowloris.cpu) | $(med tls.cpu) | $(med tls-flood.cpu) |"
  echo "| gateway RSS at the end of the arm (MiB) | $(med plain.rss) | $(med slowloris.rss) | $(med tls.rss) | $(med tls-flood.rss) |"
  echo
  echo "Last flood: $(cat "$SCRATCH/hostile.err" 2>/dev/null)"
  echo "Raw: $(for k in "${!V[@]}"; do printf '%s:%s; ' "$k" "${V[$k]}"; done)"
} | tee "$OUT/overload.md"
