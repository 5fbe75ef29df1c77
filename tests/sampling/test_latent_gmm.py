"""The latent GMM sampler's fit settings: subsample, EM iterations, tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.sampling.latent_gmm import LatentGMMSampler


def _blobs(n: int = 3000):
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, n)
    return rng.normal(size=(n, 6)) + pred[:, None] * 5.0, pred


def test_max_iter_bounds_em_and_every_item_is_scored():
    latent, pred = _blobs()
    sampler = LatentGMMSampler(fit_items=500, max_iter=2, seed=0).fit(latent, pred)
    assert sampler.n_iter_ <= 2 and sampler.n_fit_items_ == 500 and sampler.ratio_.shape == (3000,)
    assert sampler.select(0.05).rows.size == 150


def test_well_separated_blobs_are_found_from_a_small_subsample():
    latent, pred = _blobs()
    sampler = LatentGMMSampler(fit_items=300, seed=0).fit(latent, pred)
    # one component per blob: the clustering agrees with pred up to renaming
    pairs = {(g, p) for g, p in zip(sampler.groups_, pred, strict=True)}
    assert len(pairs) == 3


@pytest.mark.parametrize("setting", [{"max_iter": 0}, {"tol": 0.0}])
def test_bad_fit_settings_are_named(setting):
    latent, pred = _blobs(100)
    with pytest.raises(InvalidParameterError, match=next(iter(setting))):
        LatentGMMSampler(**setting).fit(latent, pred)
