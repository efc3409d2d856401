#!/usr/bin/env bash
# Measures the bench tools themselves (issue: the measuring bench):
#   1. tollgate-mock vs nginx (`return 200` of the same JSON body), each pinned to one core,
#      driven by tollgate-load (closed loop) pinned to the other core;
#   2. tollgate-load vs wrk, each pinned to one core, against the same nginx;
#   3. tollgate-mock latency at concurrency 1.
# Runs are interleaved (A, B, A, B, ...) and medians reported. Needs nginx and wrk
# (apt-get install nginx-light wrk). Results: perf/results/<date>-<sha>/.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-5s}
CONC=${CONC:-64}
SERVER_CORE=${SERVER_CORE:-1}
CLIENT_CORE=${CLIENT_CORE:-0}

cargo build --release -q -p tollgate-loadtest
BIN=target/release
OUT="perf/results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)"
mkdir -p "$OUT"
SCRATCH=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT

# --- machine
{
  machine_header
  echo "- wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "- pinning: servers on core $SERVER_CORE, load generators on core $CLIENT_CORE"
} > "$OUT/machine.md"

# --- servers
MOCK_PORT=18181; NGINX_PORT=18182
taskset -c "$SERVER_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK_PORT --workers 1 > "$SCRATCH/mock.out" &
MOCK_PID=$!
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done

BODY='{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":16}'
JSON=$(curl -s "http://127.0.0.1:$MOCK_PORT/v1/chat/completions" -d "$BODY")
cat > "$SCRATCH/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $SCRATCH/nginx.pid;
error_log $SCRATCH/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $SCRATCH;
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport;
    location / { default_type application/json; return 200 '$JSON'; }
  }
}
NGINX
taskset -c "$SERVER_CORE" nginx -c "$SCRATCH/nginx.conf" -p "$SCRATCH" &
until curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/"; do sleep 0.05; done

cat > "$SCRATCH/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-demo"
LUA

load() { # target conc -> JSON file
  taskset -c "$CLIENT_CORE" $BIN/tollgate-load --quiet --target "$1" --concurrency "$2" --duration "$DUR" --warmup 1s \
    --keys sk-demo --json "$3" > /dev/null
}
rps() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['targets'][0]['throughput_rps']))" "$1"; }

echo "1. mock vs nginx, closed loop c=$CONC, $RUNS interleaved runs of $DUR" >&2
M=(); N=()
for i in $(seq "$RUNS"); do
  load "http://127.0.0.1:$NGINX_PORT" "$CONC" "$SCRATCH/n$i.json"; N+=("$(rps "$SCRATCH/n$i.json")")
  load "http://127.0.0.1:$MOCK_PORT" "$CONC" "$SCRATCH/m$i.json"; M+=("$(rps "$SCRATCH/m$i.json")")
  echo "  run $i: nginx ${N[-1]} req/s, mock ${M[-1]} req/s" >&2
done

echo "2. tollgate-load vs wrk against nginx, c=$CONC, $RUNS interleaved runs" >&2
L=(); W=()
for i in $(seq "$RUNS"); do
  load "http://127.0.0.1:$NGINX_PORT" "$CONC" "$SCRATCH/l$i.json"; L+=("$(rps "$SCRATCH/l$i.json")")
  W+=("$(taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONC" -d"$DUR" -s "$SCRATCH/post.lua" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" | awk '/Requests\/sec/ {print $2}')")
  echo "  run $i: tollgate-load ${L[-1]} req/s, wrk ${W[-1]} req/s" >&2
done

echo "3. mock latency at c=1 (closed loop), $RUNS runs" >&2
P50=(); P99=(); P999=()
for i in $(seq "$RUNS"); do
  load "http://127.0.0.1:$MOCK_PORT" 1 "$SCRATCH/c$i.json"
  read -r a b c < <(python3 -c "import json,sys; q=json.load(open(sys.argv[1]))['targets'][0]['latency_us']; print(q['p50'], q['p99'], q['p999'])" "$SCRATCH/c$i.json")
  P50+=("$a"); P99+=("$b"); P999+=("$c")
done
cp "$SCRATCH"/m1.json "$OUT/mock-c$CONC-run1.json"; cp "$SCRATCH"/c1.json "$OUT/mock-c1-run1.json"

MM=$(median "${M[@]}"); NN=$(median "${N[@]}"); LL=$(median "${L[@]}"); WW=$(median "${W[@]}")
{
  echo "# The measuring bench: first results"
  echo
  echo "Command: \`RUNS=$RUNS DUR=$DUR CONC=$CONC perf/bench-bench.sh\` (machine in machine.md)."
  echo
  echo "## 1. tollgate-mock vs nginx on one core (non-streaming, same JSON body, keep-alive)"
  echo
  echo "| | req/s per run | median |"
  echo "| --- | --- | --- |"
  echo "| nginx \`return 200\` | ${N[*]} | $NN |"
  echo "| tollgate-mock | ${M[*]} | $MM |"
  echo
  echo "Ratio mock / nginx: $(python3 -c "print(round($MM/$NN, 2))")"
  echo
  echo "## 2. tollgate-load vs wrk (one core each, c=$CONC, against the nginx above)"
  echo
  echo "| | req/s per run | median |"
  echo "| --- | --- | --- |"
  echo "| wrk -t1 | ${W[*]} | $WW |"
  echo "| tollgate-load | ${L[*]} | $LL |"
  echo
  echo "Ratio tollgate-load / wrk: $(python3 -c "print(round($LL/$WW, 2))")"
  echo
  echo "## 3. tollgate-mock latency at concurrency 1 (closed loop, µs)"
  echo
  echo "| run | p50 | p99 | p99.9 |"
  echo "| --- | --- | --- | --- |"
  for i in $(seq "$RUNS"); do echo "| $i | ${P50[$((i-1))]} | ${P99[$((i-1))]} | ${P999[$((i-1))]} |"; done
  echo "| median | $(median "${P50[@]}") | $(median "${P99[@]}") | $(median "${P999[@]}") |"
} > "$OUT/results.md"
cat "$OUT/results.md"
