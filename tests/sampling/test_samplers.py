"""What each sampler promises beyond the shared contract."""

import numpy as np
import pytest

from modeldx.sampling import get
from modeldx.sampling.base import allocate
from modeldx.sampling.eb_tree import BoundaryTree
from modeldx.sampling.vas import _interchange


def test_allocate_equal_and_proportional_respect_sizes_and_budget():
    sizes = np.array([100, 3, 0, 50])
    eq = allocate(sizes, 30, "equal")
    assert eq.sum() == 30 and (eq <= sizes).all() and eq[1] == 3 and abs(eq[0] - eq[3]) <= 1
    pr = allocate(sizes, 30, "proportional")
    # 30 * [100, 3, 0, 50] / 153 = [19.6, 0.59, 0, 9.8]: floors, then the largest remainders
    assert pr.tolist() == [20, 0, 0, 10]
    assert allocate(sizes, 1000, "equal").tolist() == sizes.tolist()


def test_allocate_equal_spreads_leftover_draws_at_random_over_groups():
    sizes = np.full(10, 5)
    chosen = np.zeros(10)
    for seed in range(2000):
        counts = allocate(sizes, 3, "equal", np.random.default_rng(seed))
        assert counts.sum() == 3 and counts.max() == 1
        chosen += counts
    # every group is chosen about 3/10 of the time, not always the three lowest codes
    assert np.all(np.abs(chosen / 2000 - 0.3) < 0.04)
    # the leftover of a budget above the group count is random too, and deterministic per rng
    a = allocate(sizes, 13, "equal", np.random.default_rng(1))
    assert a.sum() == 13 and set(a.tolist()) == {1, 2}
    assert a.tolist() == allocate(sizes, 13, "equal", np.random.default_rng(1)).tolist()


def test_stratified_cm_gives_every_cell_a_fair_chance_when_cells_outnumber_the_budget():
    labels = np.repeat(np.arange(5), 20)
    pred = np.tile(np.arange(5), 20)  # 25 cells of 4 items
    latent = np.random.default_rng(0).normal(size=(100, 3))
    hits = np.zeros(25)
    for seed in range(400):
        sel = get("stratified-cm")(seed=seed).fit(latent, pred, labels).select(0.05)  # 5 draws
        hits[np.unique(labels[sel.rows] * 5 + pred[sel.rows])] += 1
    assert np.all(np.abs(hits / 400 - 0.2) < 0.07)


def test_uniform_weights_are_n_over_budget(digits_store):
    lat = digits_store.read("latent")
    sel = get("uniform")(seed=0).fit(lat, np.zeros(len(lat), int)).select(0.1)
    assert np.allclose(sel.weights, len(lat) / sel.rows.size)


def test_stratified_covers_every_confusion_cell(digits_store):
    items = digits_store.items()
    lab, pred = items.label.to_numpy(), items.pred.to_numpy()
    cells = set(zip(lab, pred, strict=True))
    sel = get("stratified-cm")(seed=0).fit(digits_store.read("latent"), pred, lab).select(0.2)
    assert set(zip(lab[sel.rows], pred[sel.rows], strict=True)) == cells
    # weighted counts per cell are exact
    for cell in cells:
        mask = (lab[sel.rows] == cell[0]) & (pred[sel.rows] == cell[1])
        assert sel.weights[mask].sum() == pytest.approx(((lab == cell[0]) & (pred == cell[1])).sum())


def test_latent_grid_draws_equally_from_occupied_cells(digits_store):
    s = get("latent-grid")(dims=2, bins=3, seed=0).fit(digits_store.read("latent"),
                                                       np.zeros(1797, int))
    sel = s.select(0.05)
    per_cell = np.bincount(s.cells_[sel.rows], minlength=s.sizes_.size)
    assert per_cell.max() - per_cell[s.sizes_ >= per_cell.max()].min() <= 1


@pytest.mark.parametrize("name", ["latent-gmm", "latent-svm"])
def test_algorithm_1_takes_the_low_end_for_j_1_and_the_high_end_for_j_0(name, digits_store):
    items = digits_store.items()
    args = (digits_store.read("latent"), items.pred.to_numpy(), items.label.to_numpy())
    low = get(name)(j=1.0, seed=0).fit(*args)
    high = get(name)(j=0.0, seed=0).fit(*args)
    a, b = low.select(0.1), high.select(0.1)
    assert np.median(low.ratio_[a.rows]) < np.median(low.ratio_) < np.median(high.ratio_[b.rows])
    # within each group, every low-end pick has a ratio no higher than every unpicked member
    for g in np.unique(low.groups_[a.rows]):
        members = np.flatnonzero(low.groups_ == g)
        picked = np.intersect1d(members, a.rows)
        rest = np.setdiff1d(members, picked)
        if rest.size:
            assert low.ratio_[picked].max() <= low.ratio_[rest].min()


