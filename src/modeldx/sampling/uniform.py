"""Uniform random sampling: the baseline every other sampler must beat."""

from __future__ import annotations

import numpy as np

from modeldx.sampling.base import Sample, Sampler, register


@register
class UniformSampler(Sampler):
    """Every item equally likely; each drawn item stands for ``n_items / budget`` items."""

    name = "uniform"

    def _fit(self, latent, pred, labels) -> None:
        """Nothing to learn: uniform draws need only the number of items."""

    def _select(self, budget: int, rng: np.random.Generator) -> Sample:
        rows = rng.choice(self.n_items_, size=budget, replace=False)
        return Sample(rows, np.full(budget, self.n_items_ / budget))
