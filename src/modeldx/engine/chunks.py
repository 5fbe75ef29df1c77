"""A chunk a worker builds from the store's path alone.

A :class:`ChunkTask` is what travels to a Dask worker: the store's absolute path
and identity, the chunk's index, the arrays to read, and the subset's rows and
weights inside that chunk. :func:`load_chunk` opens the store there (once per
process, :func:`modeldx.store.cache.open_cached`), reads the chunk's row group of
``items.parquet`` and its rows of each array, and gives the reduction the same
:class:`~modeldx.engine.local.Chunk` the local engine gives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modeldx.engine.local import Chunk
from modeldx.engine.subset import Sample
from modeldx.store.cache import open_cached


@dataclass(frozen=True)
class ChunkTask:
    """What a worker needs to build one chunk: no store object, no items table.

    ``rows`` and ``weights`` are the subset's store rows within the chunk and their
    weights; ``None`` means every row of the chunk, weight 1.
    """

    path: str
    store_id: str
    index: int
    start: int
    stop: int
    arrays: tuple[str, ...]
    rows: np.ndarray | None = None
    weights: np.ndarray | None = None


def wanted_chunks(store, subset: Sample | None) -> list[int]:
    """Indices of the chunks that hold rows of ``subset`` (every chunk without one)."""
    bounds = store.chunk_bounds()
    if subset is None:
        return list(range(len(bounds)))
    which = np.searchsorted([b for _, b in bounds], subset.rows, side="right")
    return [int(i) for i in np.unique(which)]


def chunk_tasks(store, arrays: Sequence[str], subset: Sample | None = None) -> list[ChunkTask]:
    """One task per chunk holding rows of ``subset`` (or per chunk), in chunk order."""
    path = store.location  # workers may run in another folder, or on another machine
    bounds = store.chunk_bounds()
    tasks = []
    for index in wanted_chunks(store, subset):
        start, stop = bounds[index]
        rows = weights = None
        if subset is not None:
            lo, hi = np.searchsorted(subset.rows, [start, stop])
            rows, weights = subset.rows[lo:hi], subset.weights[lo:hi]
        tasks.append(ChunkTask(path, store.store_id, index, start, stop, tuple(arrays), rows, weights))
    return tasks


def load_chunk(task: ChunkTask) -> Chunk:
    """Build the chunk ``task`` names, opening its store in this process if needed.

    Raises :class:`~modeldx.errors.StoreReplacedError` when the store at the path is
    no longer the one the task was made for.
    """
    store = open_cached(task.path, task.store_id)
    table = store.chunk_items_table(task.index)
    if task.rows is None:
        rows = np.arange(task.start, task.stop)
        weights = np.ones(rows.size)
        local = slice(None)
        items = table
    else:
        rows, weights = task.rows, task.weights
        local = rows - task.start
        items = table.iloc[local]
    blocks = {name: store.read(name, task.start, task.stop)[local] for name in task.arrays}
    return Chunk(task.index, rows, items, blocks, weights)


def map_task(reduction, task: ChunkTask):
    """``reduction.map`` of the chunk ``task`` names: what a Dask task runs."""
    return reduction.map(load_chunk(task))
