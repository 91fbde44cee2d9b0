"""Durable file writes, once: what survives a crash or a power cut is what these promise.

    fsync_dir       make a created, renamed or removed directory entry durable
    write_all       write every byte (os.write may write fewer)
    atomic_replace  a file is either its old or its new content, never half of either
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a created, renamed or removed entry durable, not just the file's contents."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_replace(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, rename it over `path`, fsync the directory.

    Raises OSError; the old file is then intact and no temporary file is left behind.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(directory)