def test_vas_lowers_its_objective_and_spreads_points():
    rng = np.random.default_rng(0)
    z = np.concatenate([rng.normal(0, 0.3, (900, 2)), rng.normal(3, 1.0, (300, 2))])
    order = rng.permutation(len(z))
    budget, eps = 60, 0.5

    def loss(rows):
        d2 = ((z[rows][:, None] - z[rows][None]) ** 2).sum(-1)
        return np.exp(-d2 / eps**2)[np.triu_indices(len(rows), 1)].sum()

    rows = _interchange(z, order, budget, eps, cutoff=3.0)
    assert np.unique(rows).size == budget
    assert loss(rows) < 0.5 * loss(order[:budget])  # far below the random start it began from


def test_vas_drops_the_most_responsible_member_of_the_sample_with_the_new_item():
    # the reference interchange: add t, then drop argmax over S ∪ {t} of rsp(s) + κ(s, t)
    def loss(points, eps):
        d2 = ((points[:, None] - points[None]) ** 2).sum(-1)
        return np.exp(-d2 / eps**2)[np.triu_indices(len(points), 1)].sum()

    # t (row 4) is more crowded than any member was before it came, but with t counted,
    # row 3 is the most crowded: the reference keeps t and drops row 3
    z = np.array([[0.0, 0.0], [0.6, 0.0], [5.0, 0.0], [5.7, 0.0], [5.5, 0.55]])
    rows = _interchange(z, np.arange(5), 4, 1.0, cutoff=10.0)
    assert sorted(rows.tolist()) == [0, 1, 2, 4]
    rng = np.random.default_rng(0)
    for _ in range(200):
        z = rng.uniform(0, 3, (7, 2))
        rows = _interchange(z, np.arange(7), 6, 1.0, cutoff=10.0)
        best = min(loss(z[np.delete(np.arange(7), drop)], 1.0) for drop in range(7))
        assert loss(z[rows], 1.0) == pytest.approx(best)


def test_boundary_tree_keeps_only_points_that_disagree_with_their_nearest_node():
    x = np.linspace(0, 1, 200)[:, None]
    labels = (x[:, 0] > 0.5).astype(int)
    tree = BoundaryTree(x, labels, max_children=5)
    for row in np.random.default_rng(0).permutation(200):
        tree.train(int(row))
    assert set(labels[tree.nodes]) == {0, 1}
    assert len(tree.nodes) < 20  # a 1-d, two-class problem needs few nodes
    # every point is classified correctly by its nearest node, as the tree was trained to do
    assert all(labels[tree.nodes[tree.query(x[i])]] == labels[i] for i in range(200))


def test_eb_tree_reports_how_much_came_from_trees(digits_store):
    items = digits_store.items()
    sel = get("eb-tree")(seed=0).fit(digits_store.read("latent"), items.pred.to_numpy()).select(0.5)
    assert 0 < sel.info["tree_nodes"] <= sel.rows.size


def test_registry_and_settings_errors_are_modeldx_errors(digits_store):
    from modeldx.errors import DuplicateNameError, InvalidParameterError
    from modeldx.sampling import SAMPLERS, register, sample

    with pytest.raises(DuplicateNameError, match="'uniform' is already registered"):
        register(SAMPLERS["uniform"])
    # a setting the sampler does not take: a user error naming it and the ones it takes
    with pytest.raises(InvalidParameterError, match=r"latent-gmm has no setting 'jj'.*\bj\b"):
        sample(digits_store, "latent-gmm", 0.1, jj=0.3, save=False)


def test_one_type_carries_ids_weights_and_info_everywhere(digits_store, tmp_path):
    import shutil

    import modeldx.engine
    import modeldx.sampling
    from modeldx.engine import Sample, make_subset
    from modeldx.sampling import load_sample, sample

    assert modeldx.sampling.Sample is Sample
    assert not hasattr(modeldx.sampling, "Selection") and not hasattr(modeldx.engine, "Subset")
    shutil.copytree(digits_store.path, tmp_path / "store")
    s = sample(tmp_path / "store", "uniform", 0.1, name="u")
    loaded = load_sample(tmp_path / "store", "u")
    resolved = make_subset(digits_store, loaded)
    selected = get("uniform")(seed=0).fit(digits_store.read("latent"),
                                           digits_store.items().pred.to_numpy()).select(0.1)
    for x in (s, loaded, resolved, selected):
        assert type(x) is Sample
    assert s.name == loaded.name == resolved.name == "u"
    assert np.array_equal(s.item_ids, loaded.item_ids) and np.array_equal(resolved.item_ids, s.item_ids)
    assert np.array_equal(selected.rows, s.rows) and np.array_equal(resolved.weights, s.weights)
