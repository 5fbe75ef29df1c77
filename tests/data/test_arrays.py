"""TorchDatasetAdapter reads batches whole where the data set allows, with the same tensors."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from modeldx.data import as_dataset
from modeldx.errors import InvalidLabelError, InvalidParameterError


def tensors(n=30):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 1, 4, 4, generator=g), torch.randint(0, 5, (n,), generator=g)


class Items(Dataset):
    """A plain map-style data set over tensors: one ``__getitem__`` per item."""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.calls = []

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        self.calls.append(i)
        return self.x[i], int(self.y[i])


class Batched(Items):
    """Also speaks torch's batched protocol."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.batches = []

    def __getitems__(self, ids):
        self.batches.append(list(ids))
        return [(self.x[i], int(self.y[i])) for i in ids]


IDS = np.array([3, 0, 7, 29, 12])


def test_a_tensor_dataset_is_indexed_directly(monkeypatch):
    x, y = tensors()
    want = as_dataset(Items(x, y)).get_batch(IDS)
    ds = as_dataset(TensorDataset(x, y.int()))

    def no_items(self, i):
        raise AssertionError("read item by item")

    monkeypatch.setattr(TensorDataset, "__getitem__", no_items)
    got = ds.get_batch(IDS)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert got[1].dtype == torch.int64


def test_a_tensor_dataset_subclass_with_its_own_getitem_is_read_item_by_item():
    x, y = tensors()

    class Doubled(TensorDataset):
        def __getitem__(self, i):
            return self.tensors[0][i] * 2, self.tensors[1][i]

    got = as_dataset(Doubled(x, y)).get_batch(IDS)
    assert torch.equal(got[0], x[IDS] * 2)


def test_float_labels_of_a_tensor_dataset_are_still_refused():
    x, _ = tensors()
    with pytest.raises(InvalidLabelError, match="must be integers"):
        as_dataset(TensorDataset(x, torch.rand(len(x)))).get_batch(IDS)


def test_getitems_gets_the_whole_batch():
    x, y = tensors()
    data = Batched(x, y)
    got = as_dataset(data).get_batch(IDS)
    want = as_dataset(Items(x, y)).get_batch(IDS)
    assert data.batches == [IDS.tolist()] and data.calls == []
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_getitems_must_return_one_item_per_id():
    x, y = tensors()
    data = Batched(x, y)
    data.__getitems__ = lambda ids: (x[ids], y[ids])  # a collated batch, not a list of items
    with pytest.raises(InvalidParameterError, match="must return a list of 5"):
        as_dataset(data).get_batch(IDS)


def test_a_plain_dataset_is_read_item_by_item():
    x, y = tensors()
    data = Items(x, y)
    got = as_dataset(data).get_batch(IDS)
    assert data.calls == IDS.tolist()
    assert torch.equal(got[0], x[IDS]) and torch.equal(got[1], y[IDS])


def test_a_dataloader_lends_its_workers():
    x, y = tensors()
    assert as_dataset(DataLoader(Items(x, y), num_workers=2)).workers == 2
    assert as_dataset(Items(x, y)).workers == 0
    split = as_dataset({"a": DataLoader(Items(x, y), num_workers=1), "b": Items(x, y)})
    assert split.workers == 1
    assert as_dataset(DataLoader(TensorDataset(x, y), num_workers=2)).workers == 0  # read whole
