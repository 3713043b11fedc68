"""Whether the process that generates a job is still alive: each one holds a file lock for its whole life.

The operating system drops a process's locks when it ends, however it ends (SIGKILL and crashes
included), so a lock another process can take belongs to a process that is gone: no heartbeats
to keep up, no clocks to compare, no pid that a new process may have reused. File locks work
between the processes of one machine, which is also as far as a SQLite database can be shared.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path


def new_owner() -> str:
    """A name for this process that no other process, earlier or later, will have: pid and a random token."""
    return f"{os.getpid()}-{secrets.token_hex(8)}"


class OwnerLock:
    """The lock `owner` holds in `directory` while it lives."""

    def __init__(self, directory: Path, owner: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._path = directory / f"{owner}.lock"
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _try_lock(self._fd):
                raise OSError(f"{self._path} is locked by another process")
        except BaseException:
            os.close(self._fd)
            raise

    def release(self) -> None:
        _unlock(self._fd)
        os.close(self._fd)
        self._path.unlink(missing_ok=True)


def owner_gone(directory: Path, owner: str) -> bool:
    """True when no live process holds `owner`'s lock; the lock file of a gone owner is removed."""
    path = directory / f"{owner}.lock"
    try:
        fd = _open_for_locking(path)
    except FileNotFoundError:
        return True
    try:
        if not _try_lock(fd):
            return False
        _unlock(fd)
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):  # on a read-only registry, the file stays: it is still unlocked
        path.unlink(missing_ok=True)
    return True


def _open_for_locking(path: Path) -> int:
    """The lock file, opened for writing when it can be (Windows locks need it), else for reading (a read-only
    mount), which is enough for `flock`."""
    try:
        return os.open(path, os.O_RDWR)
    except FileNotFoundError:
        raise
    except OSError:
        return os.open(path, os.O_RDONLY)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
