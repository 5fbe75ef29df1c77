"""Write an evaluation to a folder: results.csv, summary.csv, figures and index.html."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from modeldx.evaluate.calibration import calibration_table, plot_reliability
from modeldx.evaluate.figures import LABELS, plot_metric
from modeldx.evaluate.sweep import LOWER_IS_BETTER, sampler_table, summarize

CONFIDENCE = {"top-k-confidence": "thinning", "top-k-confidence-bootstrap": "Poisson bootstrap"}


def print_sampler_table(console: Console, summary: pd.DataFrame, query: str, metric: str,
                        title: str | None = None) -> pd.DataFrame:
    """Print a sampler x fraction table of ``metric``, the best sampler of each fraction in green."""
    wide = sampler_table(summary, query, metric)
    if wide.empty:
        return wide
    best = (wide.min() if metric in LOWER_IS_BETTER else wide.max()).round(3)
    table = Table("sampler", *[f"{f * 100:g}%" for f in wide.columns], title=title or f"{query}: {metric}")
    for method, row in wide.iterrows():
        table.add_row(method, *[f"[bold green]{v:.3f}[/]" if round(v, 3) == best[f] else f"{v:.3f}"
                                for f, v in row.items()])
    console.print(table)
    return wide


def _table(summary: pd.DataFrame, query: str, metric: str, highlight: bool = True) -> str:
    wide = sampler_table(summary, query, metric)
    best = (wide.min() if metric in LOWER_IS_BETTER else wide.max()) if highlight else None
    head = "".join(f"<th>{f * 100:g}%</th>" for f in wide.columns)
    body = []
    for method, row in wide.iterrows():
        marks = ["best" if best is not None and v == best[f] else "" for f, v in row.items()]
        cells = "".join(f"<td class='{m}'>{v:.3f}</td>" for m, v in zip(marks, row, strict=True))
        body.append(f"<tr><th>{html.escape(str(method))}</th>{cells}</tr>")
    return f"<table><tr><th>sampler</th>{head}</tr>{''.join(body)}</table>"


def _frame(frame: pd.DataFrame, formats: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td>{formats.get(c, '{}').format(v)}</td>" for c, v in row.items())
                   + "</tr>" for _, row in frame.iterrows())
    return f"<table><tr>{head}</tr>{body}</table>"


def _calibration(results: pd.DataFrame, summary: pd.DataFrame, out: Path, paths: dict) -> str:
    """Reliability diagram and tables for the confidence of sampled top-k answers."""
    present = {q: label for q, label in CONFIDENCE.items() if (results["query"] == q).any()}
    paths["reliability"] = plot_reliability(results, present, out / "reliability.png")
    parts = ["<h2>How far to trust a sampled answer</h2>",
             "<p>Each sampled top-k answer carries, per neuron, a confidence that the neuron is in the "
             "exact top k (<code>modeldx.queries.top_k_confidence</code>). <b>Thinning</b> re-samples the "
             "sample at the rate the sample was drawn from all items; the <b>Poisson bootstrap</b> "
             "resamples the sample as if it were everything. Calibrated means: of the neurons given "
             "confidence 0.7, 70% are in the exact top k. ECE: bin-size-weighted mean gap between "
             "confidence and that share.</p>",
             f"<img src='{paths['reliability'].name}' alt='reliability diagram'>"]
    formats = {"fraction": "{:.1%}", "ece": "{:.3f}", "brier": "{:.3f}", "mean confidence": "{:.3f}",
               "mean precision@k": "{:.3f}", "estimated": "{:.1%}"}
    for query, label in present.items():
        table = calibration_table(results, query)
        table.to_csv(out / f"calibration-{label.split()[-1].lower()}.csv", index=False)
        parts.append(f"<h3>{html.escape(label)}, per sample size</h3>{_frame(table, formats)}")
        confidence = _table(summary, query, "confidence", highlight=False)
        parts.append(f"<h3>{html.escape(label)}: mean confidence per sampler "
                     f"(compare with its precision@k)</h3>{confidence}")
    return "".join(parts)


def write_report(results: pd.DataFrame, out: str | Path, *, title: str = "modeldx sampling evaluation",
                 context: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the long results, a summary, one figure per (query, metric) and an HTML page."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    summary = summarize(results)
    summary.to_csv(out / "summary.csv", index=False)
    paths = {"results": out / "results.csv", "summary": out / "summary.csv"}
    sections = []
    plain = ~summary["query"].isin(["sampling", *CONFIDENCE])
    scored = summary[plain][["query", "metric"]].drop_duplicates()
    for query, metric in scored.itertuples(index=False):
        name = f"{query}-{metric}".replace("@", "at")
        fig = plot_metric(summary, query, metric, out / f"{name}.png")
        paths[name] = fig
        sections.append(f"<h2>{html.escape(query)} — {html.escape(LABELS.get(metric, metric))}</h2>"
                        f"<img src='{fig.name}' alt='{html.escape(name)}'>"
                        f"{_table(summary, query, metric)}")
    if summary["query"].isin(list(CONFIDENCE)).any():
        sections.append(_calibration(results, summary, out, paths))
    timing = summary[(summary["query"] == "sampling") & (summary["metric"] == "seconds")]
    if not timing.empty:
        sections.append("<h2>Sampler time (s, fit + select)</h2>" + _table(timing, "sampling", "seconds"))
    ctx = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                  for k, v in (context or {}).items())
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f4f4f4}}td.best{{font-weight:bold;background:#e8f4e8}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1><table>{ctx}</table>
<p>Each value is the mean over seeds of the metric averaged over all groups of a run; figures shade
a 95% t-interval across seeds (t with runs − 1 degrees of freedom).
Bold: the best sampler at that sample size. Raw rows: results.csv.</p>
{''.join(sections)}</body></html>"""
    (out / "index.html").write_text(page)
    paths["report"] = out / "index.html"
    return paths
