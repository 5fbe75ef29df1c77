import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.queries import boundary_inputs


def test_smallest_margins_between_two_classes(digits_store):
    probs = digits_store.read("probs")
    top2 = np.argsort(-probs, axis=1)[:, :2]
    a, b = 1, 8
    ok = np.array([set(t) == {a, b} for t in top2.tolist()])
    margin = np.where(ok, np.abs(probs[:, a] - probs[:, b]), np.inf)
    n = int(ok.sum())
    assert n > 0
    got = boundary_inputs(digits_store, class_a=a, class_b=b, k=5)
    assert got.item_id.tolist() == np.lexsort((np.arange(margin.size), margin))[: min(5, n)].tolist()
    np.testing.assert_allclose(got.margin, np.abs(got.p_a - got.p_b), rtol=1e-6)


def test_same_class_twice_is_an_error(digits_store):
    with pytest.raises(InvalidParameterError, match="must differ"):
        boundary_inputs(digits_store, class_a=3, class_b=3)
    with pytest.raises(InvalidParameterError, match="'class_b'.*Got 10"):
        boundary_inputs(digits_store, class_a=3, class_b=10)
