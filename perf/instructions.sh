#!/usr/bin/env bash
# Instructions per request under callgrind: the noise-free complement to versus.sh's CPU time
# when the machine is busy (a shared VM's CPU figures can drift ±20% between runs; an
# instruction count does not). Each arm runs a one-worker gateway under callgrind in front of
# the mock, is warmed up, has its counters zeroed, serves DUR of c=CONC JSON load, and is
# dumped; the figure is the worker thread's instructions (Ir) per completed request.
#   OLD=/tmp/old-target/release/tollgate perf/instructions.sh
#   OLD=target/release/tollgate NEW_EXTRA='[admin]\nlisten = "127.0.0.1:0"\nmetrics_public = true' \
#     perf/instructions.sh
# KEY_EXTRA adds lines to the bench key's entry in both arms (quotas, as in versus.sh);
# OLD_EXTRA / NEW_EXTRA add config lines to one arm (as in versus.sh). Instructions are not
# time: a cache miss costs no more than an add here. Read it beside versus.sh.
# --fair-sched=yes: without it, a worker parked in io_uring_enter can hold valgrind's thread
# lock and starve the others (the gateway then never finishes starting).
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
DUR=${DUR:-5s}
CONC=${CONC:-8}
: "${OLD:?set OLD to the baseline tollgate binary}"

cargo build --release -q --workspace
BIN=target/release
NEW=${NEW:-$BIN/tollgate}
run_dirs

MOCK=18431
$BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 16 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
KEY=sk-bench
HASH=$($BIN/tollgate hash-key $KEY)

# arm NAME BINARY EXTRA PORT: prints "<requests> <worker Ir>".
arm() {
  local name=$1 bin=$2 extra=$3 port=$4 dir="$SCRATCH/$1"
  mkdir -p "$dir"
  { gateway_config "$port" $MOCK "$HASH"; printf "${KEY_EXTRA:-}\n"; printf '[audit]\noutput = "off"\n'; printf "$extra\n"; } \
    > "$dir/gw.toml"
  local exe
  exe=$(realpath "$bin")
  (cd "$dir" && exec valgrind --tool=callgrind --fair-sched=yes --separate-threads=yes --callgrind-out-file=cg.out \
    "$exe" serve --config gw.toml > gw.out 2>&1) &
  local pid=$!
  until grep -q listening "$dir/gw.out" 2>/dev/null; do sleep 0.2; done
  local load=(--quiet --keys $KEY --target "http://127.0.0.1:$port" --concurrency "$CONC" --warmup 0s)
  $BIN/tollgate-load "${load[@]}" --duration 2s > /dev/null
  callgrind_control --zero "$pid" > /dev/null 2>&1
  $BIN/tollgate-load "${load[@]}" --duration "$DUR" --json "$dir/load.json" > /dev/null
  callgrind_control --dump "$pid" > /dev/null 2>&1
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # The worker thread is the busiest; its dump after the zeroing is the last file for it.
  local ir
  ir=$(for f in "$dir"/cg.out.1-*; do
         grep -m1 '^summary:\|^totals:' "$f" | awk -v f="$f" '{print $2, f}'
       done | sort -n | tail -1 | cut -d' ' -f1)
  echo "$(field "$dir/load.json" targets.0.ok) $ir"
}

read -r o_req o_ir < <(arm old "$OLD" "${OLD_EXTRA:-}" 18432)
read -r n_req n_ir < <(arm new "$NEW" "${NEW_EXTRA:-}" 18433)
o=$((o_ir / o_req)); n=$((n_ir / n_req))
{
  echo "# Instructions per request ($(git rev-parse --short HEAD))"
  echo
  echo "One worker under callgrind, c=$CONC JSON requests for $DUR after a 2 s warmup; the worker"
  echo "thread's instructions (Ir) per completed request. Command: \`OLD=$OLD perf/instructions.sh\`."
  [ -n "${OLD_EXTRA:-}" ] && echo "Old arm's config also has: \`${OLD_EXTRA}\`."
  [ -n "${NEW_EXTRA:-}" ] && echo "New arm's config also has: \`${NEW_EXTRA}\`."
  echo
  echo "| | old | new |"
  echo "|---|---|---|"
  echo "| requests measured | $o_req | $n_req |"
  echo "| worker Ir per request | $o | $n |"
  echo "| change | | $(python3 -c "print(f'{($n-$o)/$o*100:+.2f}%')") |"
} > "$OUT/instructions.md"
cat "$OUT/instructions.md"
