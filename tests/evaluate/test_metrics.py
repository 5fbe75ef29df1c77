import numpy as np
import pytest

from modeldx.evaluate import jaccard, js_divergence, precision_at_k


def test_precision_at_k():
    assert precision_at_k([1, 2, 3, 4], [4, 3, 9, 8]) == 0.5
    assert precision_at_k([1, 2], []) == 0.0  # the sample could not answer
    assert np.isnan(precision_at_k([], [1]))


def test_js_divergence_bounds():
    p = np.array([1.0, 2.0, 3.0])
    assert js_divergence(p, 10 * p) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert 0 < js_divergence([1, 1], [1, 3]) < 1
    assert js_divergence([0, 0], [1, 1]) == 1.0


def test_jaccard():
    assert jaccard(set(), set()) == 1.0
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)
