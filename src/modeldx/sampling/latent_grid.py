"""Simple latent-space sampling: reduce the latent to a few dimensions, grid it, draw per cell."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from modeldx._params import Interval, OneOf
from modeldx.sampling.base import Sample, Sampler, register, stratified_draw


@register
class LatentGridSampler(Sampler):
    """The paper's *simple latent space* baseline.

    The latent vectors are reduced to ``dims`` dimensions with PCA (5 in the
    paper), each dimension is cut into ``bins`` intervals at its quantiles (so
    every interval holds about as many items), and an equal number of items is
    drawn at random from every occupied cell — cells too small for their share
    give the rest to the others. Inclusion weight = cell size / draws in the cell.
    """

    name = "latent-grid"
    _limits = {"dims": Interval(int, 1, 64), "bins": Interval(int, 2, 64),
               "allocation": OneOf("equal", "proportional")}

    def __init__(self, *, dims: int = 5, bins: int = 3, allocation: str = "equal", seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.dims = dims
        self.bins = bins
        self.allocation = allocation

    def _fit(self, latent, pred, labels) -> None:
        dims = min(self.dims, latent.shape[1], latent.shape[0])
        z = PCA(n_components=dims, random_state=self.seed).fit_transform(latent)
        cell = np.zeros(latent.shape[0], dtype=np.int64)
        for d in range(dims):
            edges = np.quantile(z[:, d], np.linspace(0, 1, self.bins + 1)[1:-1])
            cell = cell * self.bins + np.searchsorted(edges, z[:, d], side="right")
        _, self.cells_ = np.unique(cell, return_inverse=True)
        self.sizes_ = np.bincount(self.cells_)

    def _select(self, budget: int, rng: np.random.Generator) -> Sample:
        rows, weights = stratified_draw(self.cells_, self.sizes_, budget, self.allocation, rng)
        return Sample(rows, weights, {"cells": int(self.sizes_.size)})
