import numpy as np
import pandas as pd
import pytest

from modeldx.engine.subset import Sample
from modeldx.queries import QUERIES, class_means, class_means_table


def direct(acts: np.ndarray, labels: np.ndarray, n_classes: int, w: np.ndarray | None = None):
    w = np.ones(len(labels)) if w is None else w
    means = np.zeros((acts.shape[1], n_classes))
    counts = np.zeros(n_classes)
    for c in range(n_classes):
        m = labels == c
        counts[c] = w[m].sum()
        if counts[c] > 0:
            means[:, c] = (w[m, None] * acts[m].astype(np.float64)).sum(0) / counts[c]
    active = (w[:, None] * (acts > 1e-6)).sum(0) / w.sum()
    return means, active, counts


def test_class_means_equal_numpy_on_the_full_store(digits_store):
    cm = class_means(digits_store)
    labels = digits_store.items()["label"].to_numpy()
    assert cm.layers == list(digits_store.layers)
    assert cm.classes == [str(c) for c in (digits_store.manifest.classes or range(10))]
    for layer in cm.layers:
        means, active, counts = direct(digits_store.read(f"acts/{layer}"), labels, 10)
        assert cm.means[layer].shape == (digits_store.neurons(layer), 10)
        assert cm.means[layer].dtype == np.float64
        np.testing.assert_allclose(cm.means[layer], means, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(cm.active[layer], active)
        np.testing.assert_allclose(cm.counts, counts)
    assert cm.source == {"exact": True, "items": 1797, "fraction": 1.0}


def test_class_means_on_a_weighted_sample(digits_store):
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(1797, 300, replace=False))
    w = rng.uniform(1, 9, ids.size)
    sample = Sample(ids, w, {"sample": "s", "method": "test", "fraction": 300 / 1797})
    cm = class_means(digits_store, layers="act2", items=sample)
    table = digits_store.items()
    rows = np.searchsorted(table["item_id"].to_numpy(), ids)
    labels = table["label"].to_numpy()[rows]
    means, active, counts = direct(digits_store.read("acts/act2")[rows], labels, 10, w)
    np.testing.assert_allclose(cm.means["act2"], means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cm.active["act2"], active)
    np.testing.assert_allclose(cm.counts, counts)
    assert cm.source["exact"] is False and cm.source["sample"] == "s"


def test_each_layer_is_read_once_per_chunk(digits_store, monkeypatch):
    reads: list[str] = []
    real = type(digits_store).read

    def spy(self, name, *args, **kwargs):
        reads.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(type(digits_store), "read", spy)
    class_means(digits_store, layers=["act1", "act2"])
    chunks = len(digits_store.chunk_bounds())
    assert sorted(reads) == sorted(["acts/act1"] * chunks + ["acts/act2"] * chunks)


def test_an_empty_class_has_mean_zero_and_count_zero(digits_store):
    labels = digits_store.items()["label"].to_numpy()
    ids = digits_store.items()["item_id"].to_numpy()[labels != 3]
    cm = class_means(digits_store, layers="act2", items=ids)
    assert cm.counts[3] == 0 and cm.empty().tolist() == [c == 3 for c in range(10)]
    assert np.isfinite(cm.means["act2"]).all() and (cm.means["act2"][:, 3] == 0).all()


def test_the_registered_table(digits_store):
    assert "class-means" in QUERIES
    frame = class_means_table(digits_store, layers="act2")
    cm = class_means(digits_store, layers="act2")
    assert list(frame.columns) == ["layer", "neuron", "class", "class_name", "mean", "count", "active"]
    assert len(frame) == 16 * 10
    pivot = frame.pivot(index="neuron", columns="class", values="mean").to_numpy()
    np.testing.assert_allclose(pivot, cm.means["act2"])
    assert frame.attrs["query"] == "class-means" and frame.attrs["params"] == {"layers": ["act2"]}
    assert frame.loc[frame["class"] == 0, "count"].iloc[0] == pytest.approx(cm.counts[0])


def test_the_cli_runs_it(digits_store, tmp_path):
    from typer.testing import CliRunner

    from modeldx.cli import app

    out = tmp_path / "means.csv"
    result = CliRunner().invoke(app, ["query", "class-means", str(digits_store.path), "-p", 'layers="act2"',
                                      "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    np.testing.assert_allclose(frame["mean"], class_means_table(digits_store, layers="act2")["mean"])
