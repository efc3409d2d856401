#!/usr/bin/env bash
# tollgate against nginx as a plain reverse proxy, measured the way a user choosing a gateway
# would, with the same upstream and the same load tool for every target:
#   upstream: nginx `return 200` of a 742-byte chat.completion (port UJ) and of a 34-event,
#             ~10.3 KB chat.completion.chunk SSE body (port US), on BENCH_CORE;
#   load:     wrk -t1 -c$CONC with a 307-byte chat body, on BENCH_CORE;
#   targets, one at a time on GW_CORE, interleaved, RUNS repetitions, medians:
#     nginx  — 1 worker, upstream keep-alive, proxy_buffering off, no access log;
#     full   — tollgate with every feature on: a virtual key in a team, key and team USD and
#              token budgets, RPM and TPM on both, metering with prices, the audit log to a
#              file, the spend ledger on disk;
#     meter  — tollgate with key auth and metering only (audit off, no ledger, no quotas).
# CPU per request comes from the target's /proc/<pid>/stat (all threads) over the wrk run.
# Also: added p99 over the upstream alone at 50 and 200 req/s open loop (tollgate-load A/B
# slices, upstream direct vs via the target), idle and peak RSS, audit records written vs
# dropped. Needs `apt-get install nginx-light wrk`.
# BEFORE=<an older tollgate binary> adds its full and meter targets to the same runs and a
# before/after table.
#   RUNS=3 DUR=5s [BEFORE=/tmp/tollgate-old] perf/peers.sh     → perf/results/<date>-<sha>/peers.md
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
RUNS=${RUNS:-3}
DUR=${DUR:-5s}
CONC=${CONC:-64}
OPEN_DUR=${OPEN_DUR:-10s}
GW_CORE=${GW_CORE:-0}
BENCH_CORE=${BENCH_CORE:-1}
command -v nginx >/dev/null && command -v wrk >/dev/null || {
  echo "needs nginx and wrk: apt-get install nginx-light wrk" >&2; exit 1; }

cargo build --release -q --workspace
BIN=target/release
run_dirs
UJ=18501; US=18502; NJ=18511; NS=18512; FULL=18521; METER=18531; ADMIN=18541
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
{
  machine_header
  echo "- wrk: $(wrk -v 2>&1 | head -1)"
  echo "- pinning: the target on core $GW_CORE; upstream nginx + load generator on core $BENCH_CORE"
} > "$OUT/machine.md"

# ---------------------------------------------------------------- bodies and the upstream
python3 - "$SCRATCH" <<'PY'
import json, sys
d = sys.argv[1]
def chat(extra=""):
    body = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1764633600,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "",
                         "refusal": None, "annotations": []}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 19, "completion_tokens": 40, "total_tokens": 59,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_bench"}
    base = json.dumps(body, separators=(",", ":"))
    pad = 742 - len(base)
    body["choices"][0]["message"]["content"] = ("word " * 200)[:pad]
    return json.dumps(body, separators=(",", ":"))
