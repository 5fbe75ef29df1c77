import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from modeldx.data import (
    ArrayDataset,
    SplitDataset,
    TorchDatasetAdapter,
    as_dataset,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
)
from modeldx.errors import DataNotFoundError, InvalidLabelError, InvalidParameterError
from tests.conftest import MNIST_DIR, other_data_root


def test_mnist_test_split(mnist_test):
    assert len(mnist_test) == 10000 and mnist_test.split == "test"
    x, y = mnist_test.get_batch(np.arange(5))
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    # normalised with MNIST's mean and std: the background is (0 - 0.1307) / 0.3081
    assert torch.isclose(x.min(), torch.tensor(-0.1307 / 0.3081), atol=1e-5)
    assert y.tolist() == [7, 2, 1, 0, 4]


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELDX_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="MODELDX_DATA") as info:
        load_mnist("test", root=tmp_path)
    assert str(tmp_path / "mnist") in str(info.value)


def test_bad_split_and_name():
    with pytest.raises(InvalidParameterError, match="'split' parameter.*Got 'valid'"):
        load_mnist("valid", root=MNIST_DIR)
    with pytest.raises(InvalidParameterError, match="cifar"):
        load_dataset("cifar")


def test_fashion_mnist_from_the_shared_data_root():
    ds = load_fashion_mnist("test", root=other_data_root())
    assert len(ds) == 10000
    assert np.bincount(ds.labels).tolist() == [1000] * 10
    assert ds.classes[9] == "Ankle boot"


def test_digits(digits):
    assert len(digits) == 1797
    x, _ = digits.get_batch(np.arange(3))
    assert x.shape == (3, 1, 8, 8) and float(x.max()) <= 1.0


def test_numpy_tuple_and_torch_dataset_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    a = as_dataset((x, y))
    b = as_dataset(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)))
    assert isinstance(a, ArrayDataset) and isinstance(b, TorchDatasetAdapter)
    idx = np.array([3, 1, 7])
    for got in (a.get_batch(idx), b.get_batch(idx)):
        assert torch.equal(got[0], torch.from_numpy(x[idx]))
        assert got[1].tolist() == y[idx].tolist()


def test_fingerprint_changes_with_data():
    x = np.zeros((10, 2))
    y = np.arange(10) % 2
    assert ArrayDataset(x, y).fingerprint() == ArrayDataset(x.copy(), y).fingerprint()
    x2 = x.copy()
    x2[3, 1] = 1
    assert ArrayDataset(x2, y).fingerprint() != ArrayDataset(x, y).fingerprint()


def test_split_dataset_keeps_order_and_names():
    a = ArrayDataset(np.arange(6).reshape(3, 2), np.array([0, 1, 2]), split="train")
    b = ArrayDataset(np.arange(6, 10).reshape(2, 2), np.array([3, 4]), split="test")
    ds = SplitDataset({"train": a, "test": b})
    assert len(ds) == 5
    x, y = ds.get_batch(np.array([4, 0, 3]))
    assert y.tolist() == [4, 0, 3]
    assert x[0].tolist() == [8.0, 9.0]
    assert ds.split_of(np.array([0, 2, 3])).tolist() == ["train", "train", "test"]


@pytest.mark.parametrize("inputs, labels, match", [
    (np.zeros(5), np.zeros(5, int), "at least 2 axes"),
    (np.zeros((5, 2)), np.zeros(4, int), r"shape \(5,\)"),
    (np.zeros((5, 2)), np.zeros(5), "integers"),
])
def test_array_dataset_rejects_bad_arrays(inputs, labels, match):
    with pytest.raises(InvalidParameterError, match=match):
        ArrayDataset(inputs, labels)


def test_as_dataset_rejects_other_things():
    with pytest.raises(InvalidParameterError, match="Got list"):
        as_dataset([1, 2, 3])


def test_integer_inputs_stay_integers_unless_normalised():
    x = np.arange(12).reshape(4, 3).astype(np.int32)
    y = np.array([0, 1, 0, 1])
    got, _ = ArrayDataset(x, y).get_batch(np.arange(4))
    assert got.dtype == torch.int64 and got.tolist() == x.tolist()
    assert ArrayDataset(x, y, scale=1 / 255).get_batch(np.arange(4))[0].dtype == torch.float32
    got, _ = as_dataset(TensorDataset(torch.from_numpy(x), torch.from_numpy(y))).get_batch(np.arange(4))
    assert got.dtype == torch.int32  # a torch data set's dtype is kept as it is


def test_a_dataloader_stands_for_its_dataset():
    x, y = np.arange(10.0).reshape(5, 2), np.arange(5) % 2
    base = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    ds = as_dataset(DataLoader(base, batch_size=2, shuffle=True))
    assert isinstance(ds, TorchDatasetAdapter) and len(ds) == 5
    assert ds.get_batch(np.array([4, 0]))[0].tolist() == [[8.0, 9.0], [0.0, 1.0]]
    arrays = ArrayDataset(x, y)
    assert as_dataset(DataLoader(arrays, batch_size=2)) is arrays

    class Stream(IterableDataset):
        def __iter__(self):
            yield from zip(x, y, strict=True)

    with pytest.raises(InvalidParameterError, match="IterableDataset"):
        as_dataset(DataLoader(Stream()))


def test_a_list_of_pairs():
    pairs = [(np.array([i, i + 1]), i % 3) for i in range(6)]
    ds = as_dataset(pairs)
    x, y = ds.get_batch(np.array([5, 1]))
    assert x.tolist() == [[5, 6], [1, 2]] and y.tolist() == [2, 1]
    assert len(as_dataset([])) == 0
    with pytest.raises(InvalidParameterError, match="Got list"):
        as_dataset([1, 2, 3])


@pytest.mark.parametrize("label", ["2", "cat", 1.0, None])
def test_labels_must_be_integers(label):
    ds = as_dataset([(np.zeros(2), 0), (np.zeros(2), label)])
    with pytest.raises(InvalidLabelError, match=r"item 1 has the label"):
        ds.get_batch(np.array([0, 1]))
    assert ds.get_batch(np.array([0]))[1].tolist() == [0]
    assert as_dataset([(np.zeros(2), torch.tensor(2)), (np.zeros(2), np.int8(1))]).get_batch(
        np.arange(2))[1].tolist() == [2, 1]


def test_labels_of_without_reading_inputs():
    a = ArrayDataset(np.zeros((3, 2)), np.array([0, 1, 2]), split="train")
    b = ArrayDataset(np.zeros((2, 2)), np.array([3, 4]), split="test")
    assert SplitDataset({"train": a, "test": b}).labels_of(np.array([4, 0])).tolist() == [4, 0]
    pairs = as_dataset([(np.zeros(2), 0)])
    assert SplitDataset({"a": a, "b": pairs}).labels_of(np.array([0, 3])) is None


def test_an_input_that_is_not_a_tensor_is_a_clear_error():
    ds = as_dataset([({"a": torch.zeros(3)}, 0), ({"a": torch.ones(3)}, 1)])
    with pytest.raises(InvalidParameterError, match=r"input of item 0 .* is a dict"):
        ds.get_batch(np.arange(2))
