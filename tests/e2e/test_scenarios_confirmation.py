"""Confirmation tokens and idempotency keys under attack: replay, expiry, theft, tampering, races.

A confirmation token works once, for two minutes, for the session that asked and for exactly the
arguments it previewed; an idempotency key returns its first result and never runs twice. Every
scenario counts the refunds that really exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import (
    NO_REFUND_LIMITS,
    confirmed,
    on_clock,
    policy_file,
    records_of,
    refunds,
    together,
)

pytestmark = pytest.mark.anyio

TEN = {"order_id": "O-1", "amount": "10.00", "reason_code": "damaged_item"}
KEY = "ticket-T-1-refund-1"


async def test_a_replayed_confirmation_is_refused_and_the_refund_happens_once(deployment: Deployment) -> None:
    """The confirmed repeat refunds; the same token again is refused with confirmation_replayed."""
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent")) as client:
        token = (await call(client, "issue_refund", **TEN))["confirmation_token"]
        assert (await call(client, "issue_refund", **TEN, confirmation_token=token))["status"] == "ok"
        replay = await call(client, "issue_refund", **TEN, confirmation_token=token)
    assert (replay["status"], replay["code"]) == ("denied", "confirmation_replayed")
    assert len(refunds(deployment)) == 1


async def test_a_confirmation_works_until_its_last_second_and_not_after(deployment: Deployment) -> None:
    """The shipped ttl is 2 minutes: redeemed at 1:59 it refunds, at 2:00 it is expired and nothing runs."""
    clock = on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent")) as client:
        in_time = (await call(client, "issue_refund", **TEN))["confirmation_token"]
        clock.advance(119)
        assert (await call(client, "issue_refund", **TEN, confirmation_token=in_time))["status"] == "ok"
        late = (await call(client, "issue_refund", **TEN))["confirmation_token"]
        clock.advance(120)
        expired = await call(client, "issue_refund", **TEN, confirmation_token=late)
    assert (expired["status"], expired["code"]) == ("denied", "confirmation_expired")
    assert [r[2] for r in refunds(deployment)] == [1000]


async def test_another_session_cannot_use_a_confirmation_even_for_the_same_agent(deployment: Deployment) -> None:
    """A second session of the same agent and a session of another agent are refused; the owner still can."""
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent", sub="agent-1")) as owner:
        token = (await call(owner, "issue_refund", **TEN))["confirmation_token"]
        for sub in ("agent-1", "agent-2"):
            async with deployment.client(deployment.token("billing-agent", sub=sub)) as thief:
                stolen = await call(thief, "issue_refund", **TEN, confirmation_token=token)
                assert (stolen["status"], stolen["code"]) == ("denied", "confirmation_other_session")
        assert refunds(deployment) == []
        assert (await call(owner, "issue_refund", **TEN, confirmation_token=token))["status"] == "ok"
    assert len(refunds(deployment)) == 1


CHANGES = [
    pytest.param({"amount": "10.00"}, {"amount": "10.01"}, "confirmation_mismatch", "amount", id="amount"),
    pytest.param({}, {"order_id": "O-2"}, "confirmation_mismatch", "order_id", id="order"),
    pytest.param({}, {"reason_code": "wrong_item"}, "confirmation_mismatch", "reason_code", id="reason"),
    pytest.param({}, {"amount": "1.00", "reason_code": "wrong_item"}, "confirmation_mismatch",
                 "amount, reason_code", id="two-arguments"),
    pytest.param({}, {"note": "also refund shipping"}, "invalid_arguments", None, id="extra-field"),
]


@pytest.mark.parametrize(("confirmed_change", "presented_change", "code", "named"), CHANGES)
async def test_a_confirmation_presented_with_changed_arguments_is_refused_and_nothing_runs(
        deployment: Deployment, confirmed_change: dict[str, Any], presented_change: dict[str, Any],
        code: str, named: str | None) -> None:
    """Any change of meaning voids the token for that call, and the refusal names the argument that changed;
    the exact call still redeems it once."""
    on_clock(deployment)
    previewed = {**TEN, **confirmed_change}
    async with deployment.client(deployment.token("billing-agent")) as client:
        token = (await call(client, "issue_refund", **previewed))["confirmation_token"]
        changed = await call(client, "issue_refund", **{**previewed, **presented_change}, confirmation_token=token)
        assert changed["code"] == code and changed["status"] in ("denied", "error")
        if named is not None:
            assert f" {named} changed since the preview" in changed["reason"], changed["reason"]
        assert refunds(deployment) == []
        assert (await call(client, "issue_refund", **previewed, confirmation_token=token))["status"] == "ok"
    assert [r[1:] for r in refunds(deployment)] == [("O-1", 1000)]


SPELLINGS = [
    pytest.param("10.00", 10, id="string-10.00-vs-10"),
    pytest.param(10, 10.0, id="10-vs-10.0"),
    pytest.param(10.0, "10", id="10.0-vs-string-10"),
    pytest.param("10", "10.00", id="string-10-vs-string-10.00"),
    pytest.param(10, "10.0", id="10-vs-string-10.0"),
]


@pytest.mark.parametrize(("previewed_amount", "presented_amount"), SPELLINGS)
async def test_a_confirmation_binds_the_meaning_of_the_call_not_its_json_spelling(
        deployment: Deployment, previewed_amount: Any, presented_amount: Any) -> None:
    """`"amount": 10` confirms a preview of `"amount": "10.00"`: the digest is over the validated,
    normalised arguments, so the same refund spelled another way runs - once - and the audit records
    of preview and repeat carry one argument digest."""
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent")) as client:
        preview = await call(client, "issue_refund", **{**TEN, "amount": previewed_amount})
        assert preview["status"] == "confirmation_required"
        done = await call(client, "issue_refund", **{**TEN, "amount": presented_amount},
                          confirmation_token=preview["confirmation_token"])
        assert done["status"] == "ok", done
        again = await call(client, "issue_refund", **{**TEN, "amount": previewed_amount},
                           confirmation_token=preview["confirmation_token"])
        assert (again["status"], again["code"]) == ("denied", "confirmation_replayed")
    assert [r[1:] for r in refunds(deployment)] == [("O-1", 1000)]
    digests = {r["args_digest"] for r in records_of(deployment, "call", tool="issue_refund")}
    digests |= {r["args_digest"] for r in records_of(deployment, "outcome", tool="issue_refund")}
    assert len(digests) == 1


async def test_thirty_concurrent_redemptions_of_one_confirmation_refund_exactly_once(deployment: Deployment,
                                                                                    tmp_path: Path) -> None:
    """One token, thirty simultaneous redemptions: one refund, twenty-nine confirmation_replayed."""
    on_clock(deployment, policy_file(tmp_path, NO_REFUND_LIMITS))
    async with deployment.client(deployment.token("billing-agent")) as client:
        token = (await call(client, "issue_refund", **TEN))["confirmation_token"]
        results = await together(30, lambda: call(client, "issue_refund", **TEN, confirmation_token=token))
    assert sorted((r["status"], r.get("code")) for r in results) == \
        [("denied", "confirmation_replayed")] * 29 + [("ok", None)]
    assert len(refunds(deployment)) == 1


async def test_fifty_simultaneous_identical_refunds_with_one_idempotency_key_refund_once(
        deployment: Deployment, tmp_path: Path) -> None:
    """Fifty racing retries make one refund; the others are told it is used or running, and every later
    retry gets the first result back; the same key with another amount is refused."""
    on_clock(deployment, policy_file(tmp_path, NO_REFUND_LIMITS))
    async with deployment.client(deployment.token("billing-agent")) as client:
        token = (await call(client, "issue_refund", **TEN, idempotency_key=KEY))["confirmation_token"]
        results = await together(50, lambda: call(client, "issue_refund", **TEN, idempotency_key=KEY,
                                                  confirmation_token=token))
        refused = {(r["status"], r.get("code")) for r in results if r["status"] != "ok"}
        assert refused <= {("denied", "confirmation_replayed"), ("denied", "idempotency_in_progress")}
        first = [r["data"] for r in results if r["status"] == "ok"]
        assert first and all(data == first[0] for data in first)

        retry = await call(client, "issue_refund", **TEN, idempotency_key=KEY, confirmation_token=token)
        assert (retry["status"], retry["data"]) == ("ok", first[0])
        other = await confirmed(client, "issue_refund", **{**TEN, "amount": "11.00"}, idempotency_key=KEY)
        assert (other["status"], other["code"]) == ("denied", "idempotency_conflict")
    assert refunds(deployment) == [(first[0]["refund_id"], "O-1", 1000)]
    assert records_of(deployment, "call", tool="issue_refund", replayed=True)


async def test_refused_and_replayed_confirmations_pay_nothing_toward_the_session_cap(deployment: Deployment) -> None:
    """With max_refund 20.00, a paid 10.00 and its refused and idempotent replays still leave room for 10.00."""
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent", max_refund="20.00")) as client:
        token = (await call(client, "issue_refund", **TEN, idempotency_key=KEY))["confirmation_token"]
        assert (await call(client, "issue_refund", **TEN, idempotency_key=KEY, confirmation_token=token))["status"] \
            == "ok"
        assert (await call(client, "issue_refund", **TEN, confirmation_token=token))["code"] \
            == "confirmation_replayed"
        replay = await call(client, "issue_refund", **TEN, idempotency_key=KEY, confirmation_token=token)
        assert replay["status"] == "ok"
        second = await confirmed(client, "issue_refund", **{**TEN, "order_id": "O-2"})
    assert second["status"] == "ok", second
    assert [r[1:] for r in refunds(deployment)] == [("O-1", 1000), ("O-2", 1000)]


async def test_an_idempotency_conflict_pays_nothing_toward_the_session_cap(deployment: Deployment) -> None:
    """A key reused with another amount is refused at stage 6, so the 11.00 it reserved must be given back.

    Fails today: `GuardChain.idempotent` answers a conflict without `self._policy.release(call)`.
    """
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent", max_refund="25.00")) as client:
        assert (await confirmed(client, "issue_refund", **TEN, idempotency_key=KEY))["status"] == "ok"
        conflict = await confirmed(client, "issue_refund", **{**TEN, "amount": "11.00"}, idempotency_key=KEY)
        assert conflict["code"] == "idempotency_conflict"
        room = await call(client, "issue_refund", **{**TEN, "order_id": "O-2"})
    assert room["status"] == "confirmation_required", room
    assert [r[1:] for r in refunds(deployment)] == [("O-1", 1000)]
