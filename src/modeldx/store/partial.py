"""Reading a store while a capture still writes it: only the chunks whose done marker exists.

A capture writes each item chunk whole — every array's chunk, then the chunk's
rows of the items table (``_progress/items-<chunk>.parquet``, written
atomically), then an empty marker ``_progress/chunk-<chunk>.done``
(:meth:`~modeldx.store.store.StoreWriter.write_chunk`). A chunk with a marker
is therefore whole and never written again; one without is not read at all.

:class:`PartialStore` watches such a store. :meth:`PartialStore.snapshot`
returns a :class:`Snapshot`: a read-only store of the chunks done at that moment
that every query runs on unchanged (the same methods as a
:class:`~modeldx.store.store.Store`, its rows the done chunks' rows in store
order). A snapshot's chunks are immutable, so an answer computed on it is the
answer on a store holding only those items. A store replaced (``overwrite=True``)
or deleted since it was opened raises
:class:`~modeldx.errors.StoreReplacedError`; a store that finished is read as
the complete store it now is.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modeldx.errors import StoreCorruptError, StoreNotFoundError, StoreReplacedError
from modeldx.store.lock import live_holder
from modeldx.store.manifest import STATUS_COMPLETE, read_manifest
from modeldx.store.store import PROGRESS, Store, open_store


class Snapshot:
    """The done chunks of a store, as a read-only store of their items (see the module docstring).

    Attributes
    ----------
    base : Store
        The store being written (its manifest describes all items).
    chunks : list of int
        The base store's chunks this snapshot holds, ascending.
    """

    def __init__(self, base: Store, chunks: list[int], items: pd.DataFrame) -> None:
        self.base = base
        self.chunks = list(chunks)
        self._items = items
        bounds = base.chunk_bounds()
        sizes = [bounds[c][1] - bounds[c][0] for c in self.chunks]
        starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        # (snapshot start, snapshot stop, base start) of each chunk
        self._pieces = [(int(starts[i]), int(starts[i + 1]), bounds[c][0]) for i, c in enumerate(self.chunks)]
        self.rows = (np.concatenate([np.arange(b[0], b[1]) for b in (bounds[c] for c in self.chunks)])
                     if self.chunks else np.zeros(0, dtype=np.int64))  # base row of each snapshot row

    # --- what a query reads of a store ----------------------------------------------
    @property
    def path(self) -> Path:
        return self.base.path

    @property
    def manifest(self):
        return self.base.manifest

    @property
    def layers(self) -> list[str]:
        return self.base.layers

    @property
    def n_items(self) -> int:
        return int(self.rows.size)

    @property
    def chunk_items(self) -> int:
        return self.base.chunk_items

    @property
    def complete(self) -> bool:
        """Whether the snapshot is the finished store (every chunk written *and* the store finalized)."""
        return self.base.complete and len(self.chunks) == self.base.manifest.n_chunks

    def neurons(self, layer: str) -> int:
        return self.base.neurons(layer)

    def _layer_spec(self, layer: str):
        return self.base._layer_spec(layer)

    def array_names(self) -> list[str]:
        return self.base.array_names()

    def chunk_bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` row ranges of the snapshot's chunks, in its own rows."""
        return [(lo, hi) for lo, hi, _ in self._pieces]

    def require_complete(self) -> None:
        """A snapshot is whole for the items it holds: nothing to wait for."""

    def check_current(self) -> None:
        self.base.check_current()

    def items(self) -> pd.DataFrame:
        """The done chunks' rows of the items table, in store order."""
        return self._items

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of the snapshot of an array, decoded to float32."""
        stop = self.n_items if stop is None else stop
        parts = [self.base.read(name, base + max(start, lo) - lo, base + min(stop, hi) - lo)
                 for lo, hi, base in self._pieces if lo < stop and hi > start]
        if not parts:
            return self.base.read(name, 0, 0)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __repr__(self) -> str:
        return (f"Snapshot({str(self.path)!r}, chunks={len(self.chunks)}/{self.base.manifest.n_chunks}, "
                f"items={self.n_items}/{self.base.n_items})")


class PartialStore:
    """A store that a capture may still be writing, read chunk by chunk as the chunks land.

    Parameters
    ----------
    path
        The store's folder; it must exist (status ``capturing`` or ``complete``).

    Examples
    --------
    >>> watched = PartialStore("runs/mnist")  # doctest: +SKIP
    >>> snap = watched.snapshot()
    >>> top_k_neurons(snap, k=10)  # an answer from the chunks written so far
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.store = open_store(path)
        self.path = self.store.path  # a Path, or the URL of a store on fsspec storage
        self.fs = self.store.fs
        self._items: dict[int, pd.DataFrame] = {}
        # a server's threads share one PartialStore: finishing swaps the store and clears the cache
        self._lock = threading.RLock()

    @property
    def complete(self) -> bool:
        return self.store.complete

    @property
    def manifest(self):
        return self.store.manifest

    def writing(self) -> bool | None:
        """Whether a live writer holds the store's lock; None on fsspec storage, which has no lock.

        A lock file left by a killed writer does not count: its ``flock`` went with the process.
        """
        if not self.fs.local:
            return None
        return live_holder(Path(self.fs.root)) is not None

    def _finished(self) -> bool:
        """Re-read the manifest: on completion, read the store as the complete store it is."""
        if self.store.complete:
            return True
        self.store.check_current()  # replaced or deleted: StoreReplacedError
        try:
            status = read_manifest(self.path).status
        except (OSError, StoreCorruptError, StoreNotFoundError):
            status = None
        if status == STATUS_COMPLETE:
            done = open_store(self.path)
            if done.store_id != self.store.store_id:
                raise StoreReplacedError(f"the store at {self.path} was replaced by another capture since it "
                                         "was opened; open it again")
            self.store = done
            self._items.clear()
            return True
        return False

    def done_chunks(self) -> list[int]:
        """The chunks written so far, ascending (all once the store is complete)."""
        with self._lock:
            self._finished()
            return sorted(self.store.done_chunks())

    def _chunk_items(self, chunk: int) -> pd.DataFrame:
        if chunk not in self._items:
            path = f"{PROGRESS}/items-{chunk:06d}.parquet"
            try:
                with self.fs.open(path) as fh:
                    table = pq.read_table(fh).to_pandas()
            except (OSError, pa.ArrowException) as exc:
                raise OSError(f"{path}: {exc}") from exc
            lo, hi = self.store.chunk_bounds()[chunk]
            if len(table) != hi - lo:
                raise self.store._corrupt(f"the items of chunk {chunk} have {len(table)} rows, the chunk "
                                          f"holds {hi - lo} items")
            self._items[chunk] = table
        return self._items[chunk]

    def snapshot(self) -> Snapshot:
        """The chunks done now, as a :class:`Snapshot`; the whole store once the capture finished."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        for _ in range(3):
            if self._finished():
                return Snapshot(self.store, list(range(self.store.manifest.n_chunks)), self.store.items())
            chunks = sorted(self.store.done_chunks())
            try:
                parts = [self._chunk_items(c) for c in chunks]
            except OSError:
                # the capture finished in between (its progress folder is removed after the manifest
                # says complete), or the store was replaced: the next round says which
                continue
            self.store.check_current()  # rows read from a replacing capture's files must not answer
            items = (pd.concat(parts, ignore_index=True) if parts else
                     pd.DataFrame({c: pd.Series(dtype=object) for c in ("item_id", "label", "correct")}))
            return Snapshot(self.store, chunks, items)
        self.store.check_current()
        raise self.store._corrupt(f"the progress files under {self.fs.full(PROGRESS)} cannot be read")

    def __repr__(self) -> str:
        return f"PartialStore({str(self.path)!r}, status={self.store.status!r})"
