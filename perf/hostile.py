#!/usr/bin/env python3
"""Hostile clients for perf/overload.sh, until killed.

  hostile.py slowloris N PORT   N connections, each holding half a request head
  hostile.py tls-flood PORT     threads opening TLS connections without pause: handshakes
                                completed then dropped, ClientHellos cut after 8 bytes,
                                300 bytes of garbage; two `openssl s_time -new` loops
Prints one line once the attack is in place ("held N" / "flooding"), then counts to stderr
at exit.
"""
import os, signal, socket, ssl, sys, threading

def slowloris(n, port):
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-type: appl")
        held.append(s)
    print(f"held {len(held)}", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])

def tls_flood(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    hello = None
    counts = [0, 0, 0]
    stop = threading.Event()

    def worker(kind):
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port))
                if kind == 0:
                    ctx.wrap_socket(s).close()
                elif kind == 1:
                    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01")
                else:
                    s.sendall(os.urandom(300))
                s.close()
                counts[kind] += 1
            except OSError:
                pass

    threads = [threading.Thread(target=worker, args=(k % 3,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    # Complete handshakes at C speed too: `openssl s_time -new` connects, handshakes and
    # closes in a loop, for a second at a time (it reports its count when it ends).
    import re, subprocess
    s_time = [0]

    def s_time_loop():
        while not stop.is_set():
            out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                                  "-time", "1"], capture_output=True, text=True).stdout
            m = re.search(r"(\d+) connections in [\d.]+s", out)
            s_time[0] += int(m.group(1)) if m else 0

    loops = [threading.Thread(target=s_time_loop, daemon=True) for _ in range(2)]
    for t in loops:
        t.start()
    print("flooding", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    stop.set()
    for t in loops:
        t.join()
    print(f"handshakes {counts[0] + s_time[0]} ({s_time[0]} by openssl s_time), "
          f"cut ClientHellos {counts[1]}, garbage {counts[2]}", file=sys.stderr)

signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
if sys.argv[1] == "slowloris":
    slowloris(int(sys.argv[2]), int(sys.argv[3]))
else:
    tls_flood(int(sys.argv[2]))
