"""Each core error kind maps to its exception class, with its attributes; secrets never leak."""

from __future__ import annotations

import logging

import pytest

import agentlab_ops
from agentlab_ops import _native, testing

KINDS = {
    "config_invalid": agentlab_ops.ConfigError,
    "not_found": agentlab_ops.NotFoundError,
    "permission_denied": agentlab_ops.PermissionDeniedError,
    "unauthenticated": agentlab_ops.UnauthenticatedError,
    "unsupported": agentlab_ops.UnsupportedError,
    "rate_limited": agentlab_ops.RateLimitedError,
    "timeout": agentlab_ops.OpsTimeoutError,
    "conflict": agentlab_ops.ConflictError,
    "unavailable": agentlab_ops.UnavailableError,
    "invalid_response": agentlab_ops.InvalidResponseError,
    "cancelled": agentlab_ops.OpsCancelledError,
    "unexpected": agentlab_ops.UnexpectedError,
}


@pytest.mark.parametrize("kind, cls", sorted(KINDS.items()))
def test_every_kind_has_its_class(kind: str, cls: type) -> None:
    with pytest.raises(cls) as e:
        _native._raise_kind(kind, "boom")
    err = e.value
    assert isinstance(err, agentlab_ops.AgentlabOpsError)
    assert type(err) is cls
    assert err.kind == kind
    assert err.operation == "test.raise"
    assert err.context == {"key": "sessions/20261129/session-001.json"}
    assert err.message == "boom"
    assert isinstance(err.temporary, bool)
    assert "boom" in str(err)


def test_unknown_kind_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        _native._raise_kind("on_fire", "x")


def test_temporary_follows_the_kind() -> None:
    with pytest.raises(agentlab_ops.UnavailableError) as e:
        _native._raise_kind("unavailable", "x")
    assert e.value.temporary is True
    with pytest.raises(agentlab_ops.NotFoundError) as e2:
        _native._raise_kind("not_found", "x")
    assert e2.value.temporary is False


def test_backend_errors_raise_their_class() -> None:
    store = testing.MemoryBackupStore()
    with pytest.raises(agentlab_ops.NotFoundError) as e:
        store.get("sessions/20261129/nope.json")
    assert e.value.context.get("key") == "sessions/20261129/nope.json"
    store.insert("a/b.json", b"{}")
    store.fail_next("permission_denied", "no access")
    with pytest.raises(agentlab_ops.PermissionDeniedError, match="no access"):
        store.get("a/b.json")
    assert store.get("a/b.json") == b"{}"


def test_secrets_never_reach_reports_errors_or_logs(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    secret = "https://hooks.slack.invalid/services/T000/B000/s3cr3t-t0ken-value"
    monkeypatch.setenv("AGENTLAB_PY_TEST_WEBHOOK", secret)
    caplog.set_level(logging.DEBUG, logger="agentlab_ops")
    with agentlab_ops.Sandbox("healthy") as sb:
        env = agentlab_ops.Environment.from_dict(
            {
                "environment": "secrets",
                "service": {"base_url": sb.base_url},
                "notify": {"slack_webhook_url": "${AGENTLAB_PY_TEST_WEBHOOK}"},
                "journal": {"disabled": True},
            }
        )
        r = agentlab_ops.handover(env, notify=True)
    text = r.to_json() + str(r) + r.to_markdown() + caplog.text
    assert "s3cr3t-t0ken-value" not in text
    assert any(c.name == "notify" or c.name.startswith("notify") for c in r.steps), [c.name for c in r.steps]
