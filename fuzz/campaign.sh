#!/usr/bin/env bash
# Runs every target (or those named) under AFL++ for SECS seconds each, JOBS at a time, and
# prints a table of executions, coverage and crashes from each run's fuzzer_stats. Crashes
# are copied to fuzz/crashes/<target>/ for triage; the queue is left in OUT/<target>.
#   SECS=300 JOBS=2 fuzz/campaign.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")"
SECS=${SECS:-300}
JOBS=${JOBS:-2}
OUT=${OUT:-/tmp/afl}
# Its own target directory: instrumented builds would otherwise replace the release ones.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-../target/afl}
if [ -z "${BIN:-}" ]; then
  cargo afl build --release --features afl -q
  BIN=$CARGO_TARGET_DIR/release/tollgate-fuzz
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=($(ls corpus))
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
run() {
  local t=$1
  rm -rf "$OUT/$t"; mkdir -p "$OUT/$t"
  cargo afl fuzz -V "$SECS" -i "corpus/$t" -o "$OUT/$t" -- "$BIN" "$t" > "$OUT/$t.log" 2>&1 || true
  if ls "$OUT/$t/default/crashes/"id* > /dev/null 2>&1; then
    mkdir -p "crashes/$t"
    for c in "$OUT/$t/default/crashes/"id*; do cp "$c" "crashes/$t/$(basename "$c" | cut -c1-9 | tr ':' '-')"; done
  fi
}
running=0
for t in "${targets[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [ $running -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait
echo "| target | wall s | executions | execs/s | edges found | bitmap coverage | corpus | crashes |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  s="$OUT/$t/default/fuzzer_stats"
  [ -f "$s" ] || { echo "| $t | – | did not start (see $OUT/$t.log) | | | | | |"; continue; }
  v() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$s"; }
  echo "| $t | $(( $(v last_update) - $(v start_time) )) | $(v execs_done) | $(v execs_per_sec) | $(v edges_found) / $(v total_edges) | $(v bitmap_cvg) | $(v corpus_count) | $(v saved_crashes) |"
done
