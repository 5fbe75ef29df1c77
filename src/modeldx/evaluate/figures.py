"""Figures of an evaluation: the paper's Figure 1 (precision vs sample fraction, one line per sampler)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from modeldx.errors import InvalidParameterError

LABELS = {"precision@k": "precision of top-k", "js_divergence": "Jensen–Shannon divergence",
          "js_divergence_errors": "JS divergence, off-diagonal cells", "jaccard_dead": "Jaccard of dead sets",
          "confidence": "mean confidence (estimated precision)", "brier": "Brier score",
          "estimated": "share of answers with a confidence"}


def plot_metric(summary: pd.DataFrame, query: str, metric: str, path: str | Path, *,
                title: str | None = None) -> Path:
    """One line per sampler with its 95% t-interval band across seeds, fractions on a log axis."""
    data = summary[(summary["query"] == query) & (summary["metric"] == metric)]
    if data.empty:
        raise InvalidParameterError(f"the summary has no rows for query {query!r} and metric {metric!r}")
    fig, ax = new_figure((7, 4.5))
    order = data.groupby("method")["mean"].mean().sort_values(ascending=False).index
    for method in order:
        d = data[data.method == method].sort_values("fraction")
        line, = ax.plot(d.fraction * 100, d["mean"], marker="o", ms=4, label=method)
        ax.fill_between(d.fraction * 100, d["low"], d["high"], color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    fractions = sorted(data.fraction.unique())
    ax.set_xticks([f * 100 for f in fractions], [f"{f * 100:g}%" for f in fractions])
    ax.minorticks_off()
    ax.set_xlabel("sample size (% of all items)")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_title(title or f"{query}: {LABELS.get(metric, metric)} vs sample size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return save(fig, path)


def new_figure(size: tuple[float, float], dpi: int = 120):
    """A figure and its axes that pyplot never sees: no backend is chosen or switched, no figure is
    left open in the user's session (a notebook keeps its own backend)."""
    fig = Figure(figsize=size, dpi=dpi)
    return fig, fig.subplots()


def save(fig: Figure, path: str | Path) -> Path:
    """Lay out and write a figure (rendered by Agg for files, whatever the user's backend)."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
