"""Queries on the Dask engine against the local engine, side by side in one run.

    .venv/bin/python benchmarks/dask_queries.py [--synthetic DIR] [--sizes 100000,1000000] [--repeat 3]
        [--synthetic-repeat 1] [--skip-mnist]

1. The MNIST LeNet-5 store (70,000 items; captured into modeldx-demo/mnist-lenet5 first if
   missing): top-k-neurons (k=10, by max), dead-neurons and class-means with the local engine
   and with Dask on a LocalCluster of 1 and of 2 worker processes (clusters started before the
   timing; their start-up is printed apart). Answers are checked identical.
2. Synthetic stores of N items x 1,000 neurons (uint8; ``synthetic_store.py``): top-k-neurons
   on each engine, time per item, and each worker's peak resident memory (VmHWM of a fresh
   worker process) against its resident memory before the query.
3. The per-chunk costs the scaling model in docs/scale-out.md uses: reading + decoding a chunk,
   the reduction's map, and the scheduler's cost per task (no-op tasks).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from _common import REPO, machine

from modeldx import open_store
from modeldx.engine import DaskEngine, LocalEngine
from modeldx.engine.chunks import chunk_tasks, load_chunk
from modeldx.queries import class_means_table, dead_neurons, top_k_neurons
from modeldx.queries.top_k_neurons import GroupNeuronStats

MNIST_QUERIES = {
    "top-k-neurons": (top_k_neurons, {"k": 10, "by": "max"}),
    "dead-neurons": (dead_neurons, {}),
    "class-means": (class_means_table, {}),
}


def cluster(workers: int):
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    lc = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR)
    client = Client(lc, set_as_default=False)
    client.wait_for_workers(workers)
    return lc, client, time.perf_counter() - start


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory(client) -> dict:
    """Per worker: resident and peak resident (MB)."""
    got = client.run(lambda: (_status_kb("VmRSS"), _status_kb("VmHWM")))
    return {w: (rss / 1024, hwm / 1024) for w, (rss, hwm) in got.items()}


def side_by_side(fn, engines: dict, repeat: int) -> tuple[dict, dict]:
    """Median seconds per engine, each repetition running every engine in turn."""
    times = {name: [] for name in engines}
    out = {}
    for _ in range(repeat):
        for name, engine in engines.items():
            start = time.perf_counter()
            out[name] = fn(engine)
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}, out


def mnist_part(engines: dict, repeat: int) -> None:
    path = REPO / "modeldx-demo" / "mnist-lenet5"
    if not (path / "manifest.json").is_file():
        subprocess.run([sys.executable, "-m", "modeldx.cli", "capture",
                        str(REPO / "modeldx-demo" / "lenet5-mnist.pt"), str(path), "-q"], check=True)
    store = open_store(path)
    print(f"\n## MNIST LeNet-5 store: {store.n_items:,} items, {store.manifest.n_chunks} chunks of "
          f"{store.chunk_items:,}, layers {store.layers}")
    print("| query | local | Dask 1 worker | Dask 2 workers | Dask-1 / local | Dask-2 / local "
          "| Dask-2 / Dask-1 |")
    print("|---|---|---|---|---|---|---|")
    for name, (func, params) in MNIST_QUERIES.items():
        t, out = side_by_side(lambda e, f=func, p=params: f(store, **p, engine=e), engines, repeat)
        for other in ("dask-1", "dask-2"):
            pd.testing.assert_frame_equal(out["local"], out[other], check_exact=True)
        print(f"| {name} | {t['local']:.2f} s | {t['dask-1']:.2f} s | {t['dask-2']:.2f} s | "
              f"{t['dask-1'] / t['local']:.2f}x | {t['dask-2'] / t['local']:.2f}x | "
              f"{t['dask-2'] / t['dask-1']:.2f}x |")
    print("answers identical on every engine: yes")


def chunk_costs(store, repeat: int = 3) -> dict:
    """Seconds per chunk in this process: read + decode (I/O), and the reduction's map (compute)."""
    reduction = GroupNeuronStats(store.layers, store.manifest.num_classes, "max")
    tasks = chunk_tasks(store, reduction.arrays)[:repeat]
    io, compute = [], []
    for task in tasks:
        start = time.perf_counter()
        chunk = load_chunk(task)
        mid = time.perf_counter()
        reduction.map(chunk)
        io.append(mid - start)
        compute.append(time.perf_counter() - mid)
    return {"io": statistics.median(io), "compute": statistics.median(compute)}


