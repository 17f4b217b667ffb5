"""The load test from Python, against a real http.server on loopback."""

from __future__ import annotations

import http.server
import threading
from typing import Any

import agentlab_ops


class _Ok(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200 if not self.path.startswith("/fail") else 503)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_load_test_from_python() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        env = agentlab_ops.Environment.from_dict(
            {"environment": "py-load", "service": {"base_url": base}, "journal": {"disabled": True}}
        )
        r = agentlab_ops.run("load_test", env, requests=200, concurrency=4)
        s = r.payload["summary"]
        assert s["requests"] == 200 and s["statuses"] == {"2xx": 200}, str(r)
        r = agentlab_ops.run("load", env, url=base + "/fail", requests=50, concurrency=2, thresholds=["error_rate<1%"])
        assert r.verdict == "escalate", str(r)
        assert r.payload["summary"]["error_rate"] == 1.0
        assert r.escalations[0].criterion == "load_threshold_failed"
    finally:
        server.shutdown()


def test_a_baseline_from_the_journal_judges_the_next_run(tmp_path: Any) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        env = agentlab_ops.Environment.from_dict(
            {
                "environment": "py-load",
                "service": {"base_url": base},
                "investigation": {"metrics_path": ""},
                "journal": {"path": str(tmp_path / "journal.jsonl")},
            }
        )
        first = agentlab_ops.run("load_test", env, requests=300, concurrency=4, label="v1")
        assert first.verdict == "healthy", str(first)
        # Ramp to 200/s over a second, then compare with v1: both steps are in the report.
        r = agentlab_ops.run("load_test", env, rate=0, stages=["1s:200"], baseline="v1")
        assert r.payload["summary"]["requests"] == 100, str(r)
        c = r.payload["comparison"]
        assert c["baseline_run"] == first.run_id
        assert c["verdict"] in ("pass", "inconclusive"), str(c)
        assert [m["metric"] for m in c["metrics"]] == ["p50", "p99", "error_rate"]
        missing = agentlab_ops.run("load_test", env, requests=10, baseline="nope")
        assert missing.verdict == "failed" and missing.error is not None, str(missing)
        assert "nope" in missing.error["message"] and missing.exit_code == 2
    finally:
        server.shutdown()
