"""Capture's run step in a given chunk order: ``"random"`` writes a seeded permutation of the
chunks still to do, and the store is the one an ascending capture writes."""

import numpy as np
import pytest

from modeldx import capture
from modeldx.capture.driver import chunk_order
from modeldx.errors import InvalidParameterError
from modeldx.store.store import ChunkWriter


def test_random_order_is_a_seeded_permutation():
    order = chunk_order(range(20), "random", seed=1)
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert order == chunk_order(range(20), "random", seed=1) != chunk_order(range(20), "random", seed=2)
    assert chunk_order([5, 1, 3], "ascending") == [1, 3, 5]


def test_chunks_are_written_in_the_random_order(tmp_path, tiny_model, digits, digits_store, monkeypatch):
    written = []
    real = ChunkWriter.write_chunk

    def spy(self, index, arrays, items):
        written.append(index)
        return real(self, index, arrays, items)

    monkeypatch.setattr(ChunkWriter, "write_chunk", spy)
    st = capture(tiny_model, digits, tmp_path / "r", encoding="float32", chunk_items=256,
                 batch_size=100, progress=False, chunk_order="random", seed=7)
    assert written == chunk_order(range(8), "random", seed=7) != sorted(written)
    for name in digits_store.array_names():
        assert np.array_equal(st.read(name), digits_store.read(name)), name
    assert st.items().equals(digits_store.items())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"chunk_order": "backwards"}, "'chunk_order' parameter of capture must be"),
    ({"engine": "spark"}, "'engine' parameter of capture must be"),
    ({"seed": -1}, "'seed' parameter of capture must be"),
])
def test_bad_order_or_engine(tmp_path, tiny_model, digits, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        capture(tiny_model, digits, tmp_path / "s", progress=False, **kwargs)


def test_a_resumed_capture_keeps_the_order_its_manifest_records(tmp_path, tiny_model, digits, monkeypatch):
    """A random-order capture resumed with the default (ascending) order wrote the rest ascending while the
    manifest still said "random": progressive answers over it claimed to be a random sample. The resumed
    run follows the recorded order and seed, as docs/progressive.md says it does."""
    from tests.store.test_partial import CHUNK, interrupted

    first = interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch, chunk_order="random", seed=4)
    written = []
    real = ChunkWriter.write_chunk

    def spy(self, index, arrays, items):
        written.append(index)
        return real(self, index, arrays, items)

    monkeypatch.setattr(ChunkWriter, "write_chunk", spy)
    st = capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=CHUNK, batch_size=64,
                 progress=False)  # chunk_order left at its default
    todo = sorted(set(range(st.manifest.n_chunks)) - set(first))
    assert written == chunk_order(todo, "random", seed=4) != todo
    assert st.manifest.extra["chunk_order"] == "random" and st.manifest.extra["chunk_seed"] == 4
