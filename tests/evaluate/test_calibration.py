import numpy as np
import pandas as pd
import pytest

from modeldx.evaluate import sweep, write_report
from modeldx.evaluate.calibration import (
    calibration_table,
    compare_confidence,
    expected_calibration_error,
    reliability,
)


def frames():
    exact = pd.DataFrame({"layer": "a", "label": [0, 0, 1, 1], "correct": True, "rank": [1, 2, 1, 2],
                          "neuron": [5, 7, 1, 2]})
    exact.attrs["params"] = {"k": 2}
    approx = pd.DataFrame({"layer": "a", "label": [0, 0, 1, 1], "correct": True, "rank": [1, 2, 1, 2],
                           "neuron": [5, 9, 2, 1], "confidence": [0.95, 0.35, 0.8, np.nan]})
    return exact, approx


def test_compare_confidence_scores_each_group_and_bins_each_neuron():
    rows = {(label, metric): value for _, label, _, metric, value in compare_confidence(*frames())}
    assert rows[0, "precision@k"] == 0.5 and rows[0, "confidence"] == pytest.approx(0.65)
    assert rows[1, "precision@k"] == 1.0 and rows[1, "estimated"] == 0.5
    assert rows[-1, "bin9:n"] == 1 and rows[-1, "bin9:hits"] == 1 and rows[-1, "bin3:hits"] == 0
    assert rows[-1, "bin8:n"] == 1 and rows[-1, "bin8:confidence"] == pytest.approx(0.8)
    assert sum(v for (lbl, m), v in rows.items() if m.endswith(":n")) == 3  # the NaN is not binned
    assert rows[-1, "brier"] == pytest.approx((0.05 ** 2 + 0.35 ** 2 + 0.2 ** 2) / 3)


def test_groups_answered_by_every_neuron_are_left_out():
    exact, approx = frames()
    exact.attrs["params"] = {"k": 3}  # each group has 2 neurons < k: the layer is narrower than k
    rows = compare_confidence(exact, approx)
    assert not [r for r in rows if r[3] == "precision@k"]


def test_reliability_and_ece_sum_bins_over_samples():
    rows = []
    for fraction, conf, hits in [(0.1, 0.9, 9), (0.2, 0.9, 7)]:
        rows += [("m", fraction, 0, "q", "", -1, None, "bin9:n", 10.0),
                 ("m", fraction, 0, "q", "", -1, None, "bin9:confidence", conf * 10),
                 ("m", fraction, 0, "q", "", -1, None, "bin9:hits", float(hits))]
    results = pd.DataFrame(rows, columns=["method", "fraction", "seed", "query", "layer", "label", "correct",
                                          "metric", "value"])
    bins = reliability(results, "q")
    total = bins[bins.fraction.isna()].iloc[0]
    assert total.n == 20 and total.accuracy == pytest.approx(0.8) and total.confidence == pytest.approx(0.9)
    assert expected_calibration_error(bins[bins.fraction == 0.2]) == pytest.approx(0.2)
    assert expected_calibration_error(bins[bins.fraction.isna()]) == pytest.approx(0.1)


def test_sweep_checks_confidence_and_the_report_shows_it(digits_store, tmp_path):
    results = sweep(digits_store, ["uniform", "stratified-cm"], [0.1, 1.0], [0],
                    queries=["top-k-neurons", "top-k-confidence", "top-k-confidence-bootstrap"], k=3,
                    progress=False)
    table = calibration_table(results, "top-k-confidence")
    assert list(table.fraction) == [0.1, 1.0]
    full = table[table.fraction == 1.0].iloc[0]
    # the whole data as a sample: thinning keeps every item, so every answer is right and certain
    assert full["mean confidence"] == 1.0 and full["mean precision@k"] == 1.0 and full.ece == 0.0
    # the confidence query's answer is the headline answer: the same precision on the groups it answers
    same = results[results.metric == "precision@k"].pivot_table(
        index=["method", "fraction", "layer", "label", "correct"], columns="query", values="value").dropna()
    assert len(same) > 20 and (same["top-k-neurons"] == same["top-k-confidence"]).all()
    paths = write_report(results, tmp_path / "report")
    page = paths["report"].read_text()
    assert "reliability.png" in page and "How far to trust" in page
    assert paths["reliability"].read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "report" / "calibration-thinning.csv").is_file()
