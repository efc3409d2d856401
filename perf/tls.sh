#!/usr/bin/env bash
# The cost of TLS to the provider (issue 7): the same gateway config in front of the mock over
# plain HTTP and over TLS (a CA and certificate made here with openssl; the gateway trusts the
# CA through `ca_file`). One worker per gateway on GW_CORE; both mocks and the load generator
# on BENCH_CORE; runs interleaved; medians of RUNS. Connections are pooled, so the steady state
# pays record encryption, not handshakes; the c=1 A/B run reports added TTFT, TLS vs plain.
#   RUNS=5 DUR=3s perf/tls.sh
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

# A CA and a certificate for 127.0.0.1 it signed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$SCRATCH/ca.key" -out "$SCRATCH/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$SCRATCH/key.pem" -out "$SCRATCH/req.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$SCRATCH/ext.cnf"
openssl x509 -req -in "$SCRATCH/req.csr" -CA "$SCRATCH/ca.pem" -CAkey "$SCRATCH/ca.key" \
  -CAcreateserial -days 2 -extfile "$SCRATCH/ext.cnf" -out "$SCRATCH/cert.pem" 2>/dev/null

MP=18431; MT=18432; GP=18433; GT=18434
{
  machine_header
  echo "- pinning: gateways on core $GW_CORE; mocks + load generator on core $BENCH_CORE"
  echo "- TLS: $(openssl version | cut -d' ' -f1-2) made a P-256 CA and certificate; rustls (ring) on both ends"
} > "$OUT/machine.md"
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MP --workers 1 > "$SCRATCH/mp.out" &
taskset -c "$BENCH_CORE" $BIN/tollgate-mock --listen 127.0.0.1:$MT --workers 1 \
  --tls-cert "$SCRATCH/cert.pem" --tls-key "$SCRATCH/key.pem" > "$SCRATCH/mt.out" &
until grep -q listening "$SCRATCH/mp.out" 2>/dev/null && grep -q listening "$SCRATCH/mt.out" 2>/dev/null; do sleep 0.05; done

KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
gateway_config $GP $MP "$HASH" > "$SCRATCH/plain.toml"
gateway_config $GT $MT "$HASH" | sed "s|http://127.0.0.1:$MT/v1|https://127.0.0.1:$MT/v1\"\nca_file = \"$SCRATCH/ca.pem|" > "$SCRATCH/tls.toml"
for f in plain tls; do printf '[audit]\noutput = "off"\n' >> "$SCRATCH/$f.toml"; done
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/plain.toml" > "$SCRATCH/plain.out" 2>&1 &
P_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/tls.toml" > "$SCRATCH/tls.out" 2>&1 &
T_PID=$!
until grep -q listening "$SCRATCH/plain.out" 2>/dev/null && grep -q listening "$SCRATCH/tls.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
declare -A V
for i in $(seq "$RUNS"); do
  f="$SCRATCH/ab$i.json"
  load --target "http://127.0.0.1:$GP" --target-b "http://127.0.0.1:$GT" --concurrency 1 --stream --json "$f"
  V[a50]+=" $(field "$f" targets.0.ttft_us.p50)"; V[b50]+=" $(field "$f" targets.1.ttft_us.p50)"
  V[a99]+=" $(field "$f" targets.0.ttft_us.p99)"; V[b99]+=" $(field "$f" targets.1.ttft_us.p99)"
  for arm in plain tls; do
    port=$GP; pid=$P_PID
    [ $arm = tls ] && port=$GT && pid=$T_PID
    f="$SCRATCH/c-$arm$i.json"
    load --target "http://127.0.0.1:$port" --concurrency "$CONC" --watch-pid "$pid" --json "$f"
    V[$arm.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
    V[$arm.rps]+=" $(field "$f" targets.0.throughput_rps)"
  done
  echo "  run $i: plain $(echo ${V[plain.cpu]} | awk '{print $NF}') µs/req, tls $(echo ${V[tls.cpu]} | awk '{print $NF}') µs/req" >&2
done
grep -q "error\|refused" "$SCRATCH/tls.out" && echo "warning: errors in the TLS gateway's log" >&2 || true
med() { median ${V[$1]}; }
{
  echo "# TLS to the provider vs plain HTTP ($(git rev-parse --short HEAD))"
  echo
  echo "Same gateway config, upstream over plain HTTP vs TLS (pooled connections). One worker per"
  echo "gateway. Medians of $RUNS interleaved runs, $DUR each. Command: \`RUNS=$RUNS DUR=$DUR perf/tls.sh\`."
  echo
  echo "| | plain | TLS |"
  echo "|---|---|---|"
  echo "| TTFT p50 / p99 through the gateway, c=1 stream (µs) | $(med a50) / $(med a99) | $(med b50) / $(med b99) |"
  echo "| gateway CPU per request, c=$CONC (µs) | $(med plain.cpu) | $(med tls.cpu) |"
  echo "| throughput, c=$CONC (req/s) | $(med plain.rps) | $(med tls.rps) |"
  echo
  echo "Both mocks run on the bench core, so the TLS arm's mock also pays for TLS; the gateway CPU"
  echo "line is the gateway's alone. Per-run CPU plain:${V[plain.cpu]}; TLS:${V[tls.cpu]}."
} > "$OUT/tls.md"
cat "$OUT/tls.md"
