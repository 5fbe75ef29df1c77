"""The queries an evaluation scores, each with the metric that fits its answer.

The workload is read from the query registry (each query's ``evaluate=``
entries), so a new query is evaluated by registering it, with no edit here
unless its answer needs a new kind of comparison (:data:`COMPARISONS`). Each
entry runs a query on the full store (exact, or restricted to a sample's items
with its weights) and compares two answers into rows of
``layer, label, correct, metric, value``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from modeldx.errors import InvalidParameterError
from modeldx.evaluate.calibration import compare_confidence
from modeldx.evaluate.metrics import jaccard, js_divergence, precision_at_k
from modeldx.queries import QUERIES, QueryInfo


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


# how an approximate answer is scored against the exact one, by the shape of the answer
COMPARISONS: dict[str, Callable] = {"top-k": _compare_top_k, "confusion": _compare_confusion,
                                    "dead": _compare_dead, "confidence": compare_confidence}


def _runner(info: QueryInfo, params: dict) -> Callable:
    takes_k = "k" in info.parameters()

    def run(store, items, k: int):
        return info.func(store, **params, **({"k": k} if takes_k else {}), items=items)

    return run


def workload() -> dict[str, Evaluated]:
    """Every evaluation entry of every registered query, by entry name."""
    entries = {ev.name: (info, ev) for info in QUERIES.values() for ev in info.evaluations}
    out = {}
    for name, (info, ev) in entries.items():
        if ev.compare not in COMPARISONS:
            raise InvalidParameterError(f"query {info.name!r} is evaluated with {ev.compare!r}, which is not "
                                        f"a comparison; expected one of {sorted(COMPARISONS)}")
        exact = None
        if ev.exact is not None and ev.exact not in entries:
            raise InvalidParameterError(f"query {info.name!r} is scored against the exact answer of "
                                        f"{ev.exact!r}, which no query evaluates; expected one of "
                                        f"{sorted(entries)}")
        if ev.exact is not None:
            other_info, other = entries[ev.exact]
            exact = (lambda run: lambda st, k: run(st, None, k))(_runner(other_info, other.params))
        out[name] = Evaluated(name, _runner(info, ev.params), COMPARISONS[ev.compare], exact)
    return out
