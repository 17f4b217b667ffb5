"""Every runbook function against the sandbox and the memory backends."""

from __future__ import annotations

import datetime
import json

import pytest

import agentlab_ops
from agentlab_ops import testing

from conftest import DAY, Lab


def levels(report: agentlab_ops.Report, dataset: str) -> list[tuple[str, str]]:
    ds = next(d for d in report.payload["datasets"] if d["dataset"] == dataset)
    return [(lvl["level"], lvl["outcome"]) for lvl in ds["levels"]]


def test_morning_check_healthy_sandbox(healthy: agentlab_ops.Environment) -> None:
    r = agentlab_ops.morning_check(healthy)
    assert r.ok and r.verdict == "healthy" and r.exit_code == 0
    names = [c.name for c in r.checks]
    assert names[:4] == ["health", "health_detailed", "slo", "backups"]
    assert {"resources:web-1", "resources:web-2"} <= set(names)
    assert all(c.outcome == "pass" for c in r.checks), [repr(c) for c in r.checks]
    assert r.escalations == [] and r.findings == []
    assert r.runbook == "morning_check" and r.environment == "sandbox-healthy"


@pytest.mark.parametrize(
    "scenario, criterion",
    [
        ("degraded", "component_unhealthy"),
        ("budget-exhausted", "slo_red"),
        ("backups-missing", "backup_missing"),
        ("disk-full", "resource_high"),
    ],
)
def test_morning_check_escalates(scenario: str, criterion: str) -> None:
    with agentlab_ops.sandbox(scenario) as env:
        r = agentlab_ops.morning_check(env)
    assert r.verdict == "escalate" and not r.ok and r.exit_code == 1
    assert criterion in [e.criterion for e in r.escalations], r.escalations


def test_verify_backups_sandbox_intact(healthy: agentlab_ops.Environment) -> None:
    r = agentlab_ops.verify_backups(healthy, sample="all")
    assert r.ok, str(r)
    assert levels(r, "sessions") == [
        ("presence", "pass"), ("completeness", "pass"), ("integrity", "pass"), ("trend", "pass")]
    assert r.findings == []


@pytest.mark.parametrize(
    "scenario, key, words, criterion",
    [
        ("corrupt-object", "sessions/", "SHA-256 mismatch", "backup_corrupt"),
        ("missing-manifest", "sessions/", "manifest missing", "backup_incomplete"),
        ("size-drop", "sessions/", "below the 7-day median", "backup_size_trend"),
    ],
)
def test_verify_backups_finds_damage(scenario: str, key: str, words: str, criterion: str) -> None:
    with agentlab_ops.sandbox(scenario) as env:
        r = agentlab_ops.verify_backups(env, sample="all")
    assert r.verdict == "escalate"
    assert any(f.subject.startswith(key) and words in f.message for f in r.findings), r.findings
    assert criterion in [e.criterion for e in r.escalations]


def test_verify_backups_arguments(healthy: agentlab_ops.Environment) -> None:
    today = datetime.date.today()
    by_date = agentlab_ops.verify_backups(healthy, date=today, sample=2, seed=3)
    by_str = agentlab_ops.verify_backups(healthy, date=today.isoformat(), sample=2, seed=3)
    assert by_date.to_dict()["checks"][1]["summary"] == by_str.to_dict()["checks"][1]["summary"]
    assert "sample 2, seed 3" in " ".join(c.summary for c in by_date.checks)
    assert agentlab_ops.verify_backups(healthy, sample=0.5).ok
    assert agentlab_ops.verify_backups(healthy, sample="50%").ok
    assert agentlab_ops.verify_backups(healthy, sample="all", restore_test=True).ok
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        agentlab_ops.verify_backups(healthy, date="29/11/2026")
    with pytest.raises(TypeError):
        agentlab_ops.verify_backups(healthy, sample=True)
    with pytest.raises(ValueError):
        agentlab_ops.verify_backups(healthy, sample=1.5)
    with pytest.raises(TypeError, match="config must be"):
        agentlab_ops.verify_backups(42)  # type: ignore[arg-type]


def test_take_then_verify_on_memory(lab: Lab) -> None:
    lab.backup_week()
    keys = lab.store.keys("sessions/20261129/")
    assert "sessions/20261129/MANIFEST.jsonl" in keys and len(keys) == 6
    r = agentlab_ops.verify_backups(lab.env, date=DAY, sample="all")
    assert r.ok, str(r)
    # A flipped byte is found, with its key.
    key = "sessions/20261129/session-002.json"
    data = bytearray(lab.store.get(key))
    data[40] ^= 1
    lab.store.insert(key, bytes(data))
    r = agentlab_ops.verify_backups(lab.env, date=DAY, sample="all")
    assert [f.subject for f in r.findings] == [key]


