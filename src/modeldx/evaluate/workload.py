"""The queries an evaluation scores, each with the metric that fits its answer.

Each entry runs a query on the full store (exact, or restricted to a sample's
items with its weights) and compares two answers into rows of
``layer, label, correct, metric, value``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modeldx.evaluate.calibration import compare_confidence
from modeldx.evaluate.metrics import jaccard, js_divergence, precision_at_k
from modeldx.queries import confusion_matrix, dead_neurons, top_k_confidence, top_k_neurons


@dataclass(frozen=True)
class Evaluated:
    name: str
    run: Callable  # (store, items, k) -> answer
    compare: Callable  # (exact, approx) -> list of (layer, label, correct, metric, value)
    exact: Callable | None = None  # (store, k) -> the exact answer, where it is another query's

    def run_exact(self, store, k: int):
        return self.exact(store, k) if self.exact else self.run(store, None, k)


def _groups(frame: pd.DataFrame) -> dict:
    return {(layer, int(label), bool(ok)): g.sort_values("rank").neuron.tolist()
            for (layer, label, ok), g in frame.groupby(["layer", "label", "correct"])}


def _compare_top_k(exact: pd.DataFrame, approx: pd.DataFrame) -> list:
    ex, ap = _groups(exact), _groups(approx)
    return [(layer, label, ok, "precision@k", precision_at_k(neurons, ap.get((layer, label, ok), [])))
            for (layer, label, ok), neurons in ex.items()]


def _compare_confusion(exact: pd.DataFrame, approx: pd.DataFrame) -> list:
    e = exact.sort_values(["label", "pred"])["count"].to_numpy()
    a = approx.sort_values(["label", "pred"])["count"].to_numpy()
    off = exact.sort_values(["label", "pred"]).eval("label != pred").to_numpy()
    return [("", -1, None, "js_divergence", js_divergence(e, a)),
            ("", -1, None, "js_divergence_errors", js_divergence(e[off], a[off]))]


def _compare_dead(exact: pd.DataFrame, approx: pd.DataFrame) -> list:
    rows = []
    for layer, g in exact.groupby("layer", sort=False):
        a = approx[approx.layer == layer]
        rows.append((layer, -1, None, "jaccard_dead",
                     jaccard(set(g.neuron[g.dead]), set(a.neuron[a.dead]))))
    return rows


CONFIDENCE_REPLICATES = 100


def _confidence(scheme: str) -> Callable:
    return lambda st, items, k: top_k_confidence(st, k=k, items=items, scheme=scheme,
                                                 replicates=CONFIDENCE_REPLICATES)

WORKLOAD: dict[str, Evaluated] = {
    "top-k-neurons": Evaluated(
        "top-k-neurons", lambda st, items, k: top_k_neurons(st, k=k, by="max", items=items),
        _compare_top_k),
    "top-k-neurons-mean": Evaluated(
        "top-k-neurons-mean", lambda st, items, k: top_k_neurons(st, k=k, by="mean", items=items),
        _compare_top_k),
    "confusion-matrix": Evaluated(
        "confusion-matrix", lambda st, items, k: confusion_matrix(st, items=items), _compare_confusion),
    "dead-neurons": Evaluated(
        "dead-neurons", lambda st, items, k: dead_neurons(st, items=items), _compare_dead),
    # how honest the confidence of a sampled top-k answer is, for each replicate scheme
    "top-k-confidence": Evaluated("top-k-confidence", _confidence("thinning"), compare_confidence,
                        lambda st, k: top_k_neurons(st, k=k)),
    "top-k-confidence-bootstrap": Evaluated(
        "top-k-confidence-bootstrap", _confidence("bootstrap"), compare_confidence,
        lambda st, k: top_k_neurons(st, k=k)),
}


def evaluated() -> list[str]:
    return list(WORKLOAD)


def nan_to_none(value):
    return None if isinstance(value, float) and np.isnan(value) else value