j = chat()
assert len(j) == 742, len(j)
open(f"{d}/upstream.json", "w").write(j)
def chunk(delta, finish=None, usage=False):
    c = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1764633600,
         "model": "gpt-4o-mini-2024-07-18", "service_tier": "default",
         "system_fingerprint": "fp_bench",
         "choices": [] if usage else [{"index": 0, "delta": delta, "logprobs": None,
                                       "finish_reason": finish}]}
    c["usage"] = ({"prompt_tokens": 19, "completion_tokens": 31, "total_tokens": 50,
                   "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                   "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
                  if usage else None)
    return "data: " + json.dumps(c, separators=(",", ":")) + "\n\n"
words = "The quick brown fox jumps over the lazy dog while a gateway counts every token".split()
ev = [chunk({"role": "assistant", "content": "", "refusal": None})]
ev += [chunk({"content": " " + words[k % len(words)] + "-" * 31}) for k in range(30)]
ev += [chunk({}, "stop"), chunk(None, usage=True), "data: [DONE]\n\n"]
sse = "".join(ev)
assert len(ev) == 34
open(f"{d}/upstream.sse", "w").write(sse)
# The 307-byte client bodies (JSON and stream).
def req(model, stream):
    b = {"model": model, "messages": [{"role": "system", "content": "You are terse."},
         {"role": "user", "content": ""}], "max_tokens": 64}
    if stream:
        b["stream"] = True
    base = json.dumps(b, separators=(",", ":"))
    b["messages"][1]["content"] = ("Say something about proxies. " * 20)[:307 - len(base)]
    s = json.dumps(b, separators=(",", ":"))
    assert len(s) == 307, len(s)
    return s
for name, model, stream in [("json", "gpt-4o-mini", False), ("sse", "gpt-4o-mini-sse", True)]:
    open(f"{d}/req-{name}.json", "w").write(req(model, stream))
PY
echo "- upstream bodies: $(wc -c < "$SCRATCH/upstream.json") B JSON; $(wc -c < "$SCRATCH/upstream.sse") B, 34-event SSE; client bodies $(wc -c < "$SCRATCH/req-json.json") B" >> "$OUT/machine.md"

nginx_conf() { # NAME BODY: the shared head of an nginx config; BODY is the server blocks
  cat <<NGINX
worker_processes 1;
daemon off;
pid $SCRATCH/$1.pid;
error_log $SCRATCH/$1-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $SCRATCH;
  proxy_temp_path $SCRATCH;
$2
}
NGINX
}
# POST to a static file is a 405 in nginx; error_page turns it into the file (as a GET).
mkdir -p "$SCRATCH/www"; cp "$SCRATCH/upstream.json" "$SCRATCH/upstream.sse" "$SCRATCH/www/"
nginx_conf upstream "
  server { listen 127.0.0.1:$UJ reuseport; root $SCRATCH/www; default_type application/json;
    location / { rewrite ^ /upstream.json break; error_page 405 =200 /upstream.json; } }
  server { listen 127.0.0.1:$US reuseport; root $SCRATCH/www; default_type text/event-stream;
    location / { rewrite ^ /upstream.sse break; error_page 405 =200 /upstream.sse; } }
" > "$SCRATCH/upstream.conf"
nginx_conf proxy "
  upstream uj { server 127.0.0.1:$UJ; keepalive 256; keepalive_requests 100000000; }
  upstream us { server 127.0.0.1:$US; keepalive 256; keepalive_requests 100000000; }
  server { listen 127.0.0.1:$NJ reuseport; location / { proxy_pass http://uj; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } }
  server { listen 127.0.0.1:$NS reuseport; location / { proxy_pass http://us; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; } }
" > "$SCRATCH/proxy.conf"

taskset -c "$BENCH_CORE" nginx -c "$SCRATCH/upstream.conf" -p "$SCRATCH" &
until curl -sf -o /dev/null -X POST "http://127.0.0.1:$UJ/v1/chat/completions"; do sleep 0.05; done

# ---------------------------------------------------------------- the three targets
gw_common() { # PORT
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
workers = 1
pin_workers = false
[[providers]]
name = "json"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$UJ/v1"
[[providers]]
name = "sse"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$US/v1"
[[models]]
name = "gpt-4o-mini"
[[models.deployments]]
provider = "json"
[[models]]
name = "gpt-4o-mini-sse"
[[models.deployments]]
provider = "sse"
model = "gpt-4o-mini"
TOML
}
{
  gw_common $METER
  printf '[audit]\noutput = "off"\n[[keys]]\nid = "bench"\nsha256 = "%s"\n' "$HASH"
} > "$SCRATCH/meter.toml"
mkdir -p "$SCRATCH/ledger"
{
  gw_common $FULL
  cat <<TOML
[audit]
output = "$SCRATCH/audit.jsonl"
max_file_bytes = 10000000000
[ledger]
dir = "$SCRATCH/ledger"
[admin]
listen = "127.0.0.1:$ADMIN"
[[teams]]
name = "bench-team"
budget = { usd = 1000000.0, tokens = 100000000000 }
rpm = 100000000
tpm = 100000000000
[[keys]]
id = "bench"
sha256 = "$HASH"
team = "bench-team"
budget = { usd = 1000000.0, tokens = 100000000000 }
rpm = 100000000
tpm = 100000000000
TOML
} > "$SCRATCH/full.toml"

start_gw() { # NAME [BINARY] → pid in ${NAME}_PID
  taskset -c "$GW_CORE" "${2:-$BIN/tollgate}" serve --config "$SCRATCH/$1.toml" > "$SCRATCH/$1.out" 2> "$SCRATCH/$1.err" &
  eval "${1^^}_PID=$!"
  until grep -q listening "$SCRATCH/$1.out" "$SCRATCH/$1.err" 2>/dev/null; do sleep 0.05; done
}
start_gw meter
start_gw full
ARMS="full meter"
if [ -n "${BEFORE:-}" ]; then
  BFULL=$((FULL + 1)); BMETER=$((METER + 1))
  mkdir -p "$SCRATCH/bledger"
  sed -e "s/:$FULL\"/:$BFULL\"/" -e "s/:$ADMIN\"/:$((ADMIN + 1))\"/" -e "s#audit.jsonl#baudit.jsonl#" \
    -e "s#$SCRATCH/ledger#$SCRATCH/bledger#" "$SCRATCH/full.toml" > "$SCRATCH/bfull.toml"
  sed -e "s/:$METER\"/:$BMETER\"/" "$SCRATCH/meter.toml" > "$SCRATCH/bmeter.toml"
  start_gw bmeter "$BEFORE"
  start_gw bfull "$BEFORE"
  ARMS="full meter bfull bmeter"
  echo "- before: $BEFORE" >> "$OUT/machine.md"
fi
port_of() { case $1 in full) echo $FULL;; meter) echo $METER;; bfull) echo $BFULL;; bmeter) echo $BMETER;; esac; }
taskset -c "$GW_CORE" nginx -c "$SCRATCH/proxy.conf" -p "$SCRATCH" &
until curl -sf -o /dev/null -X POST "http://127.0.0.1:$NJ/"; do sleep 0.05; done
NGINX_PID=$(pgrep -f "nginx: worker process" -n)  # the proxy's worker: the newest nginx worker

