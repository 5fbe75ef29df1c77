"""Time of the layer DAG and its bundled edges (issue 11's goal: well under a second).

Two cases: the demo's LeNet-5 (``modeldx-demo/lenet5-mnist.pt`` and its store
``modeldx-demo/mnist-lenet5``), each neuron clustered by the class of its
largest class mean (dead when every class mean is 0) — a stand-in for the real
clustering, which does not change the cost of bundling; and two Linear
layers of 1,024 neurons with 12 clusters each (the dead one included).
Run: ``.venv/bin/python benchmarks/neuron_bundles.py``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine, timed  # noqa: E402

from modeldx import open_store  # noqa: E402
from modeldx.neurons import layer_bundles, layer_graph  # noqa: E402
from modeldx.zoo import load_checkpoint  # noqa: E402


def class_argmax_labels(store, layer: str) -> np.ndarray:
    """Each neuron's cluster: the class with its largest mean activation; -1 when all are 0."""
    acts = store.read(f"acts/{layer}").astype(np.float64)
    classes = store.items()["label"].to_numpy()
    means = np.stack([acts[classes == c].mean(axis=0) for c in np.unique(classes)])
    labels = means.argmax(axis=0)
    labels[np.abs(means).max(axis=0) <= 1e-9] = -1
    return labels


def report(name: str, graph_s: float, bundles_s: float, bundles: list[dict]) -> None:
    count = sum(len(e["bundles"]) for e in bundles)
    print(f"{name}: layer_graph {graph_s * 1e3:.1f} ms, layer_bundles {bundles_s * 1e3:.1f} ms "
          f"({len(bundles)} edges, {count} bundles), total {(graph_s + bundles_s) * 1e3:.1f} ms")


def main() -> None:
    torch.set_num_threads(1)
    print(machine())
    model, _ = load_checkpoint(REPO / "modeldx-demo" / "lenet5-mnist.pt")
    store = open_store(REPO / "modeldx-demo" / "mnist-lenet5")
    labels = {layer: class_argmax_labels(store, layer) for layer in store.layers}
    x = torch.zeros(1, 1, 28, 28)
    graph_s, graph = timed(lambda: layer_graph(model, store.layers, x))
    bundles_s, bundles = timed(lambda: layer_bundles(graph, labels))
    report("LeNet-5, 5 layers", graph_s, bundles_s, bundles)

    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU()).eval()
    rng = np.random.default_rng(0)
    labels = {name: rng.integers(-1, 11, size=1024) for name in ("1", "3")}
    graph_s, graph = timed(lambda: layer_graph(wide, ["1", "3"], torch.zeros(1, 64)))
    bundles_s, bundles = timed(lambda: layer_bundles(graph, labels))
    report("1,024 -> 1,024 Linear, 12 clusters each", graph_s, bundles_s, bundles)


if __name__ == "__main__":
    main()
