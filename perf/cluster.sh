#!/usr/bin/env bash
# `[cluster]` on vs off, same build (issue 21): the same eight quotas per request as
# perf/quotas.sh (key: USD + token budget, RPM, TPM; team: USD budget, RPM; deployment: RPM,
# TPM), with budgets and limits shared through a local redis-server ('on') or this instance's
# own ('off'). One worker on GW_CORE; the mock, the load generator and redis on BENCH_CORE;
# runs interleaved; medians of RUNS. Also: Redis commands per second per instance at the
# highest request rate (the gateway's own counter, and redis's INFO commandstats).
#   RUNS=5 DUR=4s perf/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-4s}
CONC=${CONC:-64}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
command -v redis-server >/dev/null || { echo "needs redis-server (apt-get install redis-server)" >&2; exit 1; }

cargo build --release -q --workspace
BIN=target/release
run_dirs

MOCK=18391; ON=18393; OFF=18394; ADMIN=18395; REDIS=18396
{
  machine_header
  echo "- pinning: gateway on core $GW_CORE; mock + load generator + redis-server on core $BENCH_CORE"
  echo "- $(redis-server --version)"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" redis-server --port $REDIS --bind 127.0.0.1 --save '' --appendonly no \
  --daemonize no > "$SCRATCH/redis.out" 2>&1 &
until grep -q 'Ready to accept' "$SCRATCH/redis.out" 2>/dev/null; do sleep 0.05; done
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 16 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done

KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
quotas() {
  gateway_config "$1" $MOCK "$HASH" | sed 's/^sha256 = .*/&\nteam = "t"\nbudget = { usd = 1000000.0, tokens = 100000000000 }\nrpm = 100000000\ntpm = 100000000000/; s/^provider = "mock"/&\nrpm = 100000000\ntpm = 100000000000/'
  printf '[[teams]]\nname = "t"\nbudget = { usd = 1000000.0 }\nrpm = 100000000\n[audit]\noutput = "off"\n'
}
quotas $OFF > "$SCRATCH/off.toml"
quotas $ON > "$SCRATCH/on.toml"
printf '[admin]\nlisten = "127.0.0.1:%s"\nmetrics_public = true\n[cluster]\nredis = "redis://127.0.0.1:%s/0"\ninstance = "bench"\n' $ADMIN $REDIS >> "$SCRATCH/on.toml"

taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/on.toml" > "$SCRATCH/on.out" 2>&1 &
ON_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/off.toml" > "$SCRATCH/off.out" 2>&1 &
OFF_PID=$!
until grep -q listening "$SCRATCH/on.out" 2>/dev/null && grep -q listening "$SCRATCH/off.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
commands() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '$1=="tollgate_cluster_redis_commands_total"{print $2}'; }
redis_calls() { redis-cli -p $REDIS info commandstats | awk -F'[=,:]' '/^cmdstat_/{s+=$3} END{print s}'; }

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

echo "2. CPU per request, c=$CONC, JSON responses; Redis commands per second (on)" >&2
C_ON=(); C_OFF=(); R_ON=(); R_OFF=(); OPS=(); ROPS=(); PER=()
for i in $(seq "$RUNS"); do
  c0=$(commands); r0=$(redis_calls); t0=$(date +%s.%N)
  load --target "http://127.0.0.1:$ON" --concurrency "$CONC" --watch-pid "$ON_PID" --json "$SCRATCH/c-on$i.json"
  c1=$(commands); r1=$(redis_calls); t1=$(date +%s.%N)
  C_ON+=("$(field "$SCRATCH/c-on$i.json" targets.0.watched_cpu.us_per_request)"); R_ON+=("$(field "$SCRATCH/c-on$i.json" targets.0.throughput_rps)")
  OPS+=("$(python3 -c "print(round(($c1-$c0)/($t1-$t0),1))")")
  ROPS+=("$(python3 -c "print(round(($r1-$r0)/($t1-$t0),1))")")
  PER+=("$(python3 -c "print(round(($c1-$c0)/($t1-$t0)/${R_ON[-1]}*1e6,1))")")
  load --target "http://127.0.0.1:$OFF" --concurrency "$CONC" --watch-pid "$OFF_PID" --json "$SCRATCH/c-off$i.json"
  C_OFF+=("$(field "$SCRATCH/c-off$i.json" targets.0.watched_cpu.us_per_request)"); R_OFF+=("$(field "$SCRATCH/c-off$i.json" targets.0.throughput_rps)")
  echo "  run $i: on ${C_ON[-1]} µs/req (${R_ON[-1]} rps, ${OPS[-1]} redis cmd/s), off ${C_OFF[-1]} µs/req (${R_OFF[-1]} rps)" >&2
done
grep -q "429\|503" "$SCRATCH/on.out" && echo "warning: refusals in the on arm" >&2 || true

{
  echo "# [cluster] on vs off ($(git rev-parse --short HEAD))"
  echo
  echo "Same build, same eight quotas per request (as perf/quotas.sh); 'on' shares them through a"
  echo "local redis-server, 'off' keeps them in the instance. One worker. Medians of $RUNS"
  echo "interleaved runs, $DUR each. Command: \`RUNS=$RUNS DUR=$DUR perf/cluster.sh\`."
  echo "The 'on' arm's CPU includes its cluster thread (same process)."
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
  echo "| Redis commands/s from the instance (its counter) | $(median "${OPS[@]}") | — | |"
  echo "| Redis commands/s executed (INFO commandstats, scripts' inner calls included) | $(median "${ROPS[@]}") | — | |"
  echo "| Redis commands per million requests | $(median "${PER[@]}") | — | |"
  echo
  echo "Per-run: TTFT p50 on ${T50_ON[*]}; off ${T50_OFF[*]}; p99 on ${T99_ON[*]}; off ${T99_OFF[*]};"
  echo "CPU on ${C_ON[*]}; off ${C_OFF[*]}; redis cmd/s ${OPS[*]}."
} > "$OUT/cluster.md"
cat "$OUT/cluster.md"
