"""Atomic file replacement: write a temporary file beside the target, then rename it over.

A reader sees the old file or the new one, never half of either, and a crash leaves at most a
``.part`` file that the next write removes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    """This process's umask, read without changing it where the system tells it (Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not atomic with other threads' file creation)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, sync: bool = True) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it is synced and renamed to ``path``.

    On an exception the target is untouched and the temporary file removed. ``sync=False``
    skips the fsync: the rename alone is atomic for other processes and survives the writer
    being killed, only not a power loss (cheaper where a commit is frequent).

    Examples
    --------
    >>> with atomic_write(tmp / "a.json", "w") as fh:  # doctest: +SKIP
    ...     fh.write("{}")
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        # mkstemp makes the file 0600; the file it replaces is any new file (0644 under umask 022):
        # a store on shared storage must be readable by others (colleagues, Dask workers)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
