"""Per-class mean activation of every neuron, for every requested layer, in one pass.

CNNVis describes a neuron by its mean activation on each class; the neuron
clusters and activation matrices (:mod:`modeldx.neurons.clusters`,
:mod:`modeldx.neurons.matrix`) start from this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modeldx.engine.local import Chunk, run_reduction
from modeldx.queries._common import answer, resolve_layers, source, subset_for
from modeldx.queries.registry import register

ACTIVE_TOL = 1e-6  # "active" means > this, as for a live unit in dead_neurons' sense


@dataclass
class ClassMeans:
    """Per-class mean activations of the neurons of some layers.

    Attributes
    ----------
    means
        layer -> (neurons, classes) float64: the weighted mean activation of each
        neuron over the items of each class. A class with no items (count 0) has
        mean 0, not NaN, so that the rows stay usable for clustering; ``counts``
        says which classes were empty (:meth:`empty`).
    active
        layer -> (neurons,): the weighted share of all items on which the neuron
        is above ``1e-6``.
    counts
        (classes,): the weighted number of items of each class.
    classes
        Class names (the manifest's, else ``"0"``, ``"1"``, ...).
    source
        Where the answer came from (the full store, or which sample).
    """

    means: dict[str, np.ndarray]
    active: dict[str, np.ndarray]
    counts: np.ndarray
    classes: list[str]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[str]:
        return list(self.means)

    def empty(self) -> np.ndarray:
        """Boolean mask of the classes without items (their means are 0 by convention)."""
        return self.counts <= 0

    def frame(self) -> pd.DataFrame:
        """Long form: ``layer, neuron, class, mean`` (class as its index into ``classes``)."""
        frames = []
        for layer, m in self.means.items():
            n, c = m.shape
            frames.append(pd.DataFrame({"layer": layer, "neuron": np.repeat(np.arange(n), c),
                                        "class": np.tile(np.arange(c), n), "mean": m.ravel()}))
        return pd.concat(frames, ignore_index=True)


class ClassSums:
    """Weighted per-class sums, per-class weights and active counts of every layer's neurons."""

    def __init__(self, layers: list[str], n_classes: int, tol: float = ACTIVE_TOL) -> None:
        self.layers, self.n_classes, self.tol = layers, n_classes, tol
        self.arrays = [f"acts/{layer}" for layer in layers]

    def map(self, chunk: Chunk):
        labels = chunk.items["label"].to_numpy()
        w = chunk.weights.astype(np.float64)
        # items whose label is no class (e.g. unlabelled, -1) count for "active" only
        inside = (labels >= 0) & (labels < self.n_classes)
        onehot = np.zeros((labels.size, self.n_classes))
        onehot[np.flatnonzero(inside), labels[inside]] = w[inside]
        out = {"w": w.sum(), "counts": onehot.sum(axis=0)}
        for layer, name in zip(self.layers, self.arrays, strict=True):
            block = chunk.arrays[name]
            out[layer] = (block.T.astype(np.float64) @ onehot, w @ (block > self.tol))
        return out

    def combine(self, a, b):
        out = {"w": a["w"] + b["w"], "counts": a["counts"] + b["counts"]}
        for layer in self.layers:
            out[layer] = (a[layer][0] + b[layer][0], a[layer][1] + b[layer][1])
        return out

    def finalize(self, state):
        return state


def _class_names(store) -> list[str]:
    m = store.manifest
    if m.classes and len(m.classes) == m.num_classes:
        return [str(c) for c in m.classes]
    return [str(i) for i in range(m.num_classes)]


def class_means(store, *, layers=None, items=None, weights=None, progress: bool = False,
                engine=None) -> ClassMeans:
    """Mean activation of every neuron on every class, for each layer, in one pass over the store.

    Each requested layer's activations are read once, chunk by chunk. With
    ``items``/``weights`` (a :class:`~modeldx.engine.subset.Sample`, or item ids)
    the means are weighted by the inclusion weights, so a sample estimates the
    full store's means; ``source`` says which was used.

    Returns
    -------
    ClassMeans
        ``means[layer]`` (neurons, classes), ``active[layer]`` (neurons,),
        ``counts`` (classes,), ``classes``, ``source``. An empty class has mean 0
        and count 0.

    Examples
    --------
    >>> cm = class_means(store, layers=["act3", "act4"])  # doctest: +SKIP
    >>> cm.means["act4"].shape
    (84, 10)
    """
    names = resolve_layers(store, layers)
    n_classes = store.manifest.num_classes
    subset = subset_for(store, items, weights)
    state = run_reduction(store, ClassSums(names, n_classes), subset, engine=engine, progress=progress)
    counts = np.zeros(n_classes) if state is None else state["counts"]
    total = 0.0 if state is None else state["w"]
    means, active = {}, {}
    for layer in names:
        n = store.neurons(layer)
        sums, act = (np.zeros((n, n_classes)), np.zeros(n)) if state is None else state[layer]
        # empty classes: 0 rather than NaN (a NaN row cannot be clustered); counts tell them apart
        means[layer] = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        active[layer] = act / total if total > 0 else np.zeros(n)
    return ClassMeans(means, active, counts, _class_names(store), source(store, subset))


@register("class-means")
def class_means_table(store, *, layers=None, items=None, weights=None, progress: bool = False,
                      engine=None) -> pd.DataFrame:
    """Mean activation of every neuron per class (CNNVis' description of a neuron).

    The table form of :func:`class_means`, for the CLI (``modeldx query class-means``).

    Returns
    -------
    DataFrame
        ``layer, neuron, class, class_name, mean, count, active``: ``count`` is the
        class's weighted number of items (a class with none has mean 0), ``active``
        the neuron's share of items on which it is above 1e-6.

    Examples
    --------
    >>> class_means_table(store, layers="act4")  # doctest: +SKIP
    """
    subset = subset_for(store, items, weights)
    cm = class_means(store, layers=layers, items=subset, progress=progress, engine=engine)
    frame = cm.frame()
    cls = frame["class"].to_numpy()
    frame["class_name"] = np.asarray(cm.classes, dtype=object)[cls]
    frame["count"] = cm.counts[cls]
    frame["active"] = np.concatenate([np.repeat(cm.active[layer], len(cm.classes)) for layer in cm.layers])
    frame = frame[["layer", "neuron", "class", "class_name", "mean", "count", "active"]]
    return answer(frame, "class-means", store, subset, layers=cm.layers)


__all__ = ["ClassMeans", "ClassSums", "class_means", "class_means_table"]
