"""The access review and the auth timeline from Python: a fixture tree read by the local host."""

from __future__ import annotations

import os
import pathlib
import subprocess
from datetime import datetime, timezone

import agentlab_ops


def _tree(root: pathlib.Path) -> str:
    keys = root / "keys"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(keys / "a")], check=True)
    public = (keys / "a.pub").read_text().strip()
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\ntoor:x:0:0::/root:/bin/sh\nops:x:1000:1000::/home/ops:/bin/bash\n",
        "etc/group": "sudo:x:27:ops\n",
        "etc/ssh/sshd_config": "PermitRootLogin no\nPasswordAuthentication no\nAllowUsers ops\n",
        "home/ops/.ssh/authorized_keys": public + "\n",
        "var/log/auth.log": datetime.now(timezone.utc).strftime("%b %e %H:%M:%S")
        + " web-1 sshd[1]: Failed password for ops from 198.51.100.7 port 1 ssh2\n"
        + datetime.now(timezone.utc).strftime("%b %e %H:%M:%S")
        + " web-1 sshd[2]: Accepted password for ops from 198.51.100.7 port 2 ssh2\n",
    }
    for rel, body in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    os.chmod(root / "home/ops/.ssh/authorized_keys", 0o600)
    out = subprocess.run(["ssh-keygen", "-lf", str(keys / "a.pub")], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


def test_access_review_and_timeline_from_python(tmp_path: pathlib.Path) -> None:
    fp = _tree(tmp_path)
    env = agentlab_ops.Environment.from_dict(
        {
            "environment": "py-security",
            "service": {"base_url": "http://127.0.0.1:9"},
            "hosts": [{"name": "web-1", "address": "local"}],
            "journal": {"disabled": True},
            "access": {"root": str(tmp_path), "expected_sudoers": ["ops"], "expected_keys": [{"fingerprint": fp}]},
        }
    )
    r = agentlab_ops.run("access_review", env)
    assert r.verdict == "escalate", str(r)
    host = r.payload["hosts"][0]
    kinds = {f["kind"] for f in host["findings"]}
    assert "uid0_account" in kinds and "unexpected_key" not in kinds, kinds
    assert [f["lynis"] for f in host["findings"] if f["kind"] == "uid0_account"] == ["AUTH-9204"]
    assert host["inventory"]["keys"][0]["keys"][0]["fingerprint"] == fp
    t = agentlab_ops.run("auth timeline", env, since="1h")
    assert t.verdict == "escalate" and t.escalations[0].criterion == "failed_then_accepted", str(t)
    assert t.payload["timeline"]["by_source"]["198.51.100.7"]["failed"] == 1
    try:
        agentlab_ops.run("auth_timeline", env, since="soon")
    except agentlab_ops.ConfigError as e:
        assert "since" in str(e)
    else:
        raise AssertionError("a bad duration is a ConfigError")


def test_rotate_secret_from_python_with_command_hooks(tmp_path: pathlib.Path) -> None:
    store = tmp_path / "valid"
    store.mkdir()
    (store / "pw-initial-123456").write_text("")
    current = tmp_path / "db.password"
    current.write_text("pw-initial-123456")
    secret = {
        "name": "db_password",
        "current_file": str(current),
        "issue": {"command": ["sh", "-c", f"k=pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \\n'); touch {store}/$k; echo $k"]},
        "verify": {"command": ["sh", "-c", f'test -e "{store}/$AGENTLAB_SECRET"']},
        "revoke": {"command": ["sh", "-c", f'rm -f "{store}/$AGENTLAB_SECRET"']},
        "output": str(current),
    }
    env = agentlab_ops.Environment.from_dict(
        {
            "environment": "py-secrets",
            "service": {"base_url": "http://127.0.0.1:9"},
            "journal": {"disabled": True},
            "secrets": [secret],
        }
    )
    planned = agentlab_ops.run("rotate_secret", env, dry_run=True)
    assert planned.payload["secrets"][0]["outcome"] == "planned", str(planned)
    assert sorted(p.name for p in store.iterdir()) == ["pw-initial-123456"]
    r = agentlab_ops.run("rotate secret", env, secrets=["db_password"])
    s = r.payload["secrets"][0]
    assert s["outcome"] == "rotated", str(r)
    new = current.read_text().strip()
    assert sorted(p.name for p in store.iterdir()) == [new]
    assert new not in str(r.to_json()) and "pw-initial-123456" not in str(r.to_json())
    assert s["new_fingerprint"].startswith("sha256:") and s["new_fingerprint"] != s["old_fingerprint"]
