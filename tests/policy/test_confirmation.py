"""Confirmation tokens: bound to the exact call, single use, short-lived, never another JWT kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import anyio
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deskgate.server.errors import ConfigError, ConfirmationError
from deskgate.server.policy.canonical import argument_digest
from deskgate.server.policy.confirmation import Binding, Confirmations
from deskgate.server.store.state import StateStore
from deskgate.tools.backend.sql import SqlSupportBackend

from .conftest import NOW

pytestmark = pytest.mark.anyio
ARGS = {"order_id": "O-1", "amount": 10, "reason_code": "damaged_item"}
BindingFactory = Callable[..., Binding]


def dig(**changes: Any) -> str:
    return argument_digest({**ARGS, **changes})


async def refused(confirmations: Confirmations, token: str, binding: Binding, *, now: int = NOW + 1,
                  code: str | None = None) -> str:
    with pytest.raises(ConfirmationError) as err:
        await confirmations.redeem(token, binding, now=now, customer_code=code)
    return err.value.code


async def test_the_same_call_redeems_its_token_once(confirmations: Confirmations, binding: BindingFactory) -> None:
    """First redemption passes; the replay is refused."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert await confirmations.redeem(issued.token, binding(dig()), now=NOW + 1) is False
    assert await refused(confirmations, issued.token, binding(dig())) == "confirmation_replayed"


async def test_a_replay_passes_only_as_the_retry_of_a_finished_idempotent_call(
        confirmations: Confirmations, binding: BindingFactory) -> None:
    """The chain proves the retry; the result is then the stored one, no second side effect."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    await confirmations.redeem(issued.token, binding(dig()), now=NOW + 1)

    async def finished() -> bool:
        return True

    assert await confirmations.redeem(issued.token, binding(dig()), now=NOW + 2, replay_allowed=finished) is True


async def test_an_expired_token_is_refused(confirmations: Confirmations, binding: BindingFactory) -> None:
    """TTL 120s: at 120s it is over."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert issued.expires_at == NOW + 120
    assert await refused(confirmations, issued.token, binding(dig()), now=NOW + 120) == "confirmation_expired"


async def test_a_token_issued_in_the_future_is_refused(confirmations: Confirmations, binding: BindingFactory) -> None:
    """A token cannot be used before it was issued."""
    issued = confirmations.issue(binding(dig()), now=NOW + 60)
    assert await refused(confirmations, issued.token, binding(dig()), now=NOW) == "confirmation_invalid"


async def test_another_session_cannot_use_the_token(confirmations: Confirmations, binding: BindingFactory) -> None:
    """Same call, other sid (or other subject): refused."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert await refused(confirmations, issued.token, binding(dig(), sid="sid-2")) == "confirmation_other_session"
    assert await refused(confirmations, issued.token, binding(dig(), sub="agent-8")) == "confirmation_other_session"


@pytest.mark.parametrize("changes", [{"amount": 11}, {"order_id": "O-3"}, {"amount": 10.0}, {"amount": "10"},
                                     {"note": "extra field"}, {"reason_code": "wrong_item"}])
async def test_changed_arguments_void_the_token(confirmations: Confirmations, binding: BindingFactory,
                                                changes: dict[str, Any]) -> None:
    """Amount, order, 10 vs 10.0 vs "10", an extra field: another call."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert await refused(confirmations, issued.token, binding(dig(**changes))) == "confirmation_mismatch"


async def test_another_tool_cannot_use_the_token(confirmations: Confirmations, binding: BindingFactory) -> None:
    """The tool name is bound."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert await refused(confirmations, issued.token, binding(dig(), tool="apply_account_credit")) == \
        "confirmation_mismatch"


@pytest.mark.parametrize("change", [{"manifest_hash": "n" * 64}, {"policy_version": "q" * 64}])
async def test_a_changed_manifest_or_policy_voids_the_token(confirmations: Confirmations, binding: BindingFactory,
                                                            change: dict[str, str]) -> None:
    """What was confirmed was confirmed under those tools and those rules."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert await refused(confirmations, issued.token, binding(dig(), **change)) == "confirmation_stale"


