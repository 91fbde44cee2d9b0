"""How the writer thread answers its callers: posted onto an async caller's loop, or to a blocked thread."""

from __future__ import annotations

import json
import threading

import anyio
import anyio.to_thread
import pytest

from deskgate.server.errors import AuditUnavailable


@pytest.mark.anyio
async def test_a_caller_cancelled_while_its_batch_is_written_still_has_its_record_in_the_chain(kit) -> None:
    """Cancelling the waiting caller stops only its wait: the record is written and the chain goes on."""
    log = kit.open()
    entered, release = threading.Event(), threading.Event()
    write = log._write

    def gated(events):
        entered.set()
        release.wait()
        return write(events)

    log._write = gated
    outcome: list[str] = []

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            await log.append(kit.event(1))
            outcome.append("answered")  # not reached: cancelled before the batch was durable
        outcome.append("cancelled" if scope.cancel_called else "?")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller, scope)
        await anyio.to_thread.run_sync(entered.wait)
        scope.cancel()
    release.set()
    assert outcome == ["cancelled"]
    assert await log.append(kit.event(2)) == 2
    await log.aclose()
    assert [json.loads(line)["request_id"] for line in kit.lines()] == ["r-1", "r-2"]
    assert kit.check().ok


@pytest.mark.anyio
async def test_async_and_thread_callers_sharing_batches_each_get_their_own_seq(kit) -> None:
    """Coroutines and threads appending at once: every seq once, each caller the seq of its own record."""
    log = kit.open()
    answers: dict[str, int] = {}

    async def from_loop(i: int) -> None:
        answers[f"r-{i}"] = await log.append(kit.event(i))

    def from_thread(i: int) -> None:
        answers[f"r-{i}"] = log.append_sync(kit.event(i))

    async with anyio.create_task_group() as tg:
        for i in range(60):
            if i % 3:
                tg.start_soon(from_loop, i)
            else:
                tg.start_soon(anyio.to_thread.run_sync, from_thread, i)
    await log.aclose()
    stored = {json.loads(line)["request_id"]: json.loads(line)["seq"] for line in kit.lines()}
    assert answers == stored and sorted(stored.values()) == list(range(1, 61))


@pytest.mark.anyio
async def test_a_failed_batch_reaches_an_async_caller_as_audit_unavailable(kit) -> None:
    """A batch the writer cannot make durable fails its awaiting caller with the log's own error."""
    log = kit.open()

    def broken(events):
        raise AuditUnavailable("the disk is full", code="audit_write_failed")

    log._write = broken
    with pytest.raises(AuditUnavailable) as refused:
        await log.append(kit.event(1))
    assert (refused.value.reason, refused.value.code) == ("the disk is full", "audit_write_failed")
    await log.aclose()
