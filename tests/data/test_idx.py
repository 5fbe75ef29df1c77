import gzip
import shutil

import numpy as np
import pytest

from modeldx.data import IDXFormatError, read_idx
from modeldx.errors import DataNotFoundError
from tests.conftest import MNIST_DIR

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_reads_published_mnist_test_files():
    images = read_idx(MNIST_DIR / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(MNIST_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert images.max() == 255 and images.min() == 0
    assert np.bincount(labels).tolist() == TEST_COUNTS


def test_raw_and_gzipped_files_read_the_same(tmp_path):
    src = MNIST_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz"
    raw = tmp_path / "labels-idx1-ubyte"
    with gzip.open(src) as fin, raw.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
    assert np.array_equal(read_idx(raw), read_idx(src))


def test_truncated_file_is_an_error_naming_the_sizes(tmp_path):
    src = MNIST_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(src) as fh:
        data = fh.read()
    bad = tmp_path / "short-idx1-ubyte"
    bad.write_bytes(data[:-10])
    with pytest.raises(IDXFormatError, match="truncated or corrupt"):
        read_idx(bad)


def test_not_idx_is_an_error(tmp_path):
    bad = tmp_path / "x"
    bad.write_bytes(b"hello world")
    with pytest.raises(IDXFormatError, match="magic"):
        read_idx(bad)


def test_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="not found"):
        read_idx(tmp_path / "nope.gz")


def test_idx_format_error_lives_in_errors_and_is_re_exported():
    from modeldx import errors
    from modeldx.data import idx

    assert idx.IDXFormatError is errors.IDXFormatError is IDXFormatError
    assert issubclass(IDXFormatError, errors.ModeldxError) and issubclass(IDXFormatError, ValueError)
