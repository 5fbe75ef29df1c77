"""The writer's lock: one process at a time writes a store.

The lock is the file ``<store>/.lock`` holding the writer's pid and host name,
with an exclusive ``flock`` on it for as long as the writer lives. The kernel
drops the ``flock`` when the holder exits, however it exits, so a lock file left
by a killed process is stale exactly when its ``flock`` can be taken: the next
writer takes it over. The pid and host are for the message to the user.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from modeldx.errors import StoreLockedError

LOCK = ".lock"


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 256).decode(errors="replace").strip()


def live_holder(folder: Path) -> str | None:
    """Who holds the store's lock (its pid and host), or None when nobody does: no lock file, or a stale
    one left by a killed writer (its ``flock`` can be taken)."""
    try:
        fd = os.open(Path(folder) / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd) or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _lock_exclusive(fd: int, tries: int = 20) -> bool:
    """Take ``fd``'s exclusive flock, or False when a writer holds it. A watcher's probe
    (:func:`live_holder`) holds a shared flock for an instant: a few short retries outlast it,
    where a writer holds its lock for the whole capture."""
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < tries:
                time.sleep(0.005)
    return False


class WriterLock:
    """An exclusive, process-wide lock on a store folder.

    Examples
    --------
    >>> with WriterLock(Path("runs/s")):  # doctest: +SKIP
    ...     write_the_store()
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> WriterLock:
        """Take the lock, or raise :class:`~modeldx.errors.StoreLockedError` naming its holder."""
        while True:
            try:  # a new lock file is made whole with O_EXCL; an old one may be stale
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    fd = os.open(self.path, os.O_RDWR)
                except FileNotFoundError:  # released between our two opens: try again
                    continue
            if not _lock_exclusive(fd):
                holder = _holder(fd) or "another process"
                os.close(fd)
                raise StoreLockedError(
                    f"the store {self.path.parent} is being written by {holder} (lock file "
                    f"{self.path}); wait for that capture to finish or stop it, then run again"
                ) from None
            # the file we locked may have been released and unlinked after we opened it
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (idempotent): remove the file while still holding it, then unlock."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
