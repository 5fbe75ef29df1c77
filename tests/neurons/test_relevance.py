import numpy as np
import pytest
import torch

from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.neurons import neuron_map, relevance_matrix, top_down
from modeldx.zoo import LeNet5


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return LeNet5().eval()


def test_top_down_follows_the_largest_weights(lenet):
    tree = top_down(lenet, 3, k=2, depth=3)
    start = tree.iloc[0]
    assert (start.depth, start.layer, start.neuron) == (0, "fc3", 3)
    first = tree[tree.depth == 1]
    expected = np.argsort(-lenet.fc3.weight[3].detach().numpy(), kind="stable")[:2]
    assert first.layer.unique().tolist() == ["fc2"] and first.neuron.tolist() == expected.tolist()
    assert first.weight.tolist() == pytest.approx(lenet.fc3.weight[3, expected].tolist())
    # each depth-2 neuron is one of the top-2 feeding its depth-1 parent
    for row in tree[tree.depth == 2].itertuples():
        top = np.argsort(-lenet.fc2.weight[row.parent].detach().numpy(), kind="stable")[:2]
        assert row.layer == "fc1" and row.neuron in top
    # fc1 reads a flattened 16 x 5 x 5 map: conv2 channels get the mean weight of their positions
    deepest = tree[tree.depth == 3]
    assert deepest.layer.unique().tolist() == ["conv2"] and deepest.neuron.max() < 16


def test_relevance_of_flattened_and_conv_inputs(lenet):
    rel = relevance_matrix(lenet.fc1, 16)
    w = lenet.fc1.weight.detach().numpy()
    assert rel.shape == (120, 16)
    assert rel[7, 5] == pytest.approx(w[7, 5 * 25:6 * 25].mean())  # 16 channels x 5 x 5 positions
    conv = relevance_matrix(lenet.conv2, 6)
    assert conv[2, 4] == pytest.approx(lenet.conv2.weight[2, 4].mean().item())


def test_top_down_errors(lenet):
    with pytest.raises(LayerNotFoundError, match="not a linear or conv layer"):
        top_down(lenet, 0, layer="act3")
    with pytest.raises(InvalidParameterError, match="has 10 neurons"):
        top_down(lenet, 10)


def test_neuron_map_places_neurons_that_fire_together_close(digits_store):
    points = neuron_map(digits_store, "act2", items=1797)
    assert list(points.columns) == ["neuron", "x", "y", "dead", "mean"] and len(points) == 16
    acts = digits_store.read("acts/act2")
    live = ~points.dead.to_numpy()
    corr = np.corrcoef(acts[:, live].T)
    xy = points[live][["x", "y"]].to_numpy()
    dist = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    iu = np.triu_indices(live.sum(), 1)
    # more correlated pairs sit closer: distance and correlation are negatively related
    assert np.corrcoef(dist[iu], corr[iu])[0, 1] < -0.3
    tsne = neuron_map(digits_store, "act2", method="tsne")
    assert np.isfinite(tsne[["x", "y"]].to_numpy()).all()
    with pytest.raises(InvalidParameterError, match="'method'"):
        neuron_map(digits_store, "act2", method="umap")
