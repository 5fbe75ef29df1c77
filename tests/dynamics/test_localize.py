"""Localising a failed run: the layer where it started, not merely the first one in forward order."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.dynamics import contribution_series, localize, open_run, record, upstream
from modeldx.errors import InvalidParameterError


class MLP(nn.Sequential):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(16, 16)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(16, 4)


def run_mlp(path, *, plant: str | None, row: int = 5, start: int = 30, steps: int = 80):
    """SGD on a toy regression; from ``start`` on, ``plant``'s weight row ``row`` doubles each step."""
    torch.manual_seed(0)
    model = MLP()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 8, generator=g), torch.randn(64, 4, generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2)
    with record(model, x[:32], path, every=5) as rec:
        for step in range(steps):
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if plant is not None and step >= start:
                with torch.no_grad():
                    getattr(model, plant).weight[row].mul_(8.0)
            rec.step(loss=loss.item())
            if not math.isfinite(loss.item()):
                break
    return open_run(path), model


@pytest.mark.parametrize(("layer", "row"), [("fc1", 5), ("fc2", 11)])
def test_a_planted_runaway_is_found_in_its_layer(tmp_path, layer, row):
    run, _ = run_mlp(tmp_path / "r", plant=layer, row=row)
    failure = localize(run)
    assert failure is not None and failure.snapshot == run.first_nonfinite()
    assert failure.step == run.steps[failure.snapshot]
    assert failure.layer == layer and failure.neurons[0] == row
    assert failure.stat in ("max_abs", "grad_norm", "weight_change") and layer in failure.reason
    assert max(failure.scores, key=failure.scores.get) == layer
    json.dumps(failure.to_dict())


def test_a_finite_run_has_no_failure(tmp_path):
    run, _ = run_mlp(tmp_path / "r", plant=None, steps=30)
    assert localize(run) is None


def test_no_history_falls_back_to_the_first_nonfinite_layer(tmp_path):
    run, _ = run_mlp(tmp_path / "r", plant="fc2", row=2, start=0, steps=40)
    failure = localize(run)
    assert failure is not None and failure.snapshot <= 2
    assert failure.layer in run.layers and failure.neurons


def test_upstream_matches_a_direct_credit_computation(tmp_path):
    run, model = run_mlp(tmp_path / "r", plant="fc2", row=11)
    failure = localize(run)
    found = upstream(run, failure, model=MLP(), top=3)
    assert [f["layer"] for f in found] == ["act1"] * 3
    states = [run.state_dict(s) for s in range(failure.snapshot)]
    direct = contribution_series(states, MLP(), run.probe(), "fc2", 11, source_layer="act1",
                                 method="grad_x_act")
    direct = np.nan_to_num(direct, nan=0.0, posinf=0.0, neginf=0.0)
    totals = direct.sum(axis=0)
    expected = np.argsort(-np.abs(totals), kind="stable")[:3]
    assert [f["neuron"] for f in found] == expected.tolist()
    for f in found:
        np.testing.assert_allclose(f["series"], direct[:, f["neuron"]], rtol=1e-6)
        assert f["total"] == pytest.approx(totals[f["neuron"]])
    assert abs(found[0]["total"]) >= abs(found[-1]["total"])


def test_upstream_errors(tmp_path):
    run, _ = run_mlp(tmp_path / "r", plant="fc2", row=11)
    failure = localize(run)
    with pytest.raises(InvalidParameterError, match="architecture"):
        upstream(run, failure)  # recorded without arch=: no model to rebuild
    with pytest.raises(InvalidParameterError, match="method"):
        upstream(run, failure, model=MLP(), method="magic")


def test_a_network_wide_blow_up_warns_nothing_and_says_the_growth_is_spread(tmp_path):
    """SGD too fast for a wide net: every layer explodes within a few steps, the statistics reach
    1e36 and inf. localize must stay quiet (no numpy overflow warnings), keep its numbers finite,
    and say when the next layer's score is close to the named one's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 20000), nn.ReLU(), nn.Linear(20000, 3))
    opt = torch.optim.SGD(model.parameters(), 0.01)
    g = torch.Generator().manual_seed(0)
    with record(model, torch.randn(16, 4, generator=g), tmp_path / "r", every=1, weights=False) as rec:
        for _ in range(40):
            loss = model(torch.randn(16, 4, generator=g)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())
            if not math.isfinite(loss.item()):
                break
    run = open_run(tmp_path / "r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        failure = localize(run)
    assert failure is not None
    assert "inf" not in failure.reason and "nan" not in failure.reason
    assert all(math.isfinite(v) for v in failure.scores.values())
    json.dumps(failure.to_dict())
