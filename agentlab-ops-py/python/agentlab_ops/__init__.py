"""Agent Lab's operational runbooks as typed, tested code.

Python bindings of the agentlab-ops Rust library::

    import agentlab_ops

    report = agentlab_ops.verify_backups()          # the discovered environment file
    print(report)                                    # the terminal rendering
    if not report.ok:
        for f in report.findings:
            print(f.subject, f.message)

Every runbook takes ``config`` (``None`` = discover it as the ``agentlab-ops`` command does:
``$AGENTLAB_OPS_CONFIG``, then ``./agentlab-ops.toml``; a path; or an :class:`Environment`),
releases the GIL while it runs, and stops on Ctrl-C after undoing what it changed.
``agentlab_ops.aio`` has awaitable versions, ``agentlab_ops.testing`` the memory backends.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from . import aio, testing
from ._native import (
    AgentlabOpsError,
    CancelToken,
    Check,
    ConfigError,
    ConflictError,
    Environment,
    Escalation,
    Finding,
    InvalidResponseError,
    NotFoundError,
    OpsCancelledError,
    OpsTimeoutError,
    PermissionDeniedError,
    RateLimitedError,
    Report,
    RolloutControl,
    Sandbox,
    SloStatus,
    UnauthenticatedError,
    UnavailableError,
    UnexpectedError,
    UnsupportedError,
    __version__,
    blue_green_deploy,
    drill,
    evaluate_slo,
    handover,
    morning_check,
    notify,
    recover_data,
    resume,
    rollback,
    run,
    runbooks,
    standard_deploy,
    take_backup,
    unfinished,
    verify_backups,
)

#: The sandbox's scenarios.
SCENARIOS = (
    "healthy",
    "degraded",
    "budget-exhausted",
    "backups-missing",
    "disk-full",
    "corrupt-object",
    "missing-manifest",
    "size-drop",
    "green-healthy",
    "green-fails-at-50",
    "incident",
)


@contextlib.contextmanager
def sandbox(scenario: str = "healthy") -> Iterator[Environment]:
    """Start a simulated Agent Lab on 127.0.0.1 and yield its environment; stop it on exit.

    ::

        with agentlab_ops.sandbox("corrupt-object") as env:
            report = agentlab_ops.verify_backups(env, sample="all")
    """
    sb = Sandbox(scenario)
    try:
        yield sb.environment
    finally:
        sb.stop()


__all__ = [
    "AgentlabOpsError",
    "CancelToken",
    "Check",
    "ConfigError",
    "ConflictError",
    "Environment",
    "Escalation",
    "Finding",
    "InvalidResponseError",
    "NotFoundError",
    "OpsCancelledError",
    "OpsTimeoutError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Report",
    "RolloutControl",
    "SCENARIOS",
    "Sandbox",
    "SloStatus",
    "UnauthenticatedError",
    "UnavailableError",
    "UnexpectedError",
    "UnsupportedError",
    "__version__",
    "aio",
    "blue_green_deploy",
    "drill",
    "evaluate_slo",
    "handover",
    "morning_check",
    "notify",
    "recover_data",
    "resume",
    "rollback",
    "run",
    "runbooks",
    "sandbox",
    "standard_deploy",
    "take_backup",
    "testing",
    "unfinished",
    "verify_backups",
]
