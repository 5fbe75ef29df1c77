"""Blue-noise polyline sampling: the distance, the dart throwing and the two measures."""

import numpy as np
import pytest
import torch

from modeldx.dynamics import (
    blue_noise_sample,
    clutter,
    outliers_kept,
    polyline_distance,
    true_outliers,
)
from modeldx.errors import InvalidParameterError


def bundles_with_outliers(n=3000, t=60, share=0.01, seed=0):
    """Eight sine bundles; ``share`` of the rows leave their bundle by a ramp at a random time."""
    rng = np.random.default_rng(seed)
    time_ = np.linspace(0, 1, t)
    params = rng.uniform([0.5, 0, 0.5], [2, 1, 2], (8, 3))
    centers = np.stack([a * np.sin(2 * np.pi * (f * time_ + p)) for f, p, a in params])
    x = centers[rng.integers(0, 8, n)] + rng.normal(0, 0.05, (n, t)) + rng.normal(0, 0.1, (n, 1))
    planted = rng.choice(n, int(share * n), replace=False)
    onset = rng.uniform(0.1, 0.9, (len(planted), 1))
    amp = rng.choice([-1, 1], (len(planted), 1)) * rng.uniform(1, 3, (len(planted), 1))
    x[planted] += amp * np.clip((time_ - onset) / 0.1, 0, 1)
    return x.astype(np.float32), planted


def test_distance_hand_computed():
    a = np.array([0.0, 1.0, 2.0])
    b = np.array([1.0, 1.0, 5.0])
    # segments: (|0-1| + |1-1|)/2 = 0.5 and (|1-1| + |2-5|)/2 = 1.5
    assert float(polyline_distance(a, b)) == pytest.approx(2.0)
    assert float(polyline_distance(a, a)) == 0.0
    d = polyline_distance(np.stack([a, b]), np.stack([b, a, a + 1]))
    assert d.shape == (2, 3)
    np.testing.assert_allclose(d.numpy(), [[2.0, 0.0, 2.0], [0.0, 2.0, 2.0]])
    assert float(polyline_distance([0.0, 0.0], [2.0, -2.0])) == pytest.approx(2.0)


def test_distance_errors():
    with pytest.raises(InvalidParameterError, match="same snapshots"):
        polyline_distance(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InvalidParameterError, match="at least 2 snapshots"):
        polyline_distance(np.zeros((2, 1)), np.zeros((2, 1)))


def test_exact_m_distinct_and_deterministic():
    x, _ = bundles_with_outliers(n=1000)
    for m in (1, 37, 500, 1000):
        c = blue_noise_sample(x, m)
        assert len(c) == m and len(np.unique(c)) == m and c.min() >= 0 and c.max() < 1000
    np.testing.assert_array_equal(blue_noise_sample(x, 50, seed=3), blue_noise_sample(x, 50, seed=3))
    assert set(blue_noise_sample(x, 50, seed=3)) != set(blue_noise_sample(x, 50, seed=4))
    np.testing.assert_array_equal(blue_noise_sample(torch.as_tensor(x), 50), blue_noise_sample(x, 50))


def test_isolated_outlier_always_kept_and_bundle_thinned():
    rng = np.random.default_rng(1)
    bundle = rng.normal(0, 0.01, (400, 30))  # 400 near-identical series
    spread = rng.normal(0, 1, (20, 30)) * 5  # 20 series far from everything
    outlier = np.full((1, 30), 100.0)
    x = np.concatenate([bundle, spread, outlier])
    for seed in range(5):
        c = blue_noise_sample(x, 25, seed=seed)
        assert 420 in c
        assert (c < 400).sum() <= 4, "the bundle keeps a few representatives, not most places"
        u = np.random.default_rng(seed).choice(len(x), 25, replace=False)
        assert (c < 400).sum() < (u < 400).sum()


def test_identical_series_still_fill_m():
    x = np.zeros((50, 5))
    assert len(np.unique(blue_noise_sample(x, 20))) == 20


def test_non_finite_series_kept_first():
    x, _ = bundles_with_outliers(n=500)
    x[[3, 70]] = np.nan
    x[100, 5] = np.inf
    c = blue_noise_sample(x, 10)
    assert {3, 70, 100} <= set(c) and len(np.unique(c)) == 10
    assert len(blue_noise_sample(x, 2)) == 2 and set(blue_noise_sample(x, 2)) <= {3, 70, 100}
    assert np.isfinite(clutter(x, c)) and 0 <= outliers_kept(x, c) <= 1


@pytest.mark.parametrize("m", [0, 501, 2.5, True])
def test_bad_m(m):
    x, _ = bundles_with_outliers(n=500)
    with pytest.raises(InvalidParameterError, match="'m'"):
        blue_noise_sample(x, m)


@pytest.mark.parametrize("shape", [(10,), (10, 1), (2, 3, 4)])
def test_bad_shape(shape):
    with pytest.raises(InvalidParameterError, match=r"series x snapshots"):
        blue_noise_sample(np.zeros(shape), 1)


def test_measure_errors():
    x, _ = bundles_with_outliers(n=200)
    with pytest.raises(InvalidParameterError, match="'chosen'"):
        clutter(x, [0, 200])
    with pytest.raises(InvalidParameterError, match="'width'"):
        clutter(x, [0], width=1)
    with pytest.raises(InvalidParameterError, match="'share'"):
        outliers_kept(x, [0], share=0.0)


def test_clutter_hand_cases():
    flat = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert clutter(flat, [0, 1], width=10, height=5) == 0.0  # two lines on different rows
    assert clutter(flat, [0, 2], width=10, height=5) == 1.0  # the same line twice
    assert clutter(flat, [0], width=10, height=5) == 0.0


def test_true_outliers_are_the_planted_ones():
    x, planted = bundles_with_outliers(n=2000)
    assert np.isin(true_outliers(x), planted).mean() >= 0.9


def test_beats_uniform_on_planted_outliers():
    x, _ = bundles_with_outliers(n=3000, share=0.01)
    m = 120
    c = blue_noise_sample(x, m)
    kept, clut = outliers_kept(x, c), clutter(x, c, width=400, height=150)
    for seed in range(3):
        u = np.random.default_rng(seed).choice(len(x), m, replace=False)
        assert kept > outliers_kept(x, u) + 0.5
        assert clut < clutter(x, u, width=400, height=150)
    assert kept >= 0.9


def test_identical_series_have_no_outlier():
    x = np.ones((50, 8))
    assert len(true_outliers(x)) == 0
    x[3] = 5.0  # one series apart: it, and only it
    assert true_outliers(x).tolist() == [3]
