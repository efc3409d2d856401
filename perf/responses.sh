#!/usr/bin/env bash
# The Responses API's passthrough against Chat Completions' on the same gateway, same run:
# one worker on GW_CORE (audit off), the mock and the load generator on BENCH_CORE; for each
# API, interleaved, RUNS times: CPU per request and req/s at c=CONC (JSON and stream), and
# the added time to first token at c=1 (A/B slices against the mock directly). The mock
# answers 16 tokens either way.
#   RUNS=5 DUR=3s perf/responses.sh        → perf/results/<date>-<sha>/responses.md
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
MOCK=18431; GW=18432
{
  machine_header
  echo "- pinning: the gateway on core $GW_CORE; mock + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 16 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
{ gateway_config $GW $MOCK "$HASH"; printf '[audit]\noutput = "off"\n'; } \
  | sed 's/kind = "openai_compatible"/kind = "openai"/' > "$SCRATCH/gw.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/gw.toml" > "$SCRATCH/gw.out" 2>&1 &
GW_PID=$!
until grep -q listening "$SCRATCH/gw.out" 2>/dev/null; do sleep 0.05; done

scenario() { # API(chat|responses) STREAM(true|false) TARGET [TARGET_B]
  local path=/v1/chat/completions dialect=openai
  [ "$1" = responses ] && path=/v1/responses dialect=responses
  cat <<TOML
target = "$3"
$( [ -n "${4:-}" ] && echo "target_b = \"$4\"" )
[[request]]
name = "$1"
path = "$path"
dialect = "$dialect"
model = "gpt-4o-mini"
prompt_bytes = 300
stream = $2
TOML
}
load() { # SCENARIO_FILE ARGS…
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s --scenario "$@" > /dev/null
}
declare -A V
for i in $(seq "$RUNS"); do
  for api in chat responses; do
    for stream in false true; do
      scenario $api $stream "http://127.0.0.1:$GW" > "$SCRATCH/s.toml"
      f="$SCRATCH/c-$api-$stream-$i.json"
      load "$SCRATCH/s.toml" --concurrency "$CONC" --watch-pid $GW_PID --json "$f"
      V[$api.$stream.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
      V[$api.$stream.rps]+=" $(field "$f" targets.0.throughput_rps)"
    done
    scenario $api true "http://127.0.0.1:$MOCK" "http://127.0.0.1:$GW" > "$SCRATCH/ab.toml"
    f="$SCRATCH/ab-$api-$i.json"
    load "$SCRATCH/ab.toml" --concurrency 1 --json "$f"
    V[$api.t50]+=" $(field "$f" added_ttft_us.p50)"
    V[$api.t99]+=" $(field "$f" added_ttft_us.p99)"
  done
  echo "  run $i: chat $(echo ${V[chat.false.cpu]} | awk '{print $NF}') µs/req, responses $(echo ${V[responses.false.cpu]} | awk '{print $NF}') µs/req" >&2
done
med() { median ${V[$1]}; }
{
  echo "# Responses API passthrough vs Chat Completions passthrough ($(git rev-parse --short HEAD))"
  echo
  echo "One gateway (one worker, an \`openai\` provider: the mock, 16 tokens; audit off), the"
  echo "same 300-byte prompt in each API's shape. Medians of $RUNS interleaved runs, $DUR each."
  echo "Command: \`RUNS=$RUNS DUR=$DUR perf/responses.sh\`."
  echo
  echo "| | chat | responses |"
  echo "|---|---:|---:|"
  echo "| CPU µs per request, JSON, c=$CONC | $(med chat.false.cpu) | $(med responses.false.cpu) |"
  echo "| CPU µs per request, stream, c=$CONC | $(med chat.true.cpu) | $(med responses.true.cpu) |"
  echo "| req/s, JSON, c=$CONC | $(med chat.false.rps) | $(med responses.false.rps) |"
  echo "| req/s, stream, c=$CONC | $(med chat.true.rps) | $(med responses.true.rps) |"
  echo "| added TTFT p50 / p99, c=1 stream (µs) | $(med chat.t50) / $(med chat.t99) | $(med responses.t50) / $(med responses.t99) |"
  echo
  for k in chat.false.cpu responses.false.cpu chat.true.cpu responses.true.cpu; do echo "Per run $k:${V[$k]}."; done
  echo
} > "$OUT/responses.md"
cat "$OUT/responses.md"
