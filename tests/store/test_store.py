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
    assert manifest["status"] == "complete" and manifest["format_version"] == 2
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


# --- damaged stores: every damage raises a StoreError naming store, array and chunk -------------
import shutil  # noqa: E402

from modeldx.errors import (  # noqa: E402
    EncodingOverflowError,
    InvalidParameterError,
    SampleNotFoundError,
    StoreCorruptError,
)
from modeldx.queries import dead_neurons  # noqa: E402

RECOVERY = "run the same capture again"


@pytest.fixture
def copy(tmp_path, digits_store):
    path = tmp_path / "copy"
    shutil.copytree(digits_store.path, path)
    return path


def _chunk(path, array="acts/act2", index=3):
    return path / "arrays.zarr" / array / "c" / str(index) / "0"


def _edit_manifest(path, change):
    meta = json.loads((path / "manifest.json").read_text())
    meta = change(meta)
    (path / "manifest.json").write_text(json.dumps(meta))


def test_a_missing_chunk_raises_instead_of_reading_zeros(copy):
    _chunk(copy).unlink()
    st = open_store(copy)
    pattern = r"chunk 3 \(items 768-1023\) of array 'acts/act2' is missing.*" + RECOVERY
    with pytest.raises(StoreCorruptError, match=pattern) as info:
        st.read("acts/act2")
    assert str(copy) in str(info.value)
    np.testing.assert_array_equal(st.read("acts/act2", 0, 768), open_store(copy).read("acts/act2", 0, 768))
    with pytest.raises(StoreCorruptError, match="is missing"):
        dead_neurons(st, layers="act2")


def test_a_chunk_of_zeros_is_written_so_missing_is_always_damage(copy):
    # fc2's chunk files all exist, and so would a chunk equal to the fill value: zarr skips those
    # by default; the store writes them
    from modeldx.store import StoreWriter
    from modeldx.store.manifest import Manifest

    m = Manifest(n_items=4, chunk_items=2, encoding="float32", layers=[], latent_layer=None,
                 latent_dim=2, num_classes=2, gradients=False, model_fingerprint="m",
                 dataset_fingerprint="d")
    with StoreWriter(copy.parent / "zeros", m, array_dims={"latent": 2, "probs": 2}) as w:
        for i in range(2):
            w.write_chunk(i, {"latent": np.zeros((2, 2), np.float32), "probs": np.zeros((2, 2), np.float32)},
                          {"item_id": np.arange(2 * i, 2 * i + 2)})
        st = w.finalize()
    assert _chunk(st.path, "latent", 1).is_file()
    assert st.read("latent").sum() == 0 and st.verify() == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_changed_or_truncated_chunk_raises(copy, damage):
    path = _chunk(copy, "acts/act1", 5)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    st = open_store(copy)
    with pytest.raises(StoreCorruptError,
                       match=r"chunk 5 \(items 1280-1535\) of array 'acts/act1' does not decode"):
        st.read("acts/act1", 100, 1700)
    st.read("acts/act1", 0, 1280)  # the other chunks stay readable


def test_manifest_disagreeing_with_items_or_arrays_is_refused(copy):
    _edit_manifest(copy, lambda m: {**m, "n_items": 1500})
    with pytest.raises(StoreCorruptError, match=r"says 1500 items, items.parquet has 1797 rows.*" + RECOVERY):
        open_store(copy)
    _edit_manifest(copy, lambda m: {**m, "n_items": 1797,
                                    "layers": [{**m["layers"][1], "neurons": 17} if i == 1 else s
                                               for i, s in enumerate(m["layers"])]})
    with pytest.raises(StoreCorruptError, match=r"'acts/act2' has shape \(1797, 16\).*\(1797, 17\).*neurons"):
        open_store(copy)


@pytest.mark.parametrize(("encoding", "message"), [
    ("uint8", r"encoding 'uint8', but array 'acts/act1' holds float32 values"),
    ("int4", r"encoding 'int4'; expected one of"),
])
def test_a_manifest_encoding_that_is_not_the_arrays_is_refused(copy, encoding, message):
    # decoding float32 values as uint8 codes (or the reverse) would answer wrongly in silence
    assert open_store(copy).manifest.encoding == "float32"
    _edit_manifest(copy, lambda m: {**m, "encoding": encoding})
    with pytest.raises(StoreCorruptError, match=message):
        open_store(copy)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: [m], "holds a JSON list, expected an object"),
    (lambda m: {k: v for k, v in m.items() if k != "chunk_items"}, "has no 'chunk_items'"),
    (lambda m: {**m, "n_items": "many"}, "'n_items' is 'many', expected an integer"),
    (lambda m: {**m, "layers": [{"name": "act1"}]}, "layer 0 has no 'module'"),
])
def test_a_damaged_manifest_is_a_store_error(copy, change, message):
    _edit_manifest(copy, change)
    with pytest.raises(StoreCorruptError, match=message + ".*" + RECOVERY):
        open_store(copy)
    (copy / "manifest.json").write_text('{"format": "modeldx-st')
    with pytest.raises(StoreCorruptError, match="not valid JSON"):
        open_store(copy)