rss() { awk -v k="$2" '$1 == k":" {print $2}' /proc/"$1"/status; }
for t in $ARMS; do
  pid_var="${t^^}_PID"
  curl -sf -o /dev/null "http://127.0.0.1:$(port_of $t)/v1/chat/completions" \
    -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d @"$SCRATCH/req-json.json"
  eval "IDLE_$t=\$(rss \${$pid_var} VmRSS)"
done
IDLE_nginx=$(rss "$NGINX_PID" VmRSS)

cat > "$SCRATCH/post.lua" <<'LUA'
local f = io.open(os.getenv("BODY")); wrk.body = f:read("*a"); f:close()
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer sk-bench"
LUA
cpu_ticks() { awk '{print $14 + $15}' /proc/"$1"/stat; }
HZ=$(getconf CLK_TCK)
declare -A V
bench() { # TARGET KIND(json|sse) PORT PID
  local before after out n rps non2xx
  before=$(cpu_ticks "$4")
  out=$(BODY="$SCRATCH/req-$2.json" taskset -c "$BENCH_CORE" wrk -t1 -c"$CONC" -d"$DUR" -s "$SCRATCH/post.lua" "http://127.0.0.1:$3")
  after=$(cpu_ticks "$4")
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  V[$1.$2.rps]+=" $rps"
  V[$1.$2.cpu]+=" $(python3 -c "print(round(($after-$before)/$HZ*1e6/$n,2))")"
  V[$1.$2.n]+=" $n"
  V[$1.$2.bad]+=" ${non2xx:-0}"
}
for i in $(seq "$RUNS"); do
  for kind in json sse; do
    bench nginx $kind "$([ $kind = json ] && echo $NJ || echo $NS)" "$NGINX_PID"
    for t in $ARMS; do pid_var="${t^^}_PID"; bench $t $kind "$(port_of $t)" "${!pid_var}"; done
    echo "  run $i $kind: nginx $(echo ${V[nginx.$kind.cpu]} | awk '{print $NF}') µs, full $(echo ${V[full.$kind.cpu]} | awk '{print $NF}') µs, meter $(echo ${V[meter.$kind.cpu]} | awk '{print $NF}') µs" >&2
  done
done

# Added latency over the upstream alone, open loop, A/B slices (upstream direct vs target).
# On a VM a halted vCPU takes a host-side reschedule (~100-300 us here) to wake, more than a
# proxy adds, and every hop through the target wakes its core. AWAKE=1 (the default) keeps
# both cores out of the idle state during these runs with a SCHED_IDLE spinner on each, as
# bare metal with deep C-states off would be: a woken target preempts the spinner at once,
# and the spinner is no target's CPU time. AWAKE=0 measures the machine as it is.
SPINNERS=()
if [ "${AWAKE:-1}" = 1 ]; then
  for core in "$GW_CORE" "$BENCH_CORE"; do
    taskset -c "$core" chrt --idle 0 sh -c 'while :; do :; done' &
    SPINNERS+=($!)
  done