def test_take_backup_dry_run_writes_nothing(lab: Lab) -> None:
    r = agentlab_ops.take_backup(lab.env, date=DAY, dry_run=True)
    assert r.dry_run
    assert len(lab.store) == 0
    assert [c.outcome for c in r.steps if c.action == "change"] == ["planned", "planned"]


def test_take_backup_on_sandbox(healthy: agentlab_ops.Environment) -> None:
    r = agentlab_ops.take_backup(healthy, date="2030-01-02")
    assert r.ok, str(r)
    assert [d["dataset"] for d in r.payload["datasets"]] == ["sessions", "telemetry"]
    v = agentlab_ops.verify_backups(healthy, date="2030-01-02", sample="all")
    assert levels(v, "sessions")[:3] == [("presence", "pass"), ("completeness", "pass"), ("integrity", "pass")]


def test_recover_data_memory(lab: Lab) -> None:
    lab.backup_week()
    original = lab.host.file("/app/data/sessions/session-001.json")
    lab.host.put_file("/app/data/sessions/session-001.json", "{damaged")
    plan = agentlab_ops.recover_data(lab.env, date=DAY, dry_run=True)
    assert plan.dry_run and any(c.outcome == "planned" for c in plan.steps)
    assert lab.host.file("/app/data/sessions/session-001.json") == b"{damaged"
    r = agentlab_ops.recover_data(lab.env, date=DAY)
    assert r.ok, str(r)
    assert lab.host.file("/app/data/sessions/session-001.json") == original
    assert lab.host.file("/app/READ_ONLY_MODE") is None
    restores = [c for c in r.steps if c.name.startswith("restore:")]
    assert [c.outcome for c in restores] == ["pass", "pass"]
    assert r.steps[-1].name == "clear read_only_flag" and r.steps[-1].action == "undo"
    with pytest.raises(ValueError, match="not both"):
        agentlab_ops.recover_data(lab.env, date=DAY, before=DAY)


def test_recover_data_sandbox_dry_run(healthy: agentlab_ops.Environment) -> None:
    r = agentlab_ops.recover_data(healthy, before=datetime.date.today(), dry_run=True)
    assert r.dry_run and r.verdict != "failed", str(r)
    assert "read_only_flag" in [c.name for c in r.steps if c.outcome == "planned"]


def test_handover(lab: Lab) -> None:
    r = agentlab_ops.handover(
        lab.env,
        notify=True,
        outstanding=[{"issue": "slow search", "status": "investigating", "owner": "ada", "eta": "tomorrow"}],
        schedule=[{"what": "Release v1.4.0", "detail": "low risk"}],
    )
    assert r.verdict != "failed", str(r)
    md = r.payload["markdown"]
    assert "slow search" in md and "Release v1.4.0" in md and "Ada +1-555-0100" in md
    assert lab.notifier.sent == [md] or (len(lab.notifier.sent) == 1 and "slow search" in lab.notifier.sent[0])
    dry = agentlab_ops.handover(lab.env, notify=True, dry_run=True)
    assert len(lab.notifier.sent) == 1, "dry-run posts nothing"
    assert any(c.outcome == "planned" for c in dry.steps)


def test_report_api(healthy: agentlab_ops.Environment) -> None:
    r = agentlab_ops.morning_check(healthy)
    d = r.to_dict()
    assert d["verdict"] == "healthy" and d["run_id"] == r.run_id
    assert json.loads(r.to_json()) == d
    assert r.to_markdown().startswith("#") or "morning_check" in r.to_markdown()
    assert str(r) == r.to_text() and "verdict: HEALTHY" in str(r)
    assert "\x1b[" in r.to_text(color=True)
    assert repr(r).startswith("<Report morning_check sandbox-healthy HEALTHY")
    assert [c.name for c in r.steps] == [c.name for c in r.checks]
    health = r.check("health")
    assert health is not None and health.action == "read" and health.outcome == "pass"
    assert repr(health).startswith("<Check health pass")
    assert r.check("nope") is None
    assert r.error is None and r.dry_run is False and r.duration_ms >= 0
    assert datetime.datetime.fromisoformat(r.started_at).tzinfo is not None
    assert isinstance(r.payload, dict) and "backups" in r.payload


