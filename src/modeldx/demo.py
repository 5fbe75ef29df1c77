"""The end-to-end demo behind ``modeldx demo``: train, capture, query, summarise."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from modeldx.capture import capture
from modeldx.data import load_dataset
from modeldx.errors import CheckpointError, StoreMismatchError, StoreNotFoundError
from modeldx.fingerprint import model_fingerprint
from modeldx.queries import confusion_matrix, dead_neurons, top_k_neurons
from modeldx.store import open_store
from modeldx.zoo import load_checkpoint, train


def _model(out: Path, arch: str, dataset: str, train_set, test_set, progress: bool, console: Console):
    path = out / f"{arch}-{dataset}.pt"
    try:
        model, meta = load_checkpoint(path)
        console.print(f"[green]reusing[/] {path} (test accuracy {meta['test_accuracy']:.2%})")
        return model, meta
    except CheckpointError:
        pass
    with console.status(f"training {arch} on {dataset} ...") if not progress else _null():
        result = train(arch, train_set, test_set, checkpoint=path, dataset_name=dataset,
                       progress=progress)
    console.print(f"[green]trained[/] {arch}: test accuracy {result.test_accuracy:.2%} in "
                  f"{result.seconds:.0f} s -> {path}")
    return result.model, load_checkpoint(path)[1]


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _overlap(top: pd.DataFrame) -> pd.DataFrame:
    """Per layer: how much the top-k neurons of misclassified items share with the correct ones."""
    rows = []
    for (layer, label), g in top.groupby(["layer", "label"]):
        right = set(g[g.correct].neuron)
        wrong = set(g[~g.correct].neuron)
        if right and wrong:
            rows.append((layer, label, len(right & wrong) / len(right | wrong)))
    return pd.DataFrame(rows, columns=["layer", "label", "jaccard"])


def run_demo(out: Path, *, dataset: str = "mnist", arch: str = "lenet5", k: int = 10,
             data_root: str | None = None, progress: bool = True, console: Console | None = None) -> dict:
    """Run the demo; returns the numbers it printed (for tests and scripts)."""
    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_set = load_dataset(dataset, "train", root=data_root)
    test_set = load_dataset(dataset, "test", root=data_root)
    model, meta = _model(out, arch, dataset, train_set, test_set, progress, console)

    store_path = out / f"{dataset}-{arch}"
    data = {"train": train_set, "test": test_set}
    start = time.perf_counter()
    try:
        store = open_store(store_path)
        if store.complete and store.manifest.model_fingerprint == model_fingerprint(model):
            console.print(f"[green]reusing[/] store {store_path}")
        else:
            raise StoreMismatchError("stale store")
    except (StoreNotFoundError, StoreMismatchError):
        store = capture(model, data, store_path, progress=progress,
                        overwrite=(store_path / "manifest.json").exists()
                        and open_store(store_path).complete)
        console.print(f"[green]captured[/] {store.n_items:,} items x {len(store.layers)} layers in "
                      f"{time.perf_counter() - start:.1f} s -> {store_path} "
                      f"({store.stored_bytes() / 1e6:.1f} MB)")

    start = time.perf_counter()
    top = top_k_neurons(store, k=k)
    seconds = time.perf_counter() - start
    csv = out / f"top{k}-neurons.csv"
    top.to_csv(csv, index=False)

    items = store.items()
    test = items[items.split == "test"]
    dead = dead_neurons(store)
    overlap = _overlap(top)
    cm = confusion_matrix(store, items=test.item_id.to_numpy())
    confusions = cm[cm.label != cm.pred].nlargest(5, "count")

    console.rule(f"[bold]{arch} on {dataset}")
    console.print(f"test accuracy {test.correct.mean():.2%} ({(~test.correct).sum()} of {len(test):,} "
                  f"test items wrong); headline query: {top.groupby(['layer', 'label', 'correct']).ngroups}"
                  f" groups in {seconds:.2f} s")
    table = Table("layer", "neurons", "dead", f"top-{k} overlap, wrong vs right (Jaccard)",
                  "most shared top neuron", title="What each layer does")
    for layer in store.layers:
        layer_top = top[top.layer == layer]
        common = layer_top[layer_top["rank"] == 1].neuron.value_counts()
        ov = overlap[overlap.layer == layer].jaccard
        table.add_row(layer, str(store.neurons(layer)), str(int(dead[dead.layer == layer].dead.sum())),
                      "- (k >= neurons)" if store.neurons(layer) <= k
                      else f"{ov.mean():.2f} (min {ov.min():.2f})" if len(ov) else "-",
                      f"#{common.index[0]} (top-1 in {common.iloc[0]} groups)" if len(common) else "-")
    console.print(table)
    names = store.manifest.classes or [str(i) for i in range(store.manifest.num_classes)]
    console.print("most confused (test): " + ", ".join(
        f"{names[r.label]}->{names[r.pred]} x{int(r.count)}" for r in confusions.itertuples()))
    console.print(f"headline answer -> {csv}")
    return {"store": store_path, "csv": csv, "test_accuracy": float(test.correct.mean()),
            "groups": int(top.groupby(["layer", "label", "correct"]).ngroups),
            "query_seconds": seconds, "checkpoint_accuracy": meta.get("test_accuracy"),
            "dead": int(dead.dead.sum()), "mean_overlap": float(np.nanmean(overlap.jaccard))}
