#!/usr/bin/env bash
# Failover under load (issue 6): one model, three deployments (round robin, default
# [routing]); in the 'faulty' arm one of them answers 500 to 30% of requests, in the 'healthy'
# arm none does. One gateway worker per arm on GW_CORE; the four mocks and the load generator
# on BENCH_CORE; arms interleaved; medians of RUNS. A third arm, 'nobreaker', is 'faulty' with
# the circuit breaker off, so retries alone (and their budget) face the failures.
#   RUNS=5 DUR=4s perf/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-4s}
CONC=${CONC:-32}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}

cargo build --release -q --workspace
BIN=target/release
run_dirs

M1=18401; M2=18402; MBAD=18403; MGOOD=18404; FAULTY=18405; HEALTHY=18406; NOBREAKER=18407
MBAD2=18408
{
  machine_header
  echo "- pinning: gateway on core $GW_CORE; mocks + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"
for p in $M1 $M2 $MGOOD; do
  taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$p --workers 1 > "$SCRATCH/mock$p.out" &
done
for p in $MBAD $MBAD2; do
  taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$p --workers 1 \
    --fault 'status=500@0.3' > "$SCRATCH/mock$p.out" &
done
for p in $M1 $M2 $MBAD $MBAD2 $MGOOD; do
  until grep -q listening "$SCRATCH/mock$p.out" 2>/dev/null; do sleep 0.05; done
done

KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
# config PORT THIRD_MOCK_PORT
config() {
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
workers = 1
pin_workers = false
[[providers]]
name = "a"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$M1/v1"
[[providers]]
name = "b"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$M2/v1"
[[providers]]
name = "c"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$2/v1"
[[models]]
name = "gpt-4o-mini"
[[models.deployments]]
provider = "a"
[[models.deployments]]
provider = "b"
[[models.deployments]]
provider = "c"
[[keys]]
id = "bench"
sha256 = "$HASH"
[audit]
output = "off"
TOML
}
config $FAULTY $MBAD > "$SCRATCH/faulty.toml"
config $NOBREAKER $MBAD2 > "$SCRATCH/nobreaker.toml"
printf '[routing]\nbreaker_failures = 1000000\nbreaker_error_rate = 0\n' >> "$SCRATCH/nobreaker.toml"
config $HEALTHY $MGOOD > "$SCRATCH/healthy.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/faulty.toml" > "$SCRATCH/faulty.out" 2>&1 &
F_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/healthy.toml" > "$SCRATCH/healthy.out" 2>&1 &
H_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/nobreaker.toml" > "$SCRATCH/nobreaker.out" 2>&1 &
N_PID=$!
until grep -q listening "$SCRATCH/faulty.out" 2>/dev/null && grep -q listening "$SCRATCH/healthy.out" 2>/dev/null \
  && grep -q listening "$SCRATCH/nobreaker.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
err_rate() { python3 -c "
import json,sys; t=json.load(open(sys.argv[1]))['targets'][0]
print(round(100*(t['requests']-t['ok'])/max(t['requests'],1),4))" "$1"; }

declare -A V
for i in $(seq "$RUNS"); do
  for arm in faulty healthy nobreaker; do
    port=$FAULTY; pid=$F_PID
    [ $arm = healthy ] && port=$HEALTHY && pid=$H_PID
    [ $arm = nobreaker ] && port=$NOBREAKER && pid=$N_PID
    f="$SCRATCH/$arm-c$i.json"
    load --target "http://127.0.0.1:$port" --concurrency "$CONC" --watch-pid "$pid" --json "$f"
    V[$arm.rps]+=" $(field "$f" targets.0.throughput_rps)"
    V[$arm.err]+=" $(err_rate "$f")"
    V[$arm.p50]+=" $(field "$f" targets.0.latency_us.p50)"
    V[$arm.p99]+=" $(field "$f" targets.0.latency_us.p99)"
    V[$arm.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
    f="$SCRATCH/$arm-one$i.json"
    load --target "http://127.0.0.1:$port" --concurrency 1 --json "$f"
    V[$arm.one50]+=" $(field "$f" targets.0.latency_us.p50)"
    V[$arm.one99]+=" $(field "$f" targets.0.latency_us.p99)"
    V[$arm.oneerr]+=" $(err_rate "$f")"
  done
  echo "  run $i: faulty $(echo ${V[faulty.rps]} | awk '{print $NF}') rps, $(echo ${V[faulty.err]} | awk '{print $NF}')% errors; healthy $(echo ${V[healthy.rps]} | awk '{print $NF}') rps; no breaker $(echo ${V[nobreaker.err]} | awk '{print $NF}')% errors" >&2
done

# What reached each failing provider, against the requests of its arm.
bad() { python3 -c "
import json,sys,urllib.request
d=json.load(urllib.request.urlopen('http://127.0.0.1:'+sys.argv[1]+'/mock/stats'))
t=sum(json.load(open(f))['targets'][0]['requests'] for f in sys.argv[2:])
print(d['total']['requests'], d['faults'].get('status',0), t)" "$@"; }
read -r BAD_REQ BAD_500 ALL_REQ < <(bad $MBAD "$SCRATCH"/faulty-*.json)
read -r BAD2_REQ BAD2_500 ALL2_REQ < <(bad $MBAD2 "$SCRATCH"/nobreaker-*.json)
med() { median ${V[$1]}; }
{
  echo "# Failover under load ($(git rev-parse --short HEAD))"
  echo
  echo "One model, three deployments (three mock providers), round robin, default [routing]"
  echo "(3 attempts, retry budget 20% + 10, breaker 5 consecutive / 50% of 20, 5 s cooldown)."
  echo "'faulty': one deployment answers 500 to 30% of its requests (~10% of all first attempts);"
  echo "'healthy': none does. Non-streamed chat. One gateway worker. Medians of $RUNS"
  echo "interleaved runs, $DUR each. Command: \`RUNS=$RUNS DUR=$DUR perf/failover.sh\`."
  echo
  echo "| | faulty | faulty, no breaker | healthy |"
  echo "|---|---|---|---|"
  echo "| client-visible errors, c=$CONC (%) | $(med faulty.err) | $(med nobreaker.err) | $(med healthy.err) |"
  echo "| throughput, c=$CONC (req/s) | $(med faulty.rps) | $(med nobreaker.rps) | $(med healthy.rps) |"
  echo "| gateway CPU per request, c=$CONC (µs) | $(med faulty.cpu) | $(med nobreaker.cpu) | $(med healthy.cpu) |"
  echo "| latency p50 / p99, c=$CONC (µs) | $(med faulty.p50) / $(med faulty.p99) | $(med nobreaker.p50) / $(med nobreaker.p99) | $(med healthy.p50) / $(med healthy.p99) |"
  echo "| client-visible errors, c=1 (%) | $(med faulty.oneerr) | $(med nobreaker.oneerr) | $(med healthy.oneerr) |"
  echo "| latency p50 / p99, c=1 (µs) | $(med faulty.one50) / $(med faulty.one99) | $(med nobreaker.one50) / $(med nobreaker.one99) | $(med healthy.one50) / $(med healthy.one99) |"
  echo
  echo "The failing provider received $BAD_REQ attempts (answered 500 to $BAD_500) of the faulty"
  echo "arm's $ALL_REQ measured requests (plus warm-ups; round robin alone sends it a third), and"
  echo "$BAD2_REQ (500 to $BAD2_500) of the no-breaker arm's $ALL2_REQ."
  echo
  echo "Per-run errors (faulty, c=$CONC):${V[faulty.err]}; throughput faulty:${V[faulty.rps]};"
  echo "healthy:${V[healthy.rps]}."
} > "$OUT/failover.md"
cat "$OUT/failover.md"
