"""The latent SVM sampler: its fallbacks and its fit on a subsample."""

from __future__ import annotations

import numpy as np

from modeldx.sampling.base import stratified_rows
from modeldx.sampling.latent_svm import LatentSVMSampler


def _two_blobs(n: int = 200, lonely: int = 1):
    rng = np.random.default_rng(0)
    labels = np.zeros(n, dtype=np.int64)
    labels[:lonely] = 1
    latent = rng.normal(size=(n, 5)) + labels[:, None] * 4.0
    return latent, labels


def test_two_classes_one_with_a_single_item_fall_back_to_the_raw_margins():
    # one item of class 1: too few to calibrate, and a two-class LinearSVC's margins are 1-d
    latent, labels = _two_blobs()
    sampler = LatentSVMSampler(seed=0).fit(latent, labels, labels)
    assert set(np.unique(sampler.groups_)) <= {0, 1}
    assert np.isfinite(sampler.ratio_).all()
    sel = sampler.select(0.1)
    assert sel.rows.size == 20 and np.unique(sel.rows).size == 20


def test_many_classes_with_a_single_item_class_still_fit():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), [100, 100, 1])
    latent = rng.normal(size=(201, 4)) + labels[:, None] * 3.0
    sampler = LatentSVMSampler(seed=0).fit(latent, labels, labels)
    assert sampler.select(0.2).rows.size == 40


def test_fit_items_bounds_the_svm_fit_but_every_item_is_scored():
    latent, labels = _two_blobs(n=3000, lonely=1500)
    sampler = LatentSVMSampler(fit_items=500, seed=0).fit(latent, labels, labels)
    assert sampler.ratio_.shape == (3000,) and sampler.n_fit_items_ == 500
    # the blobs are 4 standard deviations apart: a fit on 500 items separates all 3000
    assert (sampler.groups_ == labels).mean() > 0.97


def test_the_fit_subsample_keeps_each_class_share():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [9000, 900, 100])
    rows = stratified_rows(labels, 1000, rng)
    assert rows.size == 1000 and np.unique(rows).size == 1000
    np.testing.assert_array_equal(np.bincount(labels[rows]), [900, 90, 10])
    np.testing.assert_array_equal(stratified_rows(labels[:50], 100, rng), np.arange(50))
