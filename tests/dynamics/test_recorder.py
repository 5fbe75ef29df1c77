"""The training-dynamics recorder: snapshots, statistics, side effects, errors, crash safety."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.capture.hooks import hook_count
from modeldx.dynamics import STATS, Recorder, open_run, record
from modeldx.errors import (
    InputShapeError,
    InvalidParameterError,
    LayerNotFoundError,
    ModeldxError,
    RunExistsError,
    RunMismatchError,
)


class Net(nn.Module):
    """Linear -> BN -> ReLU -> Dropout -> Linear: train/eval and BN running stats matter."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.drop(self.relu(self.bn(self.fc1(x)))))


def data(n: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def train(model, steps: int, rec: Recorder | None = None, lr: float = 0.1, losses=None):
    """A plain loop; the recorder is the only difference between two calls."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    outs = []
    for i in range(steps):
        x, y = data(seed=i)
        opt.zero_grad()
        out = model(x)
        loss = nn.functional.cross_entropy(out, y) if losses is None else torch.tensor(losses[i])
        if losses is None:
            loss.backward()
            opt.step()
        outs.append(out.detach().clone())
        if rec is not None:
            rec.step(loss=loss.item())
    return outs


def test_snapshots_every_k_steps_with_step_zero(tmp_path):
    torch.manual_seed(0)
    model = Net()
    with record(model, data()[0], tmp_path / "run", every=3) as rec:
        train(model, 10, rec)
        assert rec.steps == 10
    run = open_run(tmp_path / "run")
    assert run.status == "complete"
    assert run.n_snapshots == 4
    np.testing.assert_array_equal(run.steps, [0, 3, 6, 9])
    steps, loss = run.losses()
    np.testing.assert_array_equal(steps, np.arange(10))
    np.testing.assert_array_equal(run.loss, loss[[0, 3, 6, 9]])
    assert run.loss.dtype == np.float64 and run.steps.dtype == np.int64


def test_auto_layers_are_weighted_and_activation_modules_in_execution_order(tmp_path):
    model = Net()
    rec = record(model, data()[0], tmp_path / "run")
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.layers == ["fc1", "relu", "fc2"]
    assert run.stats_of("fc1") == STATS
    assert run.stats_of("relu") == ("mean", "max_abs", "zero_share", "nonfinite_share")
    assert run.neurons("fc1") == 8 and run.neurons("fc2") == 3


def test_activation_stats_match_a_hand_computation(tmp_path):
    torch.manual_seed(1)
    model = Net()
    probe = data(32, seed=5)[0]
    rec = record(model, probe, tmp_path / "run", layers=["relu", "fc2"], every=1)
    train(model, 1, rec)
    model.eval()
    with torch.no_grad():
        hidden = model.relu(model.bn(model.fc1(probe)))
        logits = model.fc2(hidden)
    run = open_run(tmp_path / "run")
    np.testing.assert_allclose(run.series("relu", "mean")[0], hidden.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run.series("relu", "zero_share")[0], (hidden == 0).float().mean(0))
    np.testing.assert_allclose(run.series("fc2", "max_abs")[0], logits.abs().amax(0), rtol=1e-6)
    assert (run.series("relu", "nonfinite_share") == 0).all()


def test_weight_change_and_grad_norm_per_output_unit(tmp_path):
    torch.manual_seed(2)
    model = Net()
    rec = record(model, data()[0], tmp_path / "run", every=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rows = []
    grads = []
    for i in range(3):
        x, y = data(seed=i)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        w = torch.cat([model.fc2.weight.detach(), model.fc2.bias.detach()[:, None]], 1).clone()
        g = torch.cat([model.fc2.weight.grad, model.fc2.bias.grad[:, None]], 1).clone()
        rows.append(w)
        grads.append(g)
        rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    change = run.series("fc2", "weight_change")
    np.testing.assert_allclose(change[1], (rows[2] - rows[0]).norm(dim=1), rtol=1e-5)
    np.testing.assert_allclose(run.series("fc2", "grad_norm")[1], grads[2].norm(dim=1), rtol=1e-5)
    assert change.dtype == np.float32 and np.isfinite(change).all()


def test_conv_channels_are_neurons(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(5 * 6 * 6, 2))
    probe = torch.randn(4, 1, 8, 8)
    rec = record(model, probe, tmp_path / "run", every=1)
    rec.step(loss=0.5)
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.layers == ["0", "1", "3"]
    assert run.neurons("0") == 5
    with torch.no_grad():
        conv = model[0](probe)
    np.testing.assert_allclose(run.series("0", "mean")[0], conv.mean(dim=(0, 2, 3)), rtol=1e-5,
                               atol=1e-6)


def test_recording_leaves_the_model_as_it_was(tmp_path):
    """Hooks off, .grad, BN running stats and train flags unchanged, and the training loop's
    outputs bit-identical with and without recording."""
    torch.manual_seed(3)
    plain = Net()
    recorded = Net()
    recorded.load_state_dict(plain.state_dict())
    torch.manual_seed(4)
    expected = train(plain, 7)
    torch.manual_seed(4)
    rec = record(recorded, data()[0], tmp_path / "run", every=2)
    got = train(recorded, 7, rec)
    rec.close()
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    for (name, a), b in zip(plain.state_dict().items(), recorded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    for a, b in zip(plain.parameters(), recorded.parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    assert hook_count(recorded) == 0
    assert recorded.training and recorded.bn.training and recorded.drop.training


def test_a_snapshot_restores_mixed_train_flags_and_leaves_grads(tmp_path):
    model = Net()
    model.bn.eval()  # a frozen BN inside a training model stays frozen, the rest in train mode
    x, y = data()
    nn.functional.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    running = model.bn.running_mean.clone()
    rec = record(model, x, tmp_path / "run")
    rec.step(loss=1.0)
    assert model.training and not model.bn.training and model.drop.training
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters(), strict=True))
    assert torch.equal(running, model.bn.running_mean)
    assert hook_count(model) == 0


def test_first_nonfinite_loss_forces_a_snapshot(tmp_path):
    model = Net()
    losses = [1.0, 0.9, 0.8, float("nan"), 0.7, float("inf"), 0.6]
    rec = record(model, data()[0], tmp_path / "run", every=5)
    train(model, 7, rec, losses=losses)
    rec.close()
    run = open_run(tmp_path / "run")
    np.testing.assert_array_equal(run.steps, [0, 3, 5])  # step 3 forced, step 5 regular
    assert math.isnan(run.loss[1]) and math.isinf(run.loss[2])
    assert run.first_nonfinite() == 1
    assert run.meta["first_nonfinite_step"] == 3


def test_nonfinite_activations_are_found(tmp_path):
    model = Net()
    probe = data()[0]
    rec = record(model, probe, tmp_path / "run", every=1)
    rec.step(loss=1.0)
    with torch.no_grad():
        model.fc1.weight[2, 0] = float("inf")  # the probe's fc1 unit 2 overflows
    rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.first_nonfinite() == 1
    share = run.series("fc1", "nonfinite_share")
    assert share[0].max() == 0 and share[1, 2] > 0
    assert run.summary("fc1", "max_abs")["nonfinite"][1] >= 1


def test_lstm_sequence_output_takes_features_as_neurons(tmp_path):
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(3, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    model = Seq()
    probe = torch.randn(5, 7, 3)
    rec = record(model, probe, tmp_path / "run", layers=["lstm", "head"], every=1)
    rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.neurons("lstm") == 6
    assert run.stats_of("lstm") == ("mean", "max_abs", "zero_share", "nonfinite_share")
    with torch.no_grad():
        out = model.lstm(probe)[0]
    np.testing.assert_allclose(run.series("lstm", "mean")[0], out.mean(dim=(0, 1)), rtol=1e-5,
                               atol=1e-6)


def test_time_major_transformer_layer(tmp_path):
    """batch_first=False: (time, batch, features) is transposed; features are the neurons."""
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0))
    probe = torch.randn(3, 4, 8)  # (time 3, batch 4, features 8)
    rec = record(model, probe, tmp_path / "run", layers=["0", "0.linear1"], every=1)
    rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.neurons("0") == 8 and run.neurons("0.linear1") == 16
    assert "weight_change" in run.stats_of("0.linear1")
    with torch.no_grad():
        out = model(probe)
    np.testing.assert_allclose(run.series("0", "max_abs")[0], out.abs().amax(dim=(0, 1)), rtol=1e-5)


def test_a_module_called_twice_gives_one_layer_per_call(tmp_path):
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.relu = nn.ReLU()
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.relu(self.fc(self.relu(self.fc(x)))))

    model = Twice()
    probe = torch.randn(6, 4)
    rec = record(model, probe, tmp_path / "run", every=1)
    rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.layers == ["fc#0", "relu#0", "fc#1", "relu#1", "out"]
    with torch.no_grad():
        second = model.relu(model.fc(model.relu(model.fc(probe))))
    np.testing.assert_allclose(run.series("relu#1", "mean")[0], second.mean(0), rtol=1e-5)
    rec2 = record(model, probe, tmp_path / "one", layers=["relu#1"], every=1)
    rec2.step(loss=1.0)
    rec2.close()
    assert open_run(tmp_path / "one").layers == ["relu#1"]


def test_probe_of_the_wrong_shape_names_the_shape(tmp_path):
    with pytest.raises(InputShapeError, match=r"\(3, 5\)"):
        record(Net(), torch.randn(3, 5), tmp_path / "run")
    assert not (tmp_path / "run" / "run.json").exists()


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_every_must_be_a_positive_int(tmp_path, every):
    with pytest.raises(InvalidParameterError, match="every"):
        record(Net(), data()[0], tmp_path / "run", every=every)


def test_unknown_layer_is_named(tmp_path):
    with pytest.raises(LayerNotFoundError, match="'fc9'"):
        record(Net(), data()[0], tmp_path / "run", layers=["fc9"])


def test_an_existing_run_needs_overwrite_or_resume(tmp_path):
    record(Net(), data()[0], tmp_path / "run").close()
    with pytest.raises(RunExistsError, match="overwrite=True"):
        record(Net(), data()[0], tmp_path / "run")
    rec = record(Net(), data()[0], tmp_path / "run", overwrite=True, every=1)
    rec.step(loss=2.0)
    rec.close()
    assert open_run(tmp_path / "run").n_snapshots == 1
    with pytest.raises(InvalidParameterError, match="not both"):
        record(Net(), data()[0], tmp_path / "run", overwrite=True, resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="not a run"):
        record(Net(), data()[0], tmp_path / "other", overwrite=True)
    assert (tmp_path / "other" / "notes.txt").exists()
    assert isinstance(RunExistsError("x"), ModeldxError)


def test_resume_continues_the_step_count(tmp_path):
    torch.manual_seed(0)
    model = Net()
    probe = data()[0]
    with record(model, probe, tmp_path / "run", every=2) as rec:
        train(model, 5, rec)
    with record(model, probe, tmp_path / "run", every=2, resume=True) as rec:
        assert rec.steps == 5
        train(model, 4, rec)
    run = open_run(tmp_path / "run")
    np.testing.assert_array_equal(run.steps, [0, 2, 4, 6, 8])
    assert len(run.losses()[0]) == 9
    assert run.state_dict(4).keys() == model.state_dict().keys()


def test_resume_with_another_model_names_the_mismatch(tmp_path):
    probe = data()[0]
    record(Net(), probe, tmp_path / "run").close()
    other = Net()
    other.fc2 = nn.Linear(8, 5)
    with pytest.raises(RunMismatchError, match="fc2.weight"):
        record(other, probe, tmp_path / "run", resume=True)
    with pytest.raises(RunMismatchError, match="probe"):
        record(Net(), probe + 1, tmp_path / "run", resume=True)


def test_a_crash_mid_snapshot_keeps_finished_snapshots_and_resume_appends(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Net()
    probe = data()[0]
    rec = record(model, probe, tmp_path / "run", every=1)
    train(model, 3, rec)

    from modeldx.dynamics import recorder as module

    calls = {"n": 0}
    real = module._Appender.write

    async def failing_write(self):
        calls["n"] += 1
        if calls["n"] == 3:  # the third array of snapshot 3 fails half-way through the snapshot
            raise OSError("disk full")
        await real(self)

    monkeypatch.setattr(module._Appender, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        train(model, 1, rec)
    monkeypatch.undo()
    run = open_run(tmp_path / "run")
    assert run.status == "recording" and run.n_snapshots == 3
    np.testing.assert_array_equal(run.steps, [0, 1, 2])
    assert not np.isnan(run.series("fc1", "mean")).any()
    with record(model, probe, tmp_path / "run", every=1, resume=True) as rec:
        assert rec.steps == 3
        train(model, 2, rec)
    run.refresh()
    np.testing.assert_array_equal(run.steps, [0, 1, 2, 3, 4])
    assert run.status == "complete" and np.isfinite(run.series("fc2", "mean")).all()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["snapshots"] == 5


def test_many_snapshots_span_chunks_and_keep_few_files(tmp_path):
    model = Net()
    rec = record(model, data()[0], tmp_path / "run", every=1, weights=False)
    for _ in range(150):
        rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert run.n_snapshots == 150
    assert run.series("fc1", "mean", 60, 70).shape == (10, 8)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) < 40  # 3 chunks per statistic, not 150 x layers x stats


CHILD = """
import os, signal, sys
import torch
from torch import nn
from modeldx.dynamics import record
from modeldx.dynamics import recorder as module

torch.manual_seed(0)
torch.set_num_threads(1)
model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
probe = torch.load(sys.argv[2])
real = module._Appender.write
calls = {"n": 0}

async def write(self):
    calls["n"] += 1
    if calls["n"] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of writing a snapshot
    await real(self)

module._Appender.write = write
rec = record(model, probe, sys.argv[1], every=1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i in range(100):
    opt.zero_grad()
    model(torch.randn(8, 4)).pow(2).mean().backward()
    opt.step()
    rec.step(loss=float(i))
"""


def test_a_recorder_killed_mid_snapshot_leaves_a_readable_run(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = torch.randn(10, 4)
    torch.save(probe, tmp_path / "probe.pt")
    src = Path(__file__).resolve().parents[2] / "src"
    arrays = 3  # array writes per snapshot: statistics, (step, loss), per-step losses
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "run"),
                           str(tmp_path / "probe.pt"), str(4 * arrays + 2)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    run = open_run(tmp_path / "run")
    assert run.status == "recording" and run.n_snapshots == 4
    np.testing.assert_array_equal(run.steps, [0, 1, 2, 3])
    np.testing.assert_array_equal(run.losses()[1], [0.0, 1.0, 2.0, 3.0])
    assert np.isfinite(run.series("2", "grad_norm")).all()
    assert [int(p.stem) for p in sorted((tmp_path / "run" / "weights").glob("*.pt"))] == [0, 1, 2, 3, 4]
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    with record(model, probe, tmp_path / "run", every=1, resume=True) as rec:
        assert rec.steps == 4
        rec.step(loss=10.0)
    run.refresh()
    np.testing.assert_array_equal(run.steps, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(run.loss, [0.0, 1.0, 2.0, 3.0, 10.0])
    assert run.status == "complete"


def test_a_recorder_whose_write_failed_refuses_more_steps(tmp_path, monkeypatch):
    model = Net()
    rec = record(model, data()[0], tmp_path / "run", every=1)
    rec.step(loss=1.0)
    from modeldx.dynamics import recorder as module

    async def fail(self):
        raise OSError("disk full")

    monkeypatch.setattr(module._Appender, "write", fail)
    with pytest.raises(OSError):
        rec.step(loss=1.0)
    monkeypatch.undo()
    with pytest.raises(InvalidParameterError, match="resume=True"):
        rec.step(loss=1.0)
    assert open_run(tmp_path / "run").n_snapshots == 1


def test_background_writing_records_exactly_what_foreground_does(tmp_path):
    runs = {}
    for background in (False, True):
        torch.manual_seed(7)
        model = Net()
        torch.manual_seed(8)
        with record(model, data(12, seed=9)[0], tmp_path / str(background), every=2,
                    background=background) as rec:
            outs = train(model, 9, rec)
            assert hook_count(model) == 0  # the probe pass runs on a copy
        runs[background] = (open_run(tmp_path / str(background)), outs)
    (fg, fg_outs), (bg, bg_outs) = runs[False], runs[True]
    assert all(torch.equal(a, b) for a, b in zip(fg_outs, bg_outs, strict=True))
    assert bg.status == "complete" and bg.n_snapshots == fg.n_snapshots == 5
    np.testing.assert_array_equal(bg.steps, fg.steps)
    np.testing.assert_array_equal(bg.losses()[1], fg.losses()[1])
    for layer in fg.layers:
        for stat in fg.stats_of(layer):
            np.testing.assert_array_equal(bg.series(layer, stat), fg.series(layer, stat), err_msg=stat)
    for key, value in fg.state_dict(3).items():
        assert torch.equal(value, bg.state_dict(3)[key])


def test_background_commits_a_nonfinite_snapshot_before_step_returns(tmp_path):
    model = Net()
    rec = record(model, data()[0], tmp_path / "run", every=100, background=True)
    rec.step(loss=1.0)
    rec.step(loss=float("nan"))
    run = open_run(tmp_path / "run")
    np.testing.assert_array_equal(run.steps, [0, 1])
    assert run.first_nonfinite() == 1
    rec.close()
    assert run.refresh().status == "complete"


def test_background_write_failure_is_raised_in_the_training_thread(tmp_path, monkeypatch):
    from modeldx.dynamics import recorder as module

    async def fail(self):
        raise OSError("disk full")

    rec = record(Net(), data()[0], tmp_path / "run", every=1, background=True)
    rec.step(loss=1.0)
    rec.flush()
    monkeypatch.setattr(module._Appender, "write", fail)
    rec.step(loss=1.0)
    with pytest.raises(OSError, match="disk full"):
        rec.flush()
    with pytest.raises(InvalidParameterError, match="resume=True"):
        rec.step(loss=1.0)
    rec.close()  # already reported: closing is quiet and leaves the run resumable
    run = open_run(tmp_path / "run")
    assert run.n_snapshots == 1 and run.status == "recording"


def test_one_recorder_per_run(tmp_path):
    from modeldx.errors import StoreLockedError

    probe = data()[0]
    first = record(Net(), probe, tmp_path / "run", every=1)
    first.step(loss=1.0)
    with pytest.raises(StoreLockedError, match=r"being recorded by pid \d+.*rec.close\(\)"):
        record(Net(), probe, tmp_path / "run", overwrite=True)
    with pytest.raises(StoreLockedError):
        record(Net(), probe, tmp_path / "run", resume=True)
    first.close()
    assert not (tmp_path / "run" / ".lock").exists()
    assert open_run(tmp_path / "run").n_snapshots == 1
    record(Net(), probe, tmp_path / "run", overwrite=True).close()
    assert open_run(tmp_path / "run").n_snapshots == 0


def test_wide_layers_get_fewer_snapshots_per_chunk(tmp_path):
    import zarr

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3000), nn.ReLU())
    rec = record(model, torch.randn(5, 4), tmp_path / "run", every=1, weights=False)
    for i in range(30):
        with torch.no_grad():
            model[0].bias += 1.0
        rec.step(loss=float(i))
    rec.close()
    group = zarr.open_group(tmp_path / "run" / "series.zarr", mode="r")
    assert group["stats"].chunks[0] == 8  # 30,000 float32 columns: the fewest rows per chunk
    run = open_run(tmp_path / "run")
    means = run.series("0", "mean")
    np.testing.assert_allclose(np.diff(means, axis=0), 1.0, rtol=1e-4)
    assert run.series("0", "weight_change", 9, 12).shape == (3, 3000)


def test_resume_exactly_at_a_chunk_boundary_keeps_the_full_chunk(tmp_path):
    model = Net()
    probe = data()[0]
    with record(model, probe, tmp_path / "run", every=1, weights=False) as rec:
        for i in range(64):  # 64 snapshots: one full chunk of the statistics array
            with torch.no_grad():
                model.fc2.bias += 0.1
            rec.step(loss=float(i))
    before = open_run(tmp_path / "run").series("fc2", "mean")
    with record(model, probe, tmp_path / "run", every=1, resume=True) as rec:
        rec.step(loss=64.0)
    run = open_run(tmp_path / "run")
    assert run.n_snapshots == 65
    np.testing.assert_array_equal(run.series("fc2", "mean", 0, 64), before)
    np.testing.assert_array_equal(run.loss, np.arange(65.0))


def test_token_ids_probe_keeps_its_dtype(tmp_path):
    class Text(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(50, 8)
            self.gru = nn.GRU(8, 5)  # time-major
            self.head = nn.Linear(5, 2)

        def forward(self, tokens):
            out, _ = self.gru(self.emb(tokens))
            return self.head(out[-1])

    model = Text()
    tokens = torch.randint(0, 50, (7, 4))  # (time 7, batch 4)
    rec = record(model, tokens, tmp_path / "run", layers=["emb", "gru", "head"], every=1)
    rec.step(loss=1.0)
    rec.close()
    run = open_run(tmp_path / "run")
    assert [run.neurons(n) for n in run.layers] == [8, 5, 2]
    assert run.probe().dtype == torch.int64
    assert "weight_change" not in run.stats_of("emb")  # not a Linear/Conv: no per-unit rows


def test_the_loss_may_be_the_loss_tensor_itself(tmp_path):
    """``rec.step(loss)`` with the tensor that was just backpropagated (a common slip of
    ``loss.item()``), also under autocast: no warning about converting a tensor needing grad."""
    import warnings

    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    values = []
    with record(model, data()[0], tmp_path / "run", every=1) as rec, warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in range(2):
            x, y = data(seed=i)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            rec.step(loss)
            values.append(loss.item())
        with pytest.raises(InvalidParameterError, match=r"one number.*shape \(3,\)"):
            rec.step(torch.ones(3))
    np.testing.assert_allclose(open_run(tmp_path / "run").loss, values)


def test_auto_layers_of_a_language_model_include_its_embedding_and_recurrent_layer(tmp_path):
    """An LSTM language model's "auto" layers were its output Linear alone: the recurrent layer,
    where such runs usually blow up, went unrecorded unless named."""

    class LM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(50, 8)
            self.lstm = nn.LSTM(8, 12, batch_first=True)
            self.gru = nn.GRU(12, 10)  # time-major
            self.out = nn.Linear(10, 50)

        def forward(self, x):
            h, _ = self.lstm(self.emb(x))
            h, _ = self.gru(h.transpose(0, 1))
            return self.out(h.transpose(0, 1))

    model = LM()
    with record(model, torch.randint(0, 50, (4, 9)), tmp_path / "run", every=1) as rec:
        rec.step(loss=1.0)
    run = open_run(tmp_path / "run")
    assert run.layers == ["emb", "lstm", "gru", "out"]
    assert [run.neurons(n) for n in run.layers] == [8, 12, 10, 50]


def test_a_compiled_model_is_recorded_as_the_model_it_wraps(tmp_path):
    """``record(torch.compile(model), ...)``: layers named "_orig_mod.0" and a state dict that neither
    the uncompiled model (resume) nor ``arch=``'s rebuilt model (the viewer's contributors) loads."""
    model = Net()
    compiled = torch.compile(model)
    with record(compiled, data()[0], tmp_path / "run", every=1) as rec:
        rec.step(loss=1.0)
    run = open_run(tmp_path / "run")
    assert run.layers == ["fc1", "relu", "fc2"]
    model.load_state_dict(run.state_dict(0))
    with record(model, run.probe(), tmp_path / "run", every=1, resume=True) as rec:  # the same run
        rec.step(loss=0.5)
    assert open_run(tmp_path / "run").n_snapshots == 2
