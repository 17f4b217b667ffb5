"""Every runbook of the catalogue is reachable from Python under its one name, and the same
input gets the same answer as from the command and Lua (agentlab-ops-cli/tests/it/catalogue.rs)."""

from __future__ import annotations

import asyncio

import pytest

import agentlab_ops


def test_every_runbook_runs_under_its_name(healthy: agentlab_ops.Environment) -> None:
    defs = agentlab_ops.runbooks()
    names = [d["name"] for d in defs]
    assert names[:3] == ["morning_check", "handover", "backup_take"]
    for d in defs:
        name = d["name"]
        # A runbook that needs options (grant_access: a user and a key) runs its example.
        r = agentlab_ops.run(name, healthy, dry_run=True, **d["example"])
        assert r.runbook == name
        assert r.dry_run


@pytest.mark.parametrize("bad", [2.5, -1, "2.5"])
def test_a_bad_sample_is_the_cores_error(healthy: agentlab_ops.Environment, bad: object) -> None:
    with pytest.raises(agentlab_ops.ConfigError, match="backup_verify: sample: invalid sample"):
        agentlab_ops.run("backup_verify", healthy, sample=bad)


def test_date_and_before_exclude_each_other(healthy: agentlab_ops.Environment) -> None:
    with pytest.raises(agentlab_ops.ConfigError, match="backup_recover: date and before exclude each other"):
        agentlab_ops.run("backup_recover", healthy, date="2026-11-28", before="2026-11-28")


def test_unknown_options_and_runbooks_are_named(healthy: agentlab_ops.Environment) -> None:
    with pytest.raises(agentlab_ops.ConfigError, match="unknown field `smaple`"):
        agentlab_ops.run("backup_verify", healthy, smaple="all")
    with pytest.raises(agentlab_ops.NotFoundError, match="no runbook named"):
        agentlab_ops.run("backup_verfy", healthy)


def test_defaults_are_the_cores(healthy: agentlab_ops.Environment) -> None:
    r = agentlab_ops.run("deploy_rollback", healthy)
    assert r.payload["reason"] == "manual rollback"
    r = agentlab_ops.run(
        "handover",
        healthy,
        primary="Ada +1-555",
        items=[{"issue": "slow search", "status": "open", "owner": "ada", "eta": "fri"}],
    )
    assert "Ada +1-555" in r.payload["markdown"] and "slow search" in r.payload["markdown"]


def test_aio_run(healthy: agentlab_ops.Environment) -> None:
    r = asyncio.run(agentlab_ops.aio.run("check morning", healthy))
    assert r.runbook == "morning_check"


def test_monthly_review_and_drill_from_python(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "review.html"
    with agentlab_ops.sandbox("corrupt-object") as env:
        r = agentlab_ops.run("monthly_review", env, out=str(out))
    assert r.verdict == "escalate"
    assert any(e.criterion == "dr_drill_failed" for e in r.escalations)
    assert out.exists() and out.with_suffix(".md").exists() and out.with_suffix(".json").exists()
    d = agentlab_ops.drill("backup_verify")
    assert d["passed"] and not d["uncovered"]
    assert {c["scenario"] for c in d["cases"]} >= {"healthy", "corrupt-object", "size-drop"}
    with pytest.raises(agentlab_ops.NotFoundError):
        agentlab_ops.drill("no_such_runbook")
