"""Activation aggregates by class: mean, variance and quantiles of every neuron."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, Satisfies, check_params
from modeldx.engine.local import run_reduction
from modeldx.queries._common import answer, resolve_layers, subset_for
from modeldx.queries.profile import ClassHistograms, ColumnRange
from modeldx.queries.registry import register


def _hist_quantiles(hist: np.ndarray, lo: np.ndarray, width: np.ndarray, qs,
                    at_lo: np.ndarray) -> np.ndarray:
    """Quantiles from (classes, neurons, bins) histograms, linear within a bin.

    ``at_lo`` is the weight of values equal to the minimum: a quantile that falls
    within that atom is the minimum itself, exactly.
    """
    bins = hist.shape[-1]
    cum = np.cumsum(hist, axis=-1)
    total = cum[..., -1:]
    out = np.full((len(qs), *hist.shape[:2]), np.nan)
    for i, q in enumerate(qs):
        target = q * total
        idx = np.minimum((cum < target).sum(axis=-1), bins - 1)
        before = np.take_along_axis(cum, idx[..., None], -1)[..., 0] - \
            np.take_along_axis(hist, idx[..., None], -1)[..., 0]
        inbin = np.take_along_axis(hist, idx[..., None], -1)[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(inbin > 0, (target[..., 0] - before) / inbin, 0.0)
        value = lo + (idx + np.clip(frac, 0, 1)) * width / bins
        value = np.where(target[..., 0] <= at_lo, lo, value)
        out[i] = np.where(total[..., 0] > 0, value, np.nan)
    return out


@register("activation-aggregates", example={"bins": 64})
def activation_aggregates(store, *, layer: str, quantiles=(0.25, 0.5, 0.75), bins: int = 4096,
                          items=None, weights=None, progress: bool = False, engine=None) -> pd.DataFrame:
    """Mean, variance and quantiles of each neuron of ``layer`` for the items of each true class.

    Means and variances are exact (weighted by the subset's inclusion weights).
    Quantiles follow the inverted-CDF definition (the smallest value whose
    weighted CDF reaches q; NumPy's ``method="inverted_cdf"``), which is the one
    that carries over to weighted samples. They stream in bounded memory through
    a ``bins``-bin histogram per (class, neuron) over the neuron's range, so each
    is within one bin width of the exact quantile; the ``quantile_error`` column
    gives that bound. Values equal to the minimum (a ReLU's zeros) are counted
    apart, so a quantile that falls on them is exact.

    Returns
    -------
    DataFrame
        ``label, neuron, n_items, weight, mean, var, q<..>..., quantile_error``.

    Examples
    --------
    >>> activation_aggregates(store, layer="act4", quantiles=[0.5, 0.9])  # doctest: +SKIP
    """
    check_params("activation_aggregates", {"bins": bins, "quantiles": quantiles},
                 {"bins": Interval(int, 2, 1_000_000),
                  "quantiles": Satisfies(lambda q: len(q) > 0 and all(0 <= float(v) <= 1 for v in q),
                                         "a non-empty list of numbers in [0, 1]")})
    resolve_layers(store, layer)
    name = f"acts/{layer}"
    cols = np.arange(store.neurons(layer))
    subset = subset_for(store, items, weights)
    found = run_reduction(store, ColumnRange(name, cols), subset, engine=engine)
    lo, hi = (np.zeros(cols.size), np.ones(cols.size)) if found is None else found
    ncls = store.manifest.num_classes
    red = ClassHistograms(name, cols, lo, hi, bins, ncls, moments=True)
    state = run_reduction(store, red, subset, engine=engine, progress=progress)
    w = state["w"][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = state["s1"] / w
        var = np.maximum(state["s2"] / w - mean**2, 0.0)
    constant = (hi - lo) <= 0
    qv = _hist_quantiles(state["hist"], red.lo, np.where(constant, 0.0, red.width),
                         [float(q) for q in quantiles], state["at_lo"])
    frame = pd.DataFrame({
        "label": np.repeat(np.arange(ncls), cols.size), "neuron": np.tile(cols, ncls),
        "n_items": np.repeat(state["n"], cols.size), "weight": np.repeat(state["w"], cols.size),
        "mean": mean.ravel(), "var": var.ravel(),
    })
    for q, values in zip(quantiles, qv, strict=True):
        frame[f"q{float(q):g}"] = values.ravel()
    frame["quantile_error"] = np.tile(np.where(constant, 0.0, red.width / bins), ncls)
    frame = frame[frame["n_items"] > 0]
    return answer(frame, "activation-aggregates", store, subset, layer=layer,
                  quantiles=[float(q) for q in quantiles], bins=bins)
