"""A synthetic store of N items x 1,000 neurons, written with StoreWriter directly (no model).

    .venv/bin/python benchmarks/synthetic_store.py PATH N [--neurons 1000] [--chunk 10000]

Activations are ReLU'd Gaussians (float32, stored uint8 by default: a 10^6-item store is about
1 GB), one dense layer ``fc``; 10 classes, ~90 % "correct". Seeded: the same N gives the same
store. Used by ``dask_queries.py`` to measure queries beyond MNIST's 70,000 items.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from modeldx.store.manifest import LayerSpec, Manifest
from modeldx.store.store import StoreWriter

CLASSES = 10
LATENT = 16


def write_synthetic(path: str | Path, n_items: int, *, neurons: int = 1000, chunk_items: int = 10_000,
                    encoding: str = "uint8", seed: int = 0, overwrite: bool = True):
    """Write the store and return it opened."""
    m = Manifest(
        n_items=n_items, chunk_items=chunk_items, encoding=encoding,
        layers=[LayerSpec("fc", "fc", "dense", [neurons], neurons, "none", "ReLU")],
        latent_layer="fc", latent_dim=LATENT, num_classes=CLASSES, gradients=False,
        model_fingerprint=f"synthetic-{neurons}", dataset_fingerprint=f"synthetic-{n_items}-{seed}",
        dataset_name="synthetic", model_name="none")
    dims = {"latent": LATENT, "probs": CLASSES, f"acts/{'fc'}": neurons}
    with StoreWriter(path, m, overwrite=overwrite, array_dims=dims) as writer:
        for index in range(m.n_chunks):
            rng = np.random.default_rng([seed, index])
            start = index * chunk_items
            n = min(chunk_items, n_items - start)
            label = rng.integers(0, CLASSES, n)
            pred = np.where(rng.random(n) < 0.9, label, rng.integers(0, CLASSES, n))
            probs = rng.dirichlet(np.ones(CLASSES), n).astype(np.float32)
            acts = rng.standard_normal((n, neurons), dtype=np.float32)
            # a class-dependent shift, so that groups differ, then a ReLU
            acts += (label[:, None] == np.arange(neurons)[None, :] % CLASSES) * np.float32(0.5)
            np.maximum(acts, 0, out=acts)
            writer.write_chunk(index, {"latent": acts[:, :LATENT].copy(), "probs": probs,
                                       "acts/fc": acts},
                               {"item_id": np.arange(start, start + n, dtype=np.int64),
                                "split": np.full(n, "train"), "label": label, "pred": pred,
                                "correct": label == pred, "confidence": probs.max(1),
                                "loss": rng.random(n).astype(np.float32)})
        return writer.finalize()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("n", type=int)
    ap.add_argument("--neurons", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--encoding", default="uint8")
    a = ap.parse_args()
    t = time.perf_counter()
    st = write_synthetic(a.path, a.n, neurons=a.neurons, chunk_items=a.chunk, encoding=a.encoding)
    print(f"{st!r}: {st.stored_bytes() / 1e9:.2f} GB in {time.perf_counter() - t:.1f} s")
