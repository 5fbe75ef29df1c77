"""Bad labels, single-logit models and empty data sets fail before anything is written."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from modeldx import capture, open_store
from modeldx.capture import hook_count
from modeldx.errors import (
    EmptyDatasetError,
    InvalidLabelError,
    ModeldxError,
    ModelOutputError,
    StoreIncompleteError,
)


def features(n=40, classes=3):
    g = np.random.default_rng(0)
    return g.normal(size=(n, 4)).astype(np.float32), g.integers(0, classes, n)


def mlp(out=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, out))


class Pairs(Dataset):
    """A torch data set whose labels are only seen when items are read."""

    def __init__(self, x, labels):
        self.x, self.labels = x, labels

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]), self.labels[i]


@pytest.mark.parametrize("bad, match", [(3, r"label 3.*item ids \[7\].*3 logits"),
                                        (-100, r"label -100.*item ids \[7\]")])
@pytest.mark.parametrize("wrap", ["arrays", "torch"])
def test_labels_out_of_range_are_refused_before_writing(tmp_path, bad, match, wrap):
    x, y = features()
    y[7] = bad
    data = (x, y) if wrap == "arrays" else Pairs(x, y)
    model = mlp()
    with pytest.raises(InvalidLabelError, match=match):
        capture(model, data, tmp_path / "s", batch_size=8, progress=False)
    assert not (tmp_path / "s").exists()
    assert hook_count(model) == 0


@pytest.mark.parametrize("label", ["cat", "1", 1.5, None])
def test_labels_that_are_not_integers(tmp_path, label):
    x, y = features()
    labels = list(y)
    labels[0] = label
    with pytest.raises(InvalidLabelError, match=r"item 0"):
        capture(mlp(), Pairs(x, labels), tmp_path / "s", progress=False)
    with pytest.raises(InvalidLabelError, match="integers"):
        capture(mlp(), (x, np.array(labels, dtype=object)), tmp_path / "t", progress=False)
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists()


def test_a_single_logit_model_is_refused(tmp_path):
    x, y = features(classes=2)
    with pytest.raises(ModelOutputError, match="one logit per class"):
        capture(mlp(out=1), (x, y), tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("data", [(np.zeros((0, 4), np.float32), np.zeros(0, int)),
                                  Pairs(np.zeros((0, 4), np.float32), []), []])
def test_an_empty_data_set_is_refused(tmp_path, data):
    with pytest.raises(EmptyDatasetError, match="no items"):
        capture(mlp(), data, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()
    capture(mlp(), features(), tmp_path / "s", progress=False)  # the path is still free


def test_a_bad_label_in_the_last_chunk_names_the_item_and_keeps_the_store_resumable(tmp_path):
    x, y = features()
    good = capture(mlp(), Pairs(x, y), tmp_path / "good", chunk_items=10, batch_size=5,
                   encoding="float32", progress=False)
    labels = y.copy()
    labels[37] = 9
    with pytest.raises(InvalidLabelError, match=r"item ids \[37\].*3 chunks written before it are kept.*"
                                                r"overwrite=True"):
        capture(mlp(), Pairs(x, labels), tmp_path / "s", chunk_items=10, batch_size=5,
                encoding="float32", progress=False)
    st = open_store(tmp_path / "s")
    assert st.done_chunks() == {0, 1, 2}  # the chunks before it are kept, the bad one not written
    np.testing.assert_array_equal(st.read("acts/2", 0, 30), good.read("acts/2", 0, 30))
    with pytest.raises(StoreIncompleteError):
        st.items()
    # running it again fails the same way, and nothing already written changes
    with pytest.raises(InvalidLabelError):
        capture(mlp(), Pairs(x, labels), tmp_path / "s", chunk_items=10, batch_size=5,
                encoding="float32", progress=False)
    assert open_store(tmp_path / "s").done_chunks() == {0, 1, 2}


def test_all_are_modeldx_errors():
    for cls in (EmptyDatasetError, InvalidLabelError, ModelOutputError):
        assert issubclass(cls, ModeldxError) and issubclass(cls, ValueError)


def test_check_says_a_store_left_by_a_bad_label_is_unfinished(tmp_path):
    from typer.testing import CliRunner

    from modeldx.cli import app

    x, y = features()
    labels = y.copy()
    labels[37] = 9
    with pytest.raises(InvalidLabelError):
        capture(mlp(), Pairs(x, labels), tmp_path / "s", chunk_items=10, batch_size=5, progress=False)
    result = CliRunner().invoke(app, ["check", str(tmp_path / "s"), "--quiet"])
    assert "unfinished (3 of" in result.output and "run the same capture again" in result.output
