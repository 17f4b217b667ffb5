"""Shared fixtures: sandboxes (a real HTTP service, filesystem backups, local hosts on
127.0.0.1) and environments assembled from the memory backends."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

import agentlab_ops
from agentlab_ops import testing

DAY = "2026-11-29"


@pytest.fixture
def healthy() -> Iterator[agentlab_ops.Environment]:
    with agentlab_ops.sandbox("healthy") as env:
        yield env


def session(i: int) -> str:
    return json.dumps({"session_id": f"s-{i}", "messages": [{"role": "user", "content": "x" * 1800}]})


def data_host(name: str = "web-1", sessions: int = 5) -> testing.MemoryHost:
    """A host holding Agent Lab's data: session JSON files and runs.csv."""
    h = testing.MemoryHost(name)
    for i in range(sessions):
        h.put_file(f"/app/data/sessions/session-{i:03}.json", session(i))
    csv = "run_id,agent,status,duration_ms\n" + "".join(f"r{i},researcher,ok,{900 + i}\n" for i in range(20))
    h.put_file("/app/data/runs.csv", csv)
    h.set_resources(load=0.4, memory=0.5, disks=[("/", 0.4), ("/app", 0.3)])
    return h


class Lab:
    """A memory Agent Lab: probe, SLO source, backup store, one data host, notifier."""

    def __init__(self) -> None:
        self.probe = testing.MemoryProbe()
        self.probe.healthy()
        self.slo = testing.MemorySloSource()
        for window, good, total in [("30d", 999_800, 1_000_000), ("1h", 1000, 1000), ("5m", 100, 100),
                                     ("6h", 6000, 6000), ("30m", 500, 500), ("1d", 24000, 24000),
                                     ("2h", 2000, 2000), ("3d", 72000, 72000)]:
            self.slo.set_counts("availability", window, good, total)
        self.store = testing.MemoryBackupStore()
        self.host = data_host()
        self.notifier = testing.MemoryNotifier()
        self.env = testing.environment(
            "lab",
            probe=self.probe,
            slo_source=self.slo,
            slos={"availability": 0.999},
            backups=self.store,
            datasets=["sessions", "telemetry"],
            hosts=[self.host],
            notifier=self.notifier,
            settings={"handover": {"primary": "Ada +1-555-0100", "backup": "Grace +1-555-0101"}},
        )

    def backup_week(self) -> None:
        """Nightly backups for the 7 days before DAY and DAY itself."""
        import datetime

        day = datetime.date.fromisoformat(DAY)
        for back in range(7, -1, -1):
            r = agentlab_ops.take_backup(self.env, date=day - datetime.timedelta(days=back))
            assert r.ok, str(r)


@pytest.fixture
def lab() -> Lab:
    return Lab()
