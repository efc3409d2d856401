#!/usr/bin/env bash
# How tollgate scales with cores.
# 1. Throughput: for N = 1 … (cores − 1) workers, the gateway on cores 0..N-1 (pinned, one
#    worker per core) and the mock + load generator on the remaining cores; closed loop at
#    c = 64·N; req/s and CPU µs per request (gateway /proc times). On a 2-core machine only
#    N = 1 fits and the script says so; on a bigger one it runs every N.
# 2. Nothing shared: instructions per request on each worker thread, counted by callgrind
#    (which runs threads one at a time, so this needs no spare cores) for N = 1, 2 and 4
#    workers under the same load. A lock, a shared atomic or a shared cache line on the
#    request path would show as instructions (spins, retries) growing with N; the workers'
#    instruction counts per request should stay flat.
#   [CG_WORKERS="1 2 4"] perf/scale.sh        → perf/results/<date>-<sha>/scale.md
# (Under valgrind, a gateway with 4 workers once hung in thread creation at start; if it
# does, CG_WORKERS="1 2" still shows whether the count grows.)
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
DUR=${DUR:-5s}
CORES=$(nproc)
cargo build --release -q --workspace
BIN=target/release
run_dirs
MOCK=18601; GW=18611
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)
{
  machine_header
  echo "- cores: $CORES"
} > "$OUT/machine.md"

config() { # WORKERS PIN
  gateway_config $GW $MOCK "$HASH" | sed -e "s/^workers = 1/workers = $1/" -e "s/^pin_workers = false/pin_workers = $2/"
  printf '[audit]\noutput = "off"\n'
}
start_mock() { # CORES
  taskset -c "$1" $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 16 > "$SCRATCH/mock.out" &
  MOCK_PID=$!
  until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
}

echo "1. throughput by workers" >&2
ROWS=()
MAXN=$((CORES - 1))
[ "$MAXN" -lt 1 ] && MAXN=1
for n in $(seq 1 "$MAXN"); do
  gw_cores="0-$((n - 1))"; load_cores="$n-$((CORES - 1))"
  [ "$CORES" -lt 2 ] && load_cores=0
  start_mock "$load_cores"
  config "$n" false > "$SCRATCH/gw.toml"
  taskset -c "$gw_cores" $BIN/tollgate serve --config "$SCRATCH/gw.toml" > "$SCRATCH/gw.out" 2>&1 &
  GW_PID=$!
  until grep -q listening "$SCRATCH/gw.out" 2>/dev/null; do sleep 0.05; done
  f="$SCRATCH/scale-$n.json"
  taskset -c "$load_cores" $BIN/tollgate-load --quiet --keys $KEY --duration "$DUR" --warmup 1s \
    --target "http://127.0.0.1:$GW" --concurrency $((64 * n)) --watch-pid "$GW_PID" --json "$f" > /dev/null
  ROWS+=("| $n | $gw_cores | $load_cores | $(field "$f" targets.0.throughput_rps) | $(field "$f" targets.0.watched_cpu.us_per_request) |")
  kill "$GW_PID" "$MOCK_PID"; wait "$GW_PID" "$MOCK_PID" 2>/dev/null || true
done

echo "2. instructions per request per worker (callgrind)" >&2
IROWS=()
start_mock 0
for n in ${CG_WORKERS:-1 2 4}; do
  config "$n" false > "$SCRATCH/cg.toml"
  rm -f "$SCRATCH"/cg.out*
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$SCRATCH/cg.out" \
    $BIN/tollgate serve --config "$SCRATCH/cg.toml" > "$SCRATCH/cg.log" 2>&1 &
  VG=$!
  until grep -q listening "$SCRATCH/cg.log" 2>/dev/null; do sleep 0.2; done
  # Warm every worker's pool, then count only the measured window.
  $BIN/tollgate-load --quiet --keys $KEY --duration 2s --warmup 0s --target "http://127.0.0.1:$GW" \
    --concurrency $((8 * n)) > /dev/null
  callgrind_control -z "$VG" > /dev/null
  f="$SCRATCH/cg-$n.json"
  $BIN/tollgate-load --quiet --keys $KEY --duration 10s --warmup 0s --target "http://127.0.0.1:$GW" \
    --concurrency $((8 * n)) --json "$f" > /dev/null
  callgrind_control -d "$VG" > /dev/null
  # The dump is written thread by thread: wait until the count of complete parts holds still.
  parts() { grep -l '^totals:' "$SCRATCH"/cg.out.*-* 2>/dev/null | wc -l; }
  until [ "$(parts)" -gt "$n" ]; do sleep 0.5; done
  last=0; while [ "$(parts)" != "$last" ]; do last=$(parts); sleep 2; done
  kill -9 "$VG" 2>/dev/null || true; wait "$VG" 2>/dev/null || true
  reqs=$(field "$f" targets.0.ok)
  per=$(python3 - "$SCRATCH" "$reqs" <<'PY'
import glob, re, sys
d, reqs = sys.argv[1], int(sys.argv[2])
workers = []
for path in glob.glob(f"{d}/cg.out.*-*"):
    text = open(path, errors="replace").read()
    total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    # A worker thread is the one whose part holds the connection loop.
    if total and "tollgate::worker::conn::serve" in text:
        workers.append(int(total.group(1)))
all_ = sum(workers)
print(f"{len(workers)} {round(all_ / reqs)}")
PY
)
  read -r nthreads total_per <<< "$per"
  IROWS+=("| $n | $nthreads | $reqs | $total_per |")
done
kill "$MOCK_PID" 2>/dev/null || true

{
  echo "# Scaling with cores ($(git rev-parse --short HEAD))"
  echo
  echo "Command: \`perf/scale.sh\` (machine in machine.md)."
  [ "$CORES" -le 2 ] && echo "This machine has $CORES cores: the throughput table has one row (1 worker, the load on the other core); run it on a bigger machine for the curve."
  echo
  echo "## Throughput (closed loop, c = 64 × workers, the mock answering 16 tokens)"
  echo
  echo "| workers | gateway cores | mock + load cores | req/s | CPU µs per request |"
  echo "|---:|---|---|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "## Instructions per request on the worker threads (callgrind, 10 s at c = 8 × workers)"
  echo
  echo "| workers | worker threads counted | requests | instructions per request on the workers |"
  echo "|---:|---:|---:|---:|"
  printf '%s\n' "${IROWS[@]}"
  echo
  echo "(SO_REUSEPORT spreads connections unevenly, so a per-worker split would need per-worker"
  echo "request counts; the sum over the workers per request is what would grow with sharing.)"
  echo
  echo "What workers share on the request path: nothing they write. Each owns its connections,"
  echo "pool, router, quotas' allowances, counters, spend sums and audit batch; the config"
  echo "snapshot is read through a per-worker slot (no reference count written per request);"
  echo "cross-thread traffic is per tick or per batch (rtrb rings to the coordinator, ~32 KiB"
  echo "audit batches to the writer), never per request."
} > "$OUT/scale.md"
cat "$OUT/scale.md"
