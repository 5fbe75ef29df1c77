import numpy as np
import pytest

from modeldx.engine import LocalEngine, iter_chunks, make_subset
from modeldx.errors import InvalidParameterError


class Sum:
    arrays = ["acts/act2"]

    def map(self, chunk):
        return (chunk.weights[:, None] * chunk.arrays["acts/act2"]).sum(0)

    def combine(self, a, b):
        return a + b

    def finalize(self, state):
        return state


def test_reduction_equals_in_memory(digits_store):
    full = digits_store.read("acts/act2").astype(np.float64)
    np.testing.assert_allclose(LocalEngine().run(digits_store, Sum()), full.sum(0), rtol=1e-9)


def test_subset_reads_only_its_chunks_and_rows(digits_store, monkeypatch):
    ids = np.array([3, 10, 1000, 1001])
    sub = make_subset(digits_store, ids, [1.0, 2.0, 3.0, 4.0])
    chunks = list(iter_chunks(digits_store, ["acts/act2"], sub))
    assert [c.index for c in chunks] == [0, 3]
    assert np.concatenate([c.rows for c in chunks]).tolist() == ids.tolist()
    full = digits_store.read("acts/act2").astype(np.float64)
    expected = (np.array([1, 2, 3, 4])[:, None] * full[ids]).sum(0)
    np.testing.assert_allclose(LocalEngine().run(digits_store, Sum(), sub), expected, rtol=1e-9)


def test_memory_is_bounded_by_the_chunk(digits_store, monkeypatch):
    sizes = []
    real = type(digits_store).read

    def spy(self, name, start=0, stop=None):
        out = real(self, name, start, stop)
        sizes.append(out.shape[0])
        return out

    monkeypatch.setattr(type(digits_store), "read", spy)
    LocalEngine().run(digits_store, Sum())
    assert max(sizes) <= digits_store.chunk_items and len(sizes) == 8


@pytest.mark.parametrize("items, weights, match", [
    ([1, 99999], None, r"items \[99999\] are not in the store"),
    ([1, 1], None, "repeat"),
    ([1, 2], [1.0], "shape of items"),
    ([1, 2], [1.0, -1.0], "non-negative"),
    (None, [1.0], "without items"),
    ([0.5], None, "integer item ids"),
])
def test_subset_errors(digits_store, items, weights, match):
    with pytest.raises(InvalidParameterError, match=match):
        make_subset(digits_store, items, weights)


def test_a_query_on_a_replaced_store_raises_before_reading(tmp_path, digits_store):
    import json
    import shutil

    from modeldx.errors import StoreReplacedError
    from modeldx.store import open_store

    path = tmp_path / "s"
    shutil.copytree(digits_store.path, path)
    st = open_store(path)
    assert LocalEngine().run(st, Sum()).shape == (16,)
    meta = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**meta, "store_id": "another"}))
    with pytest.raises(StoreReplacedError, match=f"the store at {path} was replaced.*open it again"):
        LocalEngine().run(st, Sum())
    (path / "manifest.json").unlink()
    with pytest.raises(StoreReplacedError):
        next(iter_chunks(st, ["acts/act2"]))
    assert LocalEngine().run(open_store(digits_store.path), Sum()).shape == (16,)
