"""Stores opened once per process, by path and identity: what a Dask worker reads its chunks from.

A worker gets a store's path and ``store_id`` with every task; opening the store
(manifest, layout checks, array metadata) once per process keeps a task's cost
to its chunk. A store replaced since the query began answers
:class:`~modeldx.errors.StoreReplacedError`, never another store's rows.
"""

from __future__ import annotations

import threading

from modeldx.errors import StoreReplacedError
from modeldx.store.fs import unseen
from modeldx.store.store import Store, open_store

_OPEN: dict[tuple[str, str], Store] = {}
_LOCK = threading.Lock()


def open_cached(path: str, store_id: str) -> Store:
    """The store at ``path`` opened read-only in this process, checked to be ``store_id``.

    Raises
    ------
    StoreReplacedError
        The store at ``path`` is another one now (or is gone).
    """
    key = (str(path), str(store_id))
    with _LOCK:
        store = _OPEN.get(key)
        if store is None:
            try:
                store = open_store(path)
            except FileNotFoundError:
                raise StoreReplacedError(
                    f"no store at {path}: it was moved (or deleted) since it was opened, or {unseen(path)}"
                ) from None
            if store.store_id != store_id:
                raise StoreReplacedError(
                    f"the store at {path} was replaced by another capture (or deleted) since it "
                    "was opened; open it again")
            _OPEN[key] = store
    store.check_current()  # a stat when nothing changed
    return store


def forget(path: str | None = None) -> None:
    """Drop this process's opened stores (those at ``path``, or all)."""
    with _LOCK:
        for key in [k for k in _OPEN if path is None or k[0] == str(path)]:
            del _OPEN[key]
