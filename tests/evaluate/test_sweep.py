import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modeldx.errors import InvalidParameterError
from modeldx.evaluate import COLUMNS, summarize, sweep, write_report
from modeldx.sampling import available


@pytest.fixture(scope="module")
def results(digits_store):
    return sweep(digits_store, ["uniform", "latent-svm"], [0.05, 1.0], [0, 1],
                 queries=["top-k-neurons", "confusion-matrix", "dead-neurons"], k=3, progress=False)


def test_long_format(results):
    assert list(results.columns) == COLUMNS
    assert set(results.method) == {"uniform", "latent-svm"} and set(results.seed) == {0, 1}
    top = results[results["query"] == "top-k-neurons"]
    assert set(top.metric) == {"precision@k"} and top.value.between(0, 1).all()
    # every exact group is scored in every run: 3 layers x groups with items
    per_run = top.groupby(["method", "fraction", "seed"]).size()
    assert per_run.nunique() == 1


def test_the_whole_data_as_a_sample_is_exact(results):
    full = results[(results.fraction == 1.0) & (results["query"] != "sampling")]
    top = full[full.metric == "precision@k"]
    assert (top.value == 1.0).all()
    assert (full[full.metric == "jaccard_dead"].value == 1.0).all()
    # uniform weights are exact on the whole data, so the confusion matrix is too
    js = full[(full.metric == "js_divergence") & (full.method == "uniform")].value
    assert np.allclose(js, 0.0, atol=1e-12)


def test_summary_and_report(results, tmp_path):
    summary = summarize(results)
    row = summary[(summary.method == "uniform") & (summary.fraction == 1.0) &
                  (summary.metric == "precision@k")].iloc[0]
    assert row["mean"] == 1.0 and row["low"] == row["high"] == 1.0 and row["runs"] == 2
    paths = write_report(results, tmp_path / "report", context={"store": "digits"})
    assert pd.read_csv(paths["results"]).shape == results.shape
    page = paths["report"].read_text()
    assert "top-k-neurons-precisionatk.png" in page and "latent-svm" in page
    png = paths["top-k-neurons-precisionatk"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_errors(digits_store, tmp_path, tiny_model, digits):
    with pytest.raises(InvalidParameterError, match="'method' parameter must be one of"):
        sweep(digits_store, ["nope"], [0.1], [0], progress=False)
    with pytest.raises(InvalidParameterError, match="'fractions'"):
        sweep(digits_store, ["uniform"], [0.0], [0], progress=False)
    with pytest.raises(InvalidParameterError, match="cannot be evaluated"):
        sweep(digits_store, ["uniform"], [0.1], [0], queries=["linear-cka"], progress=False)
    import modeldx

    latent = modeldx.latent_pass(tiny_model, digits, tmp_path / "lat", progress=False)
    with pytest.raises(InvalidParameterError, match="holds no layers"):
        sweep(latent, ["uniform"], [0.1], [0], progress=False)


def test_the_console_table_marks_the_best_sampler_of_each_fraction(results):
    from rich.console import Console

    from modeldx.evaluate.report import print_sampler_table

    console = Console(record=True, width=200)
    wide = print_sampler_table(console, summarize(results), "top-k-neurons", "precision@k")
    assert list(wide.columns) == [0.05, 1.0] and set(wide.index) == {"uniform", "latent-svm"}
    text = console.export_text()
    assert "uniform" in text and "100%" in text and "1.000" in text


def test_the_interval_across_seeds_is_a_t_interval():
    values = [0.80, 0.85, 0.90, 0.82, 0.88]
    results = pd.DataFrame([("m", 0.01, seed, "top-k-neurons", "act1", 0, True, "precision@k", v)
                            for seed, v in enumerate(values)], columns=COLUMNS)
    row = summarize(results).iloc[0]
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert stats.t.ppf(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert row["runs"] == 5 and row["mean"] == pytest.approx(np.mean(values))
    assert row["high"] - row["mean"] == pytest.approx(half)
    assert row["mean"] - row["low"] == pytest.approx(half)


def test_every_registered_sampler_is_swept_by_default_latent_cm_included(digits_store):
    # the demo and `modeldx evaluate` pass methods=None: their tables show every sampler
    results = sweep(digits_store, None, [0.2], [0], k=3, progress=False)
    assert set(results.method) == set(available()) and "latent-cm" in set(results.method)


def test_one_run_has_no_interval_rather_than_a_zero_width_one():
    results = pd.DataFrame([("m", 0.01, 0, "top-k-neurons", "act1", 0, True, "precision@k", 0.8)],
                           columns=COLUMNS)
    row = summarize(results).iloc[0]
    assert row["runs"] == 1 and row["mean"] == pytest.approx(0.8)
    assert np.isnan(row["low"]) and np.isnan(row["high"])
