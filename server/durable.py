"""Durable file writes, once: what survives a crash or a power cut is what these promise.

    fsync_dir       make a created, renamed or removed directory entry durable
    write_all       write every byte (os.write may write fewer)
    atomic_replace  a file is either its old or its new content, never half of either
    private_dir     a directory (and its missing parents) created 0700, whatever the umask
    private_file    an empty file created 0600, whatever the umask, never through a symlink

Everything deskgate creates under its state directory is its user's alone: directories 0700,
files 0600 (`statedir` refuses to start on anything looser it did not create).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


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
    private_dir(directory)
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


def private_dir(path: Path) -> None:
    """Create `path` and its missing parents as 0700 directories, whatever the umask.

    What exists already is left as it is: `statedir.check_state_dir` judges it.
    """
    if os.path.lexists(path):
        return
    private_dir(path.parent)
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:  # created meanwhile by another process: not ours to change
        return
    os.chmod(path, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create `path` as an empty 0600 file unless something is there already; never through a symlink.

    For files another library creates with its own default mode (SQLite: 0644 less the umask):
    creating them first fixes their mode.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    fsync_dir(path.parent)
