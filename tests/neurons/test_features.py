import numpy as np
import pytest

from modeldx.engine.subset import Sample
from modeldx.errors import InvalidParameterError
from modeldx.neurons import cluster_top_items


def brute(acts: np.ndarray, neurons, k: int) -> tuple[list[int], np.ndarray]:
    block = acts[:, neurons].astype(np.float64)
    peak = block.max(axis=0)
    norm = np.where(peak > 0, block / np.where(peak > 0, peak, 1), 0.0)
    score = norm.mean(axis=1)
    order = np.lexsort((np.arange(score.size), -score))[:k]
    return order.tolist(), score[order]


def test_equals_brute_force_on_the_store(digits_store):
    acts = digits_store.read("acts/act2")
    neurons = [1, 4, 7, 9]
    top = cluster_top_items(digits_store, "act2", neurons, k=9)
    rows, scores = brute(acts, neurons, 9)
    ids = digits_store.items()["item_id"].to_numpy()
    assert top["item_id"].tolist() == ids[rows].tolist()
    np.testing.assert_allclose(top["score"], scores, rtol=1e-6)
    assert list(top.columns) == ["rank", "item_id", "score", "split", "label", "pred", "correct",
                                 "confidence"]
    assert top["rank"].tolist() == list(range(1, 10)) and top.attrs["source"]["exact"] is True


def test_scores_of_relu_neurons_are_shares_of_their_maxima(digits_store):
    top = cluster_top_items(digits_store, "act2", np.arange(16), k=20)
    assert ((top["score"] >= 0) & (top["score"] <= 1)).all()
    assert top["score"].is_monotonic_decreasing


def test_on_a_subset_the_maxima_are_the_subsets(digits_store):
    ids = np.arange(0, 1797, 4)
    sample = Sample(ids, np.full(ids.size, 4.0), {"sample": "every4"})
    top = cluster_top_items(digits_store, "act2", [2, 3], k=4, items=sample)
    rows, scores = brute(digits_store.read("acts/act2")[ids], [2, 3], 4)
    assert top["item_id"].tolist() == ids[rows].tolist()
    np.testing.assert_allclose(top["score"], scores, rtol=1e-6)
    assert top.attrs["source"]["sample"] == "every4"


def test_bad_arguments(digits_store):
    with pytest.raises(InvalidParameterError, match="'k' parameter of cluster_top_items"):
        cluster_top_items(digits_store, "act2", [1], k=0)
    with pytest.raises(InvalidParameterError, match="neurons of layer 'act2'"):
        cluster_top_items(digits_store, "act2", [99])


def test_items_that_do_not_activate_the_cluster_are_not_its_top_items(digits_store):
    acts = digits_store.read("acts/act2").astype(np.float64)
    positive = (acts > 0).sum(axis=0)
    neuron = int(np.argmin(positive))  # the neuron active on the fewest items
    top = cluster_top_items(digits_store, "act2", [neuron], k=int(positive[neuron]) + 5)
    assert len(top) == positive[neuron]  # not padded with items scoring 0
    assert (top["score"] > 0).all()
    ids = digits_store.items()["item_id"].to_numpy()
    assert set(top["item_id"]) == set(ids[acts[:, neuron] > 0].tolist())
