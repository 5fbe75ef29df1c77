import json

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.neurons import bundle_edges, cluster_strength, layer_bundles, layer_graph


def test_cluster_strength_sums_neuron_pairs_with_dead_last():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 4))
    source = np.array([1, -1, 0, 1])
    target = np.array([0, 2, 2, -1, 0])
    strength, signed, cols, rows = cluster_strength(np.abs(w), source, target, signed=w)
    assert cols == [0, 1, -1] and rows == [0, 2, -1]
    for i, t in enumerate(rows):
        for j, s in enumerate(cols):
            block = w[np.ix_(target == t, source == s)]
            assert strength[i, j] == pytest.approx(np.abs(block).sum())
            assert signed[i, j] == pytest.approx(block.sum())
    # without a signed matrix the signed sum is the strength
    s2, v2, _, _ = cluster_strength(np.abs(w), source, target)
    np.testing.assert_array_equal(s2, v2)


def test_cluster_strength_refuses_labels_that_do_not_fit():
    with pytest.raises(InvalidParameterError, match="source_labels must be 3"):
        cluster_strength(np.ones((2, 3)), [0, 1], [0, 0])
    with pytest.raises(InvalidParameterError, match="target_labels"):
        cluster_strength(np.ones((2, 3)), [0, 1, 1], [0.5, 0.0])
    with pytest.raises(InvalidParameterError, match="-1"):
        cluster_strength(np.ones((2, 3)), [0, 1, -2], [0, 0])


class TwoLayers(nn.Module):
    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, weight.shape[1])
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(weight.shape[1], weight.shape[0])
        self.act2 = nn.ReLU()
        with torch.no_grad():
            self.fc2.weight.copy_(torch.from_numpy(weight))

    def forward(self, x):
        return self.act2(self.fc2(self.act1(self.fc1(x))))


def known_network():
    """Source clusters {0, 1} feed target cluster 0 (positive); {2} feeds 1 (negative)."""
    source = np.array([0, 0, 1, 1, 2, 2])
    target = np.array([0, 0, 0, 1, 1])
    w = np.zeros((5, 6))
    w[np.ix_(target == 0, np.isin(source, [0, 1]))] = 0.5
    w[np.ix_(target == 1, source == 2)] = -1.0
    w[0, 0] = 0.9  # not uniform inside a block
    return w, source, target


def test_bundles_of_a_known_network():
    w, source, target = known_network()
    g = layer_graph(TwoLayers(w).eval(), ["act1", "act2"], torch.zeros(1, 4))
    (edge,) = g.edges
    bundles = bundle_edges(*cluster_strength(edge.strength, source, target, signed=edge.signed))
    assert [(b.sources, b.targets, b.sign) for b in bundles] == [([0, 1], [0], 1), ([2], [1], -1)]
    total = np.abs(w).sum()
    assert bundles[0].strength == pytest.approx(0.5 * 11 + 0.9)
    assert [b.share for b in bundles] == pytest.approx([6.4 / total, 4.0 / total])
    assert sum(b.share for b in bundles) == pytest.approx(1.0)
    assert bundles[0].edges == [(0, 0, pytest.approx(3.4), 1), (1, 0, pytest.approx(3.0), 1)]
    assert bundles[1].edges == [(2, 1, pytest.approx(4.0), -1)]


def test_layer_bundles_is_json_and_skips_unlabelled_layers():
    w, source, target = known_network()
    g = layer_graph(TwoLayers(w).eval(), ["act1", "act2"], torch.zeros(1, 4))
    out = layer_bundles(g, {"act1": source, "act2": target})
    assert json.loads(json.dumps(out)) == out
    (edge,) = out
    assert (edge["source"], edge["target"], edge["via"]) == ("act1", "act2", "fc2")
    assert edge["clusters"]["sources"] == [0, 1, 2] and edge["clusters"]["targets"] == [0, 1]
    assert [(b["sources"], b["targets"], b["sign"]) for b in edge["bundles"]] == [
        ([0, 1], [0], 1), ([2], [1], -1)]
    assert layer_bundles(g, {"act1": source}) == []
    with pytest.raises(LayerNotFoundError, match="'fc9'"):
        layer_bundles(g, {"fc9": source})


