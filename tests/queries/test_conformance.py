"""Every registered query: runs exactly and on a weighted subset, says where its answer came from,
and on a subset answers exactly what it answers on a store captured for those items only."""

import numpy as np
import pandas as pd
import pytest

from modeldx import capture
from modeldx.queries import QUERIES

IDS = np.arange(0, 1797, 3)
# what depends on the test store; everything else comes from each query's registered example
STORE_ARGS = {"layer": "act2", "layer_a": "act1", "layer_b": "act2", "item_id": 39}


def args_of(name: str) -> dict:
    info = QUERIES[name]
    required = [n for n, p in info.parameters().items() if p.default is p.empty]
    args = {n: STORE_ARGS[n] for n in required if n in STORE_ARGS}
    return {**args, **info.example}


@pytest.fixture(scope="module")
def subset_store(tmp_path_factory, tiny_model, digits):
    return capture(tiny_model, digits, tmp_path_factory.mktemp("sub") / "s", items=IDS,
                   encoding="float32", chunk_items=256, batch_size=100, progress=False)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_registered_query_can_be_called_from_its_registration(name):
    info = QUERIES[name]
    missing = [n for n, p in info.parameters().items()
               if p.default is p.empty and n not in STORE_ARGS and n not in info.example]
    assert not missing, f"register {name!r} with example= values for {missing}"


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_conformance(name, digits_store, subset_store):
    func = QUERIES[name].func
    args = args_of(name)
    exact = func(digits_store, **args)
    assert isinstance(exact, pd.DataFrame) and len(exact) > 0
    assert exact.attrs["query"] == name and exact.attrs["source"]["exact"] is True
    sub = func(digits_store, **args, items=IDS)
    assert sub.attrs["source"]["exact"] is False
    assert sub.attrs["source"]["fraction"] == pytest.approx(IDS.size / 1797)
    # the same code on the subset as on a store holding only the subset's items
    alone = func(subset_store, **args)
    pd.testing.assert_frame_equal(sub, alone, check_exact=False, rtol=1e-6)
