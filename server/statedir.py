"""The state directory is this user's alone: checked at every start, before anything in it is read.

deskgate creates its directories 0700 and its files 0600, whatever the umask (`durable.private_dir`,
`durable.private_file`). What it finds when it starts (`deskgate serve` and every admin command) must
be as safe, or it refuses to start with a `ConfigError` that names the path and the fix:

    1. every directory above $DESKGATE_HOME is owned by root or this user, and is writable by no one
       else unless it has the sticky bit (as /tmp): no one else can swap the state directory;
    2. $DESKGATE_HOME itself (a symlink to it is followed: the operator chose it) and
    3. everything under it is a real directory or file - no symlink, device, socket or pipe - owned by
       this user and writable by neither group nor others.

Once that holds, no other user (root aside) can change what deskgate reads from the directory until it
exits, so the files it opens later are the ones checked here. Entries readable by others (from an
older version, or written by an editor) are accepted: `chmod -R go-rwx $DESKGATE_HOME` tightens them.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from deskgate.server.durable import private_dir
from deskgate.server.errors import ConfigError

__all__ = ["check_state_dir", "open_state_dir"]

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def open_state_dir(home: Path) -> None:
    """Check the state directory (`check_state_dir`), then create it 0700 if it does not exist."""
    check_state_dir(home)
    private_dir(home)


def check_state_dir(home: Path) -> None:
    """Refuse (ConfigError) a state directory another user could have changed; a missing one passes."""
    real = Path(os.path.realpath(home))
    for ancestor in reversed(real.parents):
        _check_ancestor(ancestor, home)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return
    _check_entry(real, info)
    if stat.S_ISDIR(info.st_mode):
        _check_tree(real)


def _check_tree(directory: Path) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            path = Path(entry.path)
            info = entry.stat(follow_symlinks=False)
            _check_entry(path, info)
            if stat.S_ISDIR(info.st_mode):
                _check_tree(path)


def _check_entry(path: Path, info: os.stat_result) -> None:
    me = os.geteuid()
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(path)
        raise ConfigError(f"is a symlink (to {target}); deskgate follows no symlink inside its state directory. "
                          f"Fix: put the real file or directory here (`rm {path} && mv {target} {path}`)",
                          file=str(path))
    is_dir = stat.S_ISDIR(info.st_mode)
    if not is_dir and not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"is neither a file nor a directory; remove it (`rm {path}`)", file=str(path))
    if info.st_uid != me:
        raise ConfigError(f"is owned by {_user(info.st_uid)}, not by {_user(me)} who runs deskgate, so someone "
                          f"else could have changed it. Fix: check it, then `chown {_user(me)} {path}`",
                          file=str(path))
    if info.st_mode & _OTHERS_WRITE:
        mode, fix = ("700", "directory") if is_dir else ("600", "file")
        raise ConfigError(f"is a {fix} writable by {_who(info.st_mode)} (mode {info.st_mode & 0o7777:o}). "
                          f"Fix: `chmod {mode} {path}`", file=str(path))


def _check_ancestor(path: Path, home: Path) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return  # created below, 0700, by `open_state_dir`
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigError(f"is owned by {_user(info.st_uid)}, who could swap the state directory {home}. "
                          f"Fix: set DESKGATE_HOME to a directory in a tree of your own", file=str(path))
    if info.st_mode & _OTHERS_WRITE and not info.st_mode & stat.S_ISVTX:
        raise ConfigError(f"is writable by {_who(info.st_mode)} without the sticky bit (mode "
                          f"{info.st_mode & 0o7777:o}), so others could swap the state directory {home}. "
                          f"Fix: `chmod go-w {path}`", file=str(path))


def _who(mode: int) -> str:
    return " and ".join(who for bit, who in ((stat.S_IWGRP, "its group"), (stat.S_IWOTH, "others")) if mode & bit)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
