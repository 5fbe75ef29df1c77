import numpy as np
import pytest

from modeldx import capture
from modeldx.errors import InvalidParameterError
from modeldx.queries import linear_cka


def reference_cka(x, y):
    x = x - x.mean(0)
    y = y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_matches_the_closed_form(digits_store):
    x = digits_store.read("acts/act1").astype(np.float64)
    y = digits_store.read("acts/act2").astype(np.float64)
    got = linear_cka(digits_store, layer_a="act1", layer_b="act2")
    assert got.cka.item() == pytest.approx(reference_cka(x, y), rel=1e-9)
    assert linear_cka(digits_store, layer_a="act2", layer_b="act2").cka.item() == pytest.approx(1.0)


def test_across_two_stores_over_the_same_items(tmp_path, digits_store, fresh_tiny, digits):
    other = capture(fresh_tiny, digits, tmp_path / "other", encoding="float32", progress=False)
    got = linear_cka(digits_store, layer_a="act2", layer_b="act2", other=other).cka.item()
    x = digits_store.read("acts/act2").astype(np.float64)
    y = other.read("acts/act2").astype(np.float64)
    assert got == pytest.approx(reference_cka(x, y), rel=1e-9)
    assert 0 < got < 1


def test_stores_over_other_items_are_refused(tmp_path, digits_store, tiny_model, digits):
    part = capture(tiny_model, digits, tmp_path / "part", items=np.arange(100), progress=False)
    with pytest.raises(InvalidParameterError, match="same items"):
        linear_cka(digits_store, layer_a="act2", layer_b="act2", other=part)
