#!/usr/bin/env bash
# Measures the gateway (issue: the core data plane). On a 2-core machine:
#   core 0: the system under test — tollgate (workers = 1) or nginx as a plain reverse proxy
#           (keep-alive to the upstream) — never both under load at once;
#   core 1: tollgate-mock (--workers 1) and tollgate-load.
# 1. CPU per non-streaming request and req/s, closed loop c=$CONC: nginx vs tollgate,
#    interleaved, $RUNS runs each (CPU from --watch-pid).
# 2. Added latency at concurrency 1: A/B slices direct-to-mock (A) vs via tollgate (B), and
#    the same for nginx, JSON and streaming (added time to first token).
# 3. 100 KB vs 1 KB prompt: tollgate CPU per request for each.
# 4. Idle RSS, then RSS with 10,000 idle keep-alive connections on the one worker.
# Needs nginx (apt-get install nginx-light). Results: perf/results/<date>-<sha>/gateway.md.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-5}
DUR=${DUR:-5s}
CONC=${CONC:-64}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}

cargo build --release -q --workspace
BIN=target/release
OUT="perf/results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)"
mkdir -p "$OUT"
SCRATCH=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
ulimit -n 65536 || true

MOCK=18181; GW=18183; NGX=18184
{
  machine_header
  echo "- pinning: gateway / nginx on core $GW_CORE; mock + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"

taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done

KEY=sk-bench
{ gateway_config $GW $MOCK "$($BIN/tollgate hash-key $KEY)"; printf '[audit]\noutput = "off"\n'; } > "$SCRATCH/gw.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/gw.toml" > "$SCRATCH/gw.out" 2>&1 &
GW_PID=$!
until grep -q listening "$SCRATCH/gw.out" 2>/dev/null; do sleep 0.05; done

cat > "$SCRATCH/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $SCRATCH/nginx.pid;
error_log $SCRATCH/nginx-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $SCRATCH;
  proxy_temp_path $SCRATCH;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGX reuseport;
    client_max_body_size 8m;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGINX
taskset -c "$GW_CORE" nginx -c "$SCRATCH/nginx.conf" -p "$SCRATCH" &
until curl -s -o /dev/null "http://127.0.0.1:$NGX/healthz"; do sleep 0.05; done
NGX_PID=$(pgrep -f "nginx: worker process" | head -1)

load() { # extra args... ; last is the JSON output
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}

echo "1. throughput and CPU/request, c=$CONC" >&2
NR=(); NC=(); GR=(); GC=()
for i in $(seq "$RUNS"); do
  load --target "http://127.0.0.1:$NGX" --concurrency "$CONC" --watch-pid "$NGX_PID" --json "$SCRATCH/n$i.json"
  NR+=("$(field "$SCRATCH/n$i.json" targets.0.throughput_rps)"); NC+=("$(field "$SCRATCH/n$i.json" targets.0.watched_cpu.us_per_request)")
  load --target "http://127.0.0.1:$GW" --concurrency "$CONC" --watch-pid "$GW_PID" --json "$SCRATCH/g$i.json"
  GR+=("$(field "$SCRATCH/g$i.json" targets.0.throughput_rps)"); GC+=("$(field "$SCRATCH/g$i.json" targets.0.watched_cpu.us_per_request)")
  echo "  run $i: nginx ${NR[-1]} req/s ${NC[-1]} µs; tollgate ${GR[-1]} req/s ${GC[-1]} µs" >&2
done
cp "$SCRATCH/g1.json" "$OUT/gateway-c$CONC-run1.json"

echo "2. added latency at c=1 (A/B slices)" >&2
ab() { # name target-b extra... -> prints p50 p99 (added latency) or ttft
  load --target "http://127.0.0.1:$MOCK" --target-b "$2" --concurrency 1 "${@:3}" --json "$SCRATCH/ab-$1.json"
}
GA50=(); GA99=(); NA50=(); NA99=(); GT50=(); GT99=(); NT99=()
for i in $(seq "$RUNS"); do
  ab g$i "http://127.0.0.1:$GW"
  GA50+=("$(field "$SCRATCH/ab-g$i.json" added_latency_us.p50)"); GA99+=("$(field "$SCRATCH/ab-g$i.json" added_latency_us.p99)")
  ab n$i "http://127.0.0.1:$NGX"
  NA50+=("$(field "$SCRATCH/ab-n$i.json" added_latency_us.p50)"); NA99+=("$(field "$SCRATCH/ab-n$i.json" added_latency_us.p99)")
  ab gs$i "http://127.0.0.1:$GW" --stream
  GT50+=("$(field "$SCRATCH/ab-gs$i.json" added_ttft_us.p50)"); GT99+=("$(field "$SCRATCH/ab-gs$i.json" added_ttft_us.p99)")
  ab ns$i "http://127.0.0.1:$NGX" --stream
  NT99+=("$(field "$SCRATCH/ab-ns$i.json" added_ttft_us.p99)")
  echo "  run $i: tollgate +${GA50[-1]}/+${GA99[-1]} µs (p50/p99), nginx +${NA50[-1]}/+${NA99[-1]}; ttft tollgate +${GT50[-1]}/+${GT99[-1]}, nginx p99 +${NT99[-1]}" >&2
done
cp "$SCRATCH/ab-g1.json" "$OUT/gateway-ab-c1-run1.json"; cp "$SCRATCH/ab-gs1.json" "$OUT/gateway-ab-stream-c1-run1.json"
EV_D=$(field "$SCRATCH/ab-gs1.json" targets.0.events_per_response); EV_G=$(field "$SCRATCH/ab-gs1.json" targets.1.events_per_response)

echo "3. 1 KB vs 100 KB prompt" >&2
for size in 1024 102400; do
  cat > "$SCRATCH/p$size.toml" <<TOML
mode = "closed"
concurrency = 8
[[request]]
name = "prompt-$size"
path = "/v1/chat/completions"
prompt_bytes = $size
max_tokens = 16
TOML
done
P1=(); P100=(); N1=(); N100=()
for i in $(seq "$RUNS"); do
  load --scenario "$SCRATCH/p1024.toml" --target "http://127.0.0.1:$GW" --watch-pid "$GW_PID" --json "$SCRATCH/p1-$i.json"
  P1+=("$(field "$SCRATCH/p1-$i.json" targets.0.watched_cpu.us_per_request)")
  load --scenario "$SCRATCH/p102400.toml" --target "http://127.0.0.1:$GW" --watch-pid "$GW_PID" --json "$SCRATCH/p100-$i.json"
  P100+=("$(field "$SCRATCH/p100-$i.json" targets.0.watched_cpu.us_per_request)")
  load --scenario "$SCRATCH/p1024.toml" --target "http://127.0.0.1:$NGX" --watch-pid "$NGX_PID" --json "$SCRATCH/n1-$i.json"
  N1+=("$(field "$SCRATCH/n1-$i.json" targets.0.watched_cpu.us_per_request)")
  load --scenario "$SCRATCH/p102400.toml" --target "http://127.0.0.1:$NGX" --watch-pid "$NGX_PID" --json "$SCRATCH/n100-$i.json"
  N100+=("$(field "$SCRATCH/n100-$i.json" targets.0.watched_cpu.us_per_request)")
  echo "  run $i: tollgate 1 KB ${P1[-1]} µs, 100 KB ${P100[-1]} µs; nginx ${N1[-1]} / ${N100[-1]} µs" >&2
done

echo "4. memory" >&2
rss() { awk '/VmRSS/ {print $2}' /proc/"$1"/status; }
# A fresh gateway for the idle figure (the one above has served millions of requests).
sed "s/$GW/$((GW+10))/" "$SCRATCH/gw.toml" > "$SCRATCH/gw2.toml"
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/gw2.toml" > "$SCRATCH/gw2.out" 2>&1 &
GW2_PID=$!
until grep -q listening "$SCRATCH/gw2.out" 2>/dev/null; do sleep 0.05; done
curl -s -o /dev/null "http://127.0.0.1:$((GW+10))/healthz"
IDLE_RSS=$(rss $GW2_PID)
HELD=$(python3 - "$((GW+10))" "$GW2_PID" <<'PY'
import socket, sys
port, pid = int(sys.argv[1]), sys.argv[2]
conns = []
req = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
for i in range(10000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req)
    conns.append(s)
ok = 0
for s in conns:
    if s.recv(4096).startswith(b"HTTP/1.1 200"):
        ok += 1
rss = [l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0]
# Still serving a new client while 10,000 are held open.
t = socket.create_connection(("127.0.0.1", port)); t.sendall(req)
fresh = t.recv(4096).startswith(b"HTTP/1.1 200")
print(ok, rss, fresh)
PY
)
read -r HELD_OK HELD_RSS HELD_FRESH <<< "$HELD"
kill $GW2_PID

{
  echo "# The gateway: measured"
  echo
  echo "Command: \`RUNS=$RUNS DUR=$DUR CONC=$CONC perf/gateway.sh\` (machine in machine.md). tollgate"
  echo "runs one worker on core $GW_CORE; nginx (one worker, keep-alive upstream, proxy_buffering"
  echo "off) is the same kind of plain reverse proxy on the same core; the mock and the load"
  echo "generator share core $BENCH_CORE. Medians of $RUNS interleaved runs; per-run values listed."
  echo
  echo "## 1. Non-streaming throughput and gateway CPU per request (closed loop, c=$CONC)"
  echo
  echo "| | req/s per run | median req/s | CPU µs/request per run | median |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| nginx reverse proxy | ${NR[*]} | $(median "${NR[@]}") | ${NC[*]} | $(median "${NC[@]}") |"
  echo "| tollgate | ${GR[*]} | $(median "${GR[@]}") | ${GC[*]} | $(median "${GC[@]}") |"
  echo
  echo "tollgate / nginx req/s: $(python3 -c "print(round($(median "${GR[@]}")/$(median "${NR[@]}"),2))")."
  echo "Both are limited by core $BENCH_CORE (mock + load generator) at this rate; the CPU column is the"
  echo "figure that isolates the proxy."
  echo
  echo "## 2. Added latency vs calling the mock directly, concurrency 1 (A/B slices, µs)"
  echo
  echo "| | p50 per run | median p50 | p99 per run | median p99 |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| tollgate, JSON | ${GA50[*]} | $(median "${GA50[@]}") | ${GA99[*]} | $(median "${GA99[@]}") |"
  echo "| nginx, JSON | ${NA50[*]} | $(median "${NA50[@]}") | ${NA99[*]} | $(median "${NA99[@]}") |"
  echo "| tollgate, stream: time to first token | ${GT50[*]} | $(median "${GT50[@]}") | ${GT99[*]} | $(median "${GT99[@]}") |"
  echo "| nginx, stream: time to first token | | | ${NT99[*]} | $(median "${NT99[@]}") |"
  echo
  echo "Events per streamed response: direct $EV_D, via tollgate $EV_G (relayed 1:1)."
  echo
  echo "## 3. Prompt size: proxy CPU per request (closed loop, c=8)"
  echo
  echo "| prompt | tollgate CPU µs/request per run | median | nginx per run | median |"
  echo "| --- | --- | --- | --- | --- |"
  echo "| 1 KB | ${P1[*]} | $(median "${P1[@]}") | ${N1[*]} | $(median "${N1[@]}") |"
  echo "| 100 KB | ${P100[*]} | $(median "${P100[@]}") | ${N100[*]} | $(median "${N100[@]}") |"
  echo
  echo "100 KB − 1 KB: tollgate $(python3 -c "print(round($(median "${P100[@]}")-$(median "${P1[@]}"),2))") µs, nginx $(python3 -c "print(round($(median "${N100[@]}")-$(median "${N1[@]}"),2))") µs (the kernel copies in and out are in both)."
  echo
  echo "## 4. Memory (one worker)"
  echo
  echo "- idle RSS after start and one request: $IDLE_RSS KiB"
  echo "- 10,000 keep-alive connections held open (each served one request: $HELD_OK ok): RSS $HELD_RSS KiB"
  echo "  → $(python3 -c "print(round(($HELD_RSS-$IDLE_RSS)/10000,2))") KiB per idle connection; a new client served meanwhile: $HELD_FRESH"
} > "$OUT/gateway.md"
cat "$OUT/gateway.md"
