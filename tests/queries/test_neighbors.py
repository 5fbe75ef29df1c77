import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.queries import nearest_neighbors


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_matches_brute_force(digits_store, metric):
    acts = digits_store.read("acts/act2").astype(np.float64)
    q = acts[42]
    if metric == "euclidean":
        d = np.linalg.norm(acts - q, axis=1)
    else:
        d = 1 - acts @ q / (np.linalg.norm(acts, axis=1) * np.linalg.norm(q))
    d[42] = np.inf
    nn = nearest_neighbors(digits_store, layer="act2", item_id=42, k=6, metric=metric)
    assert nn.item_id.tolist() == np.lexsort((np.arange(d.size), d))[:6].tolist()
    np.testing.assert_allclose(nn.distance, np.sort(d)[:6], rtol=1e-9, atol=1e-12)
    assert 42 not in nn.item_id.tolist()


def test_unknown_item(digits_store):
    with pytest.raises(InvalidParameterError, match="item 5000 is not in the store"):
        nearest_neighbors(digits_store, layer="act2", item_id=5000)
