"""The dynamics views' routes (FastAPI's TestClient) on real recorded runs: answers, NaN-safe JSON,
blue-noise sampled lines and their zoom, contributors, 404/409 naming the value, Host and token."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from modeldx.dynamics import STATS, contribution_series
from modeldx.live.dynamics_app import DEFAULT_LINES, create_dynamics_app, finite_or_name

TOKEN = "a-token-long-enough-1234"
BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def finite(dynamics_runs):
    app = create_dynamics_app(dynamics_runs["finite"], model=dynamics_runs["model"])
    return TestClient(app, base_url=BASE)


@pytest.fixture(scope="module")
def broken(dynamics_runs):
    return TestClient(create_dynamics_app(dynamics_runs["nan"], model=dynamics_runs["model"]), base_url=BASE)


def strict(text: str):
    """JSON as a browser parses it: NaN or Infinity literals are an error."""
    def refuse(name):
        raise AssertionError(f"non-standard JSON literal {name}")
    return json.loads(text, parse_constant=refuse)


def test_the_page_and_the_run(finite, dynamics_runs):
    run = dynamics_runs["finite"]
    page = finite.get("/")
    assert page.status_code == 200 and 'src="static/dynamics.js"' in page.text
    for name in ("dynamics.js", "dynamics.css"):
        assert finite.get(f"/static/{name}").status_code == 200
    r = strict(finite.get("/api/run").text)
    assert r["status"] == "complete" and r["n_snapshots"] == run.n_snapshots
    assert [layer["name"] for layer in r["layers"]] == run.layers
    assert r["layers"][0] == {"name": "0", "neurons": 24, "stats": list(STATS)}
    assert r["steps"] == run.steps.tolist() and r["loss"] == pytest.approx(run.loss.tolist())
    assert len(r["losses"]["steps"]) == 40 and r["first_nonfinite"] is None and r["failure"] is None
    assert r["contributors"]["available"] is True


def test_a_nan_run_survives_json_and_names_the_first_nonfinite_snapshot(broken, dynamics_runs):
    run = dynamics_runs["nan"]
    first = run.first_nonfinite()
    r = strict(broken.get("/api/run").text)  # no NaN literal anywhere
    assert r["first_nonfinite"] == {"snapshot": first, "step": int(run.steps[first])}
    assert r["loss"][first] in ("nan", "inf") and all(isinstance(v, float) for v in r["loss"][:first])
    assert "nan" in r["losses"]["loss"]
    summaries = strict(broken.get("/api/summaries/max_abs").text)
    assert set(summaries["layers"]) == set(run.layers)
    assert summaries["layers"]["0"]["nonfinite"][-1] == 24  # every neuron broke in the end
    assert summaries["layers"]["0"]["mean"][-1] == "nan"


def test_finite_or_name():
    assert finite_or_name([1.5, np.nan, np.inf, -np.inf]) == [1.5, "nan", "inf", "-inf"]


def test_lines_are_blue_noise_sampled_with_outliers_and_zoom_resamples(finite, dynamics_runs):
    run = dynamics_runs["finite"]
    d = strict(finite.get("/api/lines/2/mean").text)
    assert d["neurons"] == d["eligible"] == 24 and d["m"] == DEFAULT_LINES
    assert len(d["lines"]) == 24 and len({line["neuron"] for line in d["lines"]}) == 24  # m > n: all of them
    d = strict(finite.get("/api/lines/2/mean?m=6").text)
    assert len(d["lines"]) == 6 and d["steps"] == run.steps.tolist()
    series = run.series("2", "mean")
    for line in d["lines"]:
        np.testing.assert_allclose(line["values"], series[:, line["neuron"]], rtol=1e-6)
    assert any(line["outlier"] for line in strict(finite.get("/api/lines/2/mean").text)["lines"])

    # a time window and a value band: only neurons with a value in the band there, re-sampled
    x = series[3:9]
    lo, hi = float(np.quantile(x, 0.6)), float(np.quantile(x, 0.9))
    z = strict(finite.get(f"/api/lines/2/mean?start=3&stop=9&lo={lo}&hi={hi}&m=4").text)
    inside = np.flatnonzero(((x >= lo) & (x <= hi)).any(0))
    assert z["eligible"] == len(inside) and len(z["lines"]) == min(4, len(inside))
    assert {line["neuron"] for line in z["lines"]} <= set(inside.tolist())
    assert z["steps"] == run.steps[3:9].tolist() and z["value_range"] == [lo, hi]
    assert all(len(line["values"]) == 6 for line in z["lines"])


def test_lines_of_a_blown_up_layer_are_compared_before_it_broke(broken, dynamics_runs):
    run = dynamics_runs["nan"]
    first = run.first_nonfinite()
    d = strict(broken.get("/api/lines/2/max_abs?m=8").text)
    assert len(d["lines"]) == 8 and all(line["nonfinite"] for line in d["lines"])
    assert 2 <= d["basis"] <= first + 1  # thinned over the snapshots before most series broke
    assert not any(line["early"] for line in d["lines"])  # they all broke together
    assert "nan" in d["lines"][0]["values"] or "inf" in d["lines"][0]["values"]


def test_the_neuron_view_has_every_stat_and_its_top_contributors(finite, dynamics_runs):
    run, model = dynamics_runs["finite"], dynamics_runs["model"]
    d = strict(finite.get("/api/neuron/2/5?top=3").text)
    assert set(d["stats"]) == set(run.stats_of("2")) and len(d["stats"]["mean"]) == run.n_snapshots
    c = d["contributors"]
    # "2" is a Linear: its input, the ReLU "1", is the nearest recorded layer before it
    assert c["available"] and c["source_layer"] == "1" and c["method"] == "grad_x_act"
    assert len(c["items"]) == 3
    want = contribution_series([run.state_dict(i) for i in range(run.n_snapshots)], model, run.probe(),
                               "2", 5, source_layer="1", method="grad_x_act")
    totals = want.sum(0)
    assert [it["neuron"] for it in c["items"]] == np.argsort(-np.abs(totals))[:3].tolist()
    top = c["items"][0]["neuron"]
    np.testing.assert_allclose(c["items"][0]["series"], want[:, top], rtol=1e-5, atol=1e-9)
    assert c["items"][0]["mean"] == pytest.approx(run.series("1", "mean")[:, top].tolist())
    # an activation skips its own pre-activation (credit 1:1) for the layer that fed that
    assert strict(finite.get("/api/neuron/3/0").text)["contributors"]["source_layer"] == "1"
    assert strict(finite.get("/api/neuron/3/0?source=2").text)["contributors"]["source_layer"] == "2"
    first = strict(finite.get("/api/neuron/0/0").text)["contributors"]
    assert not first["available"] and "'0'" in first["reason"]  # nothing recorded before the first layer


def test_without_the_model_contributors_say_they_need_it(dynamics_runs):
    client = TestClient(create_dynamics_app(dynamics_runs["finite"]), base_url=BASE)
    r = client.get("/api/run").json()
    assert not r["contributors"]["available"] and "--checkpoint" in r["contributors"]["reason"]
    c = client.get("/api/neuron/2/1").json()["contributors"]
    assert not c["available"] and "--checkpoint" in c["reason"] and c["items"] == []


@pytest.mark.parametrize("url, named, status", [
    ("/api/lines/nope/mean", "'nope'", 404),
    ("/api/lines/1/grad_norm", "'grad_norm'", 404),  # an activation layer has no weight statistics
    ("/api/lines/2/bogus", "'bogus'", 404),
    ("/api/summaries/bogus", "'bogus'", 404),
    ("/api/neuron/nope/0", "'nope'", 404),
    ("/api/neuron/2/24", "neuron 24", 404),
    ("/api/neuron/2/-1", "neuron -1", 404),
    ("/api/neuron/2/0?source=nope", "'nope'", 404),
    ("/api/lines/2/mean?start=5&stop=3", "'stop'", 409),
    ("/api/lines/2/mean?start=999", "'start'", 409),
    ("/api/lines/2/mean?m=0", "'m'", 409),
    ("/api/lines/2/mean?m=100000", "'m'", 409),
    ("/api/lines/2/mean?lo=2&hi=1", "lo=2.0", 409),
    ("/api/lines/2/mean?lo=nan", "'lo'", 409),
    ("/api/neuron/2/0?top=0", "'top'", 409),
])
def test_bad_values_are_named(finite, url, named, status):
    response = finite.get(url)
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]


def test_hostile_requests_are_refused(dynamics_runs):
    client = TestClient(create_dynamics_app(dynamics_runs["finite"]), base_url=BASE)
    assert client.get("/api/run", headers={"host": "evil.example:8765"}).status_code == 403
    assert client.get("/", headers={"host": "evil.example:8765"}).status_code == 403
    assert client.get("/api/lines/2/mean?m=abc").status_code == 422  # not a number: FastAPI says so
    assert client.get("/api/lines/..%2F..%2Fetc/mean").status_code == 404
    assert client.get("/static/../dynamics_app.py").status_code == 404

    guarded = TestClient(create_dynamics_app(dynamics_runs["finite"], token=TOKEN), base_url=BASE)
    assert guarded.get("/").status_code == 200  # the page holds no data
    for url in ("/api/run", "/api/summaries/mean", "/api/lines/2/mean", "/api/neuron/2/0"):
        assert guarded.get(url).status_code == 403
        wrong = url + "?token=wrong-token-of-some-length"
        assert guarded.get(wrong).status_code == 403
    assert guarded.get(f"/api/run?token={TOKEN}").status_code == 200
    assert guarded.get("/api/run", headers={"X-Modeldx-Token": TOKEN}).status_code == 200


def test_a_recording_run_is_reread_as_it_grows(tmp_path, monkeypatch):
    from modeldx.dynamics import open_run, record
    from modeldx.live import dynamics_app

    monkeypatch.setattr(dynamics_app, "_REFRESH_S", 0.0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    rec = record(model, torch.randn(5, 3), tmp_path / "run", every=1)
    rec.step(loss=1.0)
    client = TestClient(create_dynamics_app(open_run(tmp_path / "run")), base_url=BASE)
    r = client.get("/api/run").json()
    assert r["status"] == "recording" and r["n_snapshots"] == 1
    rec.step(loss=0.5)
    rec.step(loss=0.25)
    assert client.get("/api/run").json()["n_snapshots"] == 3
    assert len(client.get("/api/lines/0/mean").json()["steps"]) == 3  # the cache follows the count
    rec.close()
    assert client.get("/api/run").json()["status"] == "complete"


def test_heavy_answers_are_cached(dynamics_runs, monkeypatch):
    from modeldx.live import dynamics_app

    calls = []
    real = dynamics_app.DynamicsView._sample
    monkeypatch.setattr(dynamics_app.DynamicsView, "_sample",
                        staticmethod(lambda *a: calls.append(1) or real(*a)))
    client = TestClient(create_dynamics_app(dynamics_runs["finite"]), base_url=BASE)
    first = client.get("/api/lines/0/mean?m=5").json()
    assert client.get("/api/lines/0/mean?m=5").json() == first and len(calls) == 1
    client.get("/api/lines/0/mean?m=6")
    assert len(calls) == 2


def test_outliers_among_many_series_agree_with_true_outliers():
    from modeldx.dynamics import blue_noise_sample, true_outliers
    from modeldx.live.dynamics_app import _outliers_among

    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(6000, 30)), axis=1)
    x[7, 10:] = np.nan  # a broken series is never an outlier of the finite ones
    chosen = blue_noise_sample(x, 200)
    exact = np.isin(chosen, true_outliers(x))
    estimate = _outliers_among(x, chosen)
    assert exact.sum() >= 5 and (exact & estimate).sum() >= 0.8 * exact.sum()
    assert (estimate & ~exact).sum() <= 0.2 * exact.sum() + 1
    assert not estimate[np.flatnonzero(chosen == 7)].any()


def test_a_localisation_that_fails_is_reported_not_a_500(dynamics_runs, monkeypatch):
    import modeldx.dynamics
    from modeldx.errors import InvalidParameterError

    def refuse(run):
        raise InvalidParameterError("no weighted layer to blame")

    monkeypatch.setattr(modeldx.dynamics, "localize", refuse)
    client = TestClient(create_dynamics_app(dynamics_runs["nan"]), base_url=BASE)
    r = client.get("/api/run")
    assert r.status_code == 200
    failure = r.json()["failure"]
    assert failure["layer"] is None and "no weighted layer to blame" in failure["reason"]


def test_a_run_without_weights_says_contributors_need_them(tmp_path, dynamics_runs):
    from modeldx.dynamics import open_run, record

    model = dynamics_runs["model"]
    with record(model, torch.randn(4, 6), tmp_path / "run", every=1, weights=False) as rec:
        rec.step(loss=1.0)
        rec.step(loss=0.5)
    client = TestClient(create_dynamics_app(open_run(tmp_path / "run"), model=model), base_url=BASE)
    c = client.get("/api/neuron/2/0").json()["contributors"]
    assert not c["available"] and "weights=False" in c["reason"]


def test_the_localisations_suspects_are_always_among_the_lines(broken, dynamics_runs):
    from modeldx.dynamics import localize

    failure = localize(dynamics_runs["nan"])
    suspects = failure.neurons
    assert suspects
    d = strict(broken.get(f"/api/lines/{failure.layer}/{failure.stat}?m=2").text)
    assert [line["neuron"] for line in d["lines"]] == suspects[:2]
    assert all(line["suspect"] for line in d["lines"])
    d = strict(broken.get(f"/api/lines/{failure.layer}/{failure.stat}?m=20").text)
    assert len(d["lines"]) == 20
    assert {line["neuron"] for line in d["lines"] if line["suspect"]} == set(suspects)
    other = next(layer for layer in dynamics_runs["nan"].layers if layer != failure.layer)
    stat = dynamics_runs["nan"].stats_of(other)[0]
    assert not any(line["suspect"] for line in strict(broken.get(f"/api/lines/{other}/{stat}").text)["lines"])


def test_a_damaged_run_is_answered_in_json_naming_the_damage(tmp_path, dynamics_runs):
    from modeldx.dynamics import open_run, record

    model = dynamics_runs["model"]
    with record(model, torch.randn(4, 6), tmp_path / "run", every=1) as rec:
        rec.step(loss=1.0)
        rec.step(loss=0.5)
    (tmp_path / "run" / "series.zarr" / "stats" / "c" / "0" / "0").unlink()
    client = TestClient(create_dynamics_app(open_run(tmp_path / "run"), model=model), base_url=BASE)
    for url in ("/api/run", "/api/summaries/mean", "/api/lines/0/mean", "/api/neuron/0/0"):
        r = client.get(url)
        assert r.status_code == 500, url  # the page shows ``detail``; a plain-text 500 it cannot read
        assert "is damaged" in r.json()["detail"] and "'stats'" in r.json()["detail"], url


def test_identical_series_are_not_outliers(tmp_path):
    """A layer whose neurons all have the same series (zero-initialised, all dead, a constant
    statistic) has no outlier: none of its lines is drawn orange."""
    from modeldx.dynamics import open_run, record

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 40), torch.nn.Linear(40, 5))
    torch.nn.init.zeros_(model[1].weight)
    torch.nn.init.zeros_(model[1].bias)
    with record(model, torch.randn(4, 6), tmp_path / "run", every=1) as rec:
        for _ in range(4):
            rec.step(loss=1.0)
    client = TestClient(create_dynamics_app(open_run(tmp_path / "run")), base_url=BASE)
    for url in ("/api/lines/1/mean", "/api/lines/1/weight_change", "/api/lines/0/weight_change"):
        lines = strict(client.get(url).text)["lines"]
        assert lines and not any(line["outlier"] for line in lines), url


def test_a_long_run_sends_its_per_step_losses_thinned_keeping_the_extremes(tmp_path, dynamics_runs):
    """/api/run is polled every 2 s while a run records: 300,000 steps sent whole were 8.5 MB a poll.
    At most LOSS_POINTS steps travel, each bucket's lowest and highest loss and its first
    non-finite one among them, so the chart keeps its shape and the failure."""
    from modeldx.dynamics import open_run, record
    from modeldx.live.dynamics_app import LOSS_POINTS

    model = dynamics_runs["model"]
    n = 60_000
    loss = 1.0 / (1.0 + np.arange(n)) + 0.01 * np.sin(np.arange(n) / 7.0)
    loss[31_337] = 50.0  # a spike
    loss[45_000] = np.nan
    with record(model, torch.randn(4, 6), tmp_path / "run", every=10_000, weights=False) as rec:
        for value in loss:
            rec.step(loss=float(value))
    client = TestClient(create_dynamics_app(open_run(tmp_path / "run")), base_url=BASE)
    r = client.get("/api/run")
    assert len(r.content) < 400_000
    got = strict(r.text)["losses"]
    assert got["n"] == n and len(got["steps"]) <= LOSS_POINTS < n
    assert got["steps"] == sorted(got["steps"]) and got["steps"][0] == 0 and got["steps"][-1] == n - 1
    values = dict(zip(got["steps"], got["loss"], strict=True))
    assert values[31_337] == 50.0 and values[45_000] == "nan" and values[0] == pytest.approx(loss[0])
    assert min(v for v in got["loss"] if v != "nan") == pytest.approx(np.nanmin(loss))
    short = TestClient(create_dynamics_app(dynamics_runs["finite"]), base_url=BASE).get("/api/run")
    losses = strict(short.text)["losses"]
    assert losses["steps"] == list(range(40)) and losses["n"] == 40  # a short run: every step


def test_a_viewed_run_recorded_again_is_shown_as_the_new_run(tmp_path, monkeypatch):
    from modeldx.dynamics import open_run, record
    from modeldx.live import dynamics_app

    monkeypatch.setattr(dynamics_app, "_REFRESH_S", 0.0)
    torch.manual_seed(0)
    first = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    with record(first, torch.randn(8, 4), tmp_path / "run", every=1) as rec:
        for _ in range(3):
            rec.step(loss=1.0)
    client = TestClient(create_dynamics_app(open_run(tmp_path / "run")), base_url=BASE)
    assert strict(client.get("/api/lines/0/mean").text)["neurons"] == 6  # cached for this run
    second = torch.nn.Sequential(torch.nn.Linear(4, 30), torch.nn.Tanh(), torch.nn.Linear(30, 2))
    with record(second, torch.randn(8, 4), tmp_path / "run", every=1, overwrite=True) as rec:
        for _ in range(3):
            rec.step(loss=2.0)
    r = strict(client.get("/api/run").text)
    assert r["layers"][0]["neurons"] == 30 and r["loss"] == [2.0, 2.0, 2.0]
    assert strict(client.get("/api/lines/0/mean").text)["neurons"] == 30


@pytest.mark.parametrize("source", ["2", "4"])
def test_a_contributor_source_must_run_before_the_neuron(finite, source):
    """?source= the neuron's own layer answered "contributors" of neuron 0 from its own layer."""
    r = finite.get(f"/api/neuron/2/0?source={source}")
    assert r.status_code == 409
    assert f"'{source}'" in r.json()["detail"] and "before '2'" in r.json()["detail"]
    assert "0, 1" in r.json()["detail"]  # the layers it could be