def test_bundles_are_deterministic_for_a_seed_and_cover_a_strong_block_structure():
    rng = np.random.default_rng(3)
    blocks = np.kron(np.eye(3), np.ones((4, 5))) * 10 + rng.uniform(0, 0.1, size=(12, 15))
    ids_s, ids_t = list(range(15)), list(range(12))
    first = bundle_edges(blocks, blocks, ids_s, ids_t, n_bundles=3, seed=7)
    assert first == bundle_edges(blocks, blocks, ids_s, ids_t, n_bundles=3, seed=7)
    assert sorted(sorted(b.targets) for b in first) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert sum(b.share for b in first) > 0.98
    # every row and column lands in exactly one bundle
    assert sorted(t for b in first for t in b.targets) == ids_t
    assert sorted(s for b in first for s in b.sources) == ids_s


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (2, 2), (3, 7)])
def test_small_matrices_need_no_more_bundles_than_rows_or_columns(shape):
    a = np.arange(1, shape[0] * shape[1] + 1, dtype=float).reshape(shape)
    bundles = bundle_edges(a, -a, list(range(shape[1])), list(range(shape[0])))
    assert 1 <= len(bundles) <= min(shape)
    assert all(b.sign == -1 for b in bundles)
    assert sum(b.share for b in bundles) <= 1.0 + 1e-12
    assert sorted(t for b in bundles for t in b.targets) == list(range(shape[0]))
    assert sorted(s for b in bundles for s in b.sources) == list(range(shape[1]))


def test_degenerate_matrices():
    assert bundle_edges(np.zeros((3, 4)), np.zeros((3, 4)), [0, 1, 2, 3], [0, 1, 2]) == []
    assert bundle_edges(np.zeros((0, 4)), np.zeros((0, 4)), [0, 1, 2, 3], []) == []
    # one nonzero entry among zero rows and columns: one bundle, the whole strength
    a = np.zeros((3, 4))
    a[1, 2] = 2.0
    (b,) = bundle_edges(a, a, [0, 1, 2, -1], [0, 1, -1], n_bundles=4)
    assert (b.sources, b.targets, b.share, b.sign, b.edges) == ([2], [1], 1.0, 1, [(2, 1, 2.0, 1)])


def test_a_dead_cluster_with_zero_weights_is_in_no_bundle():
    rng = np.random.default_rng(0)
    w = np.abs(rng.normal(size=(6, 8)))
    source = np.array([0, 0, 1, 1, 2, 2, -1, -1])
    w[:, source == -1] = 0.0  # a dead cluster's outgoing weights decayed to zero
    target = np.array([0, 1, 2, 0, 1, -1])
    strength, signed, cols, rows = cluster_strength(w, source, target)
    assert cols[-1] == -1 and (strength[:, -1] == 0).all()
    bundles = bundle_edges(strength, signed, cols, rows)
    assert bundles and all(-1 not in b.sources for b in bundles)
    # every cluster with some strength, the dead target cluster included, is in one bundle
    assert sorted(s for b in bundles for s in b.sources) == [0, 1, 2]
    assert sorted(t for b in bundles for t in b.targets) == [-1, 0, 1, 2]
    assert all(0 < b.share <= 1 for b in bundles)


def test_bundle_edges_checks_its_parameters():
    a = np.ones((2, 2))
    with pytest.raises(InvalidParameterError, match="'n_bundles' parameter of bundle_edges"):
        bundle_edges(a, a, [0, 1], [0, 1], n_bundles=0)
    with pytest.raises(InvalidParameterError, match="len\\(target_ids\\)"):
        bundle_edges(a, a, [0, 1], [0])
    with pytest.raises(InvalidParameterError, match=">= 0"):
        bundle_edges(-a, a, [0, 1], [0, 1])


def test_the_default_number_of_bundles_follows_the_block_structure():
    rng = np.random.default_rng(4)
    blocks = np.kron(np.eye(3), np.ones((4, 5))) * 10 + rng.uniform(0, 0.1, size=(12, 15))
    found = bundle_edges(blocks, blocks, list(range(15)), list(range(12)))
    assert len(found) == 3 and sum(b.share for b in found) > 0.98
    # no block structure: one bundle, not an arbitrary split
    uniform = np.ones((5, 6))
    (one,) = bundle_edges(uniform, uniform, list(range(6)), list(range(5)))
    assert (one.sources, one.targets, one.share) == (list(range(6)), list(range(5)), 1.0)
    # asked for: the split is made even without structure
    assert len(bundle_edges(uniform, uniform, list(range(6)), list(range(5)), n_bundles=2)) == 2


def test_modularity_of_perfect_blocks_and_of_one_bicluster():
    from modeldx.neurons.bundles import modularity

    blocks = np.kron(np.eye(2), np.ones((2, 3)))
    assert modularity(blocks, np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1, 1, 1])) == \
        pytest.approx(0.5)
    assert modularity(blocks, np.zeros(4, int), np.zeros(6, int)) == pytest.approx(0.0)
