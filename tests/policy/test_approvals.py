"""Approvals: another principal decides, once, before expiry; the approved call is the one that runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from deskgate.server.errors import DeniedError, InvalidArguments, NotFound
from deskgate.server.policy.approvals import Approval, Approvals
from deskgate.server.policy.canonical import argument_digest
from deskgate.server.policy.confirmation import Binding

from .conftest import NOW

pytestmark = pytest.mark.anyio
ARGS = {"order_id": "O-1", "amount": "120.00", "reason_code": "damaged_item"}
BindingFactory = Callable[..., Binding]
PV, MH = "p" * 64, "m" * 64


async def create(approvals: Approvals, binding: BindingFactory, args: dict[str, Any] = ARGS, *,
                 required: int = 1, sid: str = "sid-1") -> Approval:
    return await approvals.create(binding(argument_digest(args), sid=sid), {**args, "idempotency_key": "k" * 8},
                                  customer_id="C-3", summary="Refund 120.00 on O-1", now=NOW, ttl=3600,
                                  required=required)


async def claim(approvals: Approvals, approval_id: str, **overrides: Any) -> Approval:
    kwargs: dict[str, Any] = {"sid": "sid-1", "policy_version": PV, "manifest_hash": MH, "now": NOW + 10}
    return await approvals.claim(approval_id, **{**kwargs, **overrides})


async def denied(coro: Any) -> str:
    with pytest.raises(DeniedError) as err:
        await coro
    return err.value.code


async def test_an_approved_call_runs_once_exactly_as_requested(approvals: Approvals, binding: BindingFactory) -> None:
    """pending -> approved (by another principal) -> executing -> done; the stored call is the original."""
    created = await create(approvals, binding)
    assert created.id.startswith("AP-") and created.state == "pending"
    decided = await approvals.decide(created.id, "lead-anna", True, "", now=NOW + 5)
    assert (decided.state, decided.decided_by, decided.approvers) == ("approved", "lead-anna", ("lead-anna",))
    running = await claim(approvals, created.id)
    assert running.state == "executing" and running.arguments == ARGS  # control fields were never stored
    assert await approvals.finish(created.id, ok=True, result={"refund_id": "R-1"})
    assert (await approvals.get(created.id)).result == {"refund_id": "R-1"}
    assert await denied(claim(approvals, created.id)) == "approval_done"


async def test_the_requesting_principal_cannot_approve_itself(approvals: Approvals, binding: BindingFactory) -> None:
    """Not as itself, nor in other letter case."""
    created = await create(approvals, binding)
    for name in ("agent-7", "AGENT-7"):
        assert await denied(approvals.decide(created.id, name, True, "", now=NOW)) == "approval_self"
    assert (await approvals.get(created.id)).state == "pending"


async def test_an_approval_cannot_be_decided_twice(approvals: Approvals, binding: BindingFactory) -> None:
    """A denial is final; so is an approval."""
    created = await create(approvals, binding)
    await approvals.decide(created.id, "lead-anna", False, "not eligible", now=NOW)
    assert await denied(approvals.decide(created.id, "lead-ben", True, "", now=NOW)) == "approval_decided"
    assert await denied(claim(approvals, created.id)) == "approval_denied"


async def test_concurrent_decisions_have_one_winner(approvals: Approvals, binding: BindingFactory) -> None:
    """Ten approvers racing: one decides, the rest are told it is decided."""
    created = await create(approvals, binding)
    codes: list[str] = []

    async def decide(i: int) -> None:
        try:
            await approvals.decide(created.id, f"lead-{i}", i % 2 == 0, "race", now=NOW)
            codes.append("won")
        except DeniedError as exc:
            codes.append(exc.code)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(decide, i)
    assert codes.count("won") == 1 and codes.count("approval_decided") == 9


async def test_an_expired_approval_can_be_neither_decided_nor_claimed(approvals: Approvals,
                                                                     binding: BindingFactory) -> None:
    """After the TTL it reads as expired."""
    created = await create(approvals, binding)
    late = NOW + 3600
    assert await denied(approvals.decide(created.id, "lead-anna", True, "", now=late)) == "approval_expired"
    approved = await create(approvals, binding, {**ARGS, "amount": "130.00"})
    await approvals.decide(approved.id, "lead-anna", True, "", now=NOW)
    assert await denied(claim(approvals, approved.id, now=late)) == "approval_expired"
    assert approved.state_at(late) == "expired"


async def test_an_approval_cannot_be_used_for_another_call(approvals: Approvals, binding: BindingFactory) -> None:
    """Another amount or another session cannot claim it; a stale policy neither; it stays approved."""
    created = await create(approvals, binding)
    await approvals.decide(created.id, "lead-anna", True, "", now=NOW)
    other = argument_digest({**ARGS, "amount": "499.00"})
    assert await denied(claim(approvals, created.id, call=("issue_refund", other))) == "approval_mismatch"
    with pytest.raises(NotFound):
        await claim(approvals, created.id, sid="sid-2")
    assert await denied(claim(approvals, created.id, policy_version="q" * 64)) == "approval_stale"
    assert (await claim(approvals, created.id, call=("issue_refund", argument_digest(ARGS)))).state == "executing"


async def test_stored_arguments_that_no_longer_match_their_digest_never_run(approvals: Approvals,
                                                                           binding: BindingFactory) -> None:
    """Someone editing the row after approval is caught at claim."""
    created = await create(approvals, binding)
    await approvals.decide(created.id, "lead-anna", True, "", now=NOW)
    await approvals._db.write(lambda tx: tx.execute(
        "UPDATE approvals SET arguments = ? WHERE id = ?", ('{"amount": "9999.00", "order_id": "O-1"}', created.id)))
    assert await denied(claim(approvals, created.id)) == "approval_corrupt"


async def test_concurrent_claims_let_exactly_one_run(approvals: Approvals, binding: BindingFactory) -> None:
    """The approved call executes once."""
    created = await create(approvals, binding)
    await approvals.decide(created.id, "lead-anna", True, "", now=NOW)
    wins: list[bool] = []

    async def one() -> None:
        try:
            await claim(approvals, created.id)
            wins.append(True)
        except DeniedError:
            wins.append(False)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    assert wins.count(True) == 1


async def test_the_two_person_rule_needs_two_different_approvers(approvals: Approvals,
                                                                binding: BindingFactory) -> None:
    """One approval leaves it pending; the same approver again is refused; a second one approves."""
    created = await create(approvals, binding, required=2)
    assert (await approvals.decide(created.id, "lead-anna", True, "", now=NOW)).state == "pending"
    assert await denied(approvals.decide(created.id, "Lead-Anna", True, "", now=NOW)) == "approval_same_approver"
    done = await approvals.decide(created.id, "lead-ben", True, "ok", now=NOW)
    assert (done.state, done.approvers) == ("approved", ("lead-anna", "lead-ben"))


async def test_repeating_a_pending_call_returns_the_same_approval(approvals: Approvals,
                                                                 binding: BindingFactory) -> None:
    """An agent retrying does not flood the approvers; another session's call is its own."""
    first = await create(approvals, binding)
    assert (await create(approvals, binding)).id == first.id
    assert (await create(approvals, binding, sid="sid-2")).id != first.id


async def test_bad_decisions_are_refused_with_structured_errors(approvals: Approvals,
                                                                binding: BindingFactory) -> None:
    """A denial without reason, a malformed approver name, an unknown id."""
    created = await create(approvals, binding)
    with pytest.raises(InvalidArguments):
        await approvals.decide(created.id, "lead-anna", False, "  ", now=NOW)
    with pytest.raises(InvalidArguments):
        await approvals.decide(created.id, "lead anna; DROP", True, "", now=NOW)
    with pytest.raises(NotFound):
        await approvals.decide("AP-000000000000", "lead-anna", True, "", now=NOW)
    with pytest.raises(NotFound):
        await approvals.get("../etc")
