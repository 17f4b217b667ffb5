#!/usr/bin/env python3
"""A stand-in for the Agent Lab service on the test hosts: answers /health and
/health/detailed on 127.0.0.1:--port. Files in --dir steer it, so a test can make one host
misbehave:
  BROKEN       exit 1 at once (a service that never comes up)
  IGNORE_TERM  ignore SIGTERM (a graceful stop or restart times out)
  HANG_NEXT    removed, then listen but never answer (a restart that hangs)
Each start that listens appends its pid to --dir/starts (what a test counts restarts by).
"""
import argparse
import http.server
import json
import os
import signal
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--dir", required=True)
a = p.parse_args()

if os.path.exists(os.path.join(a.dir, "BROKEN")):
    print("agentlab-service: BROKEN: exiting", flush=True)
    sys.exit(1)
if os.path.exists(os.path.join(a.dir, "IGNORE_TERM")):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
hang = os.path.join(a.dir, "HANG_NEXT")
hanging = os.path.exists(hang)
if hanging:
    os.remove(hang)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if hanging:
            time.sleep(3600)
        if self.path.startswith("/health"):
            body = {"status": "ok", "pid": os.getpid()}
            if "detailed" in self.path:
                body["components"] = {"app": {"status": "ok"}}
            data = json.dumps(body).encode()
            self.send_response(200)
        else:
            data = b'{"error": "not found"}'
            self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer.allow_reuse_address = True
server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Health)
with open(os.path.join(a.dir, "starts"), "a") as f:
    f.write(f"{os.getpid()}\n")
print(f"agentlab-service: pid {os.getpid()} on :{a.port}", flush=True)
server.serve_forever()
