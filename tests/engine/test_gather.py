import numpy as np

from modeldx.engine.gather import gather_rows


def test_gathers_exactly_the_rows_reading_only_their_chunks(digits_store, monkeypatch):
    rows = np.array([3, 300, 301, 1500])
    read = []
    real = type(digits_store).read

    def spy(self, name, start=0, stop=None):
        read.append(start)
        return real(self, name, start, stop)

    monkeypatch.setattr(type(digits_store), "read", spy)
    got = gather_rows(digits_store, "acts/act2", 16, rows)
    assert sorted(read) == [0, 256, 1280]  # the chunks holding them, no other
    monkeypatch.undo()
    np.testing.assert_array_equal(got, digits_store.read("acts/act2")[rows])


def test_no_rows_is_an_empty_block(digits_store):
    got = gather_rows(digits_store, "acts/act2", 16, np.array([], dtype=np.int64))
    assert got.shape == (0, 16) and got.dtype == np.float32
