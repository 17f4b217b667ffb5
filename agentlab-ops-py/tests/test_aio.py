"""agentlab_ops.aio: awaitable runbooks on one shared runtime, concurrent under gather."""

from __future__ import annotations

import asyncio
import time

import pytest

import agentlab_ops
from agentlab_ops import aio

from conftest import DAY, Lab


def test_gather_runs_runbooks_concurrently() -> None:
    labs = [Lab() for _ in range(4)]
    for lab in labs:
        lab.backup_week()
        lab.store.set_delay(0.1)

    start = time.perf_counter()
    one = agentlab_ops.verify_backups(labs[0].env, date=DAY, sample="all")
    single = time.perf_counter() - start
    assert one.ok

    async def main() -> list[agentlab_ops.Report]:
        return await asyncio.gather(*(aio.verify_backups(lab.env, date=DAY, sample="all") for lab in labs))

    start = time.perf_counter()
    reports = asyncio.run(main())
    together = time.perf_counter() - start
    assert all(r.ok for r in reports)
    assert together < single * 2, (together, single)  # 4 runs in well under 4x one


def test_every_runbook_has_an_awaitable(healthy: agentlab_ops.Environment) -> None:
    async def main() -> list[agentlab_ops.Report]:
        return list(
            await asyncio.gather(
                aio.morning_check(healthy),
                aio.verify_backups(healthy, sample=2),
                aio.take_backup(healthy, date="2031-01-01", dry_run=True),
                aio.recover_data(healthy, dry_run=True),
                aio.handover(healthy, dry_run=True),
            )
        )

    reports = asyncio.run(main())
    assert [r.runbook for r in reports] == [
        "morning_check", "backup_verify", "backup_take", "backup_recover", "handover"]
    assert all(r.verdict != "failed" for r in reports), [str(r) for r in reports if r.verdict == "failed"]


def test_cancelling_the_task_cancels_the_run() -> None:
    lab = Lab()
    lab.backup_week()
    lab.host.put_file("/app/data/sessions/session-001.json", "{damaged")
    lab.store.set_delay(0.3)

    async def main() -> None:
        task = asyncio.ensure_future(aio.recover_data(lab.env, date=DAY))
        while lab.host.file("/app/READ_ONLY_MODE") is None:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The run winds down in the background: its undo clears the flag.
        for _ in range(200):
            if lab.host.file("/app/READ_ONLY_MODE") is None:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the read-only flag was not cleared")

    asyncio.run(main())
    assert lab.host.file("/app/data/sessions/session-001.json") == b"{damaged"
