"""Top-k neurons per group (layer x true class x correct/incorrect): the paper's headline query."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modeldx._params import Interval, OneOf, check_params
from modeldx.engine.groups import group_codes, n_groups
from modeldx.engine.local import Chunk, run_reduction
from modeldx.queries._common import answer, resolve_layers, subset_for, top_k_order
from modeldx.queries.registry import Evaluation, register


@dataclass
class _GroupState:
    maxima: dict[str, np.ndarray]  # layer -> (groups, neurons)
    sums: dict[str, np.ndarray]  # layer -> (groups, neurons), weighted
    weight: np.ndarray  # (groups,) summed weights
    count: np.ndarray  # (groups,) items


class GroupNeuronStats:
    """Per (true class, correct) group and neuron: the max, or the weighted sum, of activations."""

    def __init__(self, layers: list[str], num_classes: int, by: str = "max") -> None:
        self.layers = layers
        self.groups = n_groups(num_classes)
        self.by = by
        self.arrays = [f"acts/{layer}" for layer in layers]

    def map(self, chunk: Chunk) -> _GroupState:
        codes = group_codes(chunk.items)
        count = np.bincount(codes, minlength=self.groups)
        weight = np.bincount(codes, weights=chunk.weights, minlength=self.groups)
        # rows sorted by group once, then one reduceat per layer instead of a mask per group
        order = np.argsort(codes, kind="stable")
        present = np.flatnonzero(count)
        starts = np.concatenate([[0], np.cumsum(count)[:-1]])[present]
        maxima, sums = {}, {}
        for layer, name in zip(self.layers, self.arrays, strict=True):
            block = chunk.arrays[name]
            if self.by == "max":
                mx = np.full((self.groups, block.shape[1]), -np.inf, dtype=np.float32)
                if present.size:
                    mx[present] = np.maximum.reduceat(block[order], starts, axis=0)
                maxima[layer] = mx
            else:
                onehot = np.zeros((self.groups, codes.size))
                onehot[codes, np.arange(codes.size)] = chunk.weights
                sums[layer] = onehot @ block.astype(np.float64)
        return _GroupState(maxima, sums, weight, count)

    def combine(self, a: _GroupState, b: _GroupState) -> _GroupState:
        return _GroupState(
            {k: np.maximum(a.maxima[k], b.maxima[k]) for k in a.maxima},
            {k: a.sums[k] + b.sums[k] for k in a.sums},
            a.weight + b.weight,
            a.count + b.count,
        )

    def finalize(self, state: _GroupState) -> _GroupState:
        return state


def group_scores(state: _GroupState, layer: str, by: str) -> np.ndarray:
    """(groups, neurons) scores; NaN for a group with no items."""
    if by == "max":
        scores = state.maxima[layer].astype(np.float64)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = state.sums[layer] / state.weight[:, None]
    scores[state.count == 0] = np.nan
    return scores


@register("top-k-neurons", example={"k": 3}, evaluate=(
    Evaluation("top-k-neurons", "top-k", {"by": "max"}),
    Evaluation("top-k-neurons-mean", "top-k", {"by": "mean"})))
def top_k_neurons(store, *, k: int = 10, layers=None, by: str = "max", items=None, weights=None,
                  progress: bool = False, engine=None) -> pd.DataFrame:
    """Top-k neurons of each layer for the items of each (true class, correct/incorrect) group.

    Neurons are ranked by their maximum activation over the group's items
    (``by="max"``, the paper's "maximally activated") or by their mean
    (``by="mean"``, weighted by the subset's inclusion weights). Ties go to the
    lower neuron index. Groups with no items are left out.

    Returns
    -------
    DataFrame
        ``layer, label, correct, rank, neuron, value, n_items`` — one row per
        (group, rank).

    Examples
    --------
    >>> top = top_k_neurons(store, k=10)  # doctest: +SKIP
    >>> top[(top.layer == "act4") & (top.label == 3) & ~top.correct].neuron.tolist()
    """
    check_params("top_k_neurons", {"k": k, "by": by},
                 {"k": Interval(int, 1, None), "by": OneOf("max", "mean")})
    names = resolve_layers(store, layers)
    subset = subset_for(store, items, weights)
    num_classes = store.manifest.num_classes
    state = run_reduction(store, GroupNeuronStats(names, num_classes, by), subset, engine=engine,
                          progress=progress)
    rows = []
    for layer in names:
        scores = group_scores(state, layer, by)
        kk = min(k, scores.shape[1])
        for g in np.flatnonzero(state.count > 0):
            order = top_k_order(scores[g], kk)
            for rank, neuron in enumerate(order, start=1):
                rows.append((layer, g // 2, bool(g % 2), rank, int(neuron), float(scores[g, neuron]),
                             int(state.count[g])))
    frame = pd.DataFrame(rows, columns=["layer", "label", "correct", "rank", "neuron", "value", "n_items"])
    return answer(frame, "top-k-neurons", store, subset, k=k, layers=names, by=by)
