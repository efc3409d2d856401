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

# field FILE PATH: a value from a tollgate-load --json report (PATH like targets.0.ttft_us.p50).
field() { python3 -c "
import json,sys
d=json.load(open(sys.argv[1])); e=d
for k in sys.argv[2].split('.'):
    e = e[int(k)] if k.isdigit() else e[k]
print(round(e,2) if isinstance(e,float) else e)" "$1" "$2"; }

# gateway_config PORT MOCK_PORT KEY_HASH: a one-worker gateway in front of the mock on
# MOCK_PORT, model gpt-4o-mini, one key (bench); callers append [audit] etc.
gateway_config() {
  cat <<TOML
[server]
listen = "127.0.0.1:$1"
workers = 1
pin_workers = false
[[providers]]
name = "mock"
kind = "openai_compatible"
base_url = "http://127.0.0.1:$2/v1"
[[models]]
name = "gpt-4o-mini"
[[models.deployments]]
provider = "mock"
[[keys]]
id = "bench"
sha256 = "$3"
TOML
}

# run_dirs: OUT (this commit's results directory, created) and SCRATCH (a temporary directory
# removed at exit, when every background job is killed too); raises the open-file limit.
run_dirs() {
  OUT="perf/results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)"
  mkdir -p "$OUT"
  SCRATCH=$(mktemp -d)
  trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$SCRATCH"' EXIT
  ulimit -n 65536 || true
}

# median X...: the median of the arguments.
median() { python3 -c "import statistics,sys; print(round(statistics.median(float(x) for x in sys.argv[1:]),2))" "$@"; }

# make_certs DIR: a CA (DIR/ca.pem) and a certificate for 127.0.0.1 it signed (DIR/cert.pem,
# DIR/key.pem), P-256, valid two days — rustls accepts no self-signed leaf.
make_certs() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$1/ca.key" -out "$1/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$1/key.pem" -out "$1/req.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' > "$1/ext.cnf"
  openssl x509 -req -in "$1/req.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" \
    -CAcreateserial -days 2 -extfile "$1/ext.cnf" -out "$1/cert.pem" 2>/dev/null
}
