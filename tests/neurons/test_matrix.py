import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.neurons import DEAD, activation_matrix, cluster_neurons, leaf_order
from tests.neurons.test_clusters import planted


def band(n: int = 20, width: float = 2.0) -> np.ndarray:
    """Row i is a bump centred on column i: neighbouring rows are the most alike."""
    cols = np.arange(n)
    return np.exp(-((cols[None, :] - cols[:, None]) / width) ** 2)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_a_shuffled_band_comes_back_in_sequence(metric):
    rows = band()
    perm = np.random.default_rng(1).permutation(len(rows))
    order = perm[leaf_order(rows[perm], metric=metric)]
    assert order.tolist() in (list(range(20)), list(range(19, -1, -1)))


def test_small_and_zero_matrices():
    assert leaf_order(np.zeros((0, 3))).tolist() == []
    assert leaf_order(np.ones((1, 3))).tolist() == [0]
    assert leaf_order(np.ones((2, 3))).tolist() == [0, 1]
    rows = np.vstack([np.zeros(20), band(), np.zeros(20)])
    order = leaf_order(rows)
    assert order[-2:].tolist() == [0, 21]  # zero rows (no direction) last
    assert sorted(order.tolist()) == list(range(22))
    assert sorted(leaf_order(rows, metric="euclidean").tolist()) == list(range(22))


def test_matrix_of_planted_clusters():
    means, truth = planted()
    cl = cluster_neurons(means)
    mat = activation_matrix(means, cl)
    assert sorted(mat.class_order.tolist()) == list(range(10))
    assert mat.cluster_ids.tolist() == [0, 1, 2, DEAD]
    assert mat.cluster_order[-1] == DEAD and sorted(mat.cluster_order.tolist()) == [-1, 0, 1, 2]
    for cid in cl.ids:
        members = mat.neuron_order[cid]
        assert sorted(members.tolist()) == cl.members(cid).tolist()
        np.testing.assert_array_equal(mat.blocks[cid], means[members][:, mat.class_order])
        np.testing.assert_allclose(mat.row_of(cid), means[cl.members(cid)][:, mat.class_order].mean(0))
    # one colour scale per layer: the largest |mean| maps to 1
    assert mat.scale == pytest.approx(np.abs(means).max())
    assert max(np.abs(mat.block_norm(c)).max() for c in cl.ids) == pytest.approx(1.0)
    assert np.abs(mat.cluster_rows_norm).max() <= 1.0
    # the classes a cluster shares sit side by side: each group's classes are contiguous columns
    pos = np.argsort(mat.class_order)
    for classes in [(0, 1, 2), (3, 4, 5), (6, 7, 8, 9)]:
        p = sorted(pos[list(classes)])
        assert p[-1] - p[0] == len(classes) - 1
    d = mat.to_dict([f"c{i}" for i in range(10)])
    assert [c["id"] for c in d["clusters"]] == mat.cluster_order.tolist()
    assert d["classes"][0] == f"c{mat.class_order[0]}"


def test_class_order_is_fixed_across_a_layer():
    means, _ = planted()
    cl = cluster_neurons(means)
    mat = activation_matrix(means, cl)
    # every block of the layer uses the layer's class order, computed over all its neurons
    np.testing.assert_array_equal(mat.class_order, leaf_order(means.T))
    given = np.arange(10)[::-1]
    mine = activation_matrix(means, cl, class_order=given)
    np.testing.assert_array_equal(mine.class_order, given)
    for cid in cl.ids:
        np.testing.assert_array_equal(mine.blocks[cid], means[mine.neuron_order[cid]][:, ::-1])


def test_bad_input_is_named():
    means, _ = planted()
    cl = cluster_neurons(means)
    with pytest.raises(InvalidParameterError, match="'class_order' parameter of activation_matrix"):
        activation_matrix(means, cl, class_order=[0, 1, 2])
    with pytest.raises(InvalidParameterError, match="'clusters' parameter of activation_matrix"):
        activation_matrix(means[:5], cl)
    with pytest.raises(InvalidParameterError, match="'metric' parameter of leaf_order"):
        leaf_order(means, metric="manhattan")
    with pytest.raises(InvalidParameterError, match="'matrix' parameter of leaf_order"):
        leaf_order(np.array([[np.inf, 1.0]]))
