import json

import numpy as np
import pytest

from modeldx.errors import (
    LayerNotFoundError,
    StoreError,
    StoreExistsError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from modeldx.store import open_store


def test_layout_on_disk(digits_store):
    root = digits_store.path
    assert {p.name for p in root.iterdir()} >= {"manifest.json", "items.parquet", "arrays.zarr"}
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["format_version"] == 1
    assert manifest["model_fingerprint"] and manifest["dataset_fingerprint"]
    assert [spec["name"] for spec in manifest["layers"]] == ["act1", "act2", "fc2"]
    zarr_meta = json.loads((root / "arrays.zarr" / "acts" / "act2" / "zarr.json").read_text())
    assert zarr_meta["zarr_format"] == 3
    assert zarr_meta["chunk_grid"]["configuration"]["chunk_shape"] == [256, 16]


def test_read_slices_and_unknown_names(digits_store):
    full = digits_store.read("acts/act2")
    np.testing.assert_array_equal(digits_store.read("acts/act2", 250, 700), full[250:700])
    with pytest.raises(LayerNotFoundError, match="'act9'.*act1, act2, fc2"):
        digits_store.read("acts/act9")
    with pytest.raises(KeyError, match="'grads/act1'"):
        digits_store.read("grads/act1")


def test_samples_round_trip_and_read_only(digits_store):
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        digits_store.save_sample("s", np.arange(3), np.ones(3), {})
    st = open_store(digits_store.path, mode="r+")
    st.save_sample("first10", np.arange(10), np.full(10, 179.7), {"method": "uniform", "fraction": 0.0056})
    ids, weights, info = st.load_sample("first10")
    assert ids.tolist() == list(range(10)) and weights[0] == 179.7 and info["method"] == "uniform"
    assert "first10" in st.samples()
    with pytest.raises(StoreExistsError, match="overwrite=True"):
        st.save_sample("first10", np.arange(3), np.ones(3), {})
    with pytest.raises(ValueError, match="plain file name"):
        st.save_sample("../escape", np.arange(3), np.ones(3), {})
    with pytest.raises(KeyError, match="no sample 'nope'"):
        st.load_sample("nope")


def test_open_errors(tmp_path, digits_store):
    with pytest.raises(StoreNotFoundError, match="no store"):
        open_store(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreNotFoundError, match="not a modeldx store"):
        open_store(tmp_path / "plain")
    with pytest.raises(ValueError, match="'mode' parameter"):
        open_store(digits_store.path, mode="w")


def test_newer_format_is_refused(tmp_path, digits_store):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(digits_store.path, copy)
    meta = json.loads((copy / "manifest.json").read_text())
    meta["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="newer modeldx"):
        open_store(copy)


def test_summary(digits_store):
    s = digits_store.summary()
    assert s["items"] == 1797 and s["status"] == "complete" and s["chunks"] == "8/8 of 256 items"
    assert s["bytes"] > 1797 * (4 + 16 + 10) * 4  # float32 arrays, compressed but not that much
