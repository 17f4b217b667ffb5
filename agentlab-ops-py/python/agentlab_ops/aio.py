"""Awaitable versions of the runbooks, on the library's one shared tokio runtime.

::

    import asyncio, agentlab_ops.aio as aio

    async def main() -> None:
        morning, backups = await asyncio.gather(aio.morning_check(env), aio.verify_backups(env))

Cancelling the task cancels the run: it undoes what it changed, in the background.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from typing import Any, Awaitable, Callable, Mapping, Optional, Sequence, Union

from . import _native
from ._native import CancelToken, Environment, Report

ConfigArg = Union[None, str, "os.PathLike[str]", Environment]
DateArg = Union[None, str, datetime.date]
SampleArg = Union[None, str, int, float]


async def _run(start: Callable[..., Awaitable[Report]], config: ConfigArg, **kwargs: Any) -> Report:
    token = CancelToken()
    fut = start(config, cancel=token, **kwargs)
    try:
        return await fut
    except asyncio.CancelledError:
        token.cancel()
        raise


async def run(name: str, config: ConfigArg = None, *, dry_run: bool = False, **options: Any) -> Report:
    """Awaitable :func:`agentlab_ops.run`: any runbook of the catalogue by name."""
    token = CancelToken()
    fut = _native.aio_run(name, config, dry_run=dry_run, cancel=token, **options)
    try:
        return await fut
    except asyncio.CancelledError:
        token.cancel()
        raise


async def morning_check(config: ConfigArg = None, *, date: DateArg = None, dry_run: bool = False) -> Report:
    """Awaitable :func:`agentlab_ops.morning_check`."""
    return await _run(_native.aio_morning_check, config, date=date, dry_run=dry_run)


async def verify_backups(
    config: ConfigArg = None,
    *,
    date: DateArg = None,
    sample: SampleArg = None,
    seed: int = 0,
    restore_test: bool = False,
    dry_run: bool = False,
) -> Report:
    """Awaitable :func:`agentlab_ops.verify_backups`."""
    return await _run(
        _native.aio_verify_backups,
        config,
        date=date,
        sample=sample,
        seed=seed,
        restore_test=restore_test,
        dry_run=dry_run,
    )


async def take_backup(
    config: ConfigArg = None, *, date: DateArg = None, host: Optional[str] = None, dry_run: bool = False
) -> Report:
    """Awaitable :func:`agentlab_ops.take_backup`."""
    return await _run(_native.aio_take_backup, config, date=date, host=host, dry_run=dry_run)


async def recover_data(
    config: ConfigArg = None,
    *,
    date: DateArg = None,
    before: DateArg = None,
    host: Optional[str] = None,
    dry_run: bool = False,
) -> Report:
    """Awaitable :func:`agentlab_ops.recover_data`."""
    return await _run(_native.aio_recover_data, config, date=date, before=before, host=host, dry_run=dry_run)


async def handover(
    config: ConfigArg = None,
    *,
    notify: bool = False,
    primary: Optional[str] = None,
    backup: Optional[str] = None,
    outstanding: Optional[Sequence[Mapping[str, str]]] = None,
    schedule: Optional[Sequence[Mapping[str, str]]] = None,
    dry_run: bool = False,
) -> Report:
    """Awaitable :func:`agentlab_ops.handover`."""
    return await _run(
        _native.aio_handover,
        config,
        notify=notify,
        primary=primary,
        backup=backup,
        outstanding=outstanding,
        schedule=schedule,
        dry_run=dry_run,
    )


async def standard_deploy(
    config: ConfigArg = None,
    *,
    version: Optional[str] = None,
    force: Optional[str] = None,
    high_risk: bool = False,
    dry_run: bool = False,
) -> Report:
    """Awaitable :func:`agentlab_ops.standard_deploy`."""
    return await _run(
        _native.aio_standard_deploy, config, version=version, force=force, high_risk=high_risk, dry_run=dry_run
    )


async def blue_green_deploy(
    config: ConfigArg = None,
    *,
    version: Optional[str] = None,
    force: Optional[str] = None,
    control: Optional[_native.RolloutControl] = None,
    dry_run: bool = False,
) -> Report:
    """Awaitable :func:`agentlab_ops.blue_green_deploy`."""
    return await _run(
        _native.aio_blue_green_deploy, config, version=version, force=force, control=control, dry_run=dry_run
    )


async def rollback(
    config: ConfigArg = None, *, reason: Optional[str] = None, to: Optional[str] = None, dry_run: bool = False
) -> Report:
    """Awaitable :func:`agentlab_ops.rollback`."""
    return await _run(_native.aio_rollback, config, reason=reason, to=to, dry_run=dry_run)


__all__ = [
    "blue_green_deploy",
    "handover",
    "morning_check",
    "recover_data",
    "rollback",
    "run",
    "standard_deploy",
    "take_backup",
    "verify_backups",
]
