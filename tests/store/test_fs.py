"""Stores by URL through fsspec: ``memory://`` (within one process) and ``file://`` work for
capture, reading and every registered query, with the same answers as a store on a path."""

import uuid

import numpy as np
import pandas as pd
import pytest

from modeldx import capture, open_store
from modeldx.errors import StoreExistsError, StoreReplacedError
from modeldx.queries import QUERIES
from modeldx.store.fs import StoreFS, is_url
from modeldx.store.store import ChunkWriter
from tests.queries.test_conformance import args_of


@pytest.fixture(params=["memory", "file"])
def url(request, tmp_path):
    if request.param == "memory":
        return f"memory://modeldx-test-{uuid.uuid4().hex}/digits"
    return (tmp_path / "digits").as_uri()


def test_capture_read_and_query_by_url(url, tmp_path, tiny_model, digits):
    settings = dict(encoding="float32", chunk_items=256, batch_size=100, progress=False)
    st = capture(tiny_model, digits, url, **settings)
    # the reference: the same capture on a path, made now (torch's thread count, which earlier
    # tests may have changed, moves float sums by an ulp)
    digits_store = capture(tiny_model, digits, tmp_path / "on-a-path", **settings)
    assert st.path == url and st.complete
    again = open_store(url, model=tiny_model)
    for name in digits_store.array_names():
        assert np.array_equal(again.read(name), digits_store.read(name)), name
    assert again.items().equals(digits_store.items())
    assert again.verify() == [] and again.stored_bytes() > 0
    assert again.done_chunks() == set(range(again.manifest.n_chunks))
    for name, info in QUERIES.items():
        args = args_of(name)
        pd.testing.assert_frame_equal(info.func(again, **args), info.func(digits_store, **args),
                                      check_exact=False, rtol=1e-6, obj=name)
    # samples are written and listed through the same layer
    writable = open_store(url, mode="r+")
    writable.save_sample("s", np.arange(3), np.ones(3), {"how": "test"})
    assert writable.samples() == ["s"] and writable.load_sample("s")[2] == {"how": "test"}
    with pytest.raises(StoreExistsError, match="complete store"):
        capture(tiny_model, digits, url, encoding="float32", chunk_items=256, progress=False)


def test_a_file_url_is_the_local_filesystem_with_its_lock(tmp_path):
    fs = StoreFS((tmp_path / "s").as_uri())
    assert fs.local and fs.root == str(tmp_path / "s")
    assert is_url("memory://a") and not is_url(tmp_path)


def test_atomic_write_list_size_and_remove(url):
    fs = StoreFS(url)
    fs.makedirs("sub")
    fs.write_bytes_atomic("sub/a.bin", b"12345")
    fs.write_bytes_atomic("sub/a.bin", b"123")  # replaced whole
    fs.touch("sub/b.done")
    assert fs.read_bytes("sub/a.bin") == b"123" and fs.list("sub") == ["a.bin", "b.done"]
    assert fs.size("sub/a.bin") == 3 and fs.size() == 3 and fs.list("nope") == []
    stamp = fs.stamp("sub/a.bin")
    fs.write_bytes_atomic("sub/a.bin", b"abcdef")
    assert fs.stamp("sub/a.bin") != stamp and fs.stamp("sub/none") is None
    fs.remove("sub", recursive=True)
    assert not fs.exists("sub")
    fs.remove("sub/none")  # missing is fine unless asked


def test_a_chunk_writer_checks_the_store_id(tmp_path, tiny_model, digits):
    path = tmp_path / "s"
    st = capture(tiny_model, digits, path, chunk_items=256, progress=False)
    with pytest.raises(StoreReplacedError, match="not the one planned"):
        ChunkWriter(path, "0" * 32)
    with pytest.raises(StoreExistsError, match="complete"):
        ChunkWriter(path, st.store_id)
