"""Is a sampled answer's confidence honest? Calibration of top-k confidences against exact answers.

A confidence of 0.7 is calibrated if 70% of the neurons given 0.7 are in the
exact top k. Groups whose answer is every neuron of a layer (k at least the
layer's width) are certain and left out. Each evaluated sample contributes, per group, its mean confidence
and its precision@k (a group's mean confidence estimates its precision), and,
per sample, reliability-bin totals: how many returned neurons fell in each
confidence bin, their summed confidence and how many were right. Bins are summed
over samples for the reliability diagram; the expected calibration error (ECE)
is the bin-size-weighted mean gap between confidence and accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from modeldx.evaluate.metrics import precision_at_k

BINS = 10


def _bin(metric: str) -> tuple[int, str] | None:
    """``"bin3:hits"`` -> (3, "hits"); any other metric -> None."""
    if not metric.startswith("bin") or ":" not in metric:
        return None
    index, what = metric[3:].split(":", 1)
    return int(index), what


def is_bin_metric(metric: str) -> bool:
    return _bin(metric) is not None


def compare_confidence(exact: pd.DataFrame, approx: pd.DataFrame) -> list:
    """Rows scoring a ``top_k_confidence`` answer against the exact ``top_k_neurons`` answer."""
    k = exact.attrs.get("params", {}).get("k")
    # a group whose answer is every neuron of its layer (k >= neurons) is certain: leave it out
    truth = {key: g.sort_values("rank").neuron.tolist()
             for key, g in exact.groupby(["layer", "label", "correct"]) if k is None or len(g) >= k}
    rows, conf_all, hit_all = [], [], []
    answered = {key: g for key, g in approx.groupby(["layer", "label", "correct"])}
    for (layer, label, ok), neurons in truth.items():
        g = answered.get((layer, label, ok))
        if g is None:
            continue  # no item of the group in the sample: no answer, so no confidence to check
        hits = g.neuron.isin(neurons).to_numpy()
        conf = g.confidence.to_numpy()
        rows.append((layer, int(label), bool(ok), "precision@k", precision_at_k(neurons, g.neuron.tolist())))
        rows.append((layer, int(label), bool(ok), "confidence", float(np.mean(conf))))
        known = ~np.isnan(conf)
        conf_all.append(conf[known])
        hit_all.append(hits[known])
        rows.append((layer, int(label), bool(ok), "estimated", float(known.mean())))
    conf, hit = np.concatenate(conf_all or [[]]), np.concatenate(hit_all or [[]]).astype(float)
    if conf.size:
        rows.append(("", -1, None, "brier", float(np.mean((conf - hit) ** 2))))
    which = np.minimum((conf * BINS).astype(int), BINS - 1)
    for b in range(BINS):
        m = which == b
        rows += [("", -1, None, f"bin{b}:n", float(m.sum())),
                 ("", -1, None, f"bin{b}:confidence", float(conf[m].sum())),
                 ("", -1, None, f"bin{b}:hits", float(hit[m].sum()))]
    return rows


def reliability(results: pd.DataFrame, query: str) -> pd.DataFrame:
    """Reliability bins of one evaluated confidence query, summed over every sample (per fraction too).

    Returns ``fraction, bin, n, confidence, accuracy`` with ``fraction = NaN``
    for the total over all fractions.
    """
    d = results[(results["query"] == query) & results["metric"].map(is_bin_metric)]
    if d.empty:
        return pd.DataFrame(columns=["fraction", "bin", "n", "confidence", "accuracy"])
    parts = d["metric"].map(_bin)
    d = d.assign(bin=[p[0] for p in parts], what=[p[1] for p in parts])
    frames = []
    for fraction, sub in [(np.nan, d), *d.groupby("fraction")]:
        wide = sub.pivot_table(index="bin", columns="what", values="value", aggfunc="sum")
        wide = wide[wide["n"] > 0]
        frames.append(pd.DataFrame({"fraction": fraction, "bin": wide.index, "n": wide["n"].to_numpy(),
                                    "confidence": (wide["confidence"] / wide["n"]).to_numpy(),
                                    "accuracy": (wide["hits"] / wide["n"]).to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def expected_calibration_error(bins: pd.DataFrame) -> float:
    """Bin-size-weighted mean |confidence - accuracy| of one set of bins."""
    if bins.empty:
        return float("nan")
    return float(np.average((bins.confidence - bins.accuracy).abs(), weights=bins.n))


def calibration_table(results: pd.DataFrame, query: str) -> pd.DataFrame:
    """Per fraction: ECE, Brier score, mean confidence vs mean precision@k, share estimated."""
    d = results[results["query"] == query]
    if d.empty:
        return pd.DataFrame()
    bins = reliability(results, query)
    rows = []
    for fraction, sub in d.groupby("fraction"):
        mean = sub.groupby("metric")["value"].mean()
        rows.append({"fraction": fraction,
                     "ece": expected_calibration_error(bins[bins.fraction == fraction]),
                     "brier": mean.get("brier", np.nan),
                     "mean confidence": mean.get("confidence", np.nan),
                     "mean precision@k": mean.get("precision@k", np.nan),
                     "estimated": mean.get("estimated", np.nan)})
    return pd.DataFrame(rows)


def plot_reliability(results: pd.DataFrame, queries: dict[str, str], path: str | Path) -> Path:
    """Reliability diagram: accuracy vs confidence per bin, one line per confidence scheme."""
    from modeldx.evaluate.figures import new_figure, save

    fig, ax = new_figure((5.2, 4.8))
    ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--", label="calibrated")
    for query, label in queries.items():
        bins = reliability(results, query)
        bins = bins[bins.fraction.isna()]
        if bins.empty:
            continue
        ece = expected_calibration_error(bins)
        ax.plot(bins.confidence, bins.accuracy, marker="o", ms=4, label=f"{label} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence that a returned neuron is in the exact top-k")
    ax.set_ylabel("share that are")
    ax.set_title("Calibration over every sampler, fraction and seed")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save(fig, path)