fi
for rate in 50 200; do
  for t in nginx full meter; do
    case $t in nginx) port=$NJ;; full) port=$FULL;; meter) port=$METER;; esac
    f="$SCRATCH/open-$t-$rate.json"
    [ $t = full ] && V[full.open$rate.from]=$(date +%s%6N)
    taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --mode open --rate $rate \
      --duration "$OPEN_DUR" --warmup 1s --target "http://127.0.0.1:$UJ" \
      --target-b "http://127.0.0.1:$port" --json "$f" > /dev/null
    [ $t = full ] && V[full.open$rate.to]=$(date +%s%6N)
    V[$t.open$rate.p50]=$(field "$f" added_latency_us.p50)
    V[$t.open$rate.p99]=$(field "$f" added_latency_us.p99)
  done
  echo "  open $rate/s: added p99 nginx ${V[nginx.open$rate.p99]} µs, full ${V[full.open$rate.p99]} µs, meter ${V[meter.open$rate.p99]} µs" >&2
done
for p in "${SPINNERS[@]}"; do kill "$p"; done

PEAK_nginx=$(rss "$NGINX_PID" VmHWM)
for t in $ARMS; do pid_var="${t^^}_PID"; eval "PEAK_$t=\$(rss \${!pid_var} VmHWM)"; done
NOW_full=$(rss "$FULL_PID" VmRSS)
for t in $ARMS; do pid_var="${t^^}_PID"; kill -TERM "${!pid_var}"; wait "${!pid_var}" 2>/dev/null || true; done
AUDIT_LINES=$(cat "$SCRATCH"/audit.jsonl* | wc -l)
cp "$SCRATCH/full.err" "$OUT/full-stderr.txt"
FULL_SENT=$(( $(echo ${V[full.json.n]} ${V[full.sse.n]} | tr ' ' '+') ))
DROPPED=$(grep -o '[0-9]* audit record(s) dropped ([0-9]* in total)' "$SCRATCH/full.err" | tail -1 | grep -o '([0-9]*' | tr -d '(' || true)

