"""Reading a recorded run: the reader API, its errors, and reading while a recorder appends."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.dynamics import open_run, record
from modeldx.errors import InvalidParameterError, LayerNotFoundError, RunNotFoundError
from modeldx.zoo.models import LeNet5


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))


def steps(model, rec, n, loss=1.0):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for i in range(n):
        torch.manual_seed(i)
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
        rec.step(loss=loss + i)


@pytest.fixture
def run_path(tmp_path):
    model = mlp()
    with record(model, torch.randn(10, 4), tmp_path / "run", every=2) as rec:
        steps(model, rec, 6)
    return tmp_path / "run"


def test_meta_and_shapes(run_path):
    run = open_run(run_path)
    assert run.path == run_path
    assert run.status == "complete"
    for key in ("format", "model_fingerprint", "model_class", "every", "probe_shape", "created"):
        assert key in run.meta
    assert run.meta["model_class"] == "Sequential" and run.meta["every"] == 2
    assert run.meta["probe_shape"] == [10, 4]
    assert run.layers == ["0", "1", "2"]
    assert run.n_snapshots == 3
    assert run.series("0", "mean").shape == (3, 6)
    assert run.series("0", "mean").dtype == np.float32
    assert run.series("2", "grad_norm", 1).shape == (2, 2)
    assert run.series("2", "grad_norm", 1, 2).shape == (1, 2)
    np.testing.assert_array_equal(run.series("0", "mean", 1, 3), run.series("0", "mean")[1:3])
    np.testing.assert_array_equal(run.loss, [1.0, 3.0, 5.0])
    assert run.probe().shape == (10, 4)
    assert "Run(" in repr(run)


def test_summary_over_neurons(run_path):
    run = open_run(run_path)
    values = run.series("0", "max_abs")
    got = run.summary("0", "max_abs")
    assert set(got) == {"mean", "min", "max", "nonfinite"}
    np.testing.assert_allclose(got["mean"], values.mean(1), rtol=1e-6)
    np.testing.assert_allclose(got["max"], values.max(1))
    np.testing.assert_allclose(got["min"], values.min(1))
    np.testing.assert_array_equal(got["nonfinite"], [0, 0, 0])
    assert run.first_nonfinite() is None


def test_state_dict_and_build_model(tmp_path, run_path):
    run = open_run(run_path)
    sd = run.state_dict(2)
    assert set(sd) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert not torch.equal(sd["0.weight"], run.state_dict(0)["0.weight"])
    with pytest.raises(InvalidParameterError, match="out of range"):
        run.state_dict(3)
    assert run.build_model() is None
    model = LeNet5()
    rec = record(model, torch.randn(2, 1, 28, 28), tmp_path / "lenet", weights=False,
                 arch="lenet5", model_args={})
    rec.step(loss=1.0)
    rec.close()
    lenet = open_run(tmp_path / "lenet")
    built = lenet.build_model()
    assert isinstance(built, LeNet5) and not built.training
    with pytest.raises(InvalidParameterError, match="weights=False"):
        lenet.state_dict(0)


def test_errors_name_the_value_and_the_choices(tmp_path, run_path):
    run = open_run(run_path)
    with pytest.raises(LayerNotFoundError, match=r"'nope'.*0, 1, 2"):
        run.series("nope", "mean")
    with pytest.raises(InvalidParameterError, match=r"'grad_norm'.*layer '1'.*mean"):
        run.series("1", "grad_norm")
    with pytest.raises(InvalidParameterError, match="'median' is not a statistic"):
        run.summary("0", "median")
    with pytest.raises(RunNotFoundError, match=str(tmp_path / "nothing")):
        open_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFoundError, match="empty"):
        open_run(tmp_path / "empty")
    assert issubclass(RunNotFoundError, FileNotFoundError)


def test_a_reader_sees_committed_snapshots_only_and_refresh_sees_more(tmp_path):
    model = mlp()
    rec = record(model, torch.randn(10, 4), tmp_path / "run", every=1)
    steps(model, rec, 2)
    run = open_run(tmp_path / "run")
    assert run.status == "recording" and run.n_snapshots == 2
    steps(model, rec, 3)
    assert run.n_snapshots == 2 and run.series("0", "mean").shape == (2, 6)  # until refresh
    assert len(run.losses()[0]) == 2
    assert run.refresh() is run
    assert run.n_snapshots == 5 and run.series("0", "mean").shape == (5, 6)
    rec.close()
    assert run.refresh().status == "complete"


def test_rows_written_past_the_commit_are_invisible(tmp_path, monkeypatch):
    """A recorder that dies after writing a snapshot's rows but before run.json."""
    model = mlp()
    rec = record(model, torch.randn(10, 4), tmp_path / "run", every=1)
    steps(model, rec, 2)
    from modeldx.dynamics import recorder as module

    def die(self, snapshots, status="recording"):
        raise KeyboardInterrupt

    monkeypatch.setattr(module.Recorder, "_commit", die)
    with pytest.raises(KeyboardInterrupt):
        steps(model, rec, 1)
    run = open_run(tmp_path / "run")
    assert run.n_snapshots == 2
    assert run.series("0", "mean").shape == (2, 6) and run.series("0", "mean", 0, 10).shape == (2, 6)
    assert run.steps.tolist() == [0, 1] and len(run.loss) == 2
    assert run.summary("2", "grad_norm")["mean"].shape == (2,)
    assert run.first_nonfinite() is None


