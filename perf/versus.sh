#!/usr/bin/env bash
# Two gateway builds against each other, same config (one worker, one deployment, the mock):
# what a change costs on the request path. OLD and NEW are tollgate binaries; both gateways on
# GW_CORE, the mock and the load generator on BENCH_CORE; runs interleaved; medians of RUNS.
#   git worktree add /tmp/old <commit> && CARGO_TARGET_DIR=/tmp/old-target \
#     cargo build --release -p tollgate --bin tollgate   (in /tmp/old)
#   OLD=/tmp/old-target/release/tollgate RUNS=5 DUR=3s perf/versus.sh
# KEY_EXTRA adds lines to the bench key's entry in both configs, e.g. quotas:
#   KEY_EXTRA='budget = { usd = 1000000.0 }\nrpm = 100000000\ntpm = 100000000000' perf/versus.sh
# OLD_EXTRA / NEW_EXTRA add config lines to one arm only: a feature off vs on, same binary:
#   OLD=target/release/tollgate NEW_EXTRA='[admin]\nlisten = "127.0.0.1:0"\nmetrics_public = true' \
#     perf/versus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-3s}
CONC=${CONC:-64}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
: "${OLD:?set OLD to the baseline tollgate binary}"

cargo build --release -q --workspace
BIN=target/release
NEW=${NEW:-$BIN/tollgate}
run_dirs

MOCK=18421; PO=18422; PN=18423
{
  machine_header
  echo "- pinning: gateways on core $GW_CORE; mock + load generator on core $BENCH_CORE"
  echo "- old: $OLD ($($OLD --version 2>/dev/null || echo unknown))"
  echo "- new: $NEW"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 16 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
for p in $PO $PN; do
  gateway_config $p $MOCK "$HASH" > "$SCRATCH/$p.toml"
  printf "${KEY_EXTRA:-}\n" >> "$SCRATCH/$p.toml"
  printf '[audit]\noutput = "off"\n' >> "$SCRATCH/$p.toml"
done
printf "${OLD_EXTRA:-}\n" >> "$SCRATCH/$PO.toml"
printf "${NEW_EXTRA:-}\n" >> "$SCRATCH/$PN.toml"
taskset -c "$GW_CORE" "$OLD" serve --config "$SCRATCH/$PO.toml" > "$SCRATCH/old.out" 2>&1 &
O_PID=$!
taskset -c "$GW_CORE" "$NEW" serve --config "$SCRATCH/$PN.toml" > "$SCRATCH/new.out" 2>&1 &
N_PID=$!
until grep -q listening "$SCRATCH/old.out" 2>/dev/null && grep -q listening "$SCRATCH/new.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
declare -A V
for i in $(seq "$RUNS"); do
  for arm in old new; do
    port=$PO; pid=$O_PID
    [ $arm = new ] && port=$PN && pid=$N_PID
    f="$SCRATCH/ab-$arm$i.json"
    load --target "http://127.0.0.1:$MOCK" --target-b "http://127.0.0.1:$port" --concurrency 1 --stream --json "$f"
    V[$arm.t50]+=" $(field "$f" added_ttft_us.p50)"
    V[$arm.t99]+=" $(field "$f" added_ttft_us.p99)"
    f="$SCRATCH/c-$arm$i.json"
    load --target "http://127.0.0.1:$port" --concurrency "$CONC" --watch-pid "$pid" --json "$f"
    V[$arm.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
    V[$arm.rps]+=" $(field "$f" targets.0.throughput_rps)"
  done
  echo "  run $i: old $(echo ${V[old.cpu]} | awk '{print $NF}') µs/req, new $(echo ${V[new.cpu]} | awk '{print $NF}') µs/req" >&2
done
med() { median ${V[$1]}; }
{
  echo "# Old vs new gateway build ($(git rev-parse --short HEAD))"
  echo
  echo "Same config (one worker, one deployment, the mock, audit off). Medians of $RUNS"
  echo "interleaved runs, $DUR each. Command: \`OLD=$OLD RUNS=$RUNS DUR=$DUR perf/versus.sh\`."
  [ -n "${KEY_EXTRA:-}" ] && echo "The bench key also has: \`${KEY_EXTRA}\`."
  [ -n "${OLD_EXTRA:-}" ] && echo "Old arm's config also has: \`${OLD_EXTRA}\`."
  [ -n "${NEW_EXTRA:-}" ] && echo "New arm's config also has: \`${NEW_EXTRA}\`."
  echo
  echo "| | old | new |"
  echo "|---|---|---|"
  echo "| added TTFT p50 / p99, c=1 stream (µs) | $(med old.t50) / $(med old.t99) | $(med new.t50) / $(med new.t99) |"
  echo "| gateway CPU per request, c=$CONC (µs) | $(med old.cpu) | $(med new.cpu) |"
  echo "| throughput, c=$CONC (req/s) | $(med old.rps) | $(med new.rps) |"
  echo
  echo "Per-run CPU old:${V[old.cpu]}; new:${V[new.cpu]}. TTFT p50 old:${V[old.t50]}; new:${V[new.t50]}."
} > "$OUT/versus.md"
cat "$OUT/versus.md"
