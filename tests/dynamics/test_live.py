"""A recorder publishing its snapshots to a LiveSession."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.dynamics import open_run, record
from modeldx.dynamics._live import stream_names
from modeldx.errors import InvalidParameterError
from modeldx.live import LiveSession


@pytest.mark.parametrize("background", [False, True])
def test_snapshots_become_scalar_streams_of_a_running_session(tmp_path, background):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    session = LiveSession("rec")
    sub = session.subscribe()
    rec = record(model, torch.randn(10, 4), tmp_path / "run", every=2, session=session,
                 background=background)

    def step(ctx):
        torch.manual_seed(ctx.step)
        opt.zero_grad()
        loss = model(torch.randn(8, 4)).pow(2).mean()
        loss.backward()
        opt.step()
        ctx.scalar("loss", loss.item())
        rec.step(loss=loss.item())

    session.start(step, max_steps=6)
    assert session.wait(6)
    session.stop()
    rec.close()
    run = open_run(tmp_path / "run")
    streams = session.state()["streams"]
    for name in stream_names(run.layers):
        assert streams[name]["kind"] == "scalar", name
    loss = streams["dynamics/loss"]
    assert loss["step"] == [0, 2, 4]  # the session's steps, beside the user's own "loss"
    np.testing.assert_allclose(loss["value"], run.loss)
    np.testing.assert_allclose(streams["dynamics/0/max_abs"]["value"],
                               run.summary("0", "max_abs")["max"], rtol=1e-6)
    assert streams["dynamics/1/nonfinite"]["value"] == [0.0, 0.0, 0.0]
    updates, dropped = sub.drain()
    assert not dropped
    assert [u["step"] for u in updates if u.get("stream") == "dynamics/loss"] == [0, 2, 4]


def test_nonfinite_values_are_published_as_they_are(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    session = LiveSession("nan")
    rec = record(model, torch.randn(5, 4), tmp_path / "run", every=10, session=session)
    with torch.no_grad():
        model[0].weight[1, 0] = float("nan")
    rec.step(loss=float("nan"))
    rec.close()
    streams = session.state()["streams"]
    assert streams["dynamics/0/nonfinite"]["value"] == [1.0]
    assert streams["dynamics/0/max_abs"]["value"] == [None]  # NaN, as JSON sends it
    assert streams["dynamics/loss"]["value"] == [None]


def test_session_must_be_a_live_session(tmp_path):
    with pytest.raises(InvalidParameterError, match="LiveSession"):
        record(nn.Linear(2, 2), torch.randn(3, 2), tmp_path / "run", session="dashboard")
