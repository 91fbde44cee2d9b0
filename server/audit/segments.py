"""The files of an audit directory and the low-level, durable operations on them.

    audit.lock                 flock'd by whichever process is appending a batch
    audit-000001.jsonl ...     the chain, rotated into numbered segments (the highest is active)
    audit-000003.jsonl.<offset>.torn   a torn last line set aside after a crash
    checkpoints.jsonl          signed checkpoints (see `checkpoints`)
    audit.key / audit.pub      the Ed25519 checkpoint key (see `keys`)

Every file is opened with O_NOFOLLOW and created 0600: a symlink planted in the directory makes
the log fail closed instead of writing somewhere else.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from deskgate.server.durable import fsync_dir, write_all

LOCK_NAME = "audit.lock"
CHECKPOINTS_NAME = "checkpoints.jsonl"
_SEGMENT = re.compile(r"^audit-(\d{6,})\.jsonl$")
_BLOCK = 64 * 1024
_FLAGS = os.O_CLOEXEC | os.O_NOFOLLOW


def segment_name(index: int) -> str:
    return f"audit-{index:06d}.jsonl"


def segments(directory: Path) -> list[tuple[int, Path]]:
    """(index, path) of every segment, in chain order."""
    found = [(int(m.group(1)), directory / name) for name in os.listdir(directory) if (m := _SEGMENT.match(name))]
    return sorted(found)


def open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _FLAGS, 0o600)


def open_read(path: Path) -> int:
    return os.open(path, os.O_RDONLY | _FLAGS)


def append_durably(path: Path, data: bytes) -> None:
    """Append and fsync; a file that did not exist is made durable in its directory too."""
    created = not path.exists()
    fd = open_append(path)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def last_line(fd: int, size: int) -> tuple[bytes, int]:
    """The last complete line of a file (without newline) and the offset just past it.

    Anything after that offset is a torn write. A file without a complete line gives (b"", 0).
    """
    pos, buf, tail_end = size, b"", -1
    while True:
        if tail_end < 0 and (nl := buf.rfind(b"\n")) >= 0:
            tail_end = pos + nl + 1
        if tail_end >= 0:
            stop = tail_end - 1 - pos
            start = buf.rfind(b"\n", 0, stop) + 1
            if start > 0 or pos == 0:
                return buf[start:stop], tail_end
        elif pos == 0:
            return b"", 0
        step = min(_BLOCK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf


def first_line(fd: int) -> bytes:
    buf = b""
    while b"\n" not in buf:
        chunk = os.pread(fd, _BLOCK, len(buf))
        if not chunk:
            return b""
        buf += chunk
    return buf[: buf.index(b"\n")]


@dataclass(frozen=True, slots=True)
class TornTail:
    segment: str
    offset: int
    length: int
    sha256: str


def set_aside_torn(path: Path, tail_end: int, size: int) -> TornTail:
    """Move the bytes after the last newline to a `.torn` file, then cut them off the segment.

    Order matters for crash safety: the copy is durable before the segment is truncated, so a
    crash in between leaves both (the next open sets the same tail aside again, under a new name
    if needed) and never loses the bytes.
    """
    fd = os.open(path, os.O_RDWR | _FLAGS)
    try:
        torn = os.pread(fd, size - tail_end, tail_end)
        aside = path.with_name(f"{path.name}.{tail_end}.torn")
        n = 0
        while True:
            try:
                out = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FLAGS, 0o600)
                break
            except FileExistsError:
                n += 1
                aside = path.with_name(f"{path.name}.{tail_end}-{n}.torn")
        try:
            write_all(out, torn)
            os.fsync(out)
        finally:
            os.close(out)
        fsync_dir(path.parent)
        os.ftruncate(fd, tail_end)
        os.fsync(fd)
    finally:
        os.close(fd)
    return TornTail(path.name, tail_end, len(torn), hashlib.sha256(torn).hexdigest())


def describe_oserror(exc: OSError) -> str:
    """A short reason for a caller: what went wrong, without paths."""
    known = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EFBIG: "the file size limit is reached",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
        errno.ENOENT: "the audit directory is missing",
        errno.ELOOP: "a symlink was found where an audit file should be",
        errno.EIO: "an I/O error occurred",
    }
    return known.get(exc.errno or 0, f"an OS error occurred ({errno.errorcode.get(exc.errno or 0, 'unknown')})")
