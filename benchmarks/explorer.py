"""The network explorer (``modeldx explore``): compute time and time to first paint, side by side
with the textbook computation of the same class means.

On the demo store (the zoo LeNet-5 on 70,000 MNIST items; captured when missing):
``Explorer(store, model)`` — class means of every layer in one streamed pass,
centred clusters, activation matrices, the layer graph, bundles and each
cluster's top items — and, as the reference, the class means computed in
memory with NumPy on fully loaded arrays (answers checked equal). Then the
page in headless Chromium: from navigation to the network drawn (every
cluster box and bundle path in the DOM), median of 5 loads.
Run: ``.venv/bin/python benchmarks/explorer.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine, mnist_all, mnist_model, timed  # noqa: E402

from modeldx import capture  # noqa: E402
from modeldx.live.explorer_app import ExplorerThread  # noqa: E402
from modeldx.neurons.explore import Explorer  # noqa: E402
from modeldx.store import open_store  # noqa: E402


def demo_store(model):
    path = REPO / "modeldx-demo" / "mnist-lenet5"
    try:
        return open_store(path, model=model)
    except Exception:  # missing, incomplete or of another model: capture it as the demo does
        return capture(model, mnist_all(), path, progress=False, overwrite=True)


def in_memory_class_means(store) -> dict[str, np.ndarray]:
    """The reference: load every layer whole, one mask per class."""
    labels = store.items().label.to_numpy()
    classes = store.manifest.num_classes
    out = {}
    for layer in store.layers:
        acts = store.read(f"acts/{layer}").astype(np.float64)
        out[layer] = np.stack([acts[labels == c].mean(axis=0) for c in range(classes)], axis=1)
    return out


def first_paint(url: str, loads: int = 5) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"))
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        for _ in range(loads):
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(".box", timeout=60_000)
            page.wait_for_function("document.querySelectorAll('#bundles .bundle path').length > 0",
                                   timeout=60_000)
            times.append(time.perf_counter() - start)
        browser.close()
    return times


def main() -> None:
    torch.set_num_threads(1)
    print(machine())
    model = mnist_model()
    store = demo_store(model)
    data_root = REPO / "data"
    t_ref, ref = timed(lambda: in_memory_class_means(store))
    t_ex, ex = timed(lambda: Explorer(store, model, data_root=data_root))
    for layer in store.layers:
        np.testing.assert_allclose(ex.means.means[layer], ref[layer], rtol=1e-9, atol=1e-12)
    print(f"demo store: {store.n_items:,} items, layers {list(store.layers)}")
    print(f"  reference: class means in memory (NumPy, arrays loaded whole): {t_ref:.2f} s")
    print(f"  Explorer (class means streamed + clusters + matrices + graph + bundles + top items): "
          f"{t_ex:.2f} s  ({t_ex / t_ref:.2f}x the reference's class means alone)")
    print("  clusters per layer: " + ", ".join(f"{layer} {c.k} (+dead {int(c.dead.sum())})"
                                               for layer, c in ex.clusters.items()))
    server = ExplorerThread(ex)
    try:
        paints = first_paint(server.url)
    finally:
        server.stop()
    print(f"  page to network drawn in Chromium: median {np.median(paints) * 1000:.0f} ms "
          f"(first load {paints[0] * 1000:.0f} ms; {len(paints)} loads)")


if __name__ == "__main__":
    main()
