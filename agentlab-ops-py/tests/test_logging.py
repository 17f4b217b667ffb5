"""The library's events reach Python's logging, secrets scrubbed."""

from __future__ import annotations

import logging

import agentlab_ops

from conftest import DAY, Lab


def test_steps_and_retries_are_logged(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG, logger="agentlab_ops")
    lab = Lab()
    agentlab_ops.take_backup(lab.env, date=DAY)
    steps = [r for r in caplog.records if r.name == "agentlab_ops.runbook.run"]
    assert any(r.levelno == logging.INFO and "step=backup:sessions" in r.getMessage() for r in steps), caplog.text
    caplog.clear()
    env = agentlab_ops.Environment.from_dict(
        {"service": {"base_url": "http://127.0.0.1:9", "attempts": 2, "timeout": "200ms"}, "journal": {"disabled": True}}
    )
    r = agentlab_ops.morning_check(env)
    assert "service_unreachable" in [e.criterion for e in r.escalations]
    retries = [rec for rec in caplog.records if rec.name == "agentlab_ops.retry"]
    assert retries and retries[0].levelno == logging.DEBUG and "retrying" in retries[0].getMessage()


def test_level_is_respected(caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.WARNING, logger="agentlab_ops")
    lab = Lab()
    agentlab_ops.take_backup(lab.env, date=DAY)
    assert not [r for r in caplog.records if r.name.startswith("agentlab_ops") and r.levelno < logging.WARNING]
