#!/usr/bin/env bash
# The cost of TLS on each side (issue 7). Egress: the same gateway config in front of the mock
# over plain HTTP and over TLS (a CA and certificate made here with openssl; the gateway trusts the
# CA through `ca_file`). One worker per gateway on GW_CORE; both mocks and the load generator
# on BENCH_CORE; runs interleaved; medians of RUNS. Connections are pooled, so the steady state
# pays record encryption, not handshakes; the c=1 A/B run reports added TTFT, TLS vs plain.
# Ingress: a third gateway terminates TLS from the load generator (keep-alive connections).
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

make_certs "$SCRATCH"

MP=18431; MT=18432; GP=18433; GT=18434; GI=18435
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
gateway_config $GI $MP "$HASH" | sed "s|^workers = 1|&\ntls_cert = \"$SCRATCH/cert.pem\"\ntls_key = \"$SCRATCH/key.pem\"|" > "$SCRATCH/ingress.toml"
for f in plain tls ingress; do printf '[audit]\noutput = "off"\n' >> "$SCRATCH/$f.toml"; done
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/plain.toml" > "$SCRATCH/plain.out" 2>&1 &
P_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/tls.toml" > "$SCRATCH/tls.out" 2>&1 &
T_PID=$!
taskset -c "$GW_CORE" $BIN/tollgate serve --config "$SCRATCH/ingress.toml" > "$SCRATCH/ingress.out" 2>&1 &
I_PID=$!
until grep -q listening "$SCRATCH/plain.out" 2>/dev/null && grep -q listening "$SCRATCH/tls.out" 2>/dev/null \
  && grep -q listening "$SCRATCH/ingress.out" 2>/dev/null; do sleep 0.05; done

load() {
  taskset -c "$BENCH_CORE" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s "$@" > /dev/null
}
declare -A V
for i in $(seq "$RUNS"); do
  f="$SCRATCH/ab$i.json"
  load --target "http://127.0.0.1:$GP" --target-b "http://127.0.0.1:$GT" --concurrency 1 --stream --json "$f"
  V[a50]+=" $(field "$f" targets.0.ttft_us.p50)"; V[b50]+=" $(field "$f" targets.1.ttft_us.p50)"
  V[a99]+=" $(field "$f" targets.0.ttft_us.p99)"; V[b99]+=" $(field "$f" targets.1.ttft_us.p99)"
  f="$SCRATCH/abi$i.json"
  load --target "http://127.0.0.1:$GP" --target-b "https://127.0.0.1:$GI" --ca "$SCRATCH/ca.pem" --concurrency 1 --stream --json "$f"
  V[ia50]+=" $(field "$f" targets.0.ttft_us.p50)"; V[ib50]+=" $(field "$f" targets.1.ttft_us.p50)"
  for arm in plain tls ingress; do
    url="http://127.0.0.1:$GP"; pid=$P_PID
    [ $arm = tls ] && url="http://127.0.0.1:$GT" && pid=$T_PID
    [ $arm = ingress ] && url="https://127.0.0.1:$GI" && pid=$I_PID
    f="$SCRATCH/c-$arm$i.json"
    load --target "$url" --ca "$SCRATCH/ca.pem" --concurrency "$CONC" --watch-pid "$pid" --json "$f"
    V[$arm.cpu]+=" $(field "$f" targets.0.watched_cpu.us_per_request)"
    V[$arm.rps]+=" $(field "$f" targets.0.throughput_rps)"
  done
  echo "  run $i: plain $(echo ${V[plain.cpu]} | awk '{print $NF}') µs/req, tls egress $(echo ${V[tls.cpu]} | awk '{print $NF}'), tls ingress $(echo ${V[ingress.cpu]} | awk '{print $NF}')" >&2
done
grep -q "error\|refused" "$SCRATCH/tls.out" && echo "warning: errors in the TLS gateway's log" >&2 || true
med() { median ${V[$1]}; }
{
  echo "# TLS on each side of the gateway vs plain HTTP ($(git rev-parse --short HEAD))"
  echo
  echo "Same gateway config; 'egress': upstream over TLS (pooled connections); 'ingress': clients"
  echo "over TLS (keep-alive). One worker per gateway. Medians of $RUNS interleaved runs, $DUR each."
  echo "Command: \`RUNS=$RUNS DUR=$DUR perf/tls.sh\`."
  echo
  echo "| | plain | TLS egress | TLS ingress |"
  echo "|---|---|---|---|"
  echo "| TTFT p50 / p99 through the gateway, c=1 stream (µs) | $(med a50) / $(med a99) | $(med b50) / $(med b99) | |"
  echo "| TTFT p50, c=1 stream, ingress A/B (µs) | $(med ia50) | | $(med ib50) |"
  echo "| gateway CPU per request, c=$CONC (µs) | $(med plain.cpu) | $(med tls.cpu) | $(med ingress.cpu) |"
  echo "| throughput, c=$CONC (req/s) | $(med plain.rps) | $(med tls.rps) | $(med ingress.rps) |"
  echo
  echo "The mocks and the load generator share the bench core, so TLS arms also pay for TLS there"
  echo "(throughput); the gateway CPU line is the gateway's alone. Per-run CPU plain:${V[plain.cpu]};"
  echo "egress:${V[tls.cpu]}; ingress:${V[ingress.cpu]}."
} > "$OUT/tls.md"
cat "$OUT/tls.md"
