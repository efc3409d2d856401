#!/usr/bin/env bash
# Guardrails, on vs off, one run, arms interleaved, medians of RUNS. One one-worker gateway in
# front of the mock with two keys: `plain` (no guardrails) and `guarded` (the default PII and
# secrets set — email, phone, card, iban, ssn, secrets — redacting requests and answers;
# INJECTION=1 adds the injection heuristics on requests). The arms differ only in the key:
#   off-1k / on-1k       — JSON, 1 KB prompts, c=CONC;
#   off-100k / on-100k   — JSON, 100 KB prompts, c=8;
#   off-stream / on-stream — streams of 64 tokens (64 text events), c=CONC: a guarded
#                          stream goes through the hub and its text through the hold-back;
#   off-ttft / on-ttft   — the same streams one at a time: time to first token, end to end.
# CPU per request is the gateway process's over the run; latency and TTFT are the load
# generator's. The gateway on GW_CORE, the mock and the load generator on BENCH_CORE.
#   RUNS=5 DUR=3s perf/guardrails.sh     → perf/results/<date>-<sha>/guardrails.md
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

MOCK=18461; GW=18462
{
  machine_header
  echo "- pinning: gateway on core $GW_CORE; mock + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 64 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
cat > "$SCRATCH/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$GW"
workers = 1
pin_workers = false
[limits]
max_body_bytes = 1048576
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$MOCK/v1"
[[models]]
name = "gpt-4o-mini"
[[models.deployments]]
provider = "mock"
[[guardrails]]
name = "pii"
detectors = ["email", "phone", "card", "iban", "ssn", "secrets"]
action = "redact"
[[guardrails]]
name = "injection"
injection = true
action = "block"
where = ["request"]
[[keys]]
id = "plain"
sha256 = "$($BIN/tollgate hash-key sk-plain)"
[[keys]]
id = "guarded"
sha256 = "$($BIN/tollgate hash-key sk-guarded)"
guardrails = ["pii"$( [ "${INJECTION:-0}" = 1 ] && echo ', "injection"' || true)]
[audit]
output = "off"
TOML
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/gw.toml" > "$SCRATCH/gw.out" 2>&1 &
G=$!
until grep -q listening "$SCRATCH/gw.out" 2>/dev/null; do sleep 0.05; done

scenario() { # NAME KEY PROMPT_BYTES STREAM CONCURRENCY
  cat > "$SCRATCH/$1.toml" <<TOML
target = "http://127.0.0.1:$GW"
mode = "closed"
concurrency = $5
duration = "$DUR"
warmup = "1s"
keys = ["$2"]
[[request]]
name = "$1"
path = "/v1/chat/completions"
model = "gpt-4o-mini"
prompt_bytes = $3
max_tokens = 64
stream = $4
TOML
}
for k in off:sk-plain on:sk-guarded; do
  arm=${k%%:*}; key=${k#*:}
  scenario $arm-1k $key 1000 false "$CONC"
  scenario $arm-100k $key 102400 false 8
  scenario $arm-stream $key 1000 true "$CONC"
  scenario $arm-ttft $key 1000 true 1
done
ARMS="off-1k on-1k off-100k on-100k off-stream on-stream off-ttft on-ttft"

declare -A V
for i in $(seq "$RUNS"); do
  for arm in $ARMS; do
    f="$SCRATCH/$arm-$i.json"
    taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --scenario "$SCRATCH/$arm.toml" --watch-pid "$G" --json "$f" > /dev/null
    V[$arm.p50]+=" $(field "$f" targets.0.latency_us.p50)"
    V[$arm.p99]+=" $(field "$f" targets.0.latency_us.p99)"
    V[$arm.rps]+=" $(field "$f" targets.0.throughput_rps)"
    V[$arm.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
    case $arm in *stream|*ttft)
      V[$arm.ttft50]+=" $(field "$f" targets.0.ttft_us.p50)"
      V[$arm.ttft99]+=" $(field "$f" targets.0.ttft_us.p99)";;
    esac
  done
  echo "  run $i: 1k $(echo ${V[off-1k.cpu]} | awk '{print $NF}') → $(echo ${V[on-1k.cpu]} | awk '{print $NF}') µs/req, stream $(echo ${V[off-stream.cpu]} | awk '{print $NF}') → $(echo ${V[on-stream.cpu]} | awk '{print $NF}') µs/req" >&2
done
med() { median ${V[$1]}; }
diff() { python3 -c "print(f'{$2 - $1:+.2f}')"; }
{
  echo "# Guardrails on vs off ($(git rev-parse --short HEAD))"
  echo
  echo "Closed loop, one-worker gateway, the same config; the arms differ only in the key"
  echo "(\`guarded\`: email, phone, card, iban, ssn and secrets redacted both ways$( [ "${INJECTION:-0}" = 1 ] && echo ', injection heuristics on requests' || true)). Medians of $RUNS"
  echo "interleaved runs of $DUR. Command: \`INJECTION=${INJECTION:-0} RUNS=$RUNS DUR=$DUR perf/guardrails.sh\`."
  echo
  echo "| arm | gateway CPU per request (µs) | latency p50 / p99 (µs) | TTFT p50 / p99 (µs) | req/s |"
  echo "|---|---|---|---|---|"
  for arm in $ARMS; do
    ttft="–"
    case $arm in *stream|*ttft) ttft="$(med $arm.ttft50) / $(med $arm.ttft99)";; esac
    echo "| $arm | $(med $arm.cpu) | $(med $arm.p50) / $(med $arm.p99) | $ttft | $(med $arm.rps) |"
  done
  echo
  echo "Added by the guardrails (medians, on − off):"
  echo
  echo "- 1 KB prompt, JSON: $(diff $(med off-1k.cpu) $(med on-1k.cpu)) µs of CPU per request"
  echo "- 100 KB prompt, JSON: $(diff $(med off-100k.cpu) $(med on-100k.cpu)) µs of CPU per request"
  echo "- a 64-event stream: $(diff $(med off-stream.cpu) $(med on-stream.cpu)) µs of CPU per request,"
  echo "  $(python3 -c "print(f'{($(med on-stream.cpu) - $(med off-stream.cpu)) / 64:+.3f}')") µs per text event (the whole stream's extra over its 64 text events)"
  echo "- TTFT at c=1: p50 $(diff $(med off-ttft.ttft50) $(med on-ttft.ttft50)) µs, p99 $(diff $(med off-ttft.ttft99) $(med on-ttft.ttft99)) µs"
  echo
  for arm in $ARMS; do
    echo "Per-run CPU $arm:${V[$arm.cpu]}."
  done
} > "$OUT/guardrails.md"
cat "$OUT/guardrails.md"
