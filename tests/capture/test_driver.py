import errno

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from modeldx import capture, latent_pass, open_store
from modeldx.data import ArrayDataset
from modeldx.errors import (
    InvalidParameterError,
    NonFiniteActivationError,
    StoreExistsError,
    StoreIncompleteError,
    StoreMismatchError,
    StoreWriteError,
)
from modeldx.store import store as store_module
from tests.conftest import TinyNet


def manual_forward(model, x):
    """What capture should record, computed by hand."""
    with torch.no_grad():
        a1 = model.act1(model.conv(x))
        h = model.fc1(model.flat(model.pool(a1)))
        a2 = model.act2(h)
        logits = model.fc2(a2)
    return a1, a2, logits


def test_values_match_a_manual_forward_pass(digits_store, tiny_model, digits):
    x, y = digits.get_batch(np.arange(len(digits)))
    a1, a2, logits = manual_forward(tiny_model, x)
    assert digits_store.layers == ["act1", "act2", "fc2"]
    # one batch here, batches of 100 in the store: equal up to float32 summation order
    close = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(digits_store.read("acts/act1"), a1.amax(dim=(2, 3)).numpy(), **close)
    np.testing.assert_allclose(digits_store.read("acts/act2"), a2.numpy(), **close)
    np.testing.assert_allclose(digits_store.read("acts/fc2"), logits.numpy(), **close)
    np.testing.assert_allclose(digits_store.read("latent"), a2.numpy(), **close)  # input of the head
    probs = torch.softmax(logits, 1)
    np.testing.assert_allclose(digits_store.read("probs"), probs.numpy(), **close)
    items = digits_store.items()
    assert items.item_id.tolist() == list(range(len(digits)))
    assert (items.label.to_numpy() == y.numpy()).all()
    assert (items.pred.to_numpy() == logits.argmax(1).numpy()).mean() > 0.999
    assert (items.correct == (items.label == items.pred)).all()
    np.testing.assert_allclose(items.loss, F.cross_entropy(logits, y, reduction="none").numpy(), rtol=1e-5)
    spec = digits_store.manifest.layer("act1")
    assert (spec.kind, spec.raw_shape, spec.neurons, spec.reduction) == ("conv", [4, 8, 8], 4, "max")