# Time inside tollgate (the audit record's duration_us − upstream_us: request head in →
# response out, less the wait for the provider's response head) of the open-loop requests.
inside() { # FROM_US TO_US → "p50 / p99 / max (n)"
  cat "$SCRATCH"/audit.jsonl* | python3 -c "
import json, sys, datetime, statistics
lo, hi = int(sys.argv[1]), int(sys.argv[2])
xs = []
for line in sys.stdin:
    r = json.loads(line)
    t = datetime.datetime.fromisoformat(r['ts'].replace('Z', '+00:00')).timestamp() * 1e6
    if lo <= t <= hi and r.get('http.response.status_code') == 200:
        xs.append(r['duration_us'] - r['upstream_us'])
xs.sort()
q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
print(f'{q(0.5)} / {q(0.99)} / {xs[-1]} ({len(xs)})' if xs else 'none')
" "$1" "$2"
}
for rate in 50 200; do V[full.open$rate.inside]=$(inside "${V[full.open$rate.from]}" "${V[full.open$rate.to]}"); done
med() { median ${V[$1]}; }
ratio() { python3 -c "print(round($1/$2,2))"; }
{
  echo "# tollgate vs nginx, peer recipe ($(git rev-parse --short HEAD))"
  echo
  echo "Command: \`RUNS=$RUNS DUR=$DUR CONC=$CONC OPEN_DUR=$OPEN_DUR AWAKE=${AWAKE:-1} perf/peers.sh\` (machine and bodies in machine.md)."
  echo "Upstream: nginx \`return 200\` on core $BENCH_CORE with wrk -t1 -c$CONC; each target alone on"
  echo "core $GW_CORE, one worker; $RUNS interleaved runs of $DUR, medians. CPU per request from the"
  echo "target's /proc stat (every thread) over the run. *full* = key + team USD/token budgets,"
  echo "RPM/TPM, metering with prices, audit log to a file, ledger on disk; *meter* = key auth +"
  echo "metering only. Open-loop runs with AWAKE=${AWAKE:-1} (1: both cores kept out of idle by"
  echo "SCHED_IDLE spinners, see the script)."
  echo
  echo "| | nginx | tollgate full | tollgate meter | full / nginx | meter / nginx |"
  echo "|---|---:|---:|---:|---:|---:|"
  for kind in json sse; do
    label=$([ $kind = json ] && echo "chat req/s, c=$CONC" || echo "streams/s (34 events), c=$CONC")
    echo "| $label | $(med nginx.$kind.rps) | $(med full.$kind.rps) | $(med meter.$kind.rps) | $(ratio "$(med full.$kind.rps)" "$(med nginx.$kind.rps)")× | $(ratio "$(med meter.$kind.rps)" "$(med nginx.$kind.rps)")× |"
    echo "| CPU µs per $([ $kind = json ] && echo request || echo stream) | $(med nginx.$kind.cpu) | $(med full.$kind.cpu) | $(med meter.$kind.cpu) | $(ratio "$(med full.$kind.cpu)" "$(med nginx.$kind.cpu)")× | $(ratio "$(med meter.$kind.cpu)" "$(med nginx.$kind.cpu)")× |"
  done
  for rate in 50 200; do
    echo "| added p50 / p99 over the upstream at $rate req/s (µs) | ${V[nginx.open$rate.p50]} / ${V[nginx.open$rate.p99]} | ${V[full.open$rate.p50]} / ${V[full.open$rate.p99]} | ${V[meter.open$rate.p50]} / ${V[meter.open$rate.p99]} | | |"
  done
  for rate in 50 200; do
    echo "| time inside tollgate full at $rate req/s, p50 / p99 / max (µs, from its audit records) | | ${V[full.open$rate.inside]} | | | |"
  done
  echo "| RSS idle / peak (MB) | $((IDLE_nginx/1024)) / $((PEAK_nginx/1024)) | $((IDLE_full/1024)) / $((PEAK_full/1024)) | $((IDLE_meter/1024)) / $((PEAK_meter/1024)) | | |"
  echo
  echo "Per run — CPU µs/request: nginx${V[nginx.json.cpu]}; full${V[full.json.cpu]}; meter${V[meter.json.cpu]}."
  echo "CPU µs/stream: nginx${V[nginx.sse.cpu]}; full${V[full.sse.cpu]}; meter${V[meter.sse.cpu]}."
  echo "req/s: nginx${V[nginx.json.rps]}; full${V[full.json.rps]}; meter${V[meter.json.rps]}."
  echo "streams/s: nginx${V[nginx.sse.rps]}; full${V[full.sse.rps]}; meter${V[meter.sse.rps]}."
  echo "Non-2xx responses per run: nginx${V[nginx.json.bad]}${V[nginx.sse.bad]}; full${V[full.json.bad]}${V[full.sse.bad]}; meter${V[meter.json.bad]}${V[meter.sse.bad]}."
  echo
  echo "Audit (full): $AUDIT_LINES records written for $FULL_SENT responses wrk counted (plus the"
  echo "open-loop and warm-up requests, and requests cut when wrk stopped); dropped: ${DROPPED:-0}."
  echo "RSS of full at the end: $((NOW_full/1024)) MB."
  if [ -n "${BEFORE:-}" ]; then
    echo
    echo "## Before ($BEFORE) and after, same runs"
    echo
    echo "| | before full | after full | before meter | after meter |"
    echo "|---|---:|---:|---:|---:|"
    echo "| chat req/s | $(med bfull.json.rps) | $(med full.json.rps) | $(med bmeter.json.rps) | $(med meter.json.rps) |"
    echo "| CPU µs per request | $(med bfull.json.cpu) | $(med full.json.cpu) | $(med bmeter.json.cpu) | $(med meter.json.cpu) |"
    echo "| streams/s | $(med bfull.sse.rps) | $(med full.sse.rps) | $(med bmeter.sse.rps) | $(med meter.sse.rps) |"
    echo "| CPU µs per stream | $(med bfull.sse.cpu) | $(med full.sse.cpu) | $(med bmeter.sse.cpu) | $(med meter.sse.cpu) |"
    echo "| RSS idle / peak (MB) | $((IDLE_bfull/1024)) / $((PEAK_bfull/1024)) | $((IDLE_full/1024)) / $((PEAK_full/1024)) | $((IDLE_bmeter/1024)) / $((PEAK_bmeter/1024)) | $((IDLE_meter/1024)) / $((PEAK_meter/1024)) |"
    echo
    echo "Per run — CPU µs/request: before full${V[bfull.json.cpu]}; before meter${V[bmeter.json.cpu]}."
    echo "CPU µs/stream: before full${V[bfull.sse.cpu]}; before meter${V[bmeter.sse.cpu]}."
    echo "Before full audit drops: $(grep -o '[0-9]* audit record(s) dropped ([0-9]* in total)' "$SCRATCH/bfull.err" | tail -1 | grep -o '([0-9]*' | tr -d '(' || true)"
  fi
} > "$OUT/peers.md"
cat "$OUT/peers.md"
