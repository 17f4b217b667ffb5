"""Memory backends for testing your own procedures, offline.

Assemble them into an :class:`~agentlab_ops.Environment`, tell them to fail or be slow, run a
runbook (or your own code that calls one), and assert on the calls they recorded::

    from agentlab_ops import testing, verify_backups

    store = testing.MemoryBackupStore()
    env = testing.environment(backups=store, datasets=["sessions"])
    store.fail_always("unavailable", "S3 is down")
    report = verify_backups(env, date="2026-11-29")
    assert report.verdict == "escalate"
    assert [e.criterion for e in report.escalations] == ["backup_check_failed"]
"""

from __future__ import annotations

from ._native import (
    MemoryBackupStore,
    MemoryDeployer,
    MemoryHost,
    MemoryNotifier,
    MemoryProbe,
    MemorySloSource,
    environment,
)

__all__ = [
    "MemoryBackupStore",
    "MemoryDeployer",
    "MemoryHost",
    "MemoryNotifier",
    "MemoryProbe",
    "MemorySloSource",
    "environment",
]
