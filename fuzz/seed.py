#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the provider captures in
tests/fixtures/corpus, the configs in config/ and hand-written heads and requests. Run from
the repository root; AFL++ grows each corpus from these (fuzz/README.md)."""
import hashlib, json, os, struct, zlib, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")
DIALECT = {"openai": 0, "anthropic": 1, "gemini": 2, "responses": 3, "bedrock": 4}

def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

def captures():
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/corpus/*/*"))):
        ext = p.rsplit(".", 1)[-1]
        if ext not in ("json", "sse", "bin"):
            continue
        prov = os.path.basename(os.path.dirname(p))
        name = os.path.basename(p)
        d = DIALECT["responses"] if name.startswith("responses") else DIALECT.get(prov, 0)
        yield name, d, ext != "json", open(p, "rb").read()

HEADS = [
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nAuthorization: Bearer k\r\n\r\nhello",
    b"POST /v1/messages HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /v1/models?x=1 HTTP/1.1\r\nhost: a\r\nAccept: */*\r\n\r\n",
    b"POST /v1/responses HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nX-Empty:\r\n\r\n",
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"a\":\"b\"}\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\ndata\r\n3;ext=1\r\n: x\r\n0\r\ntrailer: y\r\n\r\nnext",
    b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 0\r\n\r\n",
    b"1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
]
REQUESTS = {
    "openai": {"model": "m", "max_tokens": 64, "temperature": 0.2, "stream": True,
               "stream_options": {"include_usage": True},
               "messages": [{"role": "system", "content": "be brief"},
                            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                            {"role": "tool", "tool_call_id": "c1", "content": "2"}],
               "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
    "anthropic": {"model": "m", "max_tokens": 64, "system": "be brief",
                  "messages": [{"role": "user", "content": "hi"},
                               {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"x": 1}}]},
                               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "2"}]}],
                  "tools": [{"name": "f", "input_schema": {"type": "object"}}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
               "systemInstruction": {"parts": [{"text": "be brief"}]},
               "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5},
               "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}]},
    "responses": {"model": "m", "input": [{"role": "user", "content": "hi"}],
                  "instructions": "be brief", "max_output_tokens": 64,
                  "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}]},
    "bedrock": {"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "system": [{"text": "be brief"}], "inferenceConfig": {"maxTokens": 64}},
}

def leb(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80); v >>= 7
    out.append(v)
    return bytes(out)

def record(kind, nums, names=None, last=None):
    p = b"".join(leb(n) for n in nums)
    if last is not None:
        p += bytes([1 if last else 0])
    for n in names or []:
        p += bytes([len(n)]) + n
    rest = struct.pack("<H", len(p)) + bytes([kind]) + p
    return struct.pack("<I", zlib.crc32(rest) & 0xFFFFFFFF) + rest

def ledger_line(payload):
    b = json.dumps(payload, separators=(",", ":")).encode()
    return hashlib.sha256(b).hexdigest()[:16].encode() + b" " + b + b"\n"

def main():
    for i, h in enumerate(HEADS):
        put("http_request_head", f"head{i}", h)
    for i, r in enumerate(RESPONSES):
        put("http_response_body", f"resp{i}", bytes([i * 37]) + r)
    for name, d, stream, data in captures():
        if len(data) > 200_000:
            continue
        if name.endswith(".bin"):
            put("eventstream", name, b"\x07" + data)
        elif stream:
            put("sse", name, b"\x07" + data)
        else:
            put("json_scan", name, data)
        put("meter", name, bytes([d | (0x80 if stream else 0)]) + data)
        for client in range(5):
            if client == d:
                continue
            s = client + 5 * d
            if stream:
                put("translate_stream", f"{client}-{name}", bytes([s]) + data)
            else:
                put("translate_answer", f"{client}-{name}", bytes([s]) + data)
    for dname, body in REQUESTS.items():
        raw = json.dumps(body).encode()
        put("json_scan", f"req-{dname}", raw)
        for prov in range(5):
            s = DIALECT[dname] + 5 * prov
            if prov != DIALECT[dname]:
                put("translate_request", f"{dname}-{prov}", bytes([s | 0x40]) + raw)
    for p in sorted(glob.glob(os.path.join(ROOT, "config/*.toml"))):
        put("config", os.path.basename(p), open(p, "rb").read())
    a, t = (b"a", b"t")
    seg = (record(1, [1, 86400 * 3, 10, 20, 30], [a, t])
           + record(2, [1, 86400 * 3, 1, 0, 9, 19, 0, 0, 0, 28], [a, t], last=True)
           + record(1, [2, 86400 * 3, 5, 5, 5], [a, b""])
           + record(3, [2])
           + record(1, [3, 86400 * 3, 7, 7, 7], [b"k", b""]))
    put("journal", "segment", b"\x05" + seg + b"\x00" * 32)
    put("journal", "torn", b"\x02" + seg[:-5] + b"\x00" * 32)
    put("ledger", "journal", b"\x01" + seg + b"\x00" * 64)
    log = (ledger_line({"t": 259200, "s": "key:a", "r": 1, "i": 10, "o": 20, "c": 30})
           + ledger_line({"t": 259200, "s": "key:a", "r": 1, "i": 1, "j": "x-0"})
           + ledger_line({"t": 259200, "s": "#mark", "m": "x-0", "p": 40})
           + ledger_line({"t": 259200, "s": "team:t", "r": 2, "j": "x-0"}))
    put("ledger", "log", b"\x00" + log + b"0123456789abcdef {\"t\":1")

main()
