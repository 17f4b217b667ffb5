"""A run killed with SIGKILL from Python resumes from Python: a rolling restart of two local
hosts (the stand-in service run by the process manager) is killed once the first host is
done; `agentlab_ops.resume` finishes it, and each host's own record shows one start."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import agentlab_ops

SERVICE = Path(__file__).resolve().parents[2] / "scripts" / "standins" / "agentlab-service.py"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path) -> dict[str, Any]:
    hosts = []
    for name in ("h1", "h2"):
        (tmp / name).mkdir()
        hosts.append({"name": name, "address": "local", "vars": {"dir": str(tmp / name), "port": str(_port())}})
    return {
        "environment": "py-resume",
        "service": {"base_url": "http://127.0.0.1:9"},
        "journal": {"path": str(tmp / "journal.jsonl")},
        "hosts": hosts,
        "service_manager": {
            "kind": "process",
            "start": [sys.executable, str(SERVICE), "--port", "{port}", "--dir", "{dir}"],
            "health_url": "http://127.0.0.1:{port}",
            "workdir": "{dir}",
            "pid_file": "{dir}/app.pid",
            "log_file": "{dir}/app.log",
            "stop_timeout": "2s",
        },
        "restart": {"serial": 1, "health": {"deadline": "8s", "interval": "200ms"}},
    }


def _log_says(tmp: Path, needle: str) -> bool:
    runs = tmp / "runs"
    return runs.is_dir() and any(needle in p.read_text() for p in runs.glob("*.jsonl"))


def _starts(d: Path) -> int:
    f = d / "starts"
    return len(f.read_text().split()) if f.exists() else 0


def test_a_killed_restart_resumes_from_python(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, agentlab_ops;"
            "env = agentlab_ops.Environment.from_dict(json.load(open(sys.argv[1])));"
            "agentlab_ops.run('restart', env)",
            str(tmp_path / "cfg.json"),
        ]
    )
    try:
        deadline = time.monotonic() + 40
        while not _log_says(tmp_path, '"t":"done","step":"restart:h1"'):
            assert time.monotonic() < deadline and child.poll() is None, "the run never finished h1"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait()
        env = agentlab_ops.Environment.from_dict(cfg)
        left = agentlab_ops.unfinished(env)
        assert [u["runbook"] for u in left] == ["restart"], left
        r = agentlab_ops.resume(env)
        assert r.verdict == "healthy", str(r)
        assert r.run_id == left[0]["run_id"]
        assert [h["host"] for h in r.payload["hosts"]] == ["h1", "h2"]
        assert [_starts(tmp_path / h) for h in ("h1", "h2")] == [1, 1]
        assert agentlab_ops.unfinished(env) == []
        try:
            agentlab_ops.resume(env)
            raise AssertionError("nothing was left to resume")
        except agentlab_ops.NotFoundError as e:
            assert "no unfinished run" in str(e)
    finally:
        child.kill()
        subprocess.run(["pkill", "-9", "-f", str(tmp_path)], check=False)
