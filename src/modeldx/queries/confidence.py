"""How far to trust a top-k answer: the chance that each returned neuron is in the exact top k.

An approximate answer computed from a sample can miss the items that decide
which neurons rank highest. :func:`top_k_confidence` attaches to each neuron of
the headline answer the share of replicates in which that neuron is again among
the top k of its group. Replicates are made from the subset's own items by one
of two schemes:

- *thinning* (the default): keep each item of a group with the chance that the
  subset kept it from all items (``n_g / N_g``, known because the latent pass
  labels every item). The replicate is to the subset what the subset is to all
  items; the chance that the item with the largest activation survives is the
  same ``n_g / N_g`` at both levels, so a neuron's survival rate in the
  replicates estimates its survival in the exact answer. Its mean over a
  group's k neurons is exactly the replicates' precision@k against the subset.
  That argument holds for uniform draws within groups (``uniform``,
  ``stratified-cm``, ``latent-grid``). For samplers that choose within a group
  by the latent space (the latent SVM and GMM, VAS, the EB tree, ``latent-cm``)
  the subset is not a uniform draw, so thinning is a calibrated heuristic for
  them: the evaluation measures how well calibrated, it is not guaranteed.
- the *Poisson bootstrap* (each item enters ``Poisson(1)`` times; Hanley &
  MacGibbon 2006, Chamandy et al. 2012): the classical choice, which cannot see
  items outside the subset; for a maximum it is overconfident.

Both stream over item chunks. An item's multiplicity in a replicate is a hash
of (seed, item id, replicate), not of the order in which chunks are read, so the
answer on a subset equals the answer on a store holding only that subset. For
``by="max"`` only a neuron's few largest values can be a replicate's maximum,
so the state keeps ``ceil(log(1e4) / p)`` of them per group and neuron (``p``:
the chance a replicate holds an item); a replicate holding none of them
(chance 1e-4) takes the smallest kept value. For ``by="mean"`` the state is
one weighted sum per replicate, group and neuron.

The evaluation (``modeldx.evaluate``) checks both schemes' calibration against
exact answers, and the report shows how far they can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from modeldx._params import Interval, OneOf, check_params
from modeldx.engine.groups import group_code, group_codes, group_sizes, n_groups
from modeldx.engine.local import Chunk, run_reduction
from modeldx.errors import InvalidParameterError
from modeldx.queries._common import answer, resolve_layers, subset_for
from modeldx.queries.registry import Evaluation, register
from modeldx.queries.top_k_neurons import top_k_neurons

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# P(Poisson(1) <= c) for c = 0..11; beyond that the chance is below 1e-9
_POISSON_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, c + 1)) for c in range(12)])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fast, well-spread hash of uint64 values."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniforms(item_ids: np.ndarray, replicates: int, seed: int, salt: int) -> np.ndarray:
    """(items, replicates) uniforms in [0, 1), a pure function of (salt, seed, item id, replicate)."""
    ids = np.asarray(item_ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        key = _mix(ids * _GOLDEN + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + np.uint64(salt))
        x = _mix(key[:, None] + np.arange(1, replicates + 1, dtype=np.uint64)[None, :] * _GOLDEN)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def poisson_counts(item_ids: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """(items, replicates) Poisson(1) counts, a pure function of (seed, item id, replicate)."""
    return np.searchsorted(_POISSON_CDF, _uniforms(item_ids, replicates, seed, 0)).astype(np.uint8)


def replicate_weights(item_ids: np.ndarray, replicates: int, seed: int,
                      keep: np.ndarray | None) -> np.ndarray:
    """(items, replicates) multiplicities: Poisson(1) counts, or 0/1 kept with chance ``keep``."""
    if keep is None:
        return poisson_counts(item_ids, replicates, seed)
    u = _uniforms(item_ids, replicates, seed, 1)
    return (u < np.asarray(keep, dtype=np.float64).reshape(-1, 1)).astype(np.uint8)


@dataclass
class _State:
    values: dict  # max: (layer, group) -> (candidates, neurons) largest values, descending not implied
    ids: dict  # max: (layer, group) -> their item ids
    sums: dict  # mean: layer -> (replicates, groups, neurons) weighted sums
    weight: np.ndarray | None  # mean: (replicates, groups)


class ReplicateTopK:
    """Streams what per-replicate group maxima or means need, for a Poisson bootstrap or a thinning.

    ``keep`` is ``None`` for the bootstrap, else each group's chance of keeping
    an item. For ``by="max"`` a replicate's maximum is the largest value among
    the items it holds, which is almost surely among a neuron's few largest:
    the state keeps ``ceil(log(1/miss) / p)`` of them per group and neuron,
    where ``p`` is the chance that a replicate holds a given item.
    """

    def __init__(self, layers, num_classes: int, by: str, replicates: int, seed: int,
                 keep: np.ndarray | None = None, miss: float = 1e-4) -> None:
        self.layers, self.by = layers, by
        self.groups, self.replicates, self.seed, self.keep = n_groups(num_classes), replicates, seed, keep
        self.arrays = [f"acts/{layer}" for layer in layers]
        p = np.full(self.groups, 1 - np.exp(-1.0)) if keep is None else np.clip(keep, 1e-9, 1.0)
        self.candidates = np.ceil(np.log(1 / miss) / p).clip(1, 1 << 20).astype(np.int64)

    def _weights(self, ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
        keep = None if self.keep is None else self.keep[codes]
        return replicate_weights(ids, self.replicates, self.seed, keep)

    def map(self, chunk: Chunk) -> _State:
        codes = group_codes(chunk.items)
        ids = chunk.items["item_id"].to_numpy()
        groups = [(g, np.flatnonzero(codes == g)) for g in np.unique(codes)]
        if self.by == "max":
            values, found = {}, {}
            for layer, name in zip(self.layers, self.arrays, strict=True):
                block = chunk.arrays[name]
                for g, rows in groups:
                    values[layer, g], found[layer, g] = self._largest(
                        block[rows], np.broadcast_to(ids[rows][:, None], (rows.size, block.shape[1])),
                        self.candidates[g])
            return _State(values, found, {}, None)
        counts = self._weights(ids, codes) * chunk.weights[:, None]  # (items, replicates)
        weight = np.zeros((self.replicates, self.groups))
        sums = {layer: np.zeros((self.replicates, self.groups, chunk.arrays[name].shape[1]))
                for layer, name in zip(self.layers, self.arrays, strict=True)}
        for g, rows in groups:
            weight[:, g] = counts[rows].sum(axis=0)
            for layer, name in zip(self.layers, self.arrays, strict=True):
                sums[layer][:, g] = counts[rows].T @ chunk.arrays[name][rows].astype(np.float64)
        return _State({}, {}, sums, weight)

    @staticmethod
    def _largest(values: np.ndarray, ids: np.ndarray, t: int):
        if values.shape[0] <= t:
            return values, np.ascontiguousarray(ids)
        top = np.argpartition(-values, t - 1, axis=0)[:t]
        return np.take_along_axis(values, top, axis=0), np.take_along_axis(ids, top, axis=0)

    def combine(self, a: _State, b: _State) -> _State:
        if self.by == "mean":
            return _State({}, {}, {k: a.sums[k] + b.sums[k] for k in a.sums}, a.weight + b.weight)
        values, found = dict(a.values), dict(a.ids)
        for key in b.values:
            if key in values:
                values[key], found[key] = self._largest(
                    np.concatenate([values[key], b.values[key]]), np.concatenate([found[key], b.ids[key]]),
                    self.candidates[key[1]])
            else:
                values[key], found[key] = b.values[key], b.ids[key]
        return _State(values, found, {}, None)

    def finalize(self, state: _State) -> _State:
        return state

    def replicate_scores(self, state: _State, layer: str, group: int) -> np.ndarray:
        """(replicates, neurons) scores of one group; NaN rows for replicates where it is empty."""
        if self.by == "mean":
            w = state.weight[:, group]
            with np.errstate(invalid="ignore", divide="ignore"):
                scores = state.sums[layer][:, group] / w[:, None]
            scores[w == 0] = np.nan
            return scores
        values, ids = state.values[layer, group], state.ids[layer, group]  # (candidates, neurons)
        order = np.argsort(-values, axis=0, kind="stable")
        values, ids = np.take_along_axis(values, order, axis=0), np.take_along_axis(ids, order, axis=0)
        members = np.unique(ids)
        held = self._weights(members, np.full(members.size, group)) > 0  # (members, replicates)
        inside = held[np.searchsorted(members, ids)]  # (candidates, neurons, replicates)
        first = inside.argmax(axis=0)  # the largest candidate each replicate holds
        scores = values[first, np.arange(ids.shape[1])[:, None]]  # (neurons, replicates)
        # a replicate holding no candidate: below them all; the smallest is the nearest value
        scores = np.where(inside.any(axis=0), scores, values[-1][:, None]).T.astype(np.float64)
        if members.size < self.candidates[group]:
            # every item of the group is a candidate: a replicate holding none of them is empty
            scores[~held.any(axis=0)] = np.nan
        return scores


def inclusion_frequency(scores: np.ndarray, k: int) -> tuple[np.ndarray, int]:
    """Per neuron, the share of (non-empty) replicates whose top k holds it; ties to the lower index."""
    valid = scores[~np.isnan(scores).all(axis=1)]
    if valid.shape[0] == 0:
        return np.full(scores.shape[1], np.nan), 0
    top = np.argsort(-valid, axis=1, kind="stable")[:, :k]
    freq = np.bincount(top.ravel(), minlength=scores.shape[1]) / valid.shape[0]
    return freq, int(valid.shape[0])


# thinning needs the population's group sizes, which a store of a subset lacks unless the subset is a
# Sample that records them: the example bootstraps, tests/sampling/test_pipeline.py checks thinning
@register("top-k-confidence", example={"k": 3, "replicates": 50, "scheme": "bootstrap"}, evaluate=(
    Evaluation("top-k-confidence", "confidence", {"scheme": "thinning", "replicates": 100}, "top-k-neurons"),
    Evaluation("top-k-confidence-bootstrap", "confidence", {"scheme": "bootstrap", "replicates": 100},
               "top-k-neurons")))
def top_k_confidence(store, *, k: int = 10, layers=None, by: str = "max", scheme: str = "thinning",
                     replicates: int = 200, seed: int = 0, items=None, weights=None, progress: bool = False,
                     engine=None) -> pd.DataFrame:
    """The headline top-k answer with each neuron's estimated chance of being in the exact top k.

    Parameters
    ----------
    k, layers, by
        As in :func:`~modeldx.queries.top_k_neurons`.
    scheme : {"thinning", "bootstrap"}, default="thinning"
        How replicates are made from the items the answer was computed on.
        ``"thinning"`` keeps each item of a group with the chance ``n_g / N_g``
        (the group's items in the subset over its items in the store): the
        replicate stands to the subset as the subset stands to all items, so
        how often a neuron survives in the replicates' top k estimates how
        often it survives in the exact one — an argument that holds for uniform
        draws within groups; for samplers that choose within groups by the
        latent space it is a heuristic whose calibration the evaluation
        measures. ``"bootstrap"`` is the Poisson
        bootstrap of the subset; it cannot see items outside the subset and is
        overconfident for top-k by max (the report measures by how much).
        ``N_g`` comes from the sample's ``info["group_items"]`` (recorded by
        :func:`modeldx.sample` from the latent pass), else from the store's
        items — so on a store captured for the sample only, pass the Sample.
        Over every item (no subset), thinning keeps everything: confidence 1.
    replicates : int, default=200
        The state of ``by="mean"`` holds ``replicates x 2·classes x neurons``
        float64 sums per layer.
    seed : int, default=0
        Replicates are a pure function of ``seed`` and the item ids.

    Returns
    -------
    DataFrame
        The columns of ``top_k_neurons`` plus ``confidence`` (share of
        replicates whose top k holds the neuron) and ``replicates`` (the
        group's non-empty replicates). A group's mean confidence estimates
        its precision@k.

    Examples
    --------
    >>> sample = modeldx.sample(store, "latent-svm", 0.02)  # doctest: +SKIP
    >>> top = top_k_confidence(store, items=sample)
    >>> top[top.confidence < 0.5]  # the neurons a larger sample may well replace
    """
    check_params("top_k_confidence",
                 {"k": k, "by": by, "scheme": scheme, "replicates": replicates, "seed": seed},
                 {"k": Interval(int, 1, None), "by": OneOf("max", "mean"),
                  "scheme": OneOf("thinning", "bootstrap"), "replicates": Interval(int, 10, 100_000),
                  "seed": Interval(int, 0, 2 ** 32 - 1)})
    names = resolve_layers(store, layers)
    subset = subset_for(store, items, weights)
    point = top_k_neurons(store, k=k, layers=names, by=by, items=items, weights=weights, engine=engine)
    groups = n_groups(store.manifest.num_classes)
    keep = None
    if scheme == "thinning":
        table = store.items()
        population = group_sizes(table, store.manifest.num_classes)
        held = population if subset is None else group_sizes(table.iloc[subset.rows],
                                                             store.manifest.num_classes)
        if subset is not None and "group_items" in subset.info:
            # a sample made by modeldx.sample knows its population, which a store of the sample lacks
            population = np.asarray(subset.info["group_items"], dtype=np.int64)
            if population.shape != (groups,) or (population < held).any():
                raise InvalidParameterError(
                    f"the sample's group_items {population.tolist()} do not fit the store {store.path}: "
                    f"expected {groups} counts, each at least the sample's {held.tolist()}")
        keep = held / np.maximum(population, 1)
    reduction = ReplicateTopK(names, store.manifest.num_classes, by, replicates, seed, keep)
    state = run_reduction(store, reduction, subset, engine=engine, progress=progress)
    confidence, valid = np.full(len(point), np.nan), np.zeros(len(point), dtype=np.int64)
    for (layer, label, ok), rows in point.groupby(["layer", "label", "correct"]).groups.items():
        scores = reduction.replicate_scores(state, layer, int(group_code(label, ok)))
        freq, n = inclusion_frequency(scores, min(k, scores.shape[1]))
        confidence[rows] = freq[point.loc[rows, "neuron"].to_numpy()]
        valid[rows] = n
    frame = point.assign(confidence=confidence, replicates=valid)
    return answer(frame, "top-k-confidence", store, subset, k=k, layers=names, by=by, scheme=scheme,
                  replicates=replicates, seed=seed)
