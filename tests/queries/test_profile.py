import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.queries import activation_profile


def test_histograms_per_class_match_numpy(digits_store):
    all_acts = digits_store.read("acts/act2")
    neuron = int(all_acts.var(0).argmax())
    acts = all_acts[:, neuron]
    labels = digits_store.items().label.to_numpy()
    prof = activation_profile(digits_store, layer="act2", neuron=neuron, bins=12)
    edges = np.linspace(acts.min(), acts.max(), 13)
    for label in range(10):
        expected, _ = np.histogram(acts[labels == label], bins=edges)
        got = prof[prof.label == label].sort_values("bin")
        np.testing.assert_array_equal(got["count"].to_numpy(), expected)
        assert got.fraction.sum() == pytest.approx(1.0)


def test_fixed_range_and_weights(digits_store):
    ids = np.arange(100)
    prof = activation_profile(digits_store, layer="act2", neuron=3, bins=4, range=(0, 8), items=ids,
                              weights=np.full(100, 2.5))
    assert prof["count"].sum() == pytest.approx(250 - 2.5 * 0)  # every value is binned (clipped)
    assert prof.bin_left.min() == 0 and prof.bin_right.max() == 8
    with pytest.raises(InvalidParameterError, match="low < high"):
        activation_profile(digits_store, layer="act2", neuron=3, range=(1, 1))
