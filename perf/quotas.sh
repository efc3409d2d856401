#!/usr/bin/env bash
# Budgets and rate limits on vs off, same build (issue 5): a key with a USD and token budget,
# RPM and TPM limits, in a team with its own budget and RPM, on a deployment with RPM/TPM
# (eight quotas per request) vs the same key with none. One worker on core GW_CORE; the mock
# and the load generator on BENCH_CORE; runs interleaved; medians of RUNS.
#   RUNS=5 DUR=4s perf/quotas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-4s}
CONC=${CONC:-64}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}

cargo build --release -q --workspace
BIN=target/release
run_dirs

MOCK=18381; ON=18383; OFF=18384
{
  machine_header
  echo "- pinning: gateway on core $GW_CORE; mock + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 16 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done

KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
gateway_config $OFF $MOCK "$HASH" > "$SCRATCH/off.toml"
printf '[audit]\noutput = "off"\n' >> "$SCRATCH/off.toml"
gateway_config $ON $MOCK "$HASH" | sed 's/^sha256 = .*/&\nteam = "t"\nbudget = { usd = 1000000.0, tokens = 100000000000 }\nrpm = 100000000\ntpm = 100000000000/; s/^provider = "mock"/&\nrpm = 100000000\ntpm = 100000000000/' > "$SCRATCH/on.toml"
printf '[[teams]]\nname = "t"\nbudget = { usd = 1000000.0 }\nrpm = 100000000\n[audit]\noutput = "off"\n' >> "$SCRATCH/on.toml"

taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/on.toml" > "$SCRATCH/on.out" 2>&1 &
ON_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/off.toml" > "$SCRATCH/off.out" 2>&1 &
OFF_PID=$!
until grep -q listening "$SCRATCH/on.out" 2>/dev/null && grep -q listening "$SCRATCH/off.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}

echo "1. added TTFT at c=1, streamed (A/B slices vs the mock directly)" >&2
T50_ON=(); T99_ON=(); T50_OFF=(); T99_OFF=()
for i in $(seq "$RUNS"); do
  for arm in on off; do
    port=$ON; [ $arm = off ] && port=$OFF
    f="$SCRATCH/ab-$arm$i.json"
    load --target "http://127.0.0.1:$MOCK" --target-b "http://127.0.0.1:$port" --concurrency 1 --stream --json "$f"
    if [ $arm = on ]; then
      T50_ON+=("$(field "$f" added_ttft_us.p50)"); T99_ON+=("$(field "$f" added_ttft_us.p99)")
    else
      T50_OFF+=("$(field "$f" added_ttft_us.p50)"); T99_OFF+=("$(field "$f" added_ttft_us.p99)")
    fi
  done
  echo "  run $i: on +${T50_ON[-1]}/+${T99_ON[-1]}, off +${T50_OFF[-1]}/+${T99_OFF[-1]} µs (p50/p99)" >&2
done

echo "2. CPU per request, c=$CONC, JSON responses" >&2
C_ON=(); C_OFF=(); R_ON=(); R_OFF=()
for i in $(seq "$RUNS"); do
  load --target "http://127.0.0.1:$ON" --concurrency "$CONC" --watch-pid "$ON_PID" --json "$SCRATCH/c-on$i.json"
  C_ON+=("$(field "$SCRATCH/c-on$i.json" targets.0.watched_cpu.us_per_request)"); R_ON+=("$(field "$SCRATCH/c-on$i.json" targets.0.throughput_rps)")
  load --target "http://127.0.0.1:$OFF" --concurrency "$CONC" --watch-pid "$OFF_PID" --json "$SCRATCH/c-off$i.json"
  C_OFF+=("$(field "$SCRATCH/c-off$i.json" targets.0.watched_cpu.us_per_request)"); R_OFF+=("$(field "$SCRATCH/c-off$i.json" targets.0.throughput_rps)")
  echo "  run $i: on ${C_ON[-1]} µs/req (${R_ON[-1]} rps), off ${C_OFF[-1]} µs/req (${R_OFF[-1]} rps)" >&2
done
grep -q "429\|503" "$SCRATCH/on.out" && echo "warning: refusals in the on arm" >&2 || true

{
  echo "# Budgets and rate limits on vs off ($(git rev-parse --short HEAD))"
  echo
  echo "Same build; 'on' = 8 quotas per request (key: USD + token budget, RPM, TPM; team: USD"
  echo "budget, RPM; deployment: RPM, TPM), caps far above the load; 'off' = none. One worker."
  echo "Medians of $RUNS interleaved runs, $DUR each. Command: \`RUNS=$RUNS DUR=$DUR perf/quotas.sh\`."
  echo
  echo "| | on | off | on − off |"
  echo "|---|---|---|---|"
  a=$(median "${T50_ON[@]}"); b=$(median "${T50_OFF[@]}")
  echo "| added TTFT p50, c=1 stream (µs) | $a | $b | $(python3 -c "print(round($a-$b,2))") |"
  a=$(median "${T99_ON[@]}"); b=$(median "${T99_OFF[@]}")
  echo "| added TTFT p99, c=1 stream (µs) | $a | $b | $(python3 -c "print(round($a-$b,2))") |"
  a=$(median "${C_ON[@]}"); b=$(median "${C_OFF[@]}")
  echo "| gateway CPU per request, c=$CONC (µs) | $a | $b | $(python3 -c "print(round($a-$b,2))") |"
  a=$(median "${R_ON[@]}"); b=$(median "${R_OFF[@]}")
  echo "| throughput, c=$CONC (req/s) | $a | $b | |"
  echo
  echo "Per-run: TTFT p50 on ${T50_ON[*]}; off ${T50_OFF[*]}; p99 on ${T99_ON[*]}; off ${T99_OFF[*]};"
  echo "CPU on ${C_ON[*]}; off ${C_OFF[*]}."
} > "$OUT/quotas.md"
cat "$OUT/quotas.md"
