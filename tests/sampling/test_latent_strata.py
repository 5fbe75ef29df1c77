"""latent-cm: confusion-cell strata, farthest-point picks within each cell."""

import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.sampling import get
from modeldx.sampling.latent_strata import LatentCellSampler, farthest_points


def test_farthest_points_takes_the_extremes_first_then_covers_evenly():
    z = np.linspace(0, 1, 101)[:, None].astype(np.float32)
    for seed in range(5):
        taken = farthest_points(z, 5, np.random.default_rng(seed))
        assert np.unique(taken).size == 5
        assert taken[1] == (0 if taken[0] > 50 else 100)  # the second pick: the end farthest from the start
    # from an end, five picks on a line are its even cover: 0, 25, 50, 75, 100
    runs = (farthest_points(z, 5, np.random.default_rng(s)) for s in range(50))
    ends = [t for t in runs if t[0] in (0, 100)]
    assert ends and sorted(ends[0].tolist()) == [0, 25, 50, 75, 100]


def test_farthest_points_never_repeats_a_row_even_among_duplicates():
    z = np.zeros((10, 3), dtype=np.float32)
    z[:2] = 1.0
    taken = farthest_points(z, 10, np.random.default_rng(0))
    assert sorted(taken.tolist()) == list(range(10))


@pytest.fixture(scope="module")
def latent(digits_store):
    items = digits_store.items()
    return digits_store.read("latent"), items.pred.to_numpy(), items.label.to_numpy()


def test_covers_every_confusion_cell_with_exact_cell_weights(latent):
    lat, pred, lab = latent
    sel = get("latent-cm")(seed=0).fit(lat, pred, lab).select(0.2)
    cells = set(zip(lab, pred, strict=True))
    assert set(zip(lab[sel.rows], pred[sel.rows], strict=True)) == cells
    for a, b in cells:
        mask = (lab[sel.rows] == a) & (pred[sel.rows] == b)
        assert sel.weights[mask].sum() == pytest.approx(((lab == a) & (pred == b)).sum())


def test_spread_picks_the_cells_outskirts_and_zero_spread_is_uniform_within_cells():
    rng = np.random.default_rng(0)
    lab = np.repeat([0, 1], 1000)
    pred = lab.copy()
    pred[::50] = 1 - pred[::50]  # 4 cells: two large, two of mistakes
    lat = rng.normal(size=(2000, 5)) + 4 * lab[:, None]
    far = get("latent-cm")(spread=1.0, dims=None, seed=0).fit(lat, pred, lab)
    flat = get("latent-cm")(spread=0.0, dims=None, seed=0).fit(lat, pred, lab)

    def distance_from_cell_mean(rows):
        centre = np.stack([lat[far.cells_ == c].mean(0) for c in far.cells_[rows]])
        return np.linalg.norm(lat[rows] - centre, axis=1)

    a, b = far.select(0.02), flat.select(0.02)
    assert np.median(distance_from_cell_mean(a.rows)) > 1.3 * np.median(distance_from_cell_mean(b.rows))
    assert np.bincount(far.cells_[a.rows]).tolist() == np.bincount(flat.cells_[b.rows]).tolist()
    assert a.info["spread"] == 1.0 and a.info["strata"] == 4


def test_settings_are_checked(latent):
    lat, pred, lab = latent
    with pytest.raises(InvalidParameterError, match="spread"):
        get("latent-cm")(spread=1.5).fit(lat, pred, lab)
    with pytest.raises(InvalidParameterError, match="labels"):
        get("latent-cm")().fit(lat, pred)


def test_picks_weigh_one_and_uniform_draws_stand_for_the_rest_of_their_cell(latent):
    lat, pred, lab = latent
    s = get("latent-cm")(spread=0.5, weighting="certainty", seed=0).fit(lat, pred, lab)
    sel = s.select(0.2)
    cells = s.cells_[sel.rows]
    for c in np.unique(cells):
        w = sel.weights[cells == c]
        size, count = s.sizes_[c], w.size
        far = int(round(count * 0.5))
        if far < count:
            rest = (size - far) / (count - far)
            assert np.sort(w).tolist() == pytest.approx([1.0] * far + [rest] * (count - far))
        assert w.sum() == pytest.approx(size)


def test_voronoi_weights_count_the_cell_members_nearest_to_each_sampled_item(latent):
    lat, pred, lab = latent
    s = get("latent-cm")(seed=0, dims=None).fit(lat, pred, lab)
    assert s.weighting == "voronoi" and s.spread == 0.6
    sel = s.select(0.1)
    cells = s.cells_[sel.rows]
    z = s.z_.astype(np.float64)
    for c in np.unique(cells):
        members = np.flatnonzero(s.cells_ == c)
        chosen = sel.rows[cells == c]
        d = ((z[members][:, None] - z[chosen][None]) ** 2).sum(-1)
        owner = d.argmin(1)
        owner[np.searchsorted(members, chosen)] = np.arange(chosen.size)
        assert sel.weights[cells == c].tolist() == pytest.approx(np.bincount(owner, minlength=chosen.size))
    assert (sel.weights >= 1).all()


def test_the_latents_scale_does_not_matter():
    """Latents of magnitude 1e20 overflowed the float32 squared distances (inf - inf = NaN), the traversal
    took rows twice and select() raised "bug: ... distinct". The same sample at any scale."""
    rng = np.random.default_rng(0)
    n = 500
    latent, labels = rng.normal(size=(n, 4)), rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.1, (labels + 1) % 3, labels)
    want = LatentCellSampler(seed=2).fit(latent, pred, labels).select(0.2)
    for scale in (1e20, 1e-20):
        got = LatentCellSampler(seed=2).fit(latent * scale, pred, labels).select(0.2)
        np.testing.assert_array_equal(got.rows, want.rows)
        np.testing.assert_allclose(got.weights, want.weights)