def scheduler_cost(client, n: int = 400) -> float:
    """Seconds per no-op task, submitted and gathered as the engine does."""
    from distributed import as_completed

    start = time.perf_counter()
    futures = client.map(lambda i: i, range(n), pure=False)
    for f in as_completed(futures, loop=client.loop):
        f.result()
    return (time.perf_counter() - start) / n


def synthetic_part(folder: Path, sizes: list[int], repeat: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from synthetic_store import write_synthetic

    print("\n## Synthetic stores: N items x 1,000 neurons, uint8, chunks of 10,000; top-k-neurons "
          "(k=10, by max)")
    print("| items | on disk | local | Dask 1 | Dask 2 | local µs/item | Dask-2 µs/item | Dask-1 / local "
          "| Dask-2 / local | worker RSS before → peak (1 worker) | (2 workers, each) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    costs = {}
    for n in sizes:
        path = folder / f"syn-{n}"
        if not (path / "manifest.json").is_file():
            write_synthetic(path, n)
        store = open_store(path)
        clusters = {w: cluster(w) for w in (1, 2)}
        try:
            before = {w: memory(c[1]) for w, c in clusters.items()}
            engines = {"local": LocalEngine(), "dask-1": DaskEngine(clusters[1][1]),
                       "dask-2": DaskEngine(clusters[2][1])}
            t, out = side_by_side(lambda e, s=store: top_k_neurons(s, k=10, engine=e), engines, repeat)
            for other in ("dask-1", "dask-2"):
                pd.testing.assert_frame_equal(out["local"], out[other], check_exact=True)
            after = {w: memory(c[1]) for w, c in clusters.items()}
            mem = {w: ", ".join(f"{before[w][k][0]:.0f} → {after[w][k][1]:.0f} MB" for k in after[w])
                   for w in clusters}
            print(f"| {n:,} | {store.stored_bytes() / 1e9:.2f} GB | {t['local']:.2f} s | "
                  f"{t['dask-1']:.2f} s | {t['dask-2']:.2f} s | {t['local'] / n * 1e6:.2f} | "
                  f"{t['dask-2'] / n * 1e6:.2f} | {t['dask-1'] / t['local']:.2f}x | "
                  f"{t['dask-2'] / t['local']:.2f}x | {mem[1]} | {mem[2]} |")
            costs[n] = {**chunk_costs(store), "scheduler": scheduler_cost(clusters[2][1]),
                        "chunks": store.manifest.n_chunks, "local": t["local"], "dask-2": t["dask-2"]}
        finally:
            for lc, client, _ in clusters.values():
                client.close()
                lc.close()
    print("\n## Per-chunk costs (10,000 items x 1,000 neurons, uint8), medians")
    for n, c in costs.items():
        print(f"- {n:,} items: read+decode {c['io'] * 1e3:.0f} ms/chunk, "
              f"map {c['compute'] * 1e3:.0f} ms/chunk, "
              f"scheduler {c['scheduler'] * 1e3:.2f} ms/task; local total / chunks = "
              f"{c['local'] / c['chunks'] * 1e3:.0f} ms, Dask-2 total / chunks = "
              f"{c['dask-2'] / c['chunks'] * 1e3:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic", default="/tmp/modeldx-synthetic", help="folder for the synthetic stores")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--synthetic-repeat", type=int, default=1, help="repetitions on the synthetic stores")
    ap.add_argument("--skip-mnist", action="store_true")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at start "
          f"({os.cpu_count()} cores, shared)")
    if not a.skip_mnist:
        clusters = {w: cluster(w) for w in (1, 2)}
        print("cluster start-up (not in the times below): "
              + ", ".join(f"{w} worker(s) {c[2]:.1f} s" for w, c in clusters.items()))
        try:
            mnist_part({"local": LocalEngine(), "dask-1": DaskEngine(clusters[1][1]),
                        "dask-2": DaskEngine(clusters[2][1])}, a.repeat)
        finally:
            for lc, client, _ in clusters.values():
                client.close()
                lc.close()
    synthetic_part(Path(a.synthetic), [int(s) for s in a.sizes.split(",") if s], a.synthetic_repeat)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
