"""Stratified sampling by confusion-matrix cell (true class x predicted class)."""

from __future__ import annotations

import numpy as np

from modeldx._params import OneOf
from modeldx.sampling.base import Sample, Sampler, confusion_cells, register, stratified_draw


@register
class ConfusionStratifiedSampler(Sampler):
    """Strata are the cells of the confusion matrix; uniform draws within each.

    ``allocation="equal"`` (default) gives every non-empty cell the same number
    of draws, up to its size, with what small cells cannot take spread over the
    others — so rare mistakes (class 5 predicted as 3) are represented, as
    BlinkDB's stratified samples cap common groups. ``"proportional"`` draws in
    proportion to cell size. Inclusion weight = cell size / draws in the cell.
    Supervised: it needs the true labels.
    """

    name = "stratified-cm"
    supervised = True
    _limits = {"allocation": OneOf("equal", "proportional")}

    def __init__(self, *, allocation: str = "equal", seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.allocation = allocation

    def _fit(self, latent, pred, labels) -> None:
        self.cells_, self.sizes_ = confusion_cells(labels, pred)

    def _select(self, budget: int, rng: np.random.Generator) -> Sample:
        rows, weights = stratified_draw(self.cells_, self.sizes_, budget, self.allocation, rng)
        return Sample(rows, weights, {"strata": int((self.sizes_ > 0).sum())})
