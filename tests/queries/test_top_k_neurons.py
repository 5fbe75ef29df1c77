import numpy as np
import pytest

from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.queries import top_k_neurons
from tests.queries.reference import headline


def as_dict(frame, layer):
    got = {}
    for (label, correct), g in frame[frame.layer == layer].groupby(["label", "correct"]):
        got[(int(label), bool(correct))] = g.sort_values("rank").neuron.tolist()
    return got


@pytest.mark.parametrize("by", ["max", "mean"])
def test_matches_numpy_on_every_group(digits_store, by):
    items = digits_store.items()
    top = top_k_neurons(digits_store, k=3, by=by)
    for layer in digits_store.layers:
        acts = digits_store.read(f"acts/{layer}")
        assert as_dict(top, layer) == headline(acts, items.label.to_numpy(), items.correct.to_numpy(), 3, by)
    assert top.attrs["source"] == {"exact": True, "items": 1797, "fraction": 1.0}
    assert set(top.columns) == {"layer", "label", "correct", "rank", "neuron", "value", "n_items"}


def test_weighted_subset(digits_store):
    rng = np.random.default_rng(1)
    ids = np.sort(rng.choice(1797, 300, replace=False))
    w = rng.uniform(1, 10, 300)
    items = digits_store.items().iloc[ids]
    top = top_k_neurons(digits_store, k=4, by="mean", layers="act2", items=ids, weights=w)
    expected = headline(digits_store.read("acts/act2")[ids], items.label.to_numpy(),
                        items.correct.to_numpy(), 4, "mean", w)
    assert as_dict(top, "act2") == expected
    assert top.attrs["source"]["exact"] is False and top.attrs["source"]["items"] == 300


def test_on_the_mnist_store_equals_in_memory_numpy(mnist_store):
    """The paper's headline query over 70k items, streamed, against NumPy on the loaded arrays."""
    items = mnist_store.items()
    top = top_k_neurons(mnist_store, k=10)
    assert top.groupby(["layer", "label", "correct"]).ngroups == 5 * 10 * 2
    for layer in mnist_store.layers:
        acts = mnist_store.read(f"acts/{layer}")
        assert as_dict(top, layer) == headline(acts, items.label.to_numpy(), items.correct.to_numpy(), 10)


def test_errors(digits_store):
    with pytest.raises(InvalidParameterError, match="'k' parameter of top_k_neurons.*Got 0"):
        top_k_neurons(digits_store, k=0)
    with pytest.raises(InvalidParameterError, match="'by'.*Got 'median'"):
        top_k_neurons(digits_store, by="median")
    with pytest.raises(LayerNotFoundError, match="'fc9'"):
        top_k_neurons(digits_store, layers=["fc9"])
