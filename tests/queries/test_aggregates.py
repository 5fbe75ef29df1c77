import numpy as np
import pytest

from modeldx.errors import InvalidParameterError
from modeldx.queries import activation_aggregates


def test_means_variances_exact_and_quantiles_within_the_bound(digits_store):
    acts = digits_store.read("acts/act2").astype(np.float64)
    labels = digits_store.items().label.to_numpy()
    agg = activation_aggregates(digits_store, layer="act2", quantiles=[0.1, 0.5, 0.9], bins=512)
    for label in range(10):
        rows = agg[agg.label == label].sort_values("neuron")
        x = acts[labels == label]
        np.testing.assert_allclose(rows["mean"], x.mean(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(rows["var"], x.var(0), rtol=1e-7, atol=1e-9)
        for q in (0.1, 0.5, 0.9):
            exact = np.quantile(x, q, axis=0, method="inverted_cdf")
            err = np.abs(rows[f"q{q:g}"].to_numpy() - exact)
            assert (err <= rows.quantile_error.to_numpy() + 1e-9).all()


def test_relu_zeros_give_exact_zero_quantiles(digits_store):
    acts = digits_store.read("acts/act2")
    labels = digits_store.items().label.to_numpy()
    agg = activation_aggregates(digits_store, layer="act2", quantiles=[0.25])
    zero_q = np.quantile(acts[labels == 0], 0.25, axis=0, method="inverted_cdf") == 0
    got = agg[agg.label == 0].sort_values("neuron")["q0.25"].to_numpy()
    assert (got[zero_q] == 0).all()


def test_bad_quantiles(digits_store):
    with pytest.raises(InvalidParameterError, match="'quantiles'"):
        activation_aggregates(digits_store, layer="act2", quantiles=[1.5])
