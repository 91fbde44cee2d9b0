"""The one authentication path alone: `Authenticator.admit` and the record of a refusal."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from deskgate.scopes.authenticator import Authenticator, Refusal, refusal_record
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier, token_fingerprint
from deskgate.server.errors import AuthenticationError
from deskgate.server.notify.events import events_of
from tests.scopes.test_mcp_auth import RecordingAudit


@pytest.mark.anyio
async def test_every_refusal_is_answered_as_a_refusal_and_audited_once_without_the_token(
        issuer: TokenIssuer, verifier: TokenVerifier, forge: Callable[..., str]) -> None:
    """No token, a forged one, one issued for other tools: a `Refusal` each (never an exception), one record each."""
    audit = RecordingAudit()

    async def served_manifest() -> str:  # what a policy reload may change: asked on every admission
        return "a" * 64

    authenticator = Authenticator(verifier, audit, bound_to=served_manifest)
    stale, _ = issuer.issue("agent-7", ["orders:read"], 600, manifest_hash="0" * 64)
    current, _ = issuer.issue("agent-7", ["orders:read"], 600, manifest_hash="a" * 64)
    forged = forge(claims={"aud": "someone-else"})
    answers = [await authenticator.admit(token, "stdio") for token in (None, forged, stale)]
    assert all(isinstance(a, Refusal) for a in answers)
    assert [e["code"] for e in audit.events] == ["missing_token", "wrong_audience", "manifest_changed"]
    assert "token_fingerprint" not in audit.events[0]
    assert audit.events[2]["token_fingerprint"] == token_fingerprint(stale)
    assert not any(t in json.dumps(audit.events) for t in (forged, stale))
    assert not isinstance(await authenticator.admit(current, "stdio"), Refusal)
    assert len(audit.events) == 3


def test_a_refusal_record_reads_like_any_call_record_to_the_webhook_notifier() -> None:
    """Its `status` is a status and it has no `decision` string: the notifier, which reads every record,
    finds no event in it (a refused token once stopped the notifier)."""
    record = refusal_record(AuthenticationError("invalid token", code="bad_signature"), "tok", "http")
    assert record["status"] == "denied" and "decision" not in record
    assert events_of(record) == []
