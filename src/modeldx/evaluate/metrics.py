"""Metrics comparing an approximate answer with the exact one."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def precision_at_k(exact: Sequence, approx: Sequence) -> float:
    """Share of the exact top-k that the approximate top-k contains (the paper's metric).

    An approximate answer that is missing (the sample held no item of the group)
    scores 0: the sample cannot answer the question.
    """
    if len(exact) == 0:
        return float("nan")
    return len(set(exact) & set(approx)) / len(exact)


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) between two non-negative histograms."""
    p = np.asarray(p, dtype=np.float64).ravel()
    q = np.asarray(q, dtype=np.float64).ravel()
    if p.sum() <= 0 or q.sum() <= 0:
        return 1.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float((a[mask] * np.log2(a[mask] / b[mask])).sum())

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def jaccard(exact: set, approx: set) -> float:
    """|A ∩ B| / |A ∪ B|; 1 when both are empty."""
    union = exact | approx
    return len(exact & approx) / len(union) if union else 1.0
