"""Penn Treebank from the real files (MODELDX_DATA), and damaged copies of them."""

import shutil

import numpy as np
import pytest
import torch

from modeldx.data import load_ptb
from modeldx.errors import ChecksumError, DataNotFoundError, InvalidParameterError
from tests.conftest import other_data_root


def ptb_root():
    root = other_data_root()
    if not (root / "ptb" / "ptb.train.txt").is_file():
        pytest.fail(f"this test needs the Penn Treebank files in {root / 'ptb'}")
    return root


@pytest.fixture(scope="module")
def train():
    return load_ptb("train", root=ptb_root())


def test_split_sizes_with_one_eos_per_line(train):
    # tokens + one <eos> per line (README: 887,521 + 42,068; 70,390 + 3,370; 78,669 + 3,761)
    assert len(train) == 929589
    assert len(load_ptb("valid", root=ptb_root())) == 73760
    assert len(load_ptb("test", root=ptb_root())) == 82430
    eos = train.vocabulary.id("<eos>")
    assert int((train.ids == eos).sum()) == 42068


def test_ids_are_frequency_ranks_of_the_training_vocabulary(train):
    v = train.vocabulary
    assert len(v) == 10000 and v.words[:3] == ("the", "<unk>", "<eos>")
    assert train.ids.dtype == torch.int64 and int(train.ids.max()) == 9999
    np.testing.assert_array_equal(np.bincount(train.ids.numpy(), minlength=10000), v.counts)
    # the thesis' Table 5.1: tokens by rank range 0-9, 10-99, 100-999, 1000-9999
    assert [int(v.counts[a:b].sum()) for a, b in [(0, 10), (10, 100), (100, 1000), (1000, 10000)]] == [
        284831, 220678, 230649, 193431]


def test_valid_uses_the_training_vocabulary(train):
    valid = load_ptb("valid", root=ptb_root())
    assert valid.vocabulary == train.vocabulary
    first = (ptb_root() / "ptb" / "ptb.valid.txt").read_text().splitlines()[0].split()
    words = [valid.vocabulary.words[i] for i in valid.ids[: len(first) + 1].tolist()]
    assert words == [*first, "<eos>"]


def test_missing_file_says_where_it_looked(tmp_path):
    with pytest.raises(DataNotFoundError, match="ptb.valid.txt") as info:
        load_ptb("valid", root=tmp_path)
    assert str(tmp_path / "ptb") in str(info.value)


def test_damaged_file_is_a_checksum_error(tmp_path):
    (tmp_path / "ptb").mkdir()
    shutil.copy(ptb_root() / "ptb" / "ptb.train.txt", tmp_path / "ptb" / "ptb.train.txt")
    data = bytearray((ptb_root() / "ptb" / "ptb.valid.txt").read_bytes())
    data[500] = ord("x") if data[500] != ord("x") else ord("y")
    (tmp_path / "ptb" / "ptb.valid.txt").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="ptb.valid.txt is damaged.*MD5"):
        load_ptb("valid", root=tmp_path)
    (tmp_path / "ptb" / "ptb.valid.txt").write_bytes(bytes(data[:1000]))  # truncated
    with pytest.raises(ChecksumError, match="MD5"):
        load_ptb("valid", root=tmp_path)


def test_bad_split():
    with pytest.raises(InvalidParameterError, match="'split' parameter of load_ptb.*Got 'dev'"):
        load_ptb("dev", root=ptb_root())
