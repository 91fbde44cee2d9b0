"""The audit lock's descriptor is kept between batches, but always names the file at `audit.lock`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deskgate.server.audit.segments import LOCK_NAME


def _open_lock_fds(directory: Path) -> list[str]:
    """What this process's open descriptors onto the lock file point at (`(deleted)` once replaced)."""
    lock = str(directory / LOCK_NAME)
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
        if target.startswith(lock):
            targets.append(target)
    return targets


@pytest.mark.anyio
async def test_a_replaced_lock_file_is_locked_anew_so_writers_never_lock_different_files(kit) -> None:
    """After audit.lock is replaced, the next batch locks the new file: no descriptor stays on the old one."""
    log = kit.open()
    await log.append(kit.event(1))
    assert _open_lock_fds(kit.dir) == [str(kit.dir / LOCK_NAME)]
    os.unlink(kit.dir / LOCK_NAME)
    (kit.dir / LOCK_NAME).write_bytes(b"")  # another process's view of the lock is now this file
    await log.append(kit.event(2))
    assert _open_lock_fds(kit.dir) == [str(kit.dir / LOCK_NAME)]
    await log.aclose()
    assert kit.check().ok


@pytest.mark.anyio
async def test_a_deleted_lock_file_is_recreated_and_the_chain_goes_on(kit) -> None:
    """Deleting audit.lock between batches loses nothing: it is recreated, appends continue in order."""
    log = kit.open()
    assert await log.append(kit.event(1)) == 1
    os.unlink(kit.dir / LOCK_NAME)
    assert await log.append(kit.event(2)) == 2
    assert (kit.dir / LOCK_NAME).exists()
    await log.aclose()
    assert kit.check().ok


@pytest.mark.anyio
async def test_closing_the_log_releases_the_lock_descriptor(kit) -> None:
    """A closed log holds no descriptor on audit.lock (so no flock either)."""
    log = kit.open()
    await log.append(kit.event(1))
    await log.aclose()
    assert _open_lock_fds(kit.dir) == []
