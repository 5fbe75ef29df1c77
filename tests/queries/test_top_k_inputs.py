import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.queries import top_k_inputs


def test_single_neuron_and_group(digits_store):
    acts = digits_store.read("acts/act2")
    top = top_k_inputs(digits_store, layer="act2", neurons=5, k=7)
    assert top.item_id.tolist() == np.lexsort((np.arange(1797), -acts[:, 5]))[:7].tolist()
    np.testing.assert_allclose(top.score, np.sort(acts[:, 5])[::-1][:7])
    group = top_k_inputs(digits_store, layer="act2", neurons=[1, 4], k=5, largest=False)
    score = acts[:, [1, 4]].mean(1)
    assert group.item_id.tolist() == np.lexsort((np.arange(1797), score))[:5].tolist()


def test_subset_only_returns_its_items(digits_store):
    ids = np.arange(0, 1797, 10)
    top = top_k_inputs(digits_store, layer="act2", neurons=0, k=5, items=ids)
    assert set(top.item_id) <= set(ids)


def test_bad_neuron(digits_store):
    with pytest.raises(InvalidParameterError, match=r"\[0, 16\)\. Got 16"):
        top_k_inputs(digits_store, layer="act2", neurons=16)
