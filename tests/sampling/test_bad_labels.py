"""Predictions and labels a user passes to a sampler: class indices, said so when they are not, and
sparse class codes cost what their items cost (the confusion cells are the pairs that occur)."""

from __future__ import annotations

import numpy as np
import pytest

from modeldx.errors import InvalidLabelError
from modeldx.sampling.base import available, build

N = 300


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(N, 4))
    labels = rng.integers(0, 3, N)
    pred = np.where(rng.random(N) < 0.1, (labels + 1) % 3, labels)
    return latent, pred, labels


@pytest.mark.parametrize("name", ["stratified-cm", "latent-cm"])
@pytest.mark.parametrize("bad, why", [
    (lambda y: y - 1, "negative"),
    (lambda y: y + 0.5, "whole numbers"),
    (lambda y: np.where(y == 0, np.nan, y), "whole numbers"),
    (lambda y: y.astype(str), "integer"),
])
def test_labels_that_are_not_class_indices_are_refused_by_name(data, name, bad, why):
    latent, pred, labels = data
    with pytest.raises(InvalidLabelError, match=f"labels.*{why}"):
        build(name).fit(latent, pred, bad(labels))
    with pytest.raises(InvalidLabelError, match=f"pred.*{why}"):
        build(name).fit(latent, bad(pred), labels)


@pytest.mark.parametrize("name", [n for n in available() if n not in ("stratified-cm", "latent-cm")][:3])
def test_every_sampler_checks_its_predictions(data, name):
    latent, pred, labels = data
    with pytest.raises(InvalidLabelError, match="pred.*negative"):
        build(name).fit(latent, pred - 1, labels)


@pytest.mark.parametrize("name", ["stratified-cm", "latent-cm"])
def test_sparse_class_codes_cost_no_more_than_dense_ones(data, name):
    latent, pred, labels = data
    big = 10 ** 7  # 10^14 cells if every (label, pred) pair got a slot: a MemoryError before
    dense = build(name, seed=3).fit(latent, pred, labels).select(0.1)
    sparse = build(name, seed=3).fit(latent, pred * big, labels * big).select(0.1)
    np.testing.assert_array_equal(sparse.rows, dense.rows)
    np.testing.assert_allclose(sparse.weights, dense.weights)
    assert sparse.info["strata"] == dense.info["strata"]
    # integral floats (labels read from a CSV) are class indices too
    floats = build(name, seed=3).fit(latent, pred.astype(float), labels.astype(float)).select(0.1)
    np.testing.assert_array_equal(floats.rows, dense.rows)


@pytest.mark.parametrize("name", ["stratified-cm", "latent-cm"])
def test_a_budget_below_the_number_of_cells_still_estimates_totals(name):
    """10 draws over ~100 confusion cells: each sampled cell stood for its own size only, so the weights
    summed to ~10 % of the items. Which cells get a draw is random: each weighs size · cells / budget
    (Horvitz-Thompson), so weighted totals are unbiased again; within a group the weights keep their ratios
    (weighted means unchanged)."""
    rng = np.random.default_rng(1)
    n = 1000
    latent = rng.normal(size=(n, 4))
    labels, pred = rng.integers(0, 10, n), rng.integers(0, 10, n)
    sums = [build(name, seed=s).fit(latent, pred, labels).select(0.01).weights.sum() for s in range(200)]
    assert np.mean(sums) == pytest.approx(n, rel=0.05)
    # with a draw in every cell the weights add up to the items exactly, as before
    full = build(name, seed=0).fit(latent, pred, labels).select(0.5)
    assert full.weights.sum() == pytest.approx(n)
