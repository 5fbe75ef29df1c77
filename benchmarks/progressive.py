"""Progressive answers on MNIST / LeNet-5: capture time with a progressive reader beside it against the
capture alone, the cost of one progressive answer against the plain query, and how well the confidence
tracks the precision it estimates.

    PYTHONPATH=src python benchmarks/progressive.py [--out DIR] [--seeds 3]

Everything is measured side by side in one run; on a shared machine read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import machine, mnist_all, mnist_model, timed

from modeldx import capture, progressive
from modeldx.queries import top_k_neurons
from modeldx.queries.progressive import progressive_answer
from modeldx.store.partial import Snapshot

K, LAYERS, CHUNK = 10, ["act2", "act3", "act4"], 700


def precision(answer: pd.DataFrame, exact: pd.DataFrame) -> float:
    key = ["layer", "label", "correct"]
    got = answer.groupby(key)["neuron"].apply(set)
    want = exact.groupby(key)["neuron"].apply(set)
    return float(np.mean([len(got.get(g, set()) & w) / len(w) for g, w in want.items()]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(machine())
    model, data = mnist_model(), mnist_all()
    out = args.out or Path(tempfile.mkdtemp())
    kw = dict(chunk_items=CHUNK, chunk_order="random", progress=False, overwrite=True)

    start = time.perf_counter()
    capture(model, data, out / "alone", **kw)
    alone = time.perf_counter() - start
    answers = []

    def follow():
        for done, _total, _top in progressive(out / "watched", k=K, layers=LAYERS, every=0.5, timeout=600):
            answers.append((done, time.perf_counter() - start))

    reader = threading.Thread(target=follow)
    start = time.perf_counter()
    reader.start()
    st = capture(model, data, out / "watched", **kw)
    watched = time.perf_counter() - start
    reader.join()
    print(f"capture of {st.n_items} items in {st.manifest.n_chunks} chunks: alone {alone:.1f} s, with a "
          f"progressive reader {watched:.1f} s (x{watched / alone:.2f}); {len(answers)} answers, the last "
          f"{answers[-1][1] - watched:+.1f} s after the capture returned")

    exact = top_k_neurons(st, k=K, layers=LAYERS)
    plain, _ = timed(lambda: top_k_neurons(st, k=K, layers=LAYERS))
    table, bounds, total = st.items(), st.chunk_bounds(), st.manifest.n_chunks
    rows = []
    for seed in range(args.seeds):
        perm = np.random.default_rng(seed).permutation(total)
        for m in (1, 2, 3, 10, 25, 50, 75):
            chunks = sorted(perm[:m].tolist())
            r = np.concatenate([np.arange(*bounds[c]) for c in chunks])
            snap = Snapshot(st, chunks, table.iloc[r].reset_index(drop=True))
            t0 = time.perf_counter()
            top = progressive_answer(snap, k=K, layers=LAYERS, replicates=200)
            seconds = time.perf_counter() - t0
            conf = float(top.confidence.mean()) if top.confidence.notna().any() else float("nan")
            rows.append((seed, m, r.size, precision(top, exact), conf, seconds / plain))
    df = pd.DataFrame(rows, columns=["seed", "chunks", "items", "precision", "confidence", "time_vs_plain"])
    summary = df.groupby("chunks").mean().drop(columns="seed")
    print(f"top-{K} by max over {', '.join(LAYERS)}; mean over {args.seeds} chunk permutations; the plain "
          f"query on the complete store takes {plain:.2f} s")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
