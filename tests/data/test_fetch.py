"""BatchFetcher: batches in order, read ahead on a thread or in worker processes."""

import multiprocessing
import threading

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from modeldx.data import as_dataset
from modeldx.data.fetch import BatchFetcher
from modeldx.errors import InvalidLabelError


def arrays(n=50):
    g = np.random.default_rng(0)
    return as_dataset((g.normal(size=(n, 3)).astype(np.float32), g.integers(0, 4, n)))


def plan(n=50, size=8):
    return [np.arange(b, min(b + size, n)) for b in range(0, n, size)]


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_come_in_order_and_equal_get_batch(workers):
    ds = arrays()
    with BatchFetcher(ds, workers=workers) as fetcher:
        for _ in range(2):  # a second plan reuses the thread or the workers
            got = list(fetcher.batches(plan()))
            assert len(got) == len(plan())
            for ids, (x, y) in zip(plan(), got, strict=True):
                want_x, want_y = ds.get_batch(ids)
                assert torch.equal(x, want_x) and torch.equal(y, want_y)
        assert list(fetcher.batches([])) == []


def test_workers_stop_on_close():
    with BatchFetcher(arrays(), workers=2) as fetcher:
        list(fetcher.batches(plan()))
        assert len(multiprocessing.active_children()) >= 2
    assert multiprocessing.active_children() == []


class Pairs(Dataset):
    """Items made in Python; item ``bad`` has a label that is not a class index."""

    def __init__(self, n=40, bad=None):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((2,), float(i)), "x" if i == self.bad else i % 3


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_batch_raises_when_its_turn_comes(workers):
    ds = as_dataset(Pairs(bad=27))
    seen = []
    with BatchFetcher(ds, workers=workers) as fetcher, \
            pytest.raises(InvalidLabelError, match="item 27"):
        for x, _ in fetcher.batches(plan(40, 8)):
            seen.append(int(x[0, 0]))
    assert seen == [0, 8, 16]  # every batch before the bad one was served


class Gated(Dataset):
    """Records which items were read; reading item 8 (batch 1) sets an event."""

    def __init__(self):
        self.started = threading.Event()

    def __len__(self):
        return 16

    def __getitem__(self, i):
        if i == 8:
            self.started.set()
        return torch.zeros(2), 0


def test_the_next_batch_is_read_while_this_one_is_in_use():
    gated = Gated()
    with BatchFetcher(as_dataset(gated)) as fetcher:
        stream = fetcher.batches(plan(16, 8))
        next(stream)  # batch 0 handed out; batch 1 must now be read without being asked for
        assert gated.started.wait(timeout=10)
        next(stream)
