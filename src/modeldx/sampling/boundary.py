"""Algorithm 1 of Mehta et al.: per cluster, take the boundary end and the exemplar end.

Shared by the latent GMM (unsupervised) and latent SVM (supervised) samplers,
which differ only in how they assign items to groups and score P(A | x).
"""

from __future__ import annotations

import numpy as np

from modeldx.sampling.base import Sample, allocate, post_stratified_weights


def likelihood_ratio(p: np.ndarray) -> np.ndarray:
    """P(A|x) / P(not A|x), finite even where P(A|x) is 1."""
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return p / (1 - p)


def boundary_and_exemplars(groups: np.ndarray, ratio: np.ndarray, budget: int, j: float,
                           allocation: str, rng: np.random.Generator,
                           tie_jitter: bool = True) -> Sample:
    """Algorithm 1: in every group, sorted by likelihood ratio, a share ``j`` of the group's
    budget from the low end (boundary and outliers) and ``1 - j`` from the high end (exemplars).

    The budget is split across groups by ``allocation`` ("proportional" to group
    size, or "equal"). Ties in the ratio (common for confident items, whose
    probability rounds to 1) are broken at random with ``rng``, so exemplars are
    not always the lowest item ids.
    """
    sizes = np.bincount(groups)
    counts = allocate(sizes, budget, allocation, rng)
    rows = []
    noise = rng.random(groups.size) if tie_jitter else np.arange(groups.size)
    for g in np.flatnonzero(counts):
        members = np.flatnonzero(groups == g)
        order = members[np.lexsort((noise[members], ratio[members]))]  # ascending ratio
        low = int(round(counts[g] * j))
        high = int(counts[g]) - low
        take = np.concatenate([order[:low], order[order.size - high:] if high else order[:0]])
        rows.append(take)
    rows = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    return Sample(rows, post_stratified_weights(rows, groups),
                     {"groups": int((sizes > 0).sum()), "j": j})
