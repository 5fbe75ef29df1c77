"""Every registered sampler: exact budget, distinct ids, reproducible, valid weights, clear errors,
and it reads nothing of a store but the latent pass."""

import numpy as np
import pytest

import modeldx
from modeldx.errors import InvalidParameterError
from modeldx.sampling import SAMPLERS, available, get


@pytest.fixture(scope="module")
def latent(digits_store):
    items = digits_store.items()
    return digits_store.read("latent"), items.pred.to_numpy(), items.label.to_numpy()


def fitted(name, latent, seed=0):
    lat, pred, labels = latent
    return get(name)(seed=seed).fit(lat, pred, labels)


def test_the_paper_seven_and_latent_cm_are_registered():
    assert available() == sorted(["uniform", "stratified-cm", "latent-grid", "vas", "eb-tree",
                                  "latent-gmm", "latent-svm", "latent-cm"])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("fraction", [0.002, 0.05, 0.3, 1.0])
def test_budget_ids_and_weights(name, fraction, latent):
    n = latent[0].shape[0]
    sel = fitted(name, latent).select(fraction)
    budget = max(1, round(fraction * n))
    assert sel.rows.size == budget
    assert np.unique(sel.rows).size == budget and (np.diff(sel.rows) > 0).all()
    assert sel.rows.min() >= 0 and sel.rows.max() < n
    assert np.isfinite(sel.weights).all() and (sel.weights >= 1 - 1e-9).all()
    assert sel.weights.sum() <= n * (1 + 1e-9)
    assert sel.info["method"] == name and sel.info["budget"] == budget and sel.info["seed"] == 0


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_same_seed_same_sample(name, latent):
    a = fitted(name, latent, seed=3).select(0.05)
    b = fitted(name, latent, seed=3).select(0.05)
    assert np.array_equal(a.rows, b.rows) and np.array_equal(a.weights, b.weights)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_errors(name, latent):
    lat, pred, labels = latent
    sampler = fitted(name, latent)
    for bad in (0, 0.0, 1.5, -0.1, float("nan")):
        with pytest.raises(InvalidParameterError, match="'fraction' parameter"):
            sampler.select(bad)
    nan = lat.copy()
    nan[7, 2] = np.nan
    with pytest.raises(InvalidParameterError, match=r"NaN or infinite.*\[7\]"):
        get(name)().fit(nan, pred, labels)
    with pytest.raises(InvalidParameterError, match="at least"):
        get(name)().fit(lat[:1], pred[:1], labels[:1])
    with pytest.raises(InvalidParameterError, match="not fitted"):
        get(name)().select(0.1)
    if get(name).supervised:
        with pytest.raises(InvalidParameterError, match="supervised: pass labels"):
            get(name)().fit(lat, pred)


def test_bad_settings_name_the_parameter():
    with pytest.raises(InvalidParameterError, match="'j' parameter of LatentGMMSampler.*Got 1.5"):
        get("latent-gmm")(j=1.5).fit(np.zeros((30, 2)), np.zeros(30, int))
    with pytest.raises(InvalidParameterError, match="'method' parameter must be one of"):
        get("kmeans")


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sample_reads_only_the_latent_pass(name, digits_store, tmp_path, monkeypatch):
    import shutil

    path = tmp_path / "store"
    shutil.copytree(digits_store.path, path)
    read = []
    real = type(digits_store).read

    def spy(self, array, start=0, stop=None):
        read.append(array)
        return real(self, array, start, stop)

    monkeypatch.setattr(type(digits_store), "read", spy)
    s = modeldx.sample(path, name, 0.1, seed=1)
    assert set(read) == {"latent"}
    again = modeldx.sampling.load_sample(path, s.name)
    assert np.array_equal(again.item_ids, s.item_ids) and again.info["method"] == name
