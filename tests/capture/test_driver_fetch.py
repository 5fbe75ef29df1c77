"""Capture reads any data set in batches ahead of the model; the store is the same for all."""

import multiprocessing

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from modeldx import capture
from modeldx.capture.driver import _ToHost
from modeldx.errors import InvalidLabelError, InvalidParameterError


class Items(Dataset):
    """A plain map-style data set: one ``__getitem__`` per item."""

    def __init__(self, x, y, bad=None):
        self.x, self.y, self.bad = x, y, bad

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], -1 if i == self.bad else int(self.y[i])


class Batched(Items):
    """torch's batched protocol; records the id lists it is given."""

    def __init__(self, x, y):
        super().__init__(x, y)
        self.batches = []

    def __getitem__(self, i):
        raise AssertionError("read item by item")

    def __getitems__(self, ids):
        self.batches.append(list(ids))
        return [(self.x[i], int(self.y[i])) for i in ids]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model, digits):
    """The digits captured from modeldx's own arrays."""
    path = tmp_path_factory.mktemp("fetch") / "arrays"
    return capture(tiny_model, digits, path, **OPTIONS)


OPTIONS = dict(encoding="float32", chunk_items=256, batch_size=100, progress=False)


def assert_same_store(a, b):
    assert a.layers == b.layers
    for name in ("latent", "probs", *(f"acts/{layer}" for layer in a.layers)):
        np.testing.assert_array_equal(a.read(name), b.read(name), err_msg=name)
    cols = ["item_id", "label", "pred", "correct", "confidence", "loss"]
    assert a.items()[cols].equals(b.items()[cols])


def digit_tensors(digits):
    return digits.get_batch(np.arange(len(digits)))


@pytest.mark.parametrize("kind", ["tensor dataset", "getitems", "map-style", "loader with workers",
                                  "loader_workers argument"])
def test_every_kind_of_data_set_gives_the_same_store(tmp_path, tiny_model, digits, reference, kind):
    x, y = digit_tensors(digits)
    data, extra = {
        "tensor dataset": (TensorDataset(x, y), {}),
        "getitems": (Batched(x, y), {}),
        "map-style": (Items(x, y), {}),
        "loader with workers": (DataLoader(Items(x, y), batch_size=7, num_workers=2), {}),
        "loader_workers argument": (Items(x, y), {"loader_workers": 2}),
    }[kind]
    st = capture(tiny_model, data, tmp_path / "s", **OPTIONS, **extra)
    assert_same_store(st, reference)
    if kind == "getitems":
        # whole batches of the capture (after the probe's first items and the fingerprint's)
        sizes = [len(b) for b in data.batches]
        want = [100, 100, 56] * 7 + [5]  # 1,797 items: 7 chunks of 256 in batches of 100, and 5
        assert sizes[-len(want):] == want
    assert multiprocessing.active_children() == []  # the workers stopped with the capture


def test_a_subset_of_items_in_batches(tmp_path, tiny_model, digits):
    x, y = digit_tensors(digits)
    ids = np.arange(3, len(digits), 5)
    st = capture(tiny_model, TensorDataset(x, y), tmp_path / "s", items=ids, **OPTIONS)
    assert_same_store(st, capture(tiny_model, digits, tmp_path / "a", items=ids, **OPTIONS))


@pytest.mark.parametrize("workers", [0, 2])
def test_a_bad_label_in_a_later_chunk_keeps_the_chunks_before(tmp_path, tiny_model, digits, workers):
    x, y = digit_tensors(digits)
    with pytest.raises(InvalidLabelError, match="label -1 for item ids \\[700\\]"):
        capture(tiny_model, Items(x, y, bad=700), tmp_path / "s", loader_workers=workers, **OPTIONS)
    assert multiprocessing.active_children() == []


def test_loader_workers_is_checked(tmp_path, tiny_model, digits):
    with pytest.raises(InvalidParameterError, match="'loader_workers'"):
        capture(tiny_model, digits, tmp_path / "s", loader_workers=-1, progress=False)


def test_on_cpu_blocks_stay_as_they_are():
    t = torch.arange(6.0).reshape(2, 3)
    to_host = _ToHost(torch.device("cpu"))
    assert to_host.stream is None
    assert to_host({"a": t})["a"] is t
    to_host.wait()


class LabelKinds(Items):
    """Labels as users' data sets give them; ``batched`` also answers ``__getitems__``."""

    def __init__(self, x, y, kind, batched=False):
        super().__init__(x, y)
        self.kind = kind
        if batched:
            self.__getitems__ = lambda ids: [self[i] for i in ids]

    def __getitem__(self, i):
        y = int(self.y[i])
        label = {"tensor": torch.tensor(y), "tensor (1,)": torch.tensor([y]), "numpy": np.int64(y),
                 "numpy (1,)": np.array([y]), "numpy uint8": np.uint8(y)}[self.kind]
        return self.x[i], label


@pytest.mark.parametrize("batched", [False, True], ids=["getitem", "getitems"])
@pytest.mark.parametrize("kind", ["tensor", "tensor (1,)", "numpy", "numpy (1,)", "numpy uint8"])
def test_a_label_of_one_integer_in_any_container_is_that_integer(tmp_path, tiny_model, digits, reference,
                                                                 kind, batched):
    x, y = digit_tensors(digits)
    st = capture(tiny_model, LabelKinds(x, y, kind, batched), tmp_path / "s", **OPTIONS)
    assert_same_store(st, reference)


@pytest.mark.parametrize("label", [np.array([1.0]), np.array([1, 2]), torch.tensor([1.5])])
def test_a_label_that_is_not_one_integer_is_still_refused(tmp_path, tiny_model, label):
    data = [(torch.zeros(1, 8, 8), label)] * 4
    with pytest.raises(InvalidLabelError, match="must be integers"):
        capture(tiny_model, data, tmp_path / "s", **OPTIONS)


class Collated(Items):
    """``__getitems__`` that returns the batch collated, ``(inputs, labels)``: not torch's protocol."""

    def __getitems__(self, ids):
        return self.x[ids], self.y[ids]


def test_getitems_that_returns_a_collated_batch_is_named_as_such(tmp_path, tiny_model, digits):
    x, y = digit_tensors(digits)
    with pytest.raises(InvalidParameterError, match=r"returned a collated batch \(inputs, labels\)"):
        capture(tiny_model, Collated(x, y), tmp_path / "s", **OPTIONS)


def test_a_loader_whose_collate_fn_would_change_the_inputs_is_warned_about(tmp_path, tiny_model, digits,
                                                                          reference):
    x, y = digit_tensors(digits)
    scaled = DataLoader(TensorDataset(x, y), batch_size=50,
                        collate_fn=lambda items: (torch.stack([i[0] for i in items]) * 2,
                                                  torch.tensor([int(i[1]) for i in items])))
    with pytest.warns(UserWarning, match="collate_fn is not used"):
        st = capture(tiny_model, scaled, tmp_path / "s", **OPTIONS)
    assert_same_store(st, reference)  # the data set's items, as documented
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capture(tiny_model, DataLoader(TensorDataset(x, y), batch_size=50, shuffle=True),
                tmp_path / "plain", **OPTIONS)
