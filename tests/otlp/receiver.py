"""An OTLP/HTTP trace receiver for tests/traces.rs: decodes each export request with the
official OpenTelemetry protobuf definitions (the opentelemetry-proto package) and appends one
JSON line per span to the file given as its argument. Prints its port, then serves until
killed. Answers 503 to the first N requests when told to (argv[2]), to exercise retries."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OUT = sys.argv[1]
FAIL_FIRST = int(sys.argv[2]) if len(sys.argv) > 2 else 0
seen = {"requests": 0}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        seen["requests"] += 1
        if seen["requests"] <= FAIL_FIRST:
            self.send_response(503)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        ok = self.path == "/v1/traces" and self.headers["content-type"] == "application/x-protobuf"
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        with open(OUT, "a") as f:
            for rs in req.resource_spans:
                resource = MessageToDict(rs.resource)
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        d = MessageToDict(span)
                        # Ids as hex (MessageToDict gives base64).
                        d["traceId"] = span.trace_id.hex()
                        d["spanId"] = span.span_id.hex()
                        d["parentSpanId"] = span.parent_span_id.hex()
                        d["resource"] = resource
                        d["scope"] = MessageToDict(ss.scope)
                        d["request"] = seen["requests"]
                        f.write(json.dumps(d) + "\n")
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200 if ok else 400)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