# -- damaged and foreign run folders (found by using the tools as a stranger) ------------------------


def _rewrite_meta(path, **changes):
    import json

    meta = json.loads((path / "run.json").read_text())
    meta.update(changes)
    (path / "run.json").write_text(json.dumps(meta))


def test_a_run_from_a_newer_modeldx_is_refused_not_misread(run_path):
    _rewrite_meta(run_path, format_version=99)
    with pytest.raises(RunNotFoundError, match=r"newer modeldx.*99.*upgrade"):
        open_run(run_path)
    with pytest.raises(RunNotFoundError, match="newer modeldx"):  # resuming would rewrite it as ours
        record(mlp(), torch.randn(10, 4), run_path, resume=True)


@pytest.mark.parametrize("text", ["[]", '{"format": "modeldx-run"}', '"modeldx-run"'])
def test_a_run_json_without_its_fields_is_a_damaged_run(run_path, text):
    (run_path / "run.json").write_text(text)
    with pytest.raises(RunNotFoundError, match="run.json is damaged"):
        open_run(run_path)


def test_a_damaged_or_missing_chunk_is_named_not_read_as_nan(run_path):
    from modeldx.errors import StoreCorruptError

    chunk = run_path / "series.zarr" / "stats" / "c" / "0" / "0"
    with open(chunk, "r+b") as fh:
        fh.truncate(10)
    run = open_run(run_path)
    with pytest.raises(StoreCorruptError, match=r"run at .*run is damaged.*chunk 0 .*'stats'.*not decode"):
        run.series("0", "mean")
    chunk.unlink()  # a missing chunk would read as NaN: a run that "failed" at snapshot 0
    run = open_run(run_path)
    for read in (lambda: run.series("0", "mean"), run.first_nonfinite, lambda: run.summary("0", "mean")):
        with pytest.raises(StoreCorruptError, match=r"chunk 0 .*'stats'.* is missing"):
            read()
    (run_path / "series.zarr" / "step_loss" / "c" / "0").unlink()
    with pytest.raises(StoreCorruptError, match="'step_loss'.* is missing"):
        run.losses()


def test_a_missing_weights_file_is_named(run_path):
    from modeldx.errors import StoreCorruptError

    (run_path / "weights" / "1.pt").unlink()
    with pytest.raises(StoreCorruptError, match=r"weights.1\.pt, are missing"):
        open_run(run_path).state_dict(1)


def test_a_run_recorded_again_over_an_open_reader_is_not_mixed_with_it(run_path):
    """overwrite=True while a reader (a viewer) holds the old run: reads must not take the new
    arrays through the old run's column layout; refresh() reads the new run."""
    from modeldx.errors import StoreReplacedError

    run = open_run(run_path)
    assert run.series("0", "mean").shape == (3, 6)
    torch.manual_seed(1)
    other = nn.Sequential(nn.Linear(4, 30), nn.Tanh(), nn.Linear(30, 2))
    with record(other, torch.randn(10, 4), run_path, every=1, overwrite=True) as rec:
        for _ in range(2):
            rec.step(loss=2.0)
    with pytest.raises(StoreReplacedError, match=r"recorded again.*refresh"):
        run.series("0", "mean")
    run.refresh()
    assert run.n_snapshots == 2 and run.neurons("0") == 30
    np.testing.assert_array_equal(run.loss, [2.0, 2.0])
    assert run.series("0", "mean").shape == (2, 30)


def test_summary_of_huge_finite_values_does_not_overflow(tmp_path):
    """Activations near float32's limit are finite; their mean over 2,000 neurons must be too (a
    float32 sum overflowed to inf, and the views drew a finite layer as broken)."""
    model = nn.Sequential(nn.Linear(4, 2000))
    with torch.no_grad():
        model[0].weight.fill_(1e35)
        model[0].bias.zero_()
    with record(model, torch.ones(3, 4), tmp_path / "r", every=1, weights=False) as rec:
        rec.step(loss=1.0)
    run = open_run(tmp_path / "r")
    values = run.series("0", "mean")
    assert np.isfinite(values).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = run.summary("0", "mean")
    assert np.isfinite(s["mean"]).all() and s["nonfinite"][0] == 0
    np.testing.assert_allclose(s["mean"][0], values[0].astype(np.float64).mean(), rtol=1e-6)
