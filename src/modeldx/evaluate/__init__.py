"""Scoring approximate (sampled) answers against exact ones: sweeps, summaries, figures, reports."""

from modeldx.evaluate.metrics import jaccard, js_divergence, precision_at_k
from modeldx.evaluate.report import write_report
from modeldx.evaluate.sweep import COLUMNS, PAPER_FRACTIONS, summarize, sweep
from modeldx.evaluate.workload import workload

__all__ = ["jaccard", "js_divergence", "precision_at_k", "write_report", "COLUMNS", "PAPER_FRACTIONS",
           "summarize", "sweep", "workload"]
