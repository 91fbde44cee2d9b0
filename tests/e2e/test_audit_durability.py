"""When a call's answer leaves relative to its audit record's fsync (audit.fsync_reads).

The audit log's fsync is held open (os.fsync blocks until released) while real MCP calls run:
a read answers with its record already in the file, a write tool does not even run until its
intent record is durable, and with fsync_reads = true a read waits for its fsync too.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from deskgate.tools.backend.seed import DEMO
from tests.e2e.conftest import call, deployed

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("engine", ["sqlite"], indirect=True)]


class HeldFsync:
    """os.fsync that blocks until `release` is set (every caller: only the audit writer fsyncs here)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.in_flight, self.release = threading.Event(), threading.Event()
        real = os.fsync

        def held(fd: int) -> None:
            self.in_flight.set()
            self.release.wait()
            real(fd)

        monkeypatch.setattr(os, "fsync", held)

    def __enter__(self) -> HeldFsync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()  # a failed assertion must not leave the writer stuck (teardown joins it)


def last_record(home: Path) -> dict[str, Any]:
    lines = b"".join(p.read_bytes() for p in sorted((home / "audit").glob("*.jsonl"))).splitlines()
    return json.loads(lines[-1])


async def test_a_read_answers_with_its_record_written_and_a_write_runs_only_once_its_intent_is_durable(
        engine: str | None, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with deployed(home, engine) as deployment:
        token = deployment.token("tier1-agent")
        notes = deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0]
        async with deployment.client(token) as client:
            held = HeldFsync(monkeypatch)
            with anyio.fail_after(30), held:
                await call(client, "get_order", order_id=DEMO.delivered_order)
                await anyio.to_thread.run_sync(held.in_flight.wait)  # the writer is fsync'ing, and stays there
                read = await call(client, "get_order", order_id=DEMO.delivered_order)
                assert read["status"] == "ok" and not held.release.is_set()
                record = last_record(home)
                assert (record["seq"], record["tool"], record["status"]) == (read["audit_seq"], "get_order", "ok")

                written: list[dict[str, Any]] = []

                async def note() -> None:
                    written.append(await call(client, "add_ticket_note", ticket_id=DEMO.pii_ticket, body="held"))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(note)
                    await wait_all_tasks_blocked()
                    assert written == []  # its intent record is not durable yet...
                    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0] == notes  # ...so it did not run
                    held.release.set()
            assert written[0]["status"] == "ok"
            assert deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0] == notes + 1


async def test_with_fsync_reads_a_read_answers_only_once_its_record_is_durable(
        engine: str | None, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with deployed(home, engine, "[audit]\nfsync_reads = true\n") as deployment:
        token = deployment.token("tier1-agent")
        async with deployment.client(token) as client:
            held = HeldFsync(monkeypatch)
            answered: list[dict[str, Any]] = []

            async def read() -> None:
                answered.append(await call(client, "get_order", order_id=DEMO.delivered_order))

            with anyio.fail_after(30), held:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(read)
                    await anyio.to_thread.run_sync(held.in_flight.wait)
                    await wait_all_tasks_blocked()
                    assert answered == []  # written, but its fsync has not returned
                    held.release.set()
            assert answered[0]["status"] == "ok" and answered[0]["audit_seq"] == last_record(home)["seq"]
