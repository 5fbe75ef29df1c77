"""The headline query (top-10 neurons per layer x class x correct) streamed over the store,
against the same computed in memory with NumPy on fully loaded arrays, in one run.

    .venv/bin/python benchmarks/headline_query.py

Checks that the answers are identical, and measures the peak memory each adds to the process
(resident set size sampled every millisecond, in a fresh process per measurement, so every
allocator counts) for several chunk sizes: streaming memory follows the chunk, not the store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import machine, mnist_all, mnist_model, timed

from modeldx import capture, open_store
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


def child(mode: str, path: str) -> None:
    """Run one variant and print the peak RSS it added, in MB."""
    import psutil

    store = open_store(path)
    store.items()
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    (in_memory if mode == "in-memory" else streamed)(store)
    done.set()
    thread.join()
    print(json.dumps({"peak_mb": (peak[0] - base) / 1e6}))


def peak_mb(mode: str, path: Path) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(path)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def main() -> None:
    model = mnist_model()
    data = mnist_all()
    work = Path(tempfile.mkdtemp(prefix="modeldx-headline-"))
    try:
        print(f"machine: {machine()}")
        for chunk in (1000, 5000, 10000):
            store = capture(model, data, work / f"c{chunk}", chunk_items=chunk, progress=False)
            store.items()
            assert streamed(store) == in_memory(store), "streamed and in-memory answers differ"
            t_mem = timed(lambda st=store: in_memory(st), 5)[0]
            t_str = timed(lambda st=store: streamed(st), 5)[0]
            m_mem = peak_mb("in-memory", store.path)
            m_str = peak_mb("streamed", store.path)
            print(f"chunk {chunk:6,d} items: answers identical over 100 groups; in-memory {t_mem:.2f} s "
                  f"+{m_mem:5.1f} MB | streamed {t_str:.2f} s +{m_str:5.1f} MB "
                  f"(time {t_str / t_mem:.2f}x, memory {m_str / m_mem:.2f}x)")
        # the same chunk size over a store 7x smaller: streaming memory should not change
        small = capture(model, data["test"], work / "test-only", chunk_items=5000, progress=False)
        s_str, s_mem = peak_mb("streamed", small.path), peak_mb("in-memory", small.path)
        print(f"chunk  5,000 items, store of {small.n_items:,} items instead of 70,000: streamed "
              f"+{s_str:5.1f} MB, in-memory +{s_mem:5.1f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
