"""Every registered query: runs exactly and on a weighted subset, says where its answer came from,
and on a subset answers exactly what it answers on a store captured for those items only."""

import numpy as np
import pandas as pd
import pytest

from modeldx import capture
from modeldx.queries import QUERIES

ARGS = {
    "top-k-neurons": {"k": 3},
    # thinning needs the population's group sizes, which a store of the subset lacks unless the
    # subset is a Sample that records them: tests/sampling/test_pipeline.py checks that case
    "top-k-confidence": {"k": 3, "replicates": 50, "scheme": "bootstrap"},
    "top-k-inputs": {"layer": "act2", "neurons": [0, 3], "k": 4},
    "activation-profile": {"layer": "act2", "neuron": 1, "bins": 8, "range": (0.0, 10.0)},
    "nearest-neighbors": {"layer": "act2", "item_id": 39, "k": 4},
    "confusion-matrix": {},
    "misclassified": {},
    "boundary-inputs": {"class_a": 1, "class_b": 8, "k": 3},
    "activation-aggregates": {"layer": "act2", "bins": 64},
    "dead-neurons": {},
    "linear-cka": {"layer_a": "act1", "layer_b": "act2"},
}
IDS = np.arange(0, 1797, 3)


@pytest.fixture(scope="module")
def subset_store(tmp_path_factory, tiny_model, digits):
    return capture(tiny_model, digits, tmp_path_factory.mktemp("sub") / "s", items=IDS,
                   encoding="float32", chunk_items=256, batch_size=100, progress=False)


def test_every_query_has_conformance_arguments():
    assert set(QUERIES) == set(ARGS)


@pytest.mark.parametrize("name", sorted(ARGS))
def test_query_conformance(name, digits_store, subset_store):
    func = QUERIES[name].func
    exact = func(digits_store, **ARGS[name])
    assert isinstance(exact, pd.DataFrame) and len(exact) > 0
    assert exact.attrs["query"] == name and exact.attrs["source"]["exact"] is True
    sub = func(digits_store, **ARGS[name], items=IDS)
    assert sub.attrs["source"]["exact"] is False
    assert sub.attrs["source"]["fraction"] == pytest.approx(IDS.size / 1797)
    # the same code on the subset as on a store holding only the subset's items
    alone = func(subset_store, **ARGS[name])
    pd.testing.assert_frame_equal(sub, alone, check_exact=False, rtol=1e-6)
