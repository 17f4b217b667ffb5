"""The README's Python examples, run as they are written there."""

# ruff: noqa
# mypy: ignore-errors
import agentlab_ops
from agentlab_ops import testing

def nightly(env):                         # the procedure under test
    report = agentlab_ops.verify_backups(env, date="2026-11-29", sample="all")
    if not report.ok:
        env.notify("backups: " + ", ".join(e.criterion for e in report.escalations))
    return report.ok

def test_nightly_pages_when_the_store_is_down():
    store, slack = testing.MemoryBackupStore(), testing.MemoryNotifier()
    env = testing.environment(backups=store, datasets=["sessions"], notifier=slack)
    store.fail_always("unavailable", "S3 down")
    assert nightly(env) is False
    assert slack.sent == ["backups: backup_check_failed"]
    assert store.calls[0][0] in ("list", "head")      # what the verification asked the store


def test_cron_example_runs(tmp_path):
    import os, subprocess, sys

    with agentlab_ops.Sandbox("corrupt-object") as sb:
        cfg = tmp_path / "agentlab-ops.toml"
        cfg.write_text(
            f'environment = "cron"\n[service]\nbase_url = "{sb.base_url}"\n'
            f'[backups]\nstore = "fs"\npath = "{sb.dir}/backups"\nsample = "all"\n[journal]\ndisabled = true\n'
        )
        script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "verify_and_notify.py")
        env = dict(os.environ, AGENTLAB_OPS_CONFIG=str(cfg))
        p = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=60)
    # Backups dated yesterday exist in the sandbox (35 days of them); none is damaged but today's.
    assert p.returncode == 0, p.stdout + p.stderr
    assert "could not post to Slack" in p.stderr and "no notifier configured" in p.stderr
    assert "verdict: HEALTHY" in p.stdout
