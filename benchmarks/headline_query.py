"""The headline query (top-10 neurons per layer x class x correct) streamed over the store,
against the same computed in memory with NumPy on fully loaded arrays, in one run.

    .venv/bin/python benchmarks/headline_query.py

Checks the answers are identical, and measures peak memory of each (tracemalloc, which sees
NumPy's allocations) for several chunk sizes: streaming memory follows the chunk, not the store.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from _common import machine, mnist_all, mnist_model, timed

from modeldx import capture
from modeldx.queries import top_k_neurons


def in_memory(store, k: int = 10) -> dict:
    """The textbook version: load every layer, then one mask per group."""
    items = store.items()
    labels, correct = items.label.to_numpy(), items.correct.to_numpy()
    out = {}
    for layer in store.layers:
        acts = store.read(f"acts/{layer}")
        for label in np.unique(labels):
            for ok in (False, True):
                mask = (labels == label) & (correct == ok)
                if mask.any():
                    values = acts[mask].max(0)
                    out[(layer, int(label), ok)] = np.lexsort((np.arange(values.size), -values))[:k].tolist()
    return out


def streamed(store, k: int = 10) -> dict:
    frame = top_k_neurons(store, k=k)
    return {(layer, int(label), bool(ok)): g.sort_values("rank").neuron.tolist()
            for (layer, label, ok), g in frame.groupby(["layer", "label", "correct"])}


def measure(fn, *args):
    tracemalloc.start()
    start = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    model = mnist_model()
    data = mnist_all()
    work = Path(tempfile.mkdtemp(prefix="modeldx-headline-"))
    try:
        print(f"machine: {machine()}")
        for chunk in (1000, 5000, 10000):
            store = capture(model, data, work / f"c{chunk}", chunk_items=chunk, progress=False)
            store.items()  # the items table is loaded once per store by both
            ref, _, m_mem = measure(in_memory, store)
            got, _, m_str = measure(streamed, store)
            # times without tracemalloc, which slows allocation-heavy code unevenly
            t_mem = timed(lambda st=store: in_memory(st), 5)[0]
            t_str = timed(lambda st=store: streamed(st), 5)[0]
            assert got == ref, "streamed and in-memory answers differ"
            print(f"chunk {chunk:6,d} items: answers identical over {len(ref)} groups; "
                  f"in-memory {t_mem:.2f} s peak {m_mem / 1e6:6.1f} MB | streamed {t_str:.2f} s "
                  f"peak {m_str / 1e6:6.1f} MB (time {t_str / t_mem:.2f}x, memory {m_str / m_mem:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
