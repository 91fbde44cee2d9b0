"""Group commit: one writer thread makes queued events durable a batch at a time.

Shared by the JSON Lines log (`log.AuditLog`) and the PostgreSQL log (`postgres.PostgresAuditLog`),
which differ only in how a batch is written (`_write`, `_write_now`) and made durable (`_flush`) and
how the head is signed (`_checkpoint`). The rules both inherit:

    - a caller validates and copies its event, queues it and waits on a future; an async caller
      waits on the event loop (never blocking it), a sync caller blocks its own thread;
    - the writer takes everything queued (up to MAX_BATCH): whatever arrived while the previous
      batch was being made durable - one write and one fsync (or commit) for all of them;
    - a durable append's future is answered only once `_flush` returned, that is once its record
      is durable; the fsync runs outside the batch lock, so the next batch is written meanwhile;
    - a `durable=False` append is answered as soon as its record is written: in the log for every
      reader, surviving a crash of this process; the writer fsyncs it within
      `fsync_reads_within_ms`, together with the others written meanwhile, and at once when a
      durable append arrives (see `AuditSection.fsync_reads`). When no batch is being written,
      such an append is written on the caller's own thread (`_write_now`: one small write, no
      hand-off to the writer and back); otherwise it joins the queue. This second path is kept
      because it saves more than a tenth of a read: over Streamable HTTP (`bench.overhead`'s
      rotation, 2026-12-08, a loaded machine) handing every read's record to the writer instead
      made `get_order` 1.19-1.38x slower (paired median) and cost 10-13% more server CPU per call;
    - a failed batch fails each of its callers still waiting with `AuditUnavailable` and the
      writer goes on; a failed fsync is different: the kernel may have dropped the pages it
      could not write, so records already answered may not survive a power cut - from then on
      the log refuses every append (fail closed) until the process restarts and re-reads the
      file (as PostgreSQL does after a failed fsync);
    - the head is signed every N records, every T seconds while records are unsigned, and at close.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread

from deskgate.server import telemetry
from deskgate.server.audit.records import checked_event, checked_shape
from deskgate.server.errors import AuditUnavailable
from deskgate.server.settings import AuditSection
from deskgate.server.store.db import Handoff

MAX_BATCH = 4096
_T = TypeVar("_T")
log = logging.getLogger("deskgate.audit")


_FLUSH = object()  # queued after a record written on its caller's thread: the writer fsyncs it


@dataclass(slots=True)
class _Pending:
    event: dict[str, Any]
    answer: Handoff[int] | Future[int]  # an async caller's (on its loop) or a thread's
    durable: bool  # answered after `_flush` (True) or after `_write` (False)


class GroupCommit(ABC):
    def __init__(self, settings: AuditSection | None) -> None:
        self.settings = settings or AuditSection()
        self._queue: queue.SimpleQueue[_Pending | object | None] = queue.SimpleQueue()
        self._state = threading.Lock()  # orders `closed` against queueing
        self._batch = threading.Lock()  # held while records are written and the head moves
        self._flush_requested = False  # a _FLUSH is queued for records written since the last flush
        self._broken: str | None = None  # why an fsync failed: every append is refused from then on
        self._closed = False
        self._unsigned, self._last_checkpoint = 0, time.monotonic()
        self._writer = threading.Thread(target=self._run, name="deskgate-audit-writer", daemon=True)

    # -- made durable by the subclass, in the writer thread ------------------------------------

    @abstractmethod
    def _write(self, events: list[dict[str, Any]]) -> list[int]:
        """Append `events` to the log, in order, where every reader sees them; their seqs.

        Called under `_batch`. Raises `AuditUnavailable` with the reason, having taken back
        whatever it wrote."""

    def _write_now(self, events: list[dict[str, Any]]) -> list[int] | None:
        """`_write` on the caller's thread, if it cannot block for long; None: queue them instead."""
        return None

    @abstractmethod
    def _flush_handle(self) -> Any:
        """Under `_batch`, after a write: what `_flush` needs to make everything written so far durable."""

    @abstractmethod
    def _flush(self, handle: Any) -> None:
        """Outside `_batch`: make durable what was written before `handle` was taken.

        Raises `AuditUnavailable` with the reason."""

    @abstractmethod
    def _checkpoint(self, why: str) -> None:
        """Sign the current head unless it is signed already; resets `_unsigned`."""

    @abstractmethod
    def _stopped(self) -> None:
        """The writer is done (after the shutdown checkpoint): release what it held."""

    # -- the contract ---------------------------------------------------------------------------

    async def append(self, event: dict[str, Any], *, durable: bool = True) -> int:
        """Seal `event` into the chain; returns its seq once durable. Runs on asyncio.

        With `durable=False` it returns once the record is written (in the log, surviving a crash of
        this process) and its fsync has been started, not finished.
        A caller cancelled while waiting still has its record written (the log stays
        complete); it just does not hear the seq.
        """
        # Written now, it is sealed before this returns: no private copy needed, `seal` checks its values.
        if not durable and (seq := self._written_now(checked_shape(event))) is not None:
            return seq
        answer: Handoff[int] = Handoff()
        self._submit(_Pending(checked_event(event), answer, durable))
        return await answer.answer()

    def append_sync(self, event: dict[str, Any]) -> int:
        """`append` for threads and CLI commands (blocks until durable)."""
        future: Future[int] = Future()
        self._submit(_Pending(checked_event(event), future, True))
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

    def _submit(self, pending: _Pending | object) -> None:
        with self._state:
            if self._closed:
                raise AuditUnavailable("the audit log is closed")
            if self._broken is not None:
                raise self._refusal()
            self._queue.put(pending)

    def _refusal(self) -> AuditUnavailable:
        return AuditUnavailable(f"the audit log could not be made durable ({self._broken}); it accepts nothing "
                                "until the server is restarted - check the disk first")

    def _written_now(self, event: dict[str, Any]) -> int | None:
        """Write one record on this thread unless a batch holds the log; its seq, or None to queue it."""
        if not self._batch.acquire(blocking=False):
            return None
        try:
            # Checked under the lock: once `close` began, the writer owns what is left (its shutdown
            # checkpoint fsyncs and signs every record written before, under this same lock).
            if self._closed or self._broken is not None:
                return None  # queued instead, where it is refused
            seqs = self._guarded_step(lambda: self._write_now([event]))
            if seqs is None:
                return None
            if isinstance(seqs, AuditUnavailable):
                raise seqs
            self._unsigned += 1
            ask = not self._flush_requested  # one request in the queue at a time: one wake-up per flush
            self._flush_requested = True
        finally:
            self._batch.release()
        if ask:
            with contextlib.suppress(AuditUnavailable):  # closed meanwhile: its shutdown checkpoint fsyncs first
                self._submit(_FLUSH)  # the writer fsyncs it, with whatever else is written by then
        return seqs[0]

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
            batch, stopping = self._drain(item)
            if not batch and not stopping:
                batch, stopping = self._linger()
            self._commit(batch)
            if stopping:
                self._guarded("shutdown")
                with self._batch:  # no record is being written on a caller's thread meanwhile
                    self._stopped()
                return

    def _drain(self, item: _Pending | object | None) -> tuple[list[_Pending], bool]:
        """`item` and whatever else is queued (up to MAX_BATCH): the appends to write, and whether
        `close` was called. Flush requests carry nothing: every commit flushes."""
        batch: list[_Pending] = []
        for _ in range(MAX_BATCH):
            if item is None:
                return batch, True
            if isinstance(item, _Pending):
                batch.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return batch, False

    def _linger(self) -> tuple[list[_Pending], bool]:
        """Only records written on their callers' threads wait for an fsync: give more of them up
        to `fsync_reads_within_ms` to share it. Anything else queued (a durable append, `close`)
        ends the wait at once, so no durable caller ever waits for this window."""
        deadline = time.monotonic() + self.settings.fsync_reads_within_ms / 1000
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            batch, stopping = self._drain(item)
            if batch or stopping:
                return batch, stopping
        return [], False

    @telemetry.audit_commit
    def _commit(self, batch: list[_Pending]) -> None:
        """Write `batch` (possibly empty: records written on their callers' threads need a flush) and flush."""
        if self._broken is not None:
            _fail(batch, self._refusal())
            return
        with self._batch:
            seqs = self._guarded_step(lambda: self._write([p.event for p in batch]) if batch else [])
            if not isinstance(seqs, AuditUnavailable):
                self._unsigned += len(seqs)
            # Whatever happened to this batch, records written earlier on callers' threads are
            # flushed now, and what is written from here on asks for the next flush.
            self._flush_requested = False
            handle = self._guarded_step(self._flush_handle)
        if isinstance(seqs, AuditUnavailable):
            _fail(batch, seqs)
            batch, seqs = [], []  # nobody of this batch waits any more; the flush still happens
        waiting = []
        for pending, seq in zip(batch, seqs, strict=True):
            if pending.durable:
                waiting.append((pending, seq))
            else:
                pending.answer.set_result(seq)
        flushed = handle if isinstance(handle, AuditUnavailable) else self._guarded_step(lambda: self._flush(handle))
        if isinstance(flushed, AuditUnavailable):
            # The records stay in the log (some were answered already); the durable callers hear
            # that theirs may not survive a crash of the machine, and fail closed - as does
            # everything after them (see the module docstring).
            self._broken = flushed.reason
            log.error("audit fsync failed (%s): the audit log refuses every append until restarted", flushed.reason)
            _fail([p for p, _ in waiting], flushed)
            return
        for pending, seq in waiting:
            pending.answer.set_result(seq)
        if self._unsigned >= self.settings.checkpoint_every_records:
            self._guarded("records")

    @staticmethod
    def _guarded_step(step: Callable[[], _T]) -> _T | AuditUnavailable:
        """Run one step of a batch; any failure comes back as the `AuditUnavailable` its callers hear."""
        try:
            return step()
        except AuditUnavailable as exc:
            return exc
        except Exception:  # the writer must outlive any bug: fail this batch closed, keep serving
            log.exception("audit writer failed a batch")
            return AuditUnavailable("the audit log failed internally")

    def _guarded(self, why: str) -> None:
        """Checkpoint; a failure is logged and retried T seconds later, and fails no caller."""
        self._last_checkpoint = time.monotonic()
        if self._broken is not None:
            return  # nothing may be signed as durable any more
        try:
            with self._batch:
                self._checkpoint(why)
        except AuditUnavailable as exc:
            log.warning("audit checkpoint postponed: %s", exc.reason)
        except Exception:
            log.exception("audit checkpoint failed")



def _fail(batch: list[_Pending], error: AuditUnavailable) -> None:
    for pending in batch:
        # One exception object per waiter: they are raised concurrently in different threads.
        pending.answer.set_exception(AuditUnavailable(error.reason, code=error.code))
