"""The Sampler contract, its registry, and helpers every sampler shares.

A sampler is fitted on what the latent pass produced — latent vectors,
predictions and, for supervised samplers, true labels — and never on other
activations. ``select`` then returns a :class:`~modeldx.engine.subset.Sample`: an
exact budget of distinct rows of the fitted data (their positions), an
inclusion weight per row (how many items of the full data it stands for, so that
weighted sums estimate full-data sums) and a record of how the sample was made.

    UniformSampler(seed=0).fit(latent, pred).select(0.01)
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from modeldx._params import Interval, check_params
from modeldx.engine.subset import Sample
from modeldx.errors import DuplicateNameError, InvalidLabelError, InvalidParameterError

SAMPLERS: dict[str, type[Sampler]] = {}


def register(cls: type[Sampler]) -> type[Sampler]:
    """Class decorator: adds ``cls`` to the registry under ``cls.name``."""
    if cls.name in SAMPLERS:
        raise DuplicateNameError(f"a sampler named {cls.name!r} is already registered")
    SAMPLERS[cls.name] = cls
    return cls


def available() -> list[str]:
    """Names of the registered samplers."""
    return sorted(SAMPLERS)


def get(name: str) -> type[Sampler]:
    if name not in SAMPLERS:
        raise InvalidParameterError(
            f"The 'method' parameter must be one of {available()}. Got {name!r} instead.")
    return SAMPLERS[name]


def build(name: str, *, seed: int = 0, **params: Any) -> Sampler:
    """The sampler ``name`` with settings ``params``; an unknown setting is a user error naming it.

    >>> build("latent-gmm", seed=1, j=0.3)  # doctest: +SKIP
    """
    cls = get(name)
    settings = inspect.signature(cls).parameters
    unknown = [key for key in params if key not in settings]
    if unknown:
        raise InvalidParameterError(
            f"the sampler {name} has no setting {unknown[0]!r}; its settings are {', '.join(settings)}")
    return cls(seed=seed, **params)


class Sampler(ABC):
    """Base class: settings in the constructor, ``fit`` on latent data, ``select`` a budget.

    Subclasses set ``name`` and ``supervised`` and implement ``_fit`` and ``_select``.
    """

    name: ClassVar[str] = ""
    supervised: ClassVar[bool] = False
    min_items: ClassVar[int] = 2
    _limits: ClassVar[dict] = {}

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    # --- the contract --------------------------------------------------------------
    def fit(self, latent: np.ndarray, pred: np.ndarray, labels: np.ndarray | None = None) -> Sampler:
        """Learn what the sampler needs from the latent vectors, predictions and labels."""
        check_params(type(self).__name__, self.get_params(), {"seed": Interval(int, 0, None),
                                                              **self._limits})
        latent = np.asarray(latent)
        pred = np.asarray(pred)
        if latent.ndim != 2 or latent.shape[0] == 0:
            raise InvalidParameterError(
                f"latent must have shape (n_items, dim) with at least one item. Got {latent.shape}.")
        if latent.shape[0] < self.min_items:
            raise InvalidParameterError(
                f"{type(self).__name__} needs at least {self.min_items} items to sample from. "
                f"Got {latent.shape[0]}.")
        if not np.isfinite(latent).all():
            bad = np.flatnonzero(~np.isfinite(latent).all(axis=1))
            raise InvalidParameterError(
                f"latent holds NaN or infinite values for {bad.size} items (first rows: "
                f"{bad[:5].tolist()}); a sampler needs finite latent vectors")
        if pred.shape != (latent.shape[0],):
            raise InvalidParameterError(
                f"pred must have shape ({latent.shape[0]},) to match latent. Got {pred.shape}.")
        pred = class_indices("pred", pred)
        if self.supervised:
            if labels is None:
                raise InvalidParameterError(f"{type(self).__name__} is supervised: pass labels.")
            labels = np.asarray(labels)
            if labels.shape != pred.shape:
                raise InvalidParameterError(
                    f"labels must have shape {pred.shape} to match pred. Got {labels.shape}.")
            labels = class_indices("labels", labels)
        elif labels is not None:
            labels = class_indices("labels", labels)
        self.n_items_ = latent.shape[0]
        self._fit(latent.astype(np.float64, copy=False), pred, labels)
        return self

    def select(self, fraction: float) -> Sample:
        """An exact budget of ``round(fraction * n_items)`` distinct rows (at least 1)."""
        if not hasattr(self, "n_items_"):
            raise InvalidParameterError(f"{type(self).__name__} is not fitted; call fit() first.")
        check_params(f"{type(self).__name__}.select", {"fraction": fraction},
                     {"fraction": Interval(float, 0, 1, "right")})
        budget = budget_for(fraction, self.n_items_)
        rng = np.random.default_rng(self.seed)
        sel = self._select(budget, rng)
        rows = np.asarray(sel.rows, dtype=np.int64)
        if rows.size != budget or np.unique(rows).size != budget:
            raise RuntimeError(f"bug: sampler {self.name} returned {rows.size} rows ({np.unique(rows).size} "
                                 f"distinct) for a budget of {budget}")  # a bug, not user input
        order = np.argsort(rows)
        # the fitted data has no ids of its own: a row's id is its position
        sel.item_ids = sel.rows = rows[order]
        sel.weights = np.asarray(sel.weights, dtype=np.float64)[order]
        sel.info = {"method": self.name, "fraction": float(fraction), "budget": budget,
                    "n_items": self.n_items_, "seed": self.seed,
                    "params": {k: v for k, v in self.get_params().items() if k != "seed"},
                    **sel.info}
        return sel

    @abstractmethod
    def _fit(self, latent: np.ndarray, pred: np.ndarray, labels: np.ndarray | None) -> None:
        """Learn from validated inputs (float64 latent, int64 predictions and labels)."""

    @abstractmethod
    def _select(self, budget: int, rng: np.random.Generator) -> Sample:
        """Exactly ``budget`` distinct rows with their inclusion weights."""


def class_indices(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` as int64 class indices; a user error naming ``name`` unless all are whole numbers >= 0.

    Integral floats (labels read from a CSV) are accepted; NaN, fractions, strings
    and negative codes (-1 for "unlabelled") are not, since a sampler's groups
    are indexed by them.
    """
    values = np.asarray(values)
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    if values.dtype.kind not in "iuf":
        raise InvalidLabelError(f"{name} must be integer class indices. Got values of dtype {values.dtype}.")
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all():
            bad = np.flatnonzero(~whole)
            raise InvalidLabelError(
                f"{name} must be class indices (whole numbers); {bad.size} are not (first rows: "
                f"{bad[:5].tolist()}, values {values[bad[:5]].tolist()}).")
    if values.size and values.min() < 0:
        bad = np.flatnonzero(values < 0)
        raise InvalidLabelError(
            f"{name} must be class indices >= 0; {bad.size} are negative (first rows: {bad[:5].tolist()}, "
            f"values {values[bad[:5]].tolist()}).")
    return values.astype(np.int64)