def test_mean_and_full_map_reductions(tmp_path, tiny_model, digits):
    x, _ = digits.get_batch(np.arange(len(digits)))
    a1, _, _ = manual_forward(tiny_model, x)
    st = capture(tiny_model, digits, tmp_path / "mean", layers=["act1"], encoding="float32",
                 reduction="mean", progress=False)
    np.testing.assert_allclose(st.read("acts/act1"), a1.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    st = capture(tiny_model, digits, tmp_path / "full", layers=["act1"], encoding="float32",
                 reduction="none", progress=False)
    assert st.neurons("act1") == 4 * 8 * 8
    np.testing.assert_allclose(st.read("acts/act1"), a1.flatten(1).numpy(), rtol=1e-5, atol=1e-6)


def test_gradients_match_autograd(tmp_path, tiny_model, digits):
    st = capture(tiny_model, digits, tmp_path / "g", layers=["act1", "act2"], gradients=True,
                 encoding="float32", batch_size=64, progress=False)
    x, y = digits.get_batch(np.arange(10))
    a1 = tiny_model.act1(tiny_model.conv(x))
    a2 = tiny_model.act2(tiny_model.fc1(tiny_model.flat(tiny_model.pool(a1))))
    loss = F.cross_entropy(tiny_model.fc2(a2), y, reduction="sum")
    g1, g2 = torch.autograd.grad(loss, [a1, a2])
    np.testing.assert_allclose(st.read("grads/act2", 0, 10), g2.numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(st.read("grads/act1", 0, 10), g1.mean(dim=(2, 3)).numpy(), rtol=1e-4,
                               atol=1e-7)


def test_subset_of_items(tmp_path, tiny_model, digits, digits_store):
    ids = np.array([900, 5, 77, 1500])
    st = capture(tiny_model, digits, tmp_path / "sub", items=ids, encoding="float32", progress=False)
    assert st.items().item_id.tolist() == [5, 77, 900, 1500]
    np.testing.assert_allclose(st.read("acts/act2"), digits_store.read("acts/act2")[[5, 77, 900, 1500]],
                               rtol=1e-5, atol=1e-6)
    assert st.manifest.extra["subset"] is True
    with pytest.raises(InvalidParameterError, match=r"ids in \[0, 1797\).*\[5000\]"):
        capture(tiny_model, digits, tmp_path / "bad", items=[1, 5000], progress=False)
    with pytest.raises(InvalidParameterError, match="repeat"):
        capture(tiny_model, digits, tmp_path / "bad", items=[1, 1], progress=False)


def test_latent_pass_stores_no_layers(tmp_path, tiny_model, digits, digits_store):
    st = latent_pass(tiny_model, digits, tmp_path / "lat", progress=False)
    assert st.layers == [] and st.manifest.latent_dim == 16
    # the latent is float16 unless the store is float32
    np.testing.assert_allclose(st.read("latent"), digits_store.read("latent"), rtol=1e-3, atol=1e-3)
    assert st._array("latent").dtype == np.float16
    assert sorted(p.name for p in (tmp_path / "lat" / "arrays.zarr").iterdir()) == [
        "item_id", "latent", "probs", "zarr.json"]


def test_model_state_is_restored(tmp_path, digits):
    model = TinyNet().train()
    capture(model, digits, tmp_path / "s", progress=False)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_float16_and_uint8_stay_close_to_float32(tmp_path, tiny_model, digits, digits_store):
    exact = digits_store.read("acts/act2")
    for enc, tol in (("float16", 1e-2), ("uint8", None)):
        st = capture(tiny_model, digits, tmp_path / enc, encoding=enc, chunk_items=256, progress=False)
        got = st.read("acts/act2")
        if tol is None:  # half a quantization step of each chunk's range
            step = np.stack([(exact[s:e].max(0) - exact[s:e].min(0)) / 255 for s, e in st.chunk_bounds()])
            bound = np.repeat(step, [e - s for s, e in st.chunk_bounds()], axis=0) / 2 + 1e-5
            assert (np.abs(got - exact) <= bound).all()
        else:
            np.testing.assert_allclose(got, exact, rtol=tol, atol=tol)


def test_existing_store_is_not_overwritten(tmp_path, tiny_model, digits):
    path = tmp_path / "s"
    capture(tiny_model, digits, path, progress=False)
    before = (path / "manifest.json").read_text()
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        capture(tiny_model, digits, path, progress=False)
    assert (path / "manifest.json").read_text() == before
    capture(tiny_model, digits, path, encoding="float32", overwrite=True, progress=False)
    assert open_store(path).manifest.encoding == "float32"


def test_refuses_to_write_into_a_folder_that_is_not_a_store(tmp_path, tiny_model, digits):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(StoreExistsError, match="not a modeldx store"):
        capture(tiny_model, digits, tmp_path / "mine", overwrite=True, progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_open_with_another_model_or_dataset_names_the_mismatch(digits_store, tiny_model, digits):
    assert open_store(digits_store.path, model=tiny_model, dataset=digits).complete
    with pytest.raises(StoreMismatchError, match="another model"):
        open_store(digits_store.path, model=TinyNet())
    with pytest.raises(StoreMismatchError, match="another dataset"):
        open_store(digits_store.path, dataset=digits.subset(np.arange(100)))


def test_nan_activations_stop_the_capture_and_keep_the_store_readable(tmp_path, digits):
    model = TinyNet()
    # one item of the third chunk carries an infinite pixel, which turns into inf and NaN
    inputs = digits.inputs.copy()
    inputs[600, 3, 3] = np.inf
    data = ArrayDataset(inputs, digits.labels, scale=1 / 16, add_channel=True)
    with pytest.raises(NonFiniteActivationError, match=r"NaN or infinite.*item ids: \[600\]"):
        capture(model, data, tmp_path / "s", chunk_items=256, progress=False)
    st = open_store(tmp_path / "s")
    assert st.status == "capturing" and st.done_chunks() == {0, 1}
    np.testing.assert_array_equal(st.read("latent", 0, 2).shape, (2, 16))
    with pytest.raises(StoreIncompleteError, match="2 of 8 chunks.*resume"):
        st.items()


def test_full_disk_is_a_clear_error_and_the_capture_resumes(tmp_path, tiny_model, digits, monkeypatch,
                                                            digits_store):
    real = store_module._write_parquet_atomic
    calls = {"n": 0}

    def failing(table, *where):  # the disk fills up while the third chunk's rows are written
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(table, *where)

    monkeypatch.setattr(store_module, "_write_parquet_atomic", failing)
    path = tmp_path / "s"
    with pytest.raises(StoreWriteError, match="the disk is full.*resume"):
        capture(tiny_model, digits, path, encoding="float32", chunk_items=256, progress=False)
    st = open_store(path)
    assert st.status == "capturing" and st.done_chunks() == {0, 1}
    monkeypatch.setattr(store_module, "_write_parquet_atomic", real)
    done = capture(tiny_model, digits, path, encoding="float32", chunk_items=256, progress=False)
    assert done.complete
    for name in digits_store.array_names():
        np.testing.assert_array_equal(done.read(name), digits_store.read(name))
    assert done.items().equals(digits_store.items())


def test_resuming_with_other_settings_is_refused(tmp_path, tiny_model, digits, monkeypatch):
    def fail(table, *where):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(store_module, "_write_parquet_atomic", fail)
    with pytest.raises(StoreWriteError):
        capture(tiny_model, digits, tmp_path / "s", progress=False)
    monkeypatch.undo()
    with pytest.raises(StoreMismatchError, match="encoding"):
        capture(tiny_model, digits, tmp_path / "s", encoding="float32", progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"encoding": "int4"}, "'encoding' parameter of capture"),
    ({"batch_size": 0}, "'batch_size'"),
    ({"reduction": "median"}, "'reduction'"),
    ({"reduction": {"nope": "max"}}, "not captured"),
])
def test_bad_settings(tmp_path, tiny_model, digits, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        capture(tiny_model, digits, tmp_path / "s", progress=False, **kwargs)


def test_any_torch_dataset_works(tmp_path, tiny_model, digits, digits_store):
    from torch.utils.data import TensorDataset

    x, y = digits.get_batch(np.arange(len(digits)))
    st = capture(tiny_model, TensorDataset(x, y), tmp_path / "td", encoding="float32", chunk_items=256,
                 batch_size=100, progress=False)
    np.testing.assert_array_equal(st.read("acts/act2"), digits_store.read("acts/act2"))
    assert st.items().label.tolist() == y.tolist()


def test_random_chunk_order_is_a_seeded_permutation_and_the_same_store(tmp_path, tiny_model, digits,
                                                                       digits_store, monkeypatch):
    written = []
    real = store_module.StoreWriter.write_chunk

    def spy(self, index, arrays, items):
        written.append(index)
        return real(self, index, arrays, items)

    monkeypatch.setattr(store_module.StoreWriter, "write_chunk", spy)
    orders = []
    for name in ("a", "b"):
        written.clear()
        st = capture(tiny_model, digits, tmp_path / name, encoding="float32", chunk_items=256,
                     batch_size=100, progress=False, chunk_order="random", seed=3)
        orders.append(list(written))
    assert orders[0] == orders[1]  # seeded
    assert sorted(orders[0]) == list(range(st.manifest.n_chunks)) and orders[0] != sorted(orders[0])
    assert st.manifest.extra["chunk_order"] == "random" and st.manifest.extra["chunk_seed"] == 3
    for name in st.array_names():  # the same store as in ascending order
        np.testing.assert_array_equal(st.read(name), digits_store.read(name))
    pd.testing.assert_frame_equal(st.items(), digits_store.items())
    with pytest.raises(InvalidParameterError, match="chunk_order"):
        capture(tiny_model, digits, tmp_path / "c", chunk_order="shuffled", progress=False)
