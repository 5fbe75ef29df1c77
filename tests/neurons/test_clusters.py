import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.neurons import DEAD, cluster_neurons


def planted(seed: int = 0, per_group: int = 12, n_dead: int = 5):
    """3 groups of neurons, each responding to its own classes (at its own scale), and dead ones."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for g, classes in enumerate([(0, 1, 2), (3, 4, 5), (6, 7, 8, 9)]):
        for _ in range(per_group):
            v = rng.uniform(0, 0.15, 10)
            v[list(classes)] += rng.uniform(0.8, 1.2, len(classes))
            rows.append(v * rng.uniform(0.1, 10))  # scale must not matter: cosine distance
            truth.append(g)
    rows += [np.zeros(10)] * n_dead
    truth += [DEAD] * n_dead
    order = rng.permutation(len(rows))
    return np.array(rows)[order], np.array(truth)[order]


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return all(np.unique(b[a == x]).size == 1 for x in np.unique(a)) and \
        np.unique(a).size == np.unique(b).size


def test_planted_clusters_are_recovered_and_k_is_chosen_by_silhouette():
    means, truth = planted()
    cl = cluster_neurons(means)
    assert cl.k == 3 and same_partition(cl.labels, truth)
    assert max(cl.scores, key=lambda k: cl.scores[k]) == 3
    assert (cl.labels[truth == DEAD] == DEAD).all() and cl.dead.tolist() == (truth == DEAD).tolist()
    assert cl.sizes.tolist() == [12, 12, 12] and cl.ids == [0, 1, 2, DEAD]
    assert cl.top_class.tolist() == sorted(cl.top_class.tolist())
    assert cl.silhouette == pytest.approx(cl.scores[3]) and cl.silhouette > 0.5
    for cid in cl.ids:
        assert (cl.labels[cl.members(cid)] == cid).all()
    assert cl.members(DEAD).size == 5


def test_ids_are_stable_and_follow_content_not_position():
    means, _ = planted()
    first = cluster_neurons(means)
    np.testing.assert_array_equal(cluster_neurons(means).labels, first.labels)
    perm = np.random.default_rng(5).permutation(len(means))
    moved = cluster_neurons(means[perm])
    np.testing.assert_array_equal(moved.labels, first.labels[perm])
    # ids ordered by the class each cluster responds to most: group (0, 1, 2) is cluster 0
    assert first.labels[np.argmax(means[:, 0])] == 0


def test_active_shares_decide_who_is_dead():
    means, truth = planted()
    active = np.where(truth == DEAD, 0.0, 0.3)
    active[0] = 0.0  # never active, though its means say otherwise (e.g. a sampled store's rounding)
    cl = cluster_neurons(means, active=active)
    assert cl.dead.tolist() == (active <= 0).tolist() and cl.labels[0] == DEAD


def test_k_given_and_capped_by_the_live_neurons():
    means, truth = planted()
    assert cluster_neurons(means, k=5).k == 5
    assert cluster_neurons(means[:4], k=10).k <= 4
    cl = cluster_neurons(means, k_range=(4, 6))
    assert 4 <= cl.k <= 6 and set(cl.scores) == {4, 5, 6}


def test_centred_clusters_see_class_preference_under_a_shared_baseline():
    means, truth = planted()
    rng = np.random.default_rng(3)
    live = truth != DEAD
    # a neuron-specific baseline on every class (0 to 10 times the preference) hides the
    # preferences from plain cosine, as the positive class means of ReLU layers do
    shifted = means.copy()
    peak = np.abs(means[live]).max(1, keepdims=True)
    shifted[live] = means[live] / peak + rng.uniform(0, 10, (live.sum(), 1))
    plain = cluster_neurons(shifted)
    centred = cluster_neurons(shifted, center=True)
    assert not (plain.k == 3 and same_partition(plain.labels, truth))
    assert centred.k == 3 and same_partition(centred.labels, truth)
    assert (centred.labels[~live] == DEAD).all()


@pytest.mark.parametrize("rows", [
    np.zeros((0, 10)),                       # no neurons
    np.zeros((4, 10)),                       # all dead
    np.eye(10)[:1],                          # one live neuron
    np.eye(10)[:2],                          # two live, distinct
    np.tile(np.arange(10.0), (6, 1)) * np.arange(1, 7)[:, None],  # identical directions
])
def test_degenerate_inputs_do_not_crash(rows):
    cl = cluster_neurons(rows)
    live = int((~cl.dead).sum())
    assert cl.labels.shape == (rows.shape[0],)
    assert cl.k <= max(live, 0) and (live == 0) == (cl.k == 0)
    assert sorted(set(cl.labels[~cl.dead].tolist())) == list(range(cl.k))
    assert cl.sizes.sum() == live


def test_identical_directions_make_one_cluster():
    rows = np.tile(np.arange(10.0), (6, 1)) * np.arange(1, 7)[:, None]
    cl = cluster_neurons(rows)
    assert cl.k == 1 and np.isnan(cl.silhouette)


@pytest.mark.parametrize("kwargs, bad", [
    ({"means": np.zeros(5)}, "means"),
    ({"means": np.array([[1.0, np.nan]])}, "means"),
    ({"means": "abc"}, "means"),
    ({"means": np.ones((3, 2)), "k": 0}, "k"),
    ({"means": np.ones((3, 2)), "k_range": (5, 2)}, "k_range"),
    ({"means": np.ones((3, 2)), "k_range": (0, 3)}, "k_range"),
    ({"means": np.ones((3, 2)), "active": np.ones(2)}, "active"),
    ({"means": np.ones((3, 2)), "dead_tol": -1.0}, "dead_tol"),
    ({"means": np.ones((3, 2)), "center": 1}, "center"),
])
def test_bad_parameters_are_named(kwargs, bad):
    means = kwargs.pop("means")
    with pytest.raises(InvalidParameterError, match=f"'{bad}' parameter of cluster_neurons"):
        cluster_neurons(means, **kwargs)