def confusion_cells(labels: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each item's confusion cell (a code per (label, pred) pair that occurs) and the cells' sizes.

    Codes follow (label, pred) order, as ``label * classes + pred`` would, but
    only the pairs present get one: sparse class codes cost nothing extra.
    """
    _, cells = np.unique(np.stack([labels, pred], axis=1), axis=0, return_inverse=True)
    cells = cells.reshape(-1).astype(np.int64)
    return cells, np.bincount(cells)


def budget_for(fraction: float, n_items: int) -> int:
    return int(min(n_items, max(1, round(fraction * n_items))))


def allocate(sizes: np.ndarray, budget: int, how: str = "proportional",
             rng: np.random.Generator | None = None) -> np.ndarray:
    """Split ``budget`` draws across groups of ``sizes`` without exceeding any group.

    ``"proportional"``: by size, largest remainders first. ``"equal"``: the same
    number per group, a group too small to take its share giving the rest to the
    others (water-filling); the last draws, fewer than the groups still open, go
    to groups chosen at random with ``rng`` (pass the sampler's, seeded by its
    seed; ``None`` uses a generator seeded 0) — always giving them to the lowest
    group codes would favour those cells whenever the budget is smaller than the
    number of groups. Either way the counts sum to ``budget``.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    budget = int(min(budget, sizes.sum()))
    out = np.zeros(sizes.size, dtype=np.int64)
    if how == "proportional":
        exact = sizes / sizes.sum() * budget
        out = np.minimum(np.floor(exact).astype(np.int64), sizes)
        rest = budget - out.sum()
        order = np.lexsort((np.arange(sizes.size), -(exact - out)))
        for g in order:
            if rest == 0:
                break
            if out[g] < sizes[g]:
                out[g] += 1
                rest -= 1
    elif how == "equal":
        rng = np.random.default_rng(0) if rng is None else rng
        rest = budget
        while rest > 0:
            open_ = np.flatnonzero(out < sizes)
            share = rest // open_.size
            if share == 0:  # fewer draws than open groups: which groups get one is left to chance
                out[rng.choice(open_, size=rest, replace=False)] += 1
                break
            take = np.minimum(share, sizes[open_] - out[open_])
            out[open_] += take
            rest -= int(take.sum())
    else:
        raise InvalidParameterError(f"allocation must be 'proportional' or 'equal'. Got {how!r}.")
    # leftovers from caps (proportional) go to groups with room, largest first
    rest = budget - out.sum()
    for g in np.argsort(-(sizes - out), kind="stable"):
        if rest <= 0:
            break
        take = min(rest, sizes[g] - out[g])
        out[g] += take
        rest -= take
    return out


def draw_within(groups: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform draws without replacement of ``counts[g]`` rows from each group code ``g``."""
    rows = []
    for g in np.flatnonzero(counts):
        members = np.flatnonzero(groups == g)
        rows.append(rng.choice(members, size=int(counts[g]), replace=False))
    return np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)


def stratified_rows(groups: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``size`` rows drawn uniformly within each group, groups in proportion to their size.

    What a sampler fits on when the data is large: every group keeps its share
    (a small class is not lost to chance), and the fit costs the same at 70,000
    items as at 10 million. All rows when ``size`` covers them.
    """
    if size >= groups.size:
        return np.arange(groups.size)
    codes, inverse = np.unique(groups, return_inverse=True)
    counts = allocate(np.bincount(inverse, minlength=codes.size), size, "proportional")
    return np.sort(draw_within(inverse, counts, rng))


def stratified_draw(groups: np.ndarray, sizes: np.ndarray, budget: int, allocation: str,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Allocate ``budget`` across groups, draw uniformly within each, and weight each row by
    group size / draws in the group (the inclusion weight of a stratified sample)."""
    counts = allocate(sizes, budget, allocation, rng)
    rows = draw_within(groups, counts, rng)
    return rows, sizes[groups[rows]] / counts[groups[rows]] * chance_scale(sizes, counts, allocation)


def chance_scale(sizes: np.ndarray, counts: np.ndarray, allocation: str) -> float:
    """What a drawn group's weights are scaled by when chance decided which groups got a draw at all.

    With ``"equal"`` allocation and fewer draws than non-empty groups, ``allocate``
    gives one draw each to ``budget`` of the ``G`` groups at random: a group is in
    the sample with the chance ``budget / G``, so its weights (summing to its
    size) are scaled by ``G / budget`` -- the Horvitz-Thompson weight -- and
    weighted totals estimate the full data's again (unscaled, they summed to the
    drawn groups' sizes only). The scale is the same for every drawn group:
    ratios such as weighted means are unchanged. 1 whenever every non-empty
    group got a draw.
    """
    open_ = sizes > 0
    if allocation != "equal" or counts[open_].min(initial=1) > 0:
        return 1.0
    return float(open_.sum() / counts.sum())


def post_stratified_weights(rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Weight of a row = items of its group / sampled rows of its group.

    For samplers that are not probability samples (VAS, EB tree, Algorithm 1),
    this makes weighted counts per group (predicted class, cluster) exact and
    weighted means a per-group ratio estimate.
    """
    n_groups = int(groups.max()) + 1
    total = np.bincount(groups, minlength=n_groups)
    taken = np.bincount(groups[rows], minlength=n_groups)
    return total[groups[rows]] / taken[groups[rows]]
