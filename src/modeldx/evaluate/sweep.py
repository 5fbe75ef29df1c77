"""Sweep samplers x fractions x seeds and score every approximate answer against the exact one."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from tqdm.auto import tqdm

from modeldx._params import Interval, Satisfies, check_params
from modeldx.errors import InvalidParameterError
from modeldx.evaluate.workload import workload
from modeldx.sampling import Sample, available, get
from modeldx.sampling.base import build

COLUMNS = ["method", "fraction", "seed", "query", "layer", "label", "correct", "metric", "value"]
PAPER_FRACTIONS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def sweep(store, methods: Sequence[str] | None = None, fractions: Sequence[float] = PAPER_FRACTIONS,
          seeds: Sequence[int] = (0, 1, 2, 3, 4), *, queries: Sequence[str] = ("top-k-neurons",),
          k: int = 10, params: dict[str, dict] | None = None, progress: bool = True) -> pd.DataFrame:
    """Score each sampler's answers against the exact answers of a full store.

    A sample's answer is the query run on the full store restricted to the
    sample's items with its weights — exactly what capturing only the sample
    would give (a test checks that equivalence), without capturing again.

    Returns
    -------
    DataFrame
        Long form, one row per (method, fraction, seed, query, group, metric):
        ``method, fraction, seed, query, layer, label, correct, metric, value``;
        plus rows with ``query="sampling"`` giving the sample's ``items`` and
        the sampler's ``seconds``.

    Examples
    --------
    >>> results = sweep(store, ["uniform", "latent-svm"], [0.01, 0.1], seeds=[0, 1])  # doctest: +SKIP
    """
    methods = list(methods or available())
    for m in methods:
        get(m)  # a clear error for an unknown method, before any work
    check_params("sweep", {"fractions": list(fractions), "k": k, "seeds": list(seeds)}, {
        "fractions": Satisfies(lambda f: len(f) > 0 and all(0 < float(x) <= 1 for x in f),
                               "a non-empty list of numbers in (0, 1]"),
        "k": Interval(int, 1, None),
        "seeds": Satisfies(lambda s: len(s) > 0 and all(isinstance(x, int) and x >= 0 for x in s),
                           "a non-empty list of non-negative ints")})
    known = workload()
    unknown = [q for q in queries if q not in known]
    if unknown:
        raise InvalidParameterError(f"queries {unknown} cannot be evaluated; choose from {list(known)}")
    store.require_complete()
    if not store.layers:
        raise InvalidParameterError(
            f"the store {store.path} holds no layers; evaluation needs an exact capture of every item")
    params = params or {}
    items = store.items()
    latent = store.read("latent")
    pred, labels, ids = items.pred.to_numpy(), items.label.to_numpy(), items.item_id.to_numpy()
    exact = {q: known[q].run_exact(store, k) for q in queries}
    rows: list[tuple] = []
    total = len(methods) * len(seeds) * len(fractions)
    with tqdm(total=total, desc="evaluate", unit="sample", disable=not progress) as bar:
        for method in methods:
            cls = get(method)
            for seed in seeds:
                start = time.perf_counter()
                sampler = build(method, seed=seed, **params.get(method, {})).fit(
                    latent, pred, labels if cls.supervised else None)
                fit_seconds = time.perf_counter() - start
                for fraction in fractions:
                    bar.set_postfix(method=method, fraction=fraction, seed=seed)
                    start = time.perf_counter()
                    sel = sampler.select(float(fraction))
                    seconds = fit_seconds + time.perf_counter() - start
                    sample = Sample(ids[sel.rows], sel.weights,
                                    {**sel.info, "sample": f"{method}-{fraction:g}-s{seed}"}, rows=sel.rows)
                    key = (method, float(fraction), seed)
                    rows.append((*key, "sampling", "", -1, None, "items", float(sample.size)))
                    rows.append((*key, "sampling", "", -1, None, "seconds", seconds))
                    for q in queries:
                        approx = known[q].run(store, sample, k)
                        for layer, label, ok, metric, value in known[q].compare(exact[q], approx):
                            rows.append((*key, q, layer, label, ok, metric, value))
                    bar.update()
    return pd.DataFrame(rows, columns=COLUMNS)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Average over groups within each run, then mean and a 95% interval across seeds.

    Returns ``method, fraction, query, metric, mean, low, high, runs``; the
    interval is the t-interval over seeds, mean ± t(0.975, runs − 1) standard
    errors (2.78 for 5 seeds, not the normal 1.96, which is too narrow for so few
    runs). A single run has no interval (``low`` and ``high`` are NaN): its
    spread is unknown, not zero. The figures' bands show the interval.
    """
    per_run = (results.groupby(["method", "fraction", "seed", "query", "metric"], dropna=False)["value"]
               .mean().reset_index())
    agg = per_run.groupby(["method", "fraction", "query", "metric"])["value"].agg(["mean", "std", "count"])
    agg = agg.reset_index().rename(columns={"count": "runs"})
    t = stats.t.ppf(0.975, np.maximum(agg["runs"] - 1, 1))
    half = t * agg["std"] / np.sqrt(agg["runs"])  # std is NaN for one run: so is its interval
    agg["low"], agg["high"] = agg["mean"] - half, agg["mean"] + half
    return agg.drop(columns="std")[["method", "fraction", "query", "metric", "mean", "low", "high", "runs"]]


# metrics where a smaller value is the better answer (the rest: larger is better)
LOWER_IS_BETTER = ("js_divergence", "js_divergence_errors", "brier", "seconds")


def sampler_table(summary: pd.DataFrame, query: str, metric: str) -> pd.DataFrame:
    """Mean of ``metric`` per sampler (rows, best first) and fraction (columns), from :func:`summarize`."""
    d = summary[(summary["query"] == query) & (summary["metric"] == metric)]
    wide = d.pivot(index="method", columns="fraction", values="mean")
    return wide.loc[wide.mean(axis=1).sort_values(ascending=metric in LOWER_IS_BETTER).index]
