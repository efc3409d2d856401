#!/usr/bin/env bash
# Measures what metering costs a stream (issue: token metering). On a 2-core machine:
#   core 0: the gateway under test, one worker: metering ON (this commit: SSE tap, usage
#           extraction, include_usage injection and removal, audit trail to a file) or OFF
#           (the commit before metering, $OFF_REF, which relays the same bytes and writes an
#           access log to a file) — never both under load at once;
#   core 1: tollgate-mock (--workers 1, --itl-ms 1) and tollgate-load.
# 1. Added time to first token and added gap between events at concurrency 1: A/B slices,
#    direct-to-mock (A) vs via the gateway (B), for ON and OFF alternately, $RUNS runs each.
# 2. Gateway CPU per streamed request (c=$CONC, no pacing): ON vs OFF, interleaved; the
#    difference divided by the events per response is the metering cost per event.
# 3. Added time to first token at c=1 against the unpaced mock (as perf/gateway.sh does).
# Results: perf/results/<date>-<sha>/metering.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-5s}
CONC=${CONC:-64}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
OFF_REF=${OFF_REF:-025de40}

cargo build --release -q --workspace
BIN=target/release
OFF_DIR=${OFF_DIR:-/tmp/tollgate-$OFF_REF}
if [ ! -x "$OFF_DIR/target/release/tollgate" ]; then
  git worktree add -f "$OFF_DIR" "$OFF_REF" > /dev/null
  (cd "$OFF_DIR" && CARGO_TARGET_DIR="$OFF_DIR/target" cargo build --release -q --bin tollgate)
fi
OFF_BIN=$OFF_DIR/target/release/tollgate
run_dirs

MOCK=18281; ON=18283; OFF=18284
{
  machine_header
  echo "- pinning: gateway on core $GW_CORE; mock + load generator on core $BENCH_CORE"
  echo "- metering off = $OFF_REF ($(git log -1 --format=%s "$OFF_REF"))"
} > "$OUT/machine.md"

taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --itl-ms 1 --tokens 16 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done

KEY=sk-bench
common() { gateway_config "$1" $MOCK "$($BIN/tollgate hash-key $KEY)"; }
{ common $ON; printf '[audit]\noutput = "%s"\n' "$SCRATCH/audit.jsonl"; } > "$SCRATCH/on.toml"
common $OFF | sed "s|^pin_workers = false|pin_workers = false\naccess_log = \"$SCRATCH/access.log\"|" > "$SCRATCH/off.toml"

taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/on.toml" > "$SCRATCH/on.out" 2>&1 &
ON_PID=$!
taskset -c "$GW_CORE" $OFF_BIN serve --config "$SCRATCH/off.toml" > "$SCRATCH/off.out" 2>&1 &
OFF_PID=$!
until grep -q listening "$SCRATCH/on.out" 2>/dev/null && grep -q listening "$SCRATCH/off.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
# gap_added FILE Q: the B arm's gap quantile minus the A arm's.
gap_added() { python3 -c "
import json,sys
d=json.load(open(sys.argv[1])); q=sys.argv[2]
print(round(d['targets'][1]['gap_us'][q]-d['targets'][0]['gap_us'][q],2))" "$1" "$2"; }

echo "1. added TTFT and gap at c=1 (A/B slices vs the mock directly)" >&2
T50_ON=(); T99_ON=(); T50_OFF=(); T99_OFF=(); G50_ON=(); G99_ON=(); G50_OFF=(); G99_OFF=()
for i in $(seq "$RUNS"); do
  for arm in on off; do
    port=$ON; [ $arm = off ] && port=$OFF
    f="$SCRATCH/ab-$arm$i.json"
    load --target "http://127.0.0.1:$MOCK" --target-b "http://127.0.0.1:$port" --concurrency 1 --stream --json "$f"
    if [ $arm = on ]; then
      T50_ON+=("$(field "$f" added_ttft_us.p50)"); T99_ON+=("$(field "$f" added_ttft_us.p99)")
      G50_ON+=("$(gap_added "$f" p50)"); G99_ON+=("$(gap_added "$f" p99)")
    else
      T50_OFF+=("$(field "$f" added_ttft_us.p50)"); T99_OFF+=("$(field "$f" added_ttft_us.p99)")
      G50_OFF+=("$(gap_added "$f" p50)"); G99_OFF+=("$(gap_added "$f" p99)")
    fi
  done
  echo "  run $i: ttft on +${T50_ON[-1]}/+${T99_ON[-1]}, off +${T50_OFF[-1]}/+${T99_OFF[-1]}; gap on +${G50_ON[-1]}/+${G99_ON[-1]}, off +${G50_OFF[-1]}/+${G99_OFF[-1]} µs" >&2
done
cp "$SCRATCH/ab-on1.json" "$OUT/metering-ab-on-run1.json"
EV=$(field "$SCRATCH/ab-on1.json" targets.1.events_per_response)
EV_D=$(field "$SCRATCH/ab-on1.json" targets.0.events_per_response)

echo "2. CPU per streamed request, c=$CONC, no pacing" >&2
# A second mock without pacing, so the gateway is the bottleneck.
MOCK2=$((MOCK+10))
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK2 --workers 1 --tokens 16 > "$SCRATCH/mock2.out" &
until grep -q listening "$SCRATCH/mock2.out" 2>/dev/null; do sleep 0.05; done
sed "s/:$MOCK\//:$MOCK2\//; s/:$ON\"/:$((ON+10))\"/" "$SCRATCH/on.toml" > "$SCRATCH/on2.toml"
sed "s/:$MOCK\//:$MOCK2\//; s/:$OFF\"/:$((OFF+10))\"/" "$SCRATCH/off.toml" > "$SCRATCH/off2.toml"
kill $ON_PID $OFF_PID
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/on2.toml" > "$SCRATCH/on2.out" 2>&1 &
ON_PID=$!
taskset -c "$GW_CORE" $OFF_BIN serve --config "$SCRATCH/off2.toml" > "$SCRATCH/off2.out" 2>&1 &
OFF_PID=$!
until grep -q listening "$SCRATCH/on2.out" 2>/dev/null && grep -q listening "$SCRATCH/off2.out" 2>/dev/null; do sleep 0.05; done
C_ON=(); C_OFF=(); R_ON=(); R_OFF=()
for i in $(seq "$RUNS"); do
  load --target "http://127.0.0.1:$((ON+10))" --stream --concurrency "$CONC" --watch-pid "$ON_PID" --json "$SCRATCH/c-on$i.json"
  C_ON+=("$(field "$SCRATCH/c-on$i.json" targets.0.watched_cpu.us_per_request)"); R_ON+=("$(field "$SCRATCH/c-on$i.json" targets.0.throughput_rps)")
  load --target "http://127.0.0.1:$((OFF+10))" --stream --concurrency "$CONC" --watch-pid "$OFF_PID" --json "$SCRATCH/c-off$i.json"
  C_OFF+=("$(field "$SCRATCH/c-off$i.json" targets.0.watched_cpu.us_per_request)"); R_OFF+=("$(field "$SCRATCH/c-off$i.json" targets.0.throughput_rps)")
  echo "  run $i: on ${C_ON[-1]} µs ${R_ON[-1]} req/s; off ${C_OFF[-1]} µs ${R_OFF[-1]} req/s" >&2
done
EV2=$(field "$SCRATCH/c-on1.json" targets.0.events_per_response)

echo "3. added TTFT at c=1 against the unpaced mock (A/B slices)" >&2
U50_ON=(); U99_ON=(); U50_OFF=(); U99_OFF=()
for i in $(seq "$RUNS"); do
  for arm in on off; do
    port=$((ON+10)); [ $arm = off ] && port=$((OFF+10))
    f="$SCRATCH/u-$arm$i.json"
    load --target "http://127.0.0.1:$MOCK2" --target-b "http://127.0.0.1:$port" --concurrency 1 --stream --json "$f"
    if [ $arm = on ]; then
      U50_ON+=("$(field "$f" added_ttft_us.p50)"); U99_ON+=("$(field "$f" added_ttft_us.p99)")
    else
      U50_OFF+=("$(field "$f" added_ttft_us.p50)"); U99_OFF+=("$(field "$f" added_ttft_us.p99)")
    fi
  done
  echo "  run $i: ttft on +${U50_ON[-1]}/+${U99_ON[-1]}, off +${U50_OFF[-1]}/+${U99_OFF[-1]} µs" >&2
done
AUDIT_LINES=$(wc -l < "$SCRATCH/audit.jsonl")
python3 - "$SCRATCH/audit.jsonl" > "$SCRATCH/audit-check.txt" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
streamed = [r for r in recs if r.get("stream")]
est = sum(1 for r in streamed if r.get("usage_estimated"))
print(f"{len(streamed)} streamed records, {est} estimated, output tokens per record {sorted(set(r['gen_ai.usage.output_tokens'] for r in streamed))[:5]}")
PY

{
  echo "# Metering: what it costs a stream"
  echo
  echo "Command: \`RUNS=$RUNS DUR=$DUR CONC=$CONC perf/metering.sh\` (machine in machine.md). The"
  echo "gateway runs one worker on core $GW_CORE; the mock and the load generator share core"
  echo "$BENCH_CORE. **On** = this commit (SSE tap on every event, usage extraction,"
  echo "\`include_usage\` injected upstream and its chunk removed, audit record per request to a"
  echo "file). **Off** = $OFF_REF, the data plane before metering (same relay, access log to a"
  echo "file). Medians of $RUNS interleaved runs; per-run values listed."
  echo
  echo "## 1. Added time to first token and gap between events (c=1, A/B vs the mock directly)"
  echo
  echo "The mock paces tokens 1 ms apart (16 tokens). Added = via-gateway minus direct, from"
  echo "alternating 1 s slices."
  echo
  echo "| | added TTFT p50 µs | added TTFT p99 µs | added gap p50 µs | added gap p99 µs |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| metering on | $(median "${T50_ON[@]}") (${T50_ON[*]}) | $(median "${T99_ON[@]}") (${T99_ON[*]}) | $(median "${G50_ON[@]}") (${G50_ON[*]}) | $(median "${G99_ON[@]}") (${G99_ON[*]}) |"
  echo "| metering off | $(median "${T50_OFF[@]}") (${T50_OFF[*]}) | $(median "${T99_OFF[@]}") (${T99_OFF[*]}) | $(median "${G50_OFF[@]}") (${G50_OFF[*]}) | $(median "${G99_OFF[@]}") (${G99_OFF[*]}) |"
  echo
  echo "Budget (DESIGN.md §6): added TTFT p99 ≤ 150 µs; added gap ≤ 2 µs, frames 1:1. Events"
  echo "per response: direct $EV_D, via the metering gateway $EV (the client did not ask for"
  echo "usage, so the usage chunk the gateway requested is removed: one fewer than an"
  echo "\`include_usage\` stream; the mock sends it only when asked)."
  echo
  echo "## 2. Gateway CPU per streamed request (c=$CONC, unpaced mock, $EV2 events per response)"
  echo
  echo "| | CPU µs/request per run | median | req/s per run | median |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| metering on | ${C_ON[*]} | $(median "${C_ON[@]}") | ${R_ON[*]} | $(median "${R_ON[@]}") |"
  echo "| metering off | ${C_OFF[*]} | $(median "${C_OFF[@]}") | ${R_OFF[*]} | $(median "${R_OFF[@]}") |"
  echo
  echo "The difference between the medians, spread over the events of a response, is what"
  echo "metering costs per relayed event (an upper bound: it includes the usage chunk the"
  echo "upstream now sends and the gateway removes, and the audit record per request)."
  echo
  echo "## 3. Added time to first token against an unpaced mock (c=1, A/B)"
  echo
  echo "| | added TTFT p50 µs | added TTFT p99 µs |"
  echo "| --- | --- | --- |"
  echo "| metering on | $(median "${U50_ON[@]}") (${U50_ON[*]}) | $(median "${U99_ON[@]}") (${U99_ON[*]}) |"
  echo "| metering off | $(median "${U50_OFF[@]}") (${U50_OFF[*]}) | $(median "${U99_OFF[@]}") (${U99_OFF[*]}) |"
  echo
  echo "Audit trail of the 'on' gateway: $AUDIT_LINES records; $(cat "$SCRATCH/audit-check.txt")."
} > "$OUT/metering.md"
cat "$OUT/metering.md"
