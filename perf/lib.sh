# Shared by the perf scripts: source it after `cd` to the repository root.

# machine_header: the common lines of machine.md (the caller appends its own, e.g. pinning).
machine_header() {
  echo "# Machine"
  echo
  echo "- date (UTC): $(date -u +%FT%TZ)"
  echo "- commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- src loadtest || echo ' (with uncommitted changes)')"
  echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) × $(nproc)"
  echo "- memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "- kernel: $(uname -r)"
  echo "- rustc: $(rustc --version)"
  echo "- nginx: $(nginx -v 2>&1 | cut -d/ -f2)"
}

# median X...: the median of the arguments.
median() { python3 -c "import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:]),2))" "$@"; }
