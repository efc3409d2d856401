#!/usr/bin/env bash
# What a connection and a stream cost in memory: the gateway's RSS (one worker, every feature
# on: key and team budgets, RPM/TPM, prices, audit to a file, ledger on disk) idle, with
# CONNS idle keep-alive connections held open, and with STREAMS streams in flight at once
# (the mock paced 50 ms per token, so they stay open), each after one request on every
# connection. Results: perf/results/<date>-<sha>/memory.md.
#   CONNS=10000 STREAMS=1000 perf/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
CONNS=${CONNS:-10000}
STREAMS=${STREAMS:-1000}
cargo build --release -q --workspace
BIN=target/release
run_dirs
MOCK=18701; GW=18711
KEY=sk-bench
{ machine_header; } > "$OUT/machine.md"
taskset -c 1 $BIN/tollgate-mock --listen 127.0.0.1:$MOCK --workers 1 --tokens 40 --itl-ms 50 > "$SCRATCH/mock.out" &
until grep -q listening "$SCRATCH/mock.out" 2>/dev/null; do sleep 0.05; done
mkdir -p "$SCRATCH/ledger"
{
  gateway_config $GW $MOCK "$($BIN/tollgate hash-key $KEY)" | sed 's/^id = "bench"/id = "bench"\nteam = "t"\nbudget = { usd = 1000000.0, tokens = 100000000000 }\nrpm = 100000000\ntpm = 100000000000/'
  cat <<TOML
[limits]
max_connections = $((CONNS + STREAMS + 100))
[audit]
output = "$SCRATCH/audit.jsonl"
[ledger]
dir = "$SCRATCH/ledger"
[[teams]]
name = "t"
budget = { usd = 1000000.0, tokens = 100000000000 }
rpm = 100000000
tpm = 100000000000
TOML
} > "$SCRATCH/gw.toml"
taskset -c 0 $BIN/tollgate serve --config "$SCRATCH/gw.toml" > "$SCRATCH/gw.out" 2>&1 &
GW_PID=$!
until grep -q listening "$SCRATCH/gw.out" 2>/dev/null; do sleep 0.05; done
python3 - "$GW" "$GW_PID" "$CONNS" "$STREAMS" "$KEY" > "$SCRATCH/mem.txt" <<'PY'
import socket, sys, json
port, pid, conns, streams, key = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def rss():
    return int([l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0])
def req(stream):
    body = json.dumps({"model": "gpt-4o-mini", "stream": stream, "max_tokens": 40,
                       "messages": [{"role": "user", "content": "hello"}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer " + key.encode()
            + b"\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)
def read_response(s):
    # Reads one whole JSON response (Content-Length framing).
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < n:
        rest += s.recv(65536)
    return head.startswith(b"HTTP/1.1 200")
s0 = socket.create_connection(("127.0.0.1", port)); s0.sendall(req(False)); assert read_response(s0)
idle = rss()
held = []
for i in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    held.append(s)
# One short request on a sample of them (a served connection keeps its buffers).
for s in held[:1000]:
    s.sendall(req(False))
for s in held[:1000]:
    assert read_response(s)
with_conns = rss()
open_streams = []
for i in range(streams):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(req(True))
    open_streams.append(s)
# Wait until every stream has started (its head and first event arrived).
for s in open_streams:
    got = b""
    while b"data:" not in got:
        got += s.recv(4096)
with_streams = rss()
print(idle, with_conns, with_streams)
PY
read -r IDLE WITH_CONNS WITH_STREAMS < "$SCRATCH/mem.txt"
kill "$GW_PID"
{
  echo "# Memory per connection and per stream ($(git rev-parse --short HEAD))"
  echo
  echo "Command: \`CONNS=$CONNS STREAMS=$STREAMS perf/memory.sh\`. One worker, every feature on."
  echo
  echo "| | RSS (KiB) | per unit |"
  echo "|---|---:|---:|"
  echo "| idle, after one request | $IDLE | |"
  echo "| + $CONNS idle keep-alive connections (1,000 of them served a request) | $WITH_CONNS | $(( (WITH_CONNS - IDLE) * 1024 / CONNS )) B per connection |"
  echo "| + $STREAMS streams in flight | $WITH_STREAMS | $(( (WITH_STREAMS - WITH_CONNS) * 1024 / STREAMS )) B per stream |"
} > "$OUT/memory.md"
cat "$OUT/memory.md"
