"""Reading a store while a capture writes it: only chunks with a done marker, refreshed as they land,
the complete store once it finishes, and a replaced store refused."""

from __future__ import annotations

import errno

import numpy as np
import pandas as pd
import pytest

from modeldx import capture
from modeldx.errors import StoreReplacedError, StoreWriteError
from modeldx.queries import top_k_neurons
from modeldx.store import store as store_module
from modeldx.store.partial import PartialStore

CHUNK = 128


def interrupted(path, model, data, chunks: int, monkeypatch, **kwargs):
    """A capture that fails (disk full) after writing ``chunks`` chunks: a store with status capturing."""
    real = store_module.StoreWriter.write_chunk
    written = []

    def write(self, index, arrays, items):
        if len(written) == chunks:
            raise StoreWriteError(errno.ENOSPC, "the disk is full (test)")
        written.append(index)
        return real(self, index, arrays, items)

    monkeypatch.setattr(store_module.StoreWriter, "write_chunk", write)
    with pytest.raises(StoreWriteError):
        capture(model, data, path, encoding="float32", chunk_items=CHUNK, batch_size=64, progress=False,
                **kwargs)
    monkeypatch.setattr(store_module.StoreWriter, "write_chunk", real)
    return written


def test_a_snapshot_holds_the_done_chunks_and_answers_as_a_store_of_them(tmp_path, tiny_model, digits,
                                                                         digits_store, monkeypatch):
    written = interrupted(tmp_path / "s", tiny_model, digits, 4, monkeypatch, chunk_order="random", seed=1)
    watched = PartialStore(tmp_path / "s")
    assert not watched.complete and watched.done_chunks() == sorted(written)
    snap = watched.snapshot()
    assert snap.chunks == sorted(written) and not snap.complete
    rows = np.concatenate([np.arange(c * CHUNK, min((c + 1) * CHUNK, len(digits))) for c in snap.chunks])
    assert snap.n_items == rows.size
    np.testing.assert_array_equal(snap.items()["item_id"], rows)
    full = digits_store.items().iloc[rows].reset_index(drop=True)
    pd.testing.assert_frame_equal(snap.items()[full.columns], full, check_dtype=False)
    for name in ("acts/act2", "latent", "probs"):
        np.testing.assert_array_equal(snap.read(name), digits_store.read(name)[rows])
        np.testing.assert_array_equal(snap.read(name, 100, 300), digits_store.read(name)[rows[100:300]])
    # a query on the snapshot is the query on the same items of the complete store
    got = top_k_neurons(snap, k=3)
    want = top_k_neurons(digits_store, k=3, items=rows)
    pd.testing.assert_frame_equal(got, want)


def test_a_chunk_without_its_marker_is_not_read(tmp_path, tiny_model, digits, monkeypatch):
    written = interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch)
    # a chunk whose arrays landed but whose marker did not (the writer died in between)
    (tmp_path / "s" / "_progress" / f"chunk-{written[-1]:06d}.done").unlink()
    snap = PartialStore(tmp_path / "s").snapshot()
    assert snap.chunks == sorted(written[:-1])
    assert snap.n_items == 2 * CHUNK


def test_new_chunks_are_seen_and_a_finished_store_is_read_whole(tmp_path, tiny_model, digits, digits_store,
                                                                monkeypatch):
    interrupted(tmp_path / "s", tiny_model, digits, 2, monkeypatch)
    watched = PartialStore(tmp_path / "s")
    assert len(watched.snapshot().chunks) == 2
    interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch)  # resumed: three more
    assert len(watched.snapshot().chunks) == 5
    capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=CHUNK, batch_size=64,
            progress=False)  # resumed to the end: complete, its progress folder gone
    snap = watched.snapshot()
    assert watched.complete and snap.complete and snap.n_items == len(digits)
    assert snap.base.complete
    pd.testing.assert_frame_equal(snap.items(), digits_store.items())


def test_a_replaced_store_is_refused(tmp_path, tiny_model, digits, monkeypatch):
    interrupted(tmp_path / "s", tiny_model, digits, 2, monkeypatch)
    watched = PartialStore(tmp_path / "s")
    watched.snapshot()
    capture(tiny_model, digits, tmp_path / "s", encoding="float16", chunk_items=CHUNK, batch_size=64,
            progress=False, overwrite=True)  # other settings: a new store at the same path
    with pytest.raises(StoreReplacedError, match="replaced"):
        watched.snapshot()


def test_a_capture_in_progress_on_fsspec_storage_is_read_too(tiny_model, digits, digits_store, monkeypatch):
    import uuid

    url = f"memory://partial-{uuid.uuid4().hex}/s"
    written = interrupted(url, tiny_model, digits, 3, monkeypatch, chunk_order="random", seed=2)
    watched = PartialStore(url)
    assert watched.writing() is None and watched.done_chunks() == sorted(written)  # no lock to tell
    snap = watched.snapshot()
    rows = np.concatenate([np.arange(c * CHUNK, min((c + 1) * CHUNK, len(digits))) for c in snap.chunks])
    np.testing.assert_array_equal(snap.items()["item_id"], rows)
    pd.testing.assert_frame_equal(top_k_neurons(snap, k=3), top_k_neurons(digits_store, k=3, items=rows))
