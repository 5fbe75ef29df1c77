"""The end-to-end demo behind ``modeldx demo``: the paper's experiment on one data set and model.

Train (or reuse) a zoo model, run the latent pass and the exact capture of every
item, answer the headline query exactly, then score every sampler at the
paper's sample fractions and seeds against that exact answer, with the
confidence of each sampled answer checked for calibration; write the figures
and an HTML report.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from modeldx.capture import capture
from modeldx.data import load_dataset
from modeldx.errors import CheckpointError, StoreMismatchError, StoreNotFoundError
from modeldx.evaluate import PAPER_FRACTIONS, summarize, sweep, write_report
from modeldx.evaluate.calibration import calibration_table
from modeldx.evaluate.report import print_sampler_table
from modeldx.fingerprint import model_fingerprint
from modeldx.queries import confusion_matrix, dead_neurons, top_k_neurons
from modeldx.store import open_store
from modeldx.zoo import load_checkpoint, train


def _model(out: Path, arch: str, dataset: str, train_set, test_set, progress: bool, console: Console):
    path = out / f"{arch}-{dataset}.pt"
    if path.exists():
        try:
            model, meta = load_checkpoint(path)
            console.print(f"[green]reusing[/] {path} (test accuracy {meta['test_accuracy']:.2%})")
            return model, meta
        except CheckpointError as exc:
            # never train over a file silently: keep it for inspection and say why it was not used
            damaged = path.with_name(path.name + ".damaged")
            os.replace(path, damaged)
            console.print(f"[yellow]warning:[/] {exc}; kept as {damaged}, training a new model",
                          highlight=False)
    with console.status(f"training {arch} on {dataset} ...") if not progress else nullcontext():
        result = train(arch, train_set, test_set, checkpoint=path, dataset_name=dataset,
                       progress=progress)
    console.print(f"[green]trained[/] {arch}: test accuracy {result.test_accuracy:.2%} in "
                  f"{result.seconds:.0f} s -> {path}")
    return result.model, load_checkpoint(path)[1]


def _overlap(top: pd.DataFrame) -> pd.DataFrame:
    """Per layer: how much the top-k neurons of misclassified items share with the correct ones."""
    rows = []
    for (layer, label), g in top.groupby(["layer", "label"]):
        right = set(g[g.correct].neuron)
        wrong = set(g[~g.correct].neuron)
        if right and wrong:
            rows.append((layer, label, len(right & wrong) / len(right | wrong)))
    return pd.DataFrame(rows, columns=["layer", "label", "jaccard"])


DEMO_QUERIES = ("top-k-neurons", "top-k-neurons-mean", "top-k-confidence", "top-k-confidence-bootstrap")


def run_demo(out: Path, *, dataset: str = "mnist", arch: str = "lenet5", k: int = 10,
             methods=None, fractions=PAPER_FRACTIONS, seeds=(0, 1, 2, 3, 4),
             data_root: str | None = None, progress: bool = True, console: Console | None = None) -> dict:
    """Run the demo; returns the numbers it printed (for tests and scripts).

    ``methods=None`` evaluates every registered sampler; ``seeds=()`` skips the
    evaluation and stops after the exact headline query.
    """
    console = console or Console()
    began = time.perf_counter()
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
    csv = out / f"top{k}-neurons-{dataset}-{arch}.csv"
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
    result = {"store": store_path, "csv": csv, "test_accuracy": float(test.correct.mean()),
              "groups": int(top.groupby(["layer", "label", "correct"]).ngroups),
              "query_seconds": seconds, "checkpoint_accuracy": meta.get("test_accuracy"),
              "dead": int(dead.dead.sum()), "mean_overlap": float(np.nanmean(overlap.jaccard))}
    if seeds:
        context = {"data set": dataset, "model": arch, "test accuracy": f"{test.correct.mean():.2%}",
                   "items": store.n_items, "k": k}
        result.update(_evaluate(store, out / f"report-{dataset}-{arch}", k, methods, fractions, seeds,
                                context, progress, console))
    result["seconds"] = time.perf_counter() - began
    console.print(f"demo done in {result['seconds'] / 60:.1f} min")
    return result


def _evaluate(store, report: Path, k: int, methods, fractions, seeds, context: dict, progress: bool,
              console: Console) -> dict:
    """The paper's accuracy experiment: every sampler x fraction x seed against the exact answers."""
    start = time.perf_counter()
    results = sweep(store, methods, fractions, list(seeds), queries=DEMO_QUERIES, k=k, progress=progress)
    seconds = time.perf_counter() - start
    paths = write_report(results, report, title=f"Sampling for diagnosis: {context['model']} on "
                         f"{context['data set']}", context={**context, "seeds": len(seeds),
                                                            "evaluation time": f"{seconds:.0f} s"})
    title = f"precision@{k} of the headline query (mean of {len(seeds)} seeds, all groups)"
    wide = print_sampler_table(console, summarize(results), "top-k-neurons", "precision@k", title)
    calibration = calibration_table(results, "top-k-confidence")
    console.print("confidence of sampled answers (thinning): " + ", ".join(
        f"{f:.1%}: says {says:.2f}, is {real:.2f}" for f, says, real in zip(
            calibration["fraction"], calibration["mean confidence"], calibration["mean precision@k"],
            strict=True)))
    console.print(f"evaluation: {len(results):,} scores in {seconds:.0f} s -> report {paths['report']}")
    return {"report": paths["report"], "precision": wide, "calibration": calibration,
            "evaluation_seconds": seconds}