def test_environment_from_file_and_discovery(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with agentlab_ops.Sandbox("healthy") as sb:
        cfg = tmp_path / "agentlab-ops.toml"
        cfg.write_text(
            f'environment = "filed"\n[service]\nbase_url = "{sb.base_url}"\n'
            f'[backups]\nstore = "fs"\npath = "{sb.dir}/backups"\n[journal]\ndisabled = true\n'
        )
        env = agentlab_ops.Environment.from_file(cfg)
        assert env.name == "filed" and env.datasets == ["sessions", "telemetry"] and env.hosts == []
        assert agentlab_ops.verify_backups(cfg).ok
        assert agentlab_ops.verify_backups(str(cfg)).ok
        monkeypatch.setenv("AGENTLAB_OPS_CONFIG", str(cfg))
        r = agentlab_ops.verify_backups()
        assert r.ok and r.environment == "filed"
        monkeypatch.delenv("AGENTLAB_OPS_CONFIG")
        monkeypatch.chdir(tmp_path)
        assert agentlab_ops.Environment.discover().name == "filed"
        d = agentlab_ops.Environment.from_dict(
            {"environment": "dicted", "service": {"base_url": sb.base_url, "token": None},
             "backups": {"store": "fs", "path": f"{sb.dir}/backups"}, "journal": {"disabled": True}}
        )
        assert agentlab_ops.verify_backups(d).environment == "dicted"
        assert "dicted" in repr(d)


def test_no_config_is_a_config_error(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AGENTLAB_OPS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(agentlab_ops.ConfigError, match="no config found") as e:
        agentlab_ops.morning_check()
    assert e.value.kind == "config_invalid" and e.value.operation == "config.discover"


def test_malformed_config_names_file_line_and_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "bad.toml"
    cfg.write_text('environment = "x"\n[service]\nbase_url = "http://a"\ntimeout = "soon"\n')
    with pytest.raises(agentlab_ops.ConfigError) as e:
        agentlab_ops.Environment.from_file(cfg)
    msg = str(e.value)
    assert f"{cfg}:4" in msg and "service.timeout" in msg, msg
    with pytest.raises(agentlab_ops.ConfigError, match="service.attempts"):
        agentlab_ops.Environment.from_dict({"service": {"base_url": "http://a", "attempts": "many"}})
    with pytest.raises(agentlab_ops.NotFoundError):
        agentlab_ops.Environment.from_file(tmp_path / "missing.toml")


def test_sandbox_object() -> None:
    sb = agentlab_ops.Sandbox("disk-full")
    assert sb.running and sb.scenario == "disk-full" and sb.base_url.startswith("http://127.0.0.1:")
    assert "disk-full" in repr(sb)
    r = agentlab_ops.morning_check(sb.environment)
    assert "resource_high" in [e.criterion for e in r.escalations]
    sb.stop()
    assert not sb.running and "stopped" in repr(sb)
    r = agentlab_ops.morning_check(sb.environment)
    assert r.verdict == "escalate" and "service_unreachable" in [e.criterion for e in r.escalations]
    with pytest.raises(agentlab_ops.ConfigError, match="scenario"):
        agentlab_ops.Sandbox("on-fire")


def test_evaluate_slo_reference_values() -> None:
    s = agentlab_ops.evaluate_slo(0.999, 999_600, 1_000_000, name="availability")
    assert s.zone == "yellow" or s.zone == "green"
    assert s.budget_remaining == pytest.approx(0.6)
    page = agentlab_ops.evaluate_slo(0.999, 999_900, 1_000_000, windows={"1h": (985_000, 1_000_000), "5m": (98_500, 100_000)})
    assert page.burn_rates["1h"] == pytest.approx(15.0)
    assert page.zone == "red" and "page" in page.reason
    assert page.to_dict()["zone"] == "red" and isinstance(page.alerts, list)
    few = agentlab_ops.evaluate_slo(0.999, 10, 10)
    assert few.zone == "inconclusive"
    with pytest.raises(ValueError):
        agentlab_ops.evaluate_slo(99.9, 1, 1)


def test_testing_is_reexported() -> None:
    assert testing.MemoryHost("x").name == "x"
    assert agentlab_ops.testing is testing


def test_deployments_on_the_sandbox() -> None:
    with agentlab_ops.sandbox("green-fails-at-50") as env:
        r = agentlab_ops.blue_green_deploy(env, version="1.5.0")
        assert r.verdict == "escalate"
        e = r.escalations[0]
        assert e.criterion == "rollout_aborted" and e.subject == "traffic:50%" and "green 8.00%" in e.observed
        assert r.payload["rolled_back"] is True
        plan = agentlab_ops.standard_deploy(env, version="1.5.0", dry_run=True)
        assert [c.name for c in plan.steps if c.outcome == "planned"] == ["deploy"]
    with agentlab_ops.sandbox("green-healthy") as env:
        assert agentlab_ops.blue_green_deploy(env, version="1.5.0").payload["green_percent"] == 100


def test_deployments_with_the_memory_deployer(lab: Lab) -> None:
    d = testing.MemoryDeployer()
    env = testing.environment(
        "deploys", probe=lab.probe, slo_source=lab.slo, slos={"availability": 0.999}, hosts=[lab.host], deployer=d,
        settings={"deploy": {"provider": "memory", "monitor_period": "1s", "monitor_interval": "1s", "health_wait": "1s", "poll_interval": "100ms"}},
    )
    d.script("deploy.yml", "failure", polls=1)
    r = agentlab_ops.standard_deploy(env, version="1.5.0")
    assert r.verdict == "escalate" and "deploy_failed" in [e.criterion for e in r.escalations]
    assert d.dispatched == ["deploy.yml", "rollback.yml"]
    assert d.calls[0][0] == "checks" and d.calls[1][:2] == ("dispatch", "deploy.yml")
    d.set_checks(2, failed=["tests"])
    gated = agentlab_ops.standard_deploy(env, version="1.5.1")
    assert [e.subject for e in gated.escalations] == ["ci_checks"]
    assert d.dispatched == ["deploy.yml", "rollback.yml"], "a failed gate deploys nothing"
    forced = agentlab_ops.standard_deploy(env, version="1.5.1", force="INC-7 hotfix", dry_run=True)
    assert forced.payload["forced"] == "INC-7 hotfix"
    rb = agentlab_ops.rollback(env, reason="bad release", to="v1.4.2")
    assert rb.ok, str(rb)
    assert d.calls[-2][0] == "dispatch" and d.calls[-2][2]["reason"] == "bad release"


def test_blue_green_can_be_paused_resumed_and_aborted() -> None:
    import threading
    import time

    with agentlab_ops.sandbox("green-healthy") as env:
        control = agentlab_ops.RolloutControl()
        control.pause()
        assert control.paused and "paused" in repr(control)
        threading.Timer(0.6, control.resume).start()
        start = time.perf_counter()
        r = agentlab_ops.blue_green_deploy(env, version="1.5.0", control=control)
        assert time.perf_counter() - start >= 0.6
        assert r.ok and r.payload["green_percent"] == 100, str(r)
        stop = agentlab_ops.RolloutControl()
        stop.abort("change freeze")
        r = agentlab_ops.blue_green_deploy(env, version="1.5.1", control=stop)
        assert r.verdict == "escalate" and "change freeze" in r.escalations[0].observed


def test_alert_investigation_on_the_incident_sandbox() -> None:
    with agentlab_ops.sandbox("incident") as env:
        r = agentlab_ops.run("investigate", env, since="1h")
        assert r.runbook == "alert_investigation" and r.verdict == "escalate"
        t = r.payload
        kinds = [e["kind"] for e in t["timeline"]]
        # (Python's sandbox keeps no journal, so the seeded deploy is only in the Rust tests.)
        assert kinds.index("spike") < kinds.index("new_template") < kinds.index("alert")
        assert [c["name"] for c in t["components"] if c["kind"] == "dependency" and not c["healthy"]] == ["openrouter"]
        assert t["decision"]["kind"] == "known_issue" and t["decision"]["known_issue"] == "session-id-keyerror"


def test_scaling_on_the_sandbox_cloud() -> None:
    with agentlab_ops.sandbox() as env:
        plan = agentlab_ops.run("scale_vertical", env, instances=["web-1"], dry_run=True)
        assert plan.ok and plan.payload["instances"][0]["outcome"] == "planned", str(plan)
        r = agentlab_ops.run("scale vertical", env, instances=["web-1"], to="t3.xlarge")
        assert r.ok, str(r)
        assert r.payload["instances"][0]["from"] == "t3.medium"
        assert r.payload["instances"][0]["outcome"] == "resized"
        again = agentlab_ops.run("scale_vertical", env, instances=["web-1"], to="t3.xlarge")
        assert again.verdict == "failed" and "already" in str(again)
        cost = agentlab_ops.run("cost_report", env)
        assert cost.payload["movers"][0]["service"] == "Amazon EC2"
        with pytest.raises(agentlab_ops.ConfigError):
            agentlab_ops.run("cost_report", env, month="2026-13")
