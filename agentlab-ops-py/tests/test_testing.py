"""agentlab_ops.testing: assemble memory backends, make them fail, assert on their calls."""

from __future__ import annotations

import pytest

import agentlab_ops
from agentlab_ops import testing

from conftest import DAY, Lab


def test_calls_are_recorded(lab: Lab) -> None:
    r = agentlab_ops.morning_check(lab.env, date=DAY)
    assert lab.probe.calls[:2] == ["/health", "/health/detailed"] or set(lab.probe.calls) >= {"/health", "/health/detailed"}
    assert lab.slo.fetches == 1
    assert ["df", "-P", "-B1"] in lab.host.calls
    assert ("list", "sessions/20261129/") in lab.store.calls or any(c[0] in ("list", "head") for c in lab.store.calls)
    assert "backup_missing" in [e.criterion for e in r.escalations]  # no backup taken yet
    assert repr(lab.host).startswith("<MemoryHost web-1")


def test_fail_next_fails_one_call_only(lab: Lab) -> None:
    lab.probe.fail_next("unavailable", "connection refused")
    r = agentlab_ops.morning_check(lab.env, date=DAY)
    health = r.check("health")
    assert health is not None and health.outcome == "error", health
    assert health.error is not None and health.error["kind"] == "unavailable"
    assert "service_unreachable" in [e.criterion for e in r.escalations]
    again = agentlab_ops.morning_check(lab.env, date=DAY)
    assert again.check("health").outcome == "pass"  # type: ignore[union-attr]


def test_one_failing_check_never_hides_the_others(lab: Lab) -> None:
    lab.backup_week()
    lab.host.fail_always("timeout", "host hangs")
    lab.slo.fail_always("unavailable", "metrics down")
    r = agentlab_ops.morning_check(lab.env, date=DAY)
    by_name = {c.name: c.outcome for c in r.checks}
    assert by_name["health"] == "pass" and by_name["backups"] == "pass"
    assert by_name["resources:web-1"] == "error" and by_name["slo"] in ("error", "fail")
    lab.host.clear_faults()
    lab.slo.clear_faults()
    assert agentlab_ops.morning_check(lab.env, date=DAY).ok


def test_delays_and_timeouts(lab: Lab) -> None:
    lab.backup_week()
    env = testing.environment(
        "slow", probe=lab.probe, hosts=[lab.host], settings={"thresholds": {"check_timeout": "200ms"}}
    )
    lab.host.set_delay(2.0)
    r = agentlab_ops.morning_check(env, date=DAY)
    c = r.check("resources:web-1")
    assert c is not None and c.outcome == "error" and c.error is not None and c.error["kind"] == "timeout", c
    assert r.duration_ms < 1500


def test_settings_change_thresholds(lab: Lab) -> None:
    lab.backup_week()
    assert agentlab_ops.morning_check(lab.env, date=DAY).ok
    strict = testing.environment(
        "strict", probe=lab.probe, slo_source=lab.slo, slos={"availability": 0.999}, backups=lab.store,
        hosts=[lab.host], settings={"thresholds": {"resource_max": "25%"}},
    )
    r = agentlab_ops.morning_check(strict, date=DAY)
    assert "resource_high" in [e.criterion for e in r.escalations]


def test_memory_host_scripting() -> None:
    h = testing.MemoryHost("db-1")
    h.respond("systemctl", ["is-active", "agent-lab"], 0, "active\n")
    h.respond_any("journalctl", 0, "no errors\n")
    h.put_file("/etc/motd", b"hello")
    assert h.file("/etc/motd") == b"hello" and h.remove_file("/etc/motd") and h.file("/etc/motd") is None
    assert h.name == "db-1" and h.calls == []


def test_store_keys_and_len() -> None:
    s = testing.MemoryBackupStore()
    s.insert("b/2.json", b"{}")
    s.insert("a/1.json", b"{}")
    assert s.keys() == ["a/1.json", "b/2.json"] and s.keys("b/") == ["b/2.json"] and len(s) == 2
    assert ("list", "b/") in s.calls
    assert s.remove("a/1.json") and not s.remove("a/1.json")


def test_bad_fault_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown error kind"):
        testing.MemoryProbe().fail_next("on_fire", "x")
    with pytest.raises(ValueError):
        testing.MemoryProbe().set_delay(-1)


def test_user_procedure_under_test(lab: Lab) -> None:
    """What a team's own procedure test looks like: their function, our doubles."""

    def nightly(env: agentlab_ops.Environment) -> str:
        report = agentlab_ops.verify_backups(env, date=DAY, sample=3, seed=1)
        return "ok" if report.ok else "page: " + ", ".join(e.criterion for e in report.escalations)

    lab.backup_week()
    assert nightly(lab.env) == "ok"
    lab.store.remove("telemetry/20261129/MANIFEST.jsonl")
    assert nightly(lab.env) == "page: backup_incomplete"
    lab.store.fail_always("unavailable", "S3 down")
    assert "backup_check_failed" in nightly(lab.env)


def test_notify(lab: Lab) -> None:
    lab.env.notify("backups verified")
    agentlab_ops.notify("second", lab.env)
    assert lab.notifier.sent == ["backups verified", "second"]
    lab.notifier.fail_next("unavailable", "Slack down")
    with pytest.raises(agentlab_ops.UnavailableError, match="Slack down"):
        lab.env.notify("lost")
    with pytest.raises(agentlab_ops.ConfigError, match="no notifier"):
        testing.environment().notify("nowhere")
