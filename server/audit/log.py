"""The audit log writer: append-only, hash-chained JSON Lines, group-committed, crash-safe.

Contract the guard chain relies on:
    `await log.append(event)` returns the record's `seq` only once the record is durable
    (written and fsync'd); if it cannot be, it raises `AuditUnavailable` with the reason, and
    the chain fails closed. `log.append_sync(event)` does the same for CLI admin actions.
    `await log.aclose()` drains pending appends and writes a signed shutdown checkpoint.

How an append becomes durable (one writer thread per `AuditLog`, see `batching`):
    1. The caller validates and copies its event, queues it and waits on a future (a
       `durable=False` record is written at once on the caller's thread when the log is free:
       steps 3 and 5 without the fsync, which the writer then does).
    2. The writer takes everything queued as one batch - whatever arrived while the previous
       fsync ran. That is the group commit: one write and one fsync per batch.
    3. Under an exclusive `flock` on `audit.lock` (its descriptor kept open between batches, and
       re-opened when the file at that path is no longer the one locked, so that two processes
       can never hold locks on different files), it checks whether another process appended
       since (the active segment's inode and size, and whether a next segment appeared) and, if
       so, re-reads the head from disk, so the chain never forks across processes.
    4. A torn last line left by a crash is set aside (`.torn`) and a "system" record says so.
    5. The batch is sealed onto the head, rotated into a new segment when the active one is too
       large or too old, and written with O_APPEND; callers that asked for a written record
       (`durable=False`) are answered; the locks are released and the segment fsync'd (through
       a duplicate descriptor, so the next batch can be written meanwhile); only then are the
       other callers answered. A checkpoint fsyncs the records it signs first.
    6. Every N records or T seconds, and at shutdown, the head is signed into a checkpoint.

A failed write is cut back off the file (best effort) and the cached head forgotten, so the next
batch re-reads the truth from disk: the writer never dies and the chain stays consistent. A failed
fsync leaves the written lines in place (complete records, some already answered), and the log
refuses every append from then on, until a restart re-reads the file (`batching`).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deskgate.server.audit.batching import GroupCommit, log
from deskgate.server.audit.checkpoints import Anchor, Shipper, anchor_from_env, make_checkpoint
from deskgate.server.audit.keys import AuditKey, KeyHolder, promote_next_key, settle_rotation, stage_next_key
from deskgate.server.audit.records import GENESIS, BadRecord, parse_line, parse_ts, seal
from deskgate.server.audit.segments import (
    CHECKPOINTS_NAME,
    LOCK_NAME,
    append_durably,
    describe_oserror,
    first_line,
    last_line,
    open_append,
    open_read,
    segment_name,
    segments,
    set_aside_torn,
)
from deskgate.server.durable import fsync_dir, private_dir, write_all
from deskgate.server.errors import AuditUnavailable
from deskgate.server.settings import AuditSection

__all__ = ["AuditLog"]


class AuditLog(GroupCommit):
    def __init__(
        self,
        directory: Path,
        settings: AuditSection | None = None,
        *,
        anchor: Anchor | None = None,
        key: AuditKey | None = None,
        rotate_seconds: int = 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings)
        self.directory = directory
        # Per-batch paths as plain strings: building `Path` objects cost more than the stat they feed.
        self._lock_path = os.path.join(directory, LOCK_NAME)
        self._rotate_seconds = rotate_seconds
        self._clock = clock
        # The head as this process last saw it, and the active segment it last wrote.
        self._seq, self._head, self._signed_seq = 0, GENESIS, 0
        self._index, self._fd, self._size, self._ino = 1, -1, 0, 0
        self._lock_fd = -1
        self._dirty = False  # written since the last fsync
        self._unflushed_dir = False  # a segment was created since the last fsync
        self._segment_started: float | None = None
        self._shipper: Shipper | None = None
        try:
            private_dir(directory)
            with self._locked():
                checkpoints = directory / CHECKPOINTS_NAME
                if not checkpoints.exists():
                    append_durably(checkpoints, b"")
                if key is None:
                    settle_rotation(directory, _last_checkpoint(checkpoints))
                self._keys = KeyHolder(directory, key)
                self._write_batch([])  # recovery: sets a torn tail aside and records it
        except OSError as exc:
            self._close_fd()
            self._close_lock()
            raise AuditUnavailable(f"the audit log cannot be opened: {describe_oserror(exc)}") from exc
        anchor = anchor or anchor_from_env()
        self._shipper = Shipper(anchor) if anchor else None
        self._writer.start()

    @property
    def anchor_failures(self) -> int:
        return self._shipper.failures if self._shipper else 0

    # -- GroupCommit ------------------------------------------------------------------------------

    def _write(self, events: list[dict[str, Any]]) -> list[int]:
        try:
            with self._locked():
                return self._write_batch(events, flush=False)
        except OSError as exc:
            raise AuditUnavailable(f"the audit log cannot be written: {describe_oserror(exc)}") from exc

    def _write_now(self, events: list[dict[str, Any]]) -> list[int] | None:
        """Write on the caller's thread when that cannot block for long: no other process holds the
        lock, nobody appended since (no head to re-read, nothing to recover) and no rotation is due
        (else the writer thread does it)."""
        try:
            lock_fd = self._lock_held(blocking=False)
            if lock_fd < 0:
                return None
            try:
                if not self._unchanged() or self._due_for_rotation(self._clock()):
                    return None
                return self._append(events, flush=False)
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        except OSError as exc:
            raise AuditUnavailable(f"the audit log cannot be written: {describe_oserror(exc)}") from exc

    def _flush_handle(self) -> tuple[int, bool]:
        """A duplicate of the segment's descriptor (or -1 when nothing is unsynced), and whether the
        directory needs an fsync too: `_flush` uses them while the next batch is written."""
        if self._fd < 0 or not (self._dirty or self._unflushed_dir):
            return -1, False
        try:
            handle = os.dup(self._fd), self._unflushed_dir
        except OSError as exc:
            raise AuditUnavailable(f"the audit log cannot be made durable: {describe_oserror(exc)}") from exc
        self._dirty = self._unflushed_dir = False
        return handle

    def _flush(self, handle: tuple[int, bool]) -> None:
        fd, directory = handle
        if fd < 0:
            return
        try:
            os.fsync(fd)
            if directory:
                fsync_dir(self.directory)
        except OSError as exc:
            # The lines stay: complete records, some already answered. The kernel may have dropped
            # the pages it could not write, so a retried fsync proves nothing: the log stops (`batching`).
            raise AuditUnavailable(f"the audit log cannot be made durable: {describe_oserror(exc)}") from exc
        finally:
            os.close(fd)

    def _checkpoint(self, why: str) -> None:
        try:
            with self._locked():
                self._write_batch([])
                if self._seq and self._seq != self._signed_seq:
                    self._sync()  # never sign a head that a power cut could take back
                    self._sign_head(why)
        except OSError as exc:
            raise AuditUnavailable(describe_oserror(exc)) from exc

    def _stopped(self) -> None:
        self._close_fd()
        self._close_lock()
        if self._shipper:
            self._shipper.close()

    # -- under the lock ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = self._lock_held()
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _lock_held(self, *, blocking: bool = True) -> int:
        """Take the flock on `audit.lock`, re-using the descriptor of the previous batch; -1 when
        not `blocking` and another process holds it.

        A lock on a file that is no longer at the path (the directory or the lock file was replaced)
        would exclude no one: after locking, the path must still name the file locked, else the
        descriptor is re-opened and the lock taken again.
        """
        path = self._lock_path
        while True:
            if self._lock_fd < 0:
                self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return -1
            try:
                at_path = os.stat(path, follow_symlinks=False)
                held = os.fstat(self._lock_fd)
            except FileNotFoundError:
                at_path = None
            except BaseException:
                self._close_lock()
                raise
            if at_path is not None and (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino):
                return self._lock_fd
            self._close_lock()

    def _close_lock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
        self._lock_fd = -1

    def _write_batch(self, events: list[dict[str, Any]], *, flush: bool = True) -> list[int]:
        """Seal and append `events` (after any recovery notices), durably unless `flush` is False
        (then `_flush` must follow); returns their seqs."""
        seqs = self._append(self._refresh() + events, flush=flush)
        return seqs[len(seqs) - len(events):]

    def _append(self, records: list[dict[str, Any]], *, flush: bool) -> list[int]:
        """Seal `records` onto the head as this process knows it and write them; their seqs."""
        if not records:
            return []
        now = self._clock()
        if self._fd >= 0 and self._due_for_rotation(now):
            self._close_fd()
            self._index, self._size, self._segment_started = self._index + 1, 0, None
        created = self._fd < 0
        if created:
            self._fd = open_append(self.directory / segment_name(self._index))
            self._ino = os.fstat(self._fd).st_ino
        seq, head, lines = self._seq, self._head, []
        for event in records:
            seq += 1
            record, line = seal(event, seq, head, now)
            head = record["hash"]
            lines.append(line)
        data = b"".join(lines)
        self._unflushed_dir |= created
        try:
            write_all(self._fd, data)
        except OSError:
            self._undo(self._size)
            raise
        self._dirty = True
        self._seq, self._head, self._size = seq, head, self._size + len(data)
        if self._segment_started is None:
            self._segment_started = now
        if flush:
            self._sync()
        return list(range(seq - len(records) + 1, seq + 1))

    def _sync(self) -> None:
        """fsync what was written (and the directory when a segment was created), on this thread."""
        if self._fd < 0 or not (self._dirty or self._unflushed_dir):
            return
        os.fsync(self._fd)
        if self._unflushed_dir:
            fsync_dir(self.directory)
        self._dirty = self._unflushed_dir = False

    def _due_for_rotation(self, now: float) -> bool:
        if self._size >= self.settings.rotate_bytes:
            return True
        return self._segment_started is not None and now - self._segment_started >= self._rotate_seconds

    def _undo(self, size: int) -> None:
        """Cut a failed batch back off (best effort) and forget the head: re-read it next time."""
        try:
            os.ftruncate(self._fd, size)
            os.fsync(self._fd)
        except OSError:
            pass  # the next open or refresh sets any torn tail aside; complete lines simply stay
        self._close_fd()

    def _close_fd(self) -> None:
        """Close the active segment, fsync'ing it first if written since (a rotation, a refresh)."""
        if self._fd >= 0:
            try:
                self._sync()
            except OSError as exc:
                log.error("audit: fsync before closing a segment failed: %s", describe_oserror(exc))
            os.close(self._fd)
        self._fd, self._dirty, self._unflushed_dir = -1, False, False

    def _unchanged(self) -> bool:
        """True when no one appended or rotated since this process's last write."""
        if self._fd < 0:
            return False
        try:
            st = os.stat(self._segment_path(self._index), follow_symlinks=False)
        except FileNotFoundError:
            return False
        if (st.st_ino, st.st_size) != (self._ino, self._size):
            return False
        return not os.path.lexists(self._segment_path(self._index + 1))

    def _segment_path(self, index: int) -> str:
        return os.path.join(self.directory, segment_name(index))

    def _refresh(self) -> list[dict[str, Any]]:
        """Load the head from disk if it may have moved; returns recovery notices to record."""
        if self._unchanged():
            return []
        self._close_fd()
        notices: list[dict[str, Any]] = []
        found = segments(self.directory)
        active = found[-1][0] if found else 1
        seq, head, size_of_active, started = 0, GENESIS, 0, None
        for index, path in reversed(found):
            fd = open_read(path)
            try:
                size = os.fstat(fd).st_size
                line, tail_end = last_line(fd, size)
                if index == active:
                    if tail_end != size:
                        notices.append(_set_aside(path, tail_end, size))
                    size_of_active, started = tail_end, (_started(fd) if line else None)
            finally:
                os.close(fd)
            if line:
                try:
                    record = parse_line(line)
                except BadRecord as exc:
                    raise AuditUnavailable(
                        f"the last audit record in {path.name} is damaged ({exc}); run `deskgate audit verify`"
                    ) from exc
                seq, head = record["seq"], record["hash"]
                break
        if seq < self._seq:
            # The head never moves back: the log was truncated, replaced or deleted under us.
            # Starting a new chain here would hide that, so refuse until an operator looks.
            raise AuditUnavailable(f"the audit log on disk ends before seq {self._seq}, which this process saw")
        self._seq, self._head, self._index = seq, head, active
        self._size, self._segment_started = size_of_active, started
        if found:
            self._fd = open_append(self.directory / segment_name(active))
            self._ino = os.fstat(self._fd).st_ino
        return notices

    def rotate_key(self, new: AuditKey) -> str:
        """Hand checkpoint signing over to `new` at the current head; the old key's kid. The steps
        and their crash safety are in `keys`; other processes re-read the key before they sign."""
        with self._batch:
            try:
                with self._locked():
                    self._write_batch([])
                    self._sync()  # the handover signs a durable head, like every checkpoint
                    old = self._keys.current()
                    stage_next_key(self.directory, new)
                    self._sign_head("rotation", hand_to=new.public)
                    promote_next_key(self.directory)
                    if self._keys.current().kid != new.kid:
                        raise AuditUnavailable("the rotated audit key did not take effect")
            except OSError as exc:
                raise AuditUnavailable(f"the audit key cannot be rotated: {describe_oserror(exc)}") from exc
        return old.kid

    def _sign_head(self, why: str, *, hand_to: Ed25519PublicKey | None = None) -> None:
        line = make_checkpoint(self._keys.current(), self._seq, self._head, self._clock(), why, hand_to=hand_to)
        append_durably(self.directory / CHECKPOINTS_NAME, line)
        self._unsigned, self._signed_seq, self._last_checkpoint = 0, self._seq, time.monotonic()
        if self._shipper:
            self._shipper.ship(line)


def _set_aside(path: Path, tail_end: int, size: int) -> dict[str, Any]:
    torn = set_aside_torn(path, tail_end, size)
    log.warning("audit: torn last line of %s (%d bytes) set aside", torn.segment, torn.length)
    return {
        "kind": "system", "event": "torn_tail_set_aside", "segment": torn.segment,
        "offset": torn.offset, "bytes": torn.length, "sha256": torn.sha256,
    }


def _started(fd: int) -> float | None:
    """When a segment was started (its first record's time), for rotation by age."""
    try:
        return parse_ts(parse_line(first_line(fd))["ts"]).timestamp()
    except (BadRecord, KeyError, TypeError, ValueError):
        return None  # damaged: `verify` reports it; rotation falls back to size alone


def _last_checkpoint(path: Path) -> dict[str, Any] | None:
    """The last checkpoint of a checkpoints file (None: none, or unreadable - `verify` says which)."""
    fd = open_read(path)
    try:
        line, _ = last_line(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    try:
        cp = json.loads(line) if line else None
    except ValueError:
        return None
    return cp if isinstance(cp, dict) else None
