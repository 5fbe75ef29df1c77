"""Where a store lives: a local folder or any fsspec URL (``file://``, ``memory://``, ``s3://`` ...).

The store reads and writes its files through :class:`StoreFS` only, so that a store
on shared or object storage works like one on the local disk. Paths given to its
methods are relative to the store's root and use ``/``.
"""

from __future__ import annotations

import os
import posixpath
import socket
import warnings
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from modeldx._atomic import atomic_write


def unseen(location: str | os.PathLike) -> str:
    """Why a store that exists where a capture or query started may be missing in this process."""
    loc = os.fspath(location)
    memory = (" (a memory:// store lives in the memory of the process that made it: no other "
              "process, no Dask worker, sees it)" if loc.startswith("memory://") else "")
    return (f"this process ({socket.gethostname()}, pid {os.getpid()}) cannot see it{memory}; every "
            "Dask worker must reach the store at the same absolute path (shared storage mounted "
            "alike on every machine) or at a URL they all reach")


def is_url(location: str | os.PathLike) -> bool:
    """Whether ``location`` is a URL (``proto://...``) rather than a local path."""
    return "://" in os.fspath(location)


class StoreFS:
    """An fsspec filesystem and the store's root on it.

    Parameters
    ----------
    location
        A local path, or a URL that fsspec knows (``file://``, ``memory://``,
        ``s3://bucket/x`` with its package installed).

    Examples
    --------
    >>> fs = StoreFS("memory://runs/a")
    >>> fs.write_bytes_atomic("manifest.json", b"{}")
    >>> fs.read_bytes("manifest.json")
    b'{}'
    """

    def __init__(self, location: str | os.PathLike) -> None:
        loc = os.fspath(location)
        if is_url(loc):
            self.fs, root = fsspec.core.url_to_fs(loc)
        else:
            self.fs, root = LocalFileSystem(), os.path.abspath(loc)
        self.location = loc
        self.root = root.rstrip("/") or "/"
        # a local filesystem has rename and flock; object stores have neither
        self.local = isinstance(self.fs, LocalFileSystem)

    def __reduce__(self):  # workers rebuild it from the location (a filesystem may not pickle)
        return (type(self), (self.location,))

    def __str__(self) -> str:
        return self.location

    def full(self, rel: str = "") -> str:
        """The path of ``rel`` on the filesystem."""
        return posixpath.join(self.root, rel) if rel else self.root

    # --- queries ----------------------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        return self.fs.exists(self.full(rel))

    def isdir(self, rel: str = "") -> bool:
        return self.fs.isdir(self.full(rel))

    def isfile(self, rel: str) -> bool:
        return self.fs.isfile(self.full(rel))

    def list(self, rel: str = "") -> list[str]:
        """Names (not paths) in folder ``rel``; empty if it does not exist."""
        try:
            entries = self.fs.ls(self.full(rel), detail=False)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(e.rstrip("/")) for e in entries)

    def size(self, rel: str = "") -> int:
        """Bytes of file ``rel``, or of every file under folder ``rel``."""
        path = self.full(rel)
        if self.fs.isfile(path):
            return int(self.fs.size(path))
        return sum(int(info.get("size") or 0)
                   for info in self.fs.find(path, detail=True).values()
                   if info.get("type") == "file")

    def stamp(self, rel: str) -> tuple | None:
        """What changes when file ``rel`` is replaced (``None``: it does not exist).

        Locally the inode, modification time and size; elsewhere what the filesystem
        reports of those (an object store's ETag or time).
        """
        path = self.full(rel)
        if self.local:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                return None
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        keys = ("size", "mtime", "created", "ETag", "etag", "LastModified", "generation")
        return tuple(str(info.get(k)) for k in keys)

    # --- reading and writing ----------------------------------------------------------
    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.full(rel))

    def open(self, rel: str, mode: str = "rb"):
        return self.fs.open(self.full(rel), mode)

    def write_bytes_atomic(self, rel: str, data: bytes, *, sync: bool = True) -> None:
        """Write file ``rel`` so that a reader sees the old content or the new, never half.

        On a local filesystem: a temporary file beside it, synced, then renamed over it.
        Object stores have no atomic rename (a "move" copies); there one ``put`` of the
        whole object is what they make atomic, and that is what is done. Other
        filesystems without rename (``memory://``) get the plain write too.
        """
        path = self.full(rel)
        if self.local:
            with atomic_write(path, sync=sync) as fh:
                fh.write(data)
            return
        self.fs.pipe_file(path, data)

    def touch(self, rel: str) -> None:
        """An empty file ``rel`` (a marker)."""
        self.write_bytes_atomic(rel, b"", sync=False)

    def makedirs(self, rel: str = "") -> None:
        self.fs.makedirs(self.full(rel), exist_ok=True)

    def remove(self, rel: str, *, recursive: bool = False, missing_ok: bool = True) -> None:
        """Remove file ``rel`` (or, ``recursive``, folder ``rel`` and all under it)."""
        try:
            self.fs.rm(self.full(rel), recursive=recursive)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def zarr_store(self, rel: str, *, read_only: bool = False) -> Any:
        """What :func:`zarr.open_group` takes for folder ``rel``: the local path, or a
        ``FsspecStore`` over this filesystem for a URL."""
        if self.local:
            return self.full(rel)
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
        from zarr.storage import FsspecStore

        fs = self.fs
        if not getattr(fs, "async_impl", False):
            fs = AsyncFileSystemWrapper(fs, asynchronous=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return FsspecStore(fs, path=self.full(rel), read_only=read_only)
