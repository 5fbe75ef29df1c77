"""What a Dask worker reads: a chunk's rows of the items table, and stores opened once per process."""

import json
import pickle
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from modeldx.errors import InvalidParameterError, StoreReplacedError
from modeldx.store import cache, open_store


def test_items_parquet_has_one_row_group_per_chunk_and_a_chunk_reads_its_own(digits_store, monkeypatch):
    meta = pq.read_metadata(digits_store.path / "items.parquet")
    bounds = digits_store.chunk_bounds()
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [b - a for a, b in bounds]
    st = open_store(digits_store.path)  # nothing cached: reads one row group
    read = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, i, *a, **k: read.append(i) or real(self, i, *a, **k))
    part = st.chunk_items_table(3)
    assert read == [3] and st._items is None
    pd.testing.assert_frame_equal(part, digits_store.items().iloc[bounds[3][0]:bounds[3][1]])


def test_chunk_items_of_an_older_store_with_one_row_group(digits_store, tmp_path):
    path = tmp_path / "old"
    shutil.copytree(digits_store.path, path)
    pq.write_table(pq.read_table(path / "items.parquet"), path / "items.parquet")  # one row group
    st = open_store(path)
    assert pq.read_metadata(path / "items.parquet").num_row_groups == 1
    lo, hi = st.chunk_bounds()[6]
    pd.testing.assert_frame_equal(st.chunk_items_table(6), digits_store.items().iloc[lo:hi])
    with pytest.raises(InvalidParameterError, match=r"chunk index must be in \[0, 8\)"):
        st.chunk_items_table(8)


def test_a_pickled_store_reopens_by_path_once_and_refuses_a_replaced_one(digits_store, tmp_path):
    path = tmp_path / "s"
    shutil.copytree(digits_store.path, path)
    st = open_store(path)
    again = pickle.loads(pickle.dumps(st))
    assert again.path == path and again.store_id == st.store_id
    assert pickle.loads(pickle.dumps(st)) is again  # opened once per process
    meta = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**meta, "store_id": "another"}))
    with pytest.raises(StoreReplacedError, match="was replaced"):
        pickle.loads(pickle.dumps(st))  # the cached one notices
    cache.forget(str(path))
    with pytest.raises(StoreReplacedError):
        pickle.loads(pickle.dumps(st))  # a fresh open finds another store_id
    shutil.rmtree(path)
    with pytest.raises(StoreReplacedError, match="or deleted"):
        cache.open_cached(str(path), st.store_id)
