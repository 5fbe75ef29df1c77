"""In-memory NumPy answers that the streamed queries must reproduce."""

import numpy as np


def top_k(values: np.ndarray, k: int) -> list[int]:
    return np.lexsort((np.arange(values.size), -values))[:k].tolist()


def headline(acts: np.ndarray, labels: np.ndarray, correct: np.ndarray, k: int, by: str = "max",
             weights: np.ndarray | None = None) -> dict:
    weights = np.ones(len(labels)) if weights is None else weights
    out = {}
    for label in np.unique(labels):
        for ok in (False, True):
            mask = (labels == label) & (correct == ok)
            if not mask.any():
                continue
            if by == "max":
                values = acts[mask].max(0)
            else:
                w = weights[mask]
                values = (w[:, None] * acts[mask].astype(np.float64)).sum(0) / w.sum()
            out[(int(label), ok)] = top_k(values, k)
    return out
