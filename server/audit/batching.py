"""Group commit: one writer thread makes queued events durable a batch at a time.

Shared by the JSON Lines log (`log.AuditLog`) and the PostgreSQL log (`postgres.PostgresAuditLog`),
which differ only in how a batch is made durable (`_write`) and how the head is signed
(`_checkpoint`). The rules both inherit:

    - a caller validates and copies its event, queues it and waits on a future; an async caller
      waits on the event loop (never blocking it), a sync caller blocks its own thread;
    - the writer takes everything queued (up to MAX_BATCH): whatever arrived while the previous
      batch was being made durable - one write and one fsync (or commit) for all of them;
    - a future is answered only after `_write` returned, that is once its record is durable;
    - a failed batch fails each of its callers with `AuditUnavailable` and the writer goes on;
    - the head is signed every N records, every T seconds while records are unsigned, and at close.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from deskgate.server.audit.records import checked_event
from deskgate.server.errors import AuditUnavailable
from deskgate.server.settings import AuditSection
from deskgate.server.store.db import Handoff

MAX_BATCH = 4096
log = logging.getLogger("deskgate.audit")


@dataclass(slots=True)
class _Pending:
    event: dict[str, Any]
    answer: Handoff[int] | Future[int]  # an async caller's (on its loop) or a thread's


class GroupCommit(ABC):
    def __init__(self, settings: AuditSection | None) -> None:
        self.settings = settings or AuditSection()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._state = threading.Lock()  # orders `closed` against queueing
        self._closed = False
        self._unsigned, self._last_checkpoint = 0, time.monotonic()
        self._writer = threading.Thread(target=self._run, name="deskgate-audit-writer", daemon=True)

    # -- made durable by the subclass, in the writer thread ------------------------------------

    @abstractmethod
    def _write(self, events: list[dict[str, Any]]) -> list[int]:
        """Make `events` durable, in order; their seqs. Raises `AuditUnavailable` with the reason."""

    @abstractmethod
    def _checkpoint(self, why: str) -> None:
        """Sign the current head unless it is signed already; resets `_unsigned`."""

    @abstractmethod
    def _stopped(self) -> None:
        """The writer is done (after the shutdown checkpoint): release what it held."""

    # -- the contract ---------------------------------------------------------------------------

    async def append(self, event: dict[str, Any]) -> int:
        """Seal `event` into the chain; returns its seq once durable. Runs on asyncio.

        A caller cancelled while waiting still has its record written (the log stays
        complete); it just does not hear the seq.
        """
        answer: Handoff[int] = Handoff()
        self._submit(event, answer)
        return await answer.answer()

    def append_sync(self, event: dict[str, Any]) -> int:
        """`append` for threads and CLI commands (blocks until durable)."""
        future: Future[int] = Future()
        self._submit(event, future)
        return future.result()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    def close(self) -> None:
        """Drain queued appends, write the shutdown checkpoint, stop the writer. Idempotent."""
        with self._state:
            if not self._closed:
                self._closed = True
                self._queue.put(None)
        self._writer.join()

    def _submit(self, event: dict[str, Any], answer: Handoff[int] | Future[int]) -> None:
        pending = _Pending(checked_event(event), answer)
        with self._state:
            if self._closed:
                raise AuditUnavailable("the audit log is closed")
            self._queue.put(pending)

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            timeout = None
            if self._unsigned:
                timeout = max(0.0, self._last_checkpoint + self.settings.checkpoint_every_seconds - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._guarded("time")
                continue
            batch: list[_Pending] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
            if item is None:
                self._guarded("shutdown")
                self._stopped()
                return

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            seqs = self._write([p.event for p in batch])
        except AuditUnavailable as exc:
            error = exc
        except Exception:  # the writer must outlive any bug: fail this batch closed, keep serving
            log.exception("audit writer failed a batch")
            error = AuditUnavailable("the audit log failed internally")
        else:
            self._unsigned += len(seqs)
            for pending, seq in zip(batch, seqs, strict=True):
                pending.answer.set_result(seq)
            if self._unsigned >= self.settings.checkpoint_every_records:
                self._guarded("records")
            return
        for pending in batch:
            # One exception object per waiter: they are raised concurrently in different threads.
            pending.answer.set_exception(AuditUnavailable(error.reason, code=error.code))

    def _guarded(self, why: str) -> None:
        """Checkpoint; a failure is logged and retried T seconds later, and fails no caller."""
        self._last_checkpoint = time.monotonic()
        try:
            self._checkpoint(why)
        except AuditUnavailable as exc:
            log.warning("audit checkpoint postponed: %s", exc.reason)
        except Exception:
            log.exception("audit checkpoint failed")

