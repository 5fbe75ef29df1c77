"""Visualization-aware sampling (VAS, Park, Cafarella & Mozafari, ICDE 2016) on the latent space."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.spatial import cKDTree
from sklearn.decomposition import PCA

from modeldx._params import Interval
from modeldx.sampling.base import Sample, Sampler, post_stratified_weights, register


@register
class VASSampler(Sampler):
    """The interchange algorithm: keep the sample whose points repel each other most evenly.

    With kernel κ(a, b) = exp(-‖a − b‖² / ε²), VAS minimises Σ_{i<j} κ(s_i, s_j)
    over samples of size K. Start from K random items; stream the others; add
    each new item t, then drop the member of S ∪ {t} of largest responsibility
    rsp(s) = Σ_{s'≠s} κ(s, s') counted with t in the sample (t itself may go), which
    is the drop that leaves the smallest objective. Responsibilities are kept incrementally, and
    only members within ``cutoff`` · ε of a changed point are touched, found
    through a grid hash of the sample (the spatial index; κ < 1e-4 beyond 3ε).

    Choices (reconstructed, all parameters): VAS runs in a ``dims``-dimensional
    PCA projection of the latent (2, the scatter-plot setting VAS was designed
    for); ε defaults to the median distance from an item to its (n / K)-th
    nearest neighbour, the spacing a K-point sample would have; one streaming
    pass over a random order. Weights are post-stratified by predicted class.
    """

    name = "vas"
    _limits = {"dims": Interval(int, 1, 3), "epsilon": [None, Interval(float, 0, None, "neither")],
               "cutoff": Interval(float, 1, 10)}

    def __init__(self, *, dims: int = 2, epsilon: float | None = None, cutoff: float = 3.0,
                 seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.dims = dims
        self.epsilon = epsilon
        self.cutoff = cutoff

    def _fit(self, latent, pred, labels) -> None:
        dims = min(self.dims, latent.shape[1], latent.shape[0])
        self.z_ = PCA(n_components=dims, random_state=self.seed).fit_transform(latent)
        self.pred_ = pred

    def _epsilon(self, budget: int, rng: np.random.Generator) -> float:
        if self.epsilon is not None:
            return float(self.epsilon)
        n = self.z_.shape[0]
        m = int(min(n - 1, max(1, round(n / budget))))
        probe = rng.choice(n, size=min(n, 2000), replace=False)
        dist, _ = cKDTree(self.z_).query(self.z_[probe], k=m + 1)
        eps = float(np.median(dist[:, -1]))
        return eps if eps > 0 else 1.0

    def _select(self, budget: int, rng: np.random.Generator) -> Sample:
        z, n = self.z_, self.z_.shape[0]
        order = rng.permutation(n)
        if budget >= n:
            rows = order
        else:
            eps = self._epsilon(budget, rng)
            rows = _interchange(z, order, budget, eps, self.cutoff)
        return Sample(rows, post_stratified_weights(rows, self.pred_))


def _interchange(z: np.ndarray, order: np.ndarray, budget: int, eps: float, cutoff: float) -> np.ndarray:
    radius = cutoff * eps
    inv_eps2 = 1.0 / (eps * eps)
    dims = z.shape[1]
    offsets = np.stack(np.meshgrid(*[[-1, 0, 1]] * dims, indexing="ij"), -1).reshape(-1, dims)
    slots = order[:budget].copy()  # slot -> item row
    pos = z[slots].copy()
    cells = defaultdict(list)  # grid cell -> slots in it
    keys = [tuple(k) for k in np.floor(pos / radius).astype(np.int64)]
    for slot, key in enumerate(keys):
        cells[key].append(slot)

    def neighbours(point: np.ndarray) -> np.ndarray:
        base = np.floor(point / radius).astype(np.int64)
        found = [s for off in offsets for s in cells.get(tuple(base + off), ())]
        return np.fromiter(found, dtype=np.int64, count=len(found))

    # initial responsibilities, from all pairs within the radius
    rsp = np.zeros(budget)
    pairs = cKDTree(pos).query_pairs(radius, output_type="ndarray")
    if pairs.size:
        k = np.exp(-((pos[pairs[:, 0]] - pos[pairs[:, 1]]) ** 2).sum(1) * inv_eps2)
        np.add.at(rsp, pairs[:, 0], k)
        np.add.at(rsp, pairs[:, 1], k)

    for row in order[budget:]:
        point = z[row]
        near = neighbours(point)
        k_t = np.exp(-((pos[near] - point) ** 2).sum(1) * inv_eps2) if near.size else np.zeros(0)
        rsp_t = float(k_t.sum())
        # t joins, its kernel adding to its neighbours' responsibilities; then the member of
        # S ∪ {t} with the largest responsibility leaves — t itself when it is the worst
        rsp[near] += k_t
        worst = int(np.argmax(rsp))
        if rsp_t >= rsp[worst]:
            rsp[near] -= k_t  # t leaves again: the sample is unchanged
            continue
        wnear = neighbours(pos[worst])
        wnear = wnear[wnear != worst]
        if wnear.size:
            rsp[wnear] -= np.exp(-((pos[wnear] - pos[worst]) ** 2).sum(1) * inv_eps2)
        k_tw = np.exp(-((pos[worst] - point) ** 2).sum() * inv_eps2)
        cells[tuple(np.floor(pos[worst] / radius).astype(np.int64))].remove(worst)
        slots[worst] = row
        pos[worst] = point
        rsp[worst] = rsp_t - (k_tw if worst in set(near.tolist()) else 0.0)
        cells[tuple(np.floor(point / radius).astype(np.int64))].append(worst)
    return slots