def test_a_missing_items_table_is_a_store_error(copy):
    (copy / "items.parquet").unlink()
    with pytest.raises(StoreCorruptError, match="items.parquet is missing.*" + RECOVERY):
        open_store(copy)
    (copy / "items.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(StoreCorruptError, match="items.parquet cannot be read"):
        open_store(copy)


def test_a_format_1_store_still_opens(copy, digits_store):
    # format 1: no store id, no item_id array, chunks equal to the fill value may be absent
    _edit_manifest(copy, lambda m: {**{k: v for k, v in m.items() if k != "store_id"},
                                    "format_version": 1})
    shutil.rmtree(copy / "arrays.zarr" / "item_id")
    st = open_store(copy)
    np.testing.assert_array_equal(st.read("acts/act2"), digits_store.read("acts/act2"))
    _chunk(copy).unlink()
    assert (st.read("acts/act2", 768, 1024) == 0).all()  # what format 1 meant by a missing chunk


def test_float16_overflow_names_array_and_items(tmp_path):
    from modeldx.store import StoreWriter
    from modeldx.store.manifest import Manifest

    m = Manifest(n_items=4, chunk_items=2, encoding="float16", layers=[], latent_layer=None,
                 latent_dim=2, num_classes=2, gradients=False, model_fingerprint="m",
                 dataset_fingerprint="d")
    with StoreWriter(tmp_path / "s", m, array_dims={"latent": 2, "probs": 2}) as w, \
            pytest.raises(EncodingOverflowError, match=r"latent, items 2-3: .*encoding='float32'") as info:
        w.write_chunk(1, {"latent": np.array([[1, 2], [3, 1e6]], np.float32),
                          "probs": np.zeros((2, 2), np.float32)}, {"item_id": np.arange(2)})
    assert isinstance(info.value, OverflowError)


@pytest.mark.parametrize("name", ["", ".hidden", "..", "../evil", "a/b", "a\\b"])
def test_sample_names_must_be_plain(digits_store, tmp_path, name):
    st = open_store(digits_store.path, mode="r+")
    with pytest.raises(InvalidParameterError, match="plain file name"):
        st.save_sample(name, np.arange(3), np.ones(3), {})
    with pytest.raises(InvalidParameterError, match="plain file name"):
        st.load_sample(name)


def test_unknown_sample_and_array_are_store_errors(digits_store):
    with pytest.raises(SampleNotFoundError, match="^no sample 'nope'") as info:
        digits_store.load_sample("nope")
    assert isinstance(info.value, KeyError)
    with pytest.raises(StoreError, match="^array 'grads/act1' is not in the store"):
        digits_store.read("grads/act1")


def test_one_open_store_and_no_torch_in_the_store():
    import ast
    from pathlib import Path

    import modeldx
    import modeldx.api
    import modeldx.store

    assert modeldx.open_store is modeldx.api.open_store is modeldx.store.open_store
    # the store reads without torch: no module-level import of it, nor of modeldx above the store
    for path in Path(modeldx.store.__file__).parent.glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                for name in names:
                    assert name.split(".")[0] != "torch", path
                    if name.startswith("modeldx."):
                        assert name.split(".")[1] in ("store", "errors", "_atomic"), (path, name)


def test_open_store_checks_model_and_dataset(digits_store, tiny_model, digits):
    from modeldx.errors import StoreMismatchError
    from tests.conftest import TinyNet

    assert open_store(digits_store.path, model=tiny_model, dataset=digits).complete
    with pytest.raises(StoreMismatchError, match="another model"):
        open_store(digits_store.path, model=TinyNet())


def test_xarray_and_duckdb_read_the_same_numbers(copy):
    import duckdb
    import xarray as xr

    st = open_store(copy, mode="r+")
    top = xr.open_zarr(copy / "arrays.zarr", consolidated=False)
    acts = xr.open_zarr(copy / "arrays.zarr", group="acts", consolidated=False)
    act2 = acts["act2"]
    assert act2.dims == ("item", "neuron:act2") and top["latent"].dims == ("item", "latent")
    assert {k: act2.attrs[k] for k in ("layer", "module", "module_type", "kind", "reduction", "encoding")} \
        == {"layer": "act2", "module": "act2", "module_type": "ReLU", "kind": "dense",
            "reduction": "none", "encoding": "float32"}
    assert acts["act1"].attrs["kind"] == "conv" and "max over its map" in acts["act1"].attrs["neuron_layout"]

    items = duckdb.sql(f"SELECT item_id, label FROM '{copy / 'items.parquet'}' ORDER BY item_id").df()
    np.testing.assert_array_equal(top["item_id"].values, items.item_id)  # row i is item item_id[i]
    labels = xr.DataArray(items.label.to_numpy(), dims="item")
    class_means = act2.groupby(labels.rename("label")).mean("item").values
    ours = st.read("acts/act2")
    expected = np.stack([ours[st.items().label.to_numpy() == c].mean(0) for c in range(10)])
    np.testing.assert_allclose(class_means, expected, rtol=1e-6)

    ids = np.array([4, 17, 400, 1796])
    st.save_sample("few", ids, np.full(4, 449.25), {"method": "hand"})
    joined = duckdb.sql(
        f"SELECT s.item_id, i.label, s.weight FROM '{copy / 'samples' / 'few.parquet'}' s "
        f"JOIN '{copy / 'items.parquet'}' i USING (item_id) ORDER BY s.item_id").df()
    got_ids, weights, _ = st.load_sample("few")
    assert joined.item_id.tolist() == got_ids.tolist() and joined.weight.tolist() == weights.tolist()
    assert joined.label.tolist() == st.items().set_index("item_id").loc[ids, "label"].tolist()


def test_uint8_arrays_say_how_to_decode(tmp_path, tiny_model, digits):
    import xarray as xr

    from modeldx import capture

    st = capture(tiny_model, digits, tmp_path / "q", encoding="uint8", chunk_items=256, progress=False)
    acts = xr.open_zarr(st.path / "arrays.zarr", group="acts", consolidated=False)
    quant = xr.open_zarr(st.path / "arrays.zarr", group="quant/acts", consolidated=False)
    assert "quant/acts/act2[chunk, 0, neuron]" in acts["act2"].attrs["decode"]
    assert quant["act2"].dims == ("chunk", "param", "neuron:act2")
    code = acts["act2"].values.astype(np.float32)
    params = quant["act2"].values[np.arange(st.n_items) // 256]  # chunk = item // chunk_items
    np.testing.assert_allclose(params[:, 0] + code * params[:, 1], st.read("acts/act2"), rtol=1e-6)


def test_a_chunk_writer_that_outlived_its_store_writes_nothing_into_the_new_one(tmp_path, tiny_model, digits,
                                                                                  monkeypatch):
    """A capture worker still busy when its coordinator died, and the store was captured again over it."""
    from modeldx import capture
    from modeldx.errors import StoreReplacedError
    from modeldx.store.manifest import read_manifest
    from modeldx.store.store import ChunkWriter
    from tests.store.test_partial import CHUNK, interrupted

    path = tmp_path / "s"
    interrupted(path, tiny_model, digits, 2, monkeypatch, chunk_order="random", seed=0)
    stale = ChunkWriter(path, read_manifest(path).store_id)
    source = capture(tiny_model, digits, tmp_path / "source", encoding="float32", chunk_items=CHUNK,
                     batch_size=64, progress=False)
    newer = capture(tiny_model, digits, path, encoding="float16", chunk_items=CHUNK, batch_size=64,
                    progress=False, overwrite=True)
    before = {name: newer.read(name) for name in newer.array_names()}
    start, stop = 3 * CHUNK, 4 * CHUNK
    arrays = {name: source.read(name, start, stop) for name in source.array_names()}
    items = {c: v.to_numpy() for c, v in source.items().iloc[start:stop].items()}
    with pytest.raises(StoreReplacedError, match="replaced"):
        stale.write_chunk(3, arrays, items)
    again = open_store(path)
    assert again.store_id == newer.store_id and again.verify() == []
    for name, values in before.items():
        np.testing.assert_array_equal(again.read(name), values, err_msg=name)
