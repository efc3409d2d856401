#!/usr/bin/env bash
# The cost of translation (issue 7): the same OpenAI chat load through a gateway whose model is
# served by the mock in OpenAI's dialect (same dialect: bytes forwarded, usage read on the fly)
# and by the mock in Anthropic's and Gemini's (translated: request rewritten, every event
# translated back). One worker per gateway on GW_CORE; the mock and the load generator on
# BENCH_CORE; runs interleaved; medians of RUNS. Reports gateway CPU per request at c=CONC,
# streaming and not, and TTFT / latency at c=1 (A/B against the same-dialect gateway).
#   RUNS=5 DUR=3s perf/translate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-3s}
CONC=${CONC:-64}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}

cargo build --release -q --workspace
BIN=target/release
run_dirs

MP=18441; GS=18442; GA=18443; GG=18444
{
  machine_header
  echo "- pinning: gateways on core $GW_CORE; mock + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MP --workers 1 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done

KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
gateway_config $GS $MP "$HASH" > "$SCRATCH/same.toml"
gateway_config $GA $MP "$HASH" | sed 's/^kind = "openai_compatible"/kind = "anthropic"/' > "$SCRATCH/anthropic.toml"
gateway_config $GG $MP "$HASH" | sed "s/^kind = \"openai_compatible\"/kind = \"gemini\"/; s|127.0.0.1:$MP/v1|127.0.0.1:$MP/v1beta|" > "$SCRATCH/gemini.toml"
pids=()
for arm in same anthropic gemini; do
  printf '[audit]\noutput = "off"\n' >> "$SCRATCH/$arm.toml"
  taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/$arm.toml" > "$SCRATCH/$arm.out" 2>&1 &
  pids+=($!)
done
for arm in same anthropic gemini; do
  until grep -q listening "$SCRATCH/$arm.out" 2>/dev/null; do sleep 0.05; done
done
declare -A PORT=([same]=$GS [anthropic]=$GA [gemini]=$GG)
declare -A PID=([same]=${pids[0]} [anthropic]=${pids[1]} [gemini]=${pids[2]})

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
declare -A V
for i in $(seq "$RUNS"); do
  for arm in anthropic gemini; do
    f="$SCRATCH/ab-$arm$i.json"
    load --target "http://127.0.0.1:$GS" --target-b "http://127.0.0.1:${PORT[$arm]}" --concurrency 1 --stream --json "$f"
    V[$arm.s50]+=" $(field "$f" targets.0.ttft_us.p50)"; V[$arm.t50]+=" $(field "$f" targets.1.ttft_us.p50)"
    V[$arm.s99]+=" $(field "$f" targets.0.ttft_us.p99)"; V[$arm.t99]+=" $(field "$f" targets.1.ttft_us.p99)"
    f="$SCRATCH/abj-$arm$i.json"
    load --target "http://127.0.0.1:$GS" --target-b "http://127.0.0.1:${PORT[$arm]}" --concurrency 1 --json "$f"
    V[$arm.js50]+=" $(field "$f" targets.0.latency_us.p50)"; V[$arm.jt50]+=" $(field "$f" targets.1.latency_us.p50)"
    V[$arm.js99]+=" $(field "$f" targets.0.latency_us.p99)"; V[$arm.jt99]+=" $(field "$f" targets.1.latency_us.p99)"
  done
  for arm in same anthropic gemini; do
    for mode in json stream; do
      f="$SCRATCH/c-$arm-$mode$i.json"
      extra=(); [ $mode = stream ] && extra=(--stream)
      load --target "http://127.0.0.1:${PORT[$arm]}" --concurrency "$CONC" --watch-pid "${PID[$arm]}" "${extra[@]}" --json "$f"
      V[$arm.$mode.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
      V[$arm.$mode.rps]+=" $(field "$f" targets.0.throughput_rps)"
      V[$arm.$mode.err]+=" $(field "$f" targets.0.errors | python3 -c 'import ast,sys; print(sum(ast.literal_eval(sys.stdin.read()).values()))')"
    done
  done
  echo "  run $i: json same $(echo ${V[same.json.cpu]} | awk '{print $NF}') anthropic $(echo ${V[anthropic.json.cpu]} | awk '{print $NF}') gemini $(echo ${V[gemini.json.cpu]} | awk '{print $NF}') µs/req" >&2
done
med() { median ${V[$1]}; }
{
  echo "# Translated routes vs the same-dialect route ($(git rev-parse --short HEAD))"
  echo
  echo "OpenAI chat load; the model's one deployment is the mock speaking OpenAI (same dialect),"
  echo "Anthropic or Gemini (translated both ways). One worker per gateway. Medians of $RUNS"
  echo "interleaved runs, $DUR each. Command: \`RUNS=$RUNS DUR=$DUR perf/translate.sh\`."
  echo
  echo "| | same dialect | OpenAI → Anthropic | OpenAI → Gemini |"
  echo "|---|---|---|---|"
  echo "| gateway CPU per request, c=$CONC, JSON (µs) | $(med same.json.cpu) | $(med anthropic.json.cpu) | $(med gemini.json.cpu) |"
  echo "| gateway CPU per request, c=$CONC, stream (µs) | $(med same.stream.cpu) | $(med anthropic.stream.cpu) | $(med gemini.stream.cpu) |"
  echo "| throughput, c=$CONC, JSON / stream (req/s) | $(med same.json.rps) / $(med same.stream.rps) | $(med anthropic.json.rps) / $(med anthropic.stream.rps) | $(med gemini.json.rps) / $(med gemini.stream.rps) |"
  echo "| errors, c=$CONC (sum of medians) | $(med same.json.err) + $(med same.stream.err) | $(med anthropic.json.err) + $(med anthropic.stream.err) | $(med gemini.json.err) + $(med gemini.stream.err) |"
  echo
  echo "c=1 A/B, same-dialect gateway vs translated gateway, interleaved per request (µs):"
  echo
  echo "| | same dialect | translated |"
  echo "|---|---|---|"
  echo "| Anthropic: TTFT p50 / p99, stream | $(med anthropic.s50) / $(med anthropic.s99) | $(med anthropic.t50) / $(med anthropic.t99) |"
  echo "| Anthropic: latency p50 / p99, JSON | $(med anthropic.js50) / $(med anthropic.js99) | $(med anthropic.jt50) / $(med anthropic.jt99) |"
  echo "| Gemini: TTFT p50 / p99, stream | $(med gemini.s50) / $(med gemini.s99) | $(med gemini.t50) / $(med gemini.t99) |"
  echo "| Gemini: latency p50 / p99, JSON | $(med gemini.js50) / $(med gemini.js99) | $(med gemini.jt50) / $(med gemini.jt99) |"
  echo
  echo "The mock renders each dialect itself, so the mock's own cost differs a little between"
  echo "arms (it shares the bench core with the load generator); the CPU lines are the gateway's"
  echo "alone. Per-run JSON CPU same:${V[same.json.cpu]}; anthropic:${V[anthropic.json.cpu]};"
  echo "gemini:${V[gemini.json.cpu]}."
} > "$OUT/translate.md"
cat "$OUT/translate.md"
