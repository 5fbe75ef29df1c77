"""The local engine: one reduction streamed over a store's item chunks, in process.

A query is written once as a :class:`Reduction` — ``map`` one chunk to a partial
state, ``combine`` two states, ``finalize`` the last one — so the same code runs
on the full store or on a weighted subset, in bounded memory (one chunk at a
time plus the state), and can run on a cluster by mapping chunks in parallel.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from modeldx.engine.subset import Sample


@dataclass
class Chunk:
    """One chunk of a store as a reduction sees it.

    ``rows`` are store positions; ``items`` the matching rows of the items table;
    ``arrays`` the decoded float32 blocks asked for; ``weights`` one per row.
    """

    index: int
    rows: np.ndarray
    items: pd.DataFrame
    arrays: dict[str, np.ndarray]
    weights: np.ndarray


class Reduction(Protocol):
    arrays: Sequence[str]

    def map(self, chunk: Chunk) -> Any: ...

    def combine(self, a: Any, b: Any) -> Any: ...

    def finalize(self, state: Any) -> Any: ...


def _load(store, table, bounds, index: int, arrays: Sequence[str], subset: Sample | None) -> Chunk:
    start, stop = bounds[index]
    if subset is None:
        rows = np.arange(start, stop)
        weights = np.ones(rows.size)
        local = slice(None)
        items = table.iloc[start:stop]  # a slice: no copy of the table's columns
    else:
        lo, hi = np.searchsorted(subset.rows, [start, stop])
        rows = subset.rows[lo:hi]
        weights = subset.weights[lo:hi]
        local = rows - start
        items = table.iloc[rows]
    blocks = {name: store.read(name, start, stop)[local] for name in arrays}
    return Chunk(int(index), rows, items, blocks, weights)


def iter_chunks(store, arrays: Sequence[str], subset: Sample | None = None,
                progress: bool = False) -> Iterator[Chunk]:
    """Yield each chunk that holds rows of ``subset`` (or every chunk), decoded.

    The next chunk is read and decoded on a background thread while the caller
    works on the current one, so at most two chunks are in memory.
    """
    store.require_complete()
    store.check_current()  # a store replaced by another capture since it was opened must not answer
    table = store.items()
    bounds = store.chunk_bounds()
    if subset is not None:
        which = np.searchsorted([b for _, b in bounds], subset.rows, side="right")
        wanted = [int(i) for i in np.unique(which)]
    else:
        wanted = list(range(len(bounds)))
    if not wanted:
        return
    with ThreadPoolExecutor(max_workers=1) as pool, \
            tqdm(total=len(wanted), desc="query", unit="chunk", disable=not progress) as bar:
        ahead = pool.submit(_load, store, table, bounds, wanted[0], arrays, subset)
        for nxt in [*wanted[1:], None]:
            chunk = ahead.result()
            if nxt is not None:
                ahead = pool.submit(_load, store, table, bounds, nxt, arrays, subset)
            yield chunk
            bar.update()


class LocalEngine:
    """Runs a reduction chunk by chunk in this process."""

    name = "local"

    def run(self, store, reduction: Reduction, subset: Sample | None = None, *,
            progress: bool = False) -> Any:
        state = None
        for chunk in iter_chunks(store, reduction.arrays, subset, progress=progress):
            part = reduction.map(chunk)
            state = part if state is None else reduction.combine(state, part)
        return reduction.finalize(state)


def run_reduction(store, reduction: Reduction, subset: Sample | None = None, *,
                  engine=None, progress: bool = False) -> Any:
    """Run ``reduction`` over ``store`` with ``engine``: ``None``/``"local"`` (the default),
    ``"dask"``, or an engine instance (see :func:`~modeldx.engine.base.get_engine`)."""
    from modeldx.engine.base import get_engine

    return get_engine(engine).run(store, reduction, subset, progress=progress)