def _forge(key: Ed25519PrivateKey, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": "k1", "typ": "dg-confirm+jwt", **header})


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


async def test_a_session_token_is_not_a_confirmation(confirmations: Confirmations, binding: BindingFactory,
                                                     signing_key: Ed25519PrivateKey) -> None:
    """Same key, same claims, but typ at+jwt: refused."""
    claims = _claims(confirmations.issue(binding(dig()), now=NOW).token)
    assert await refused(confirmations, _forge(signing_key, claims, typ="at+jwt"), binding(dig())) == \
        "confirmation_invalid"


@pytest.mark.parametrize("tamper", ["typ", "kid", "key", "aud", "iss", "long", "missing", "garbage"])
async def test_forged_or_malformed_tokens_are_refused(confirmations: Confirmations, binding: BindingFactory,
                                                      signing_key: Ed25519PrivateKey, tamper: str) -> None:
    """Wrong typ, unknown kid, another key, audience, issuer, a stretched lifetime, a missing claim, junk."""
    claims = _claims(confirmations.issue(binding(dig()), now=NOW).token)
    token = {
        "typ": lambda: _forge(signing_key, claims, typ="JWT"),
        "kid": lambda: _forge(signing_key, claims, kid="k2"),
        "key": lambda: _forge(Ed25519PrivateKey.generate(), claims),
        "aud": lambda: _forge(signing_key, {**claims, "aud": "deskgate"}),
        "iss": lambda: _forge(signing_key, {**claims, "iss": "someone"}),
        "long": lambda: _forge(signing_key, {**claims, "exp": NOW + 3600}),
        "missing": lambda: _forge(signing_key, {k: v for k, v in claims.items() if k != "mh"}),
        "garbage": lambda: "not.a.token",
    }[tamper]()
    assert await refused(confirmations, token, binding(dig())) == "confirmation_invalid"


async def test_an_unsigned_token_is_refused(confirmations: Confirmations, binding: BindingFactory) -> None:
    """alg none never passes: the algorithm is pinned."""
    claims = _claims(confirmations.issue(binding(dig()), now=NOW).token)
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1", "typ": "dg-confirm+jwt"})
    assert await refused(confirmations, token, binding(dig())) == "confirmation_invalid"


async def test_fifty_concurrent_redemptions_let_exactly_one_win(confirmations: Confirmations,
                                                                binding: BindingFactory) -> None:
    """Single use holds under concurrency, on both engines."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    wins: list[bool] = []

    async def redeem() -> None:
        try:
            await confirmations.redeem(issued.token, binding(dig()), now=NOW + 1)
            wins.append(True)
        except ConfirmationError as exc:
            assert exc.code == "confirmation_replayed"
            wins.append(False)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(redeem)
    assert wins.count(True) == 1 and len(wins) == 50


def test_a_confirmation_lifetime_above_five_minutes_is_a_config_error(signing_key: Ed25519PrivateKey,
                                                                     state: StateStore) -> None:
    """Short-lived by construction."""
    with pytest.raises(ConfigError):
        Confirmations(signing_key=signing_key, kid="k1", verify_keys={"k1": signing_key.public_key()},
                      redemptions=state.redemptions, issuer="deskgate", ttl=301)


def test_the_token_never_shows_in_a_repr(confirmations: Confirmations, binding: BindingFactory) -> None:
    """Logs that print an Issued or the issuer show no token."""
    issued = confirmations.issue(binding(dig()), now=NOW)
    assert issued.token not in repr(issued) and "token" not in repr(confirmations)


# -- customer confirmation -------------------------------------------------------------------

async def _outbox_code(backend: SqlSupportBackend, outbox_id: str) -> str:
    row = await backend.db.read(lambda tx: tx.one("SELECT body, customer_id, kind FROM outbox WHERE id = ?",
                                                  (outbox_id,)))
    assert row is not None and row[1] == "C-1" and row[2] == "confirmation_code"
    return row[0].split("read this code to the agent: ")[1][:6]


async def test_the_customer_code_is_emailed_never_in_the_token_and_read_back(
        confirmations: Confirmations, binding: BindingFactory, backend: SqlSupportBackend) -> None:
    """The code reaches the customer's outbox; the token holds only its HMAC; the right code passes."""
    b = binding(dig(), tool="cancel_subscription")
    issued = await confirmations.issue_for_customer(b, backend=backend, customer_id="C-1",
                                                    preview="Cancel S-1", now=NOW, ttl=600)
    code = await _outbox_code(backend, issued.outbox_id or "")
    assert code.isdigit() and code not in issued.token and code not in str(_claims(issued.token))
    assert await confirmations.redeem(issued.token, b, now=NOW + 1, customer_code=code) is False


async def test_a_wrong_customer_code_burns_the_token(confirmations: Confirmations, binding: BindingFactory,
                                                     backend: SqlSupportBackend) -> None:
    """One guess per token: after a wrong code, even the right one is refused."""
    b = binding(dig(), tool="cancel_subscription")
    issued = await confirmations.issue_for_customer(b, backend=backend, customer_id="C-1", preview="x", now=NOW,
                                                    ttl=600)
    code = await _outbox_code(backend, issued.outbox_id or "")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert await refused(confirmations, issued.token, b, code=wrong) == "customer_code_invalid"
    assert await refused(confirmations, issued.token, b, code=code) == "confirmation_replayed"


async def test_a_missing_customer_code_is_refused_without_using_the_token(
        confirmations: Confirmations, binding: BindingFactory, backend: SqlSupportBackend) -> None:
    """Forgetting the code is not a guess: the token stays usable."""
    b = binding(dig(), tool="cancel_subscription")
    issued = await confirmations.issue_for_customer(b, backend=backend, customer_id="C-1", preview="x", now=NOW,
                                                    ttl=600)
    assert await refused(confirmations, issued.token, b) == "customer_code_missing"
    code = await _outbox_code(backend, issued.outbox_id or "")
    assert await confirmations.redeem(issued.token, b, now=NOW + 1, customer_code=code) is False


async def test_a_customer_code_for_a_ticket_is_redeemed_by_that_ticket_and_subject_only(
        confirmations: Confirmations, binding: BindingFactory, backend: SqlSupportBackend) -> None:
    """Issued in a session bound to T-1: a later session (another sid) of the same subject on T-1 redeems it;
    on another ticket, without one, or as another subject it belongs to another session."""
    b = replace(binding(dig(), tool="cancel_subscription"), ticket="T-1")
    issued = await confirmations.issue_for_customer(b, backend=backend, customer_id="C-1", preview="x", now=NOW,
                                                    ttl=48 * 3600)
    code = await _outbox_code(backend, issued.outbox_id or "")
    later = replace(b, sid="sid-2")
    for other in (replace(later, ticket="T-2"), replace(later, ticket=None), replace(later, sub="agent-8")):
        assert await refused(confirmations, issued.token, other, code=code) == "confirmation_other_session"
    assert await confirmations.redeem(issued.token, later, now=NOW + 47 * 3600, customer_code=code) is False


async def test_a_customer_code_lives_at_most_48_hours(confirmations: Confirmations, binding: BindingFactory,
                                                       backend: SqlSupportBackend) -> None:
    with pytest.raises(ConfigError):
        await confirmations.issue_for_customer(binding(dig()), backend=backend, customer_id="C-1", preview="x",
                                               now=NOW, ttl=48 * 3600 + 1)
