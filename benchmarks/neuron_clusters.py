"""Neuron clusters and activation matrices: the store pass apart from the clustering.

On the demo store (the zoo LeNet-5 on 70,000 MNIST items; made by
``modeldx capture modeldx-demo/lenet5-mnist.pt modeldx-demo/mnist-lenet5`` when
missing): the one pass of ``class_means`` over every layer, then
``cluster_neurons`` + ``activation_matrix`` for every layer, then the top items
of every cluster; and the clustering + matrices of a synthetic layer of 1,024
neurons x 10 classes. Medians of 3 runs, one torch thread.
Run: ``.venv/bin/python benchmarks/neuron_clusters.py``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine, mnist_all, mnist_model, timed  # noqa: E402

from modeldx import capture  # noqa: E402
from modeldx.neurons import DEAD, activation_matrix, cluster_neurons, cluster_top_items  # noqa: E402
from modeldx.queries import class_means  # noqa: E402
from modeldx.store import open_store  # noqa: E402


def demo_store():
    path = REPO / "modeldx-demo" / "mnist-lenet5"
    try:
        return open_store(path)
    except Exception:  # missing or incomplete: capture it as the demo does
        return capture(mnist_model(), mnist_all(), path, progress=False, overwrite=True)


def cluster_layers(cm) -> dict:
    out = {}
    for layer in cm.layers:
        cl = cluster_neurons(cm.means[layer], active=cm.active[layer])
        out[layer] = (cl, activation_matrix(cm.means[layer], cl))
    return out


def synthetic(n: int = 1024, classes: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    prefs = rng.integers(0, classes, n)
    means = rng.gamma(1.0, 0.2, (n, classes))
    means[np.arange(n), prefs] += rng.uniform(1, 3, n)
    means[rng.random(n) < 0.1] = 0  # some dead
    return means


def main() -> None:
    torch.set_num_threads(1)
    print(machine())
    store = demo_store()
    t_pass, cm = timed(lambda: class_means(store, progress=False))
    t_clu, res = timed(lambda: cluster_layers(cm))
    print(f"demo store: {store.n_items:,} items, layers {cm.layers}")
    print(f"  class_means (one pass over all layers): {t_pass:.2f} s")
    print(f"  cluster_neurons + activation_matrix, all layers: {t_clu * 1000:.0f} ms")
    for layer, (cl, _) in res.items():
        cen = cluster_neurons(cm.means[layer], active=cm.active[layer], center=True)
        print(f"    {layer}: {cl.labels.size} neurons, dead {int(cl.dead.sum())}; cosine k={cl.k} "
              f"(silhouette {cl.silhouette:.2f}) sizes {cl.sizes.tolist()}; centred k={cen.k} "
              f"(silhouette {cen.silhouette:.2f}) sizes {cen.sizes.tolist()}")

    def tops():
        return {(layer, cid): cluster_top_items(store, layer, cl.members(cid), k=9)
                for layer, (cl, _) in res.items() for cid in cl.ids if cid != DEAD}
    t_top, top = timed(tops, repeat=1)
    print(f"  cluster_top_items for all {len(top)} live clusters: {t_top:.2f} s")
    means = synthetic()
    t_syn, (cl, _) = timed(lambda: (lambda c: (c, activation_matrix(means, c)))(cluster_neurons(means)))
    print(f"synthetic 1,024 x 10: k={cl.k} (silhouette {cl.silhouette:.2f}), dead {int(cl.dead.sum())}, "
          f"cluster_neurons + activation_matrix {t_syn * 1000:.0f} ms")


if __name__ == "__main__":
    main()
