"""A module called more than once in one forward: each call is its own layer."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modeldx import capture
from modeldx.capture import hook_count
from modeldx.errors import LayerNotFoundError, ModeldxError


class Reuse(nn.Module):
    """One ReLU and one Linear, each called twice."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(5, 6)
        self.shared = nn.Linear(6, 6)
        self.relu = nn.ReLU()
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        h = self.relu(self.inp(x))
        h = self.relu(self.shared(h))
        h = self.shared(h)
        return self.head(h)


def data():
    g = np.random.default_rng(0)
    return g.normal(size=(30, 5)).astype(np.float32), g.integers(0, 3, 30)


def test_each_call_is_its_own_layer_with_its_own_gradient(tmp_path):
    model = Reuse().eval()
    x, y = data()
    st = capture(model, (x, y), tmp_path / "s", layers=["shared", "relu"], gradients=True,
                 encoding="float32", batch_size=8, progress=False)
    assert st.layers == ["shared#0", "shared#1", "relu#0", "relu#1"]
    xt = torch.from_numpy(x)
    a0 = model.inp(xt)
    r0 = model.relu(a0)
    s0 = model.shared(r0)
    r1 = model.relu(s0)
    s1 = model.shared(r1)
    loss = F.cross_entropy(model.head(s1), torch.from_numpy(y), reduction="sum")
    grads = torch.autograd.grad(loss, [s0, s1, r0, r1])
    close = dict(rtol=1e-5, atol=1e-6)
    for name, act, grad in zip(st.layers, [s0, s1, r0, r1], grads, strict=True):
        np.testing.assert_allclose(st.read(f"acts/{name}"), act.detach().numpy(), **close)
        np.testing.assert_allclose(st.read(f"grads/{name}"), grad.numpy(), **close)
        assert st.manifest.layer(name).module == name.split("#")[0]
    assert hook_count(model) == 0


def test_auto_and_single_calls(tmp_path):
    model = Reuse().eval()
    st = capture(model, data(), tmp_path / "a", progress=False)
    assert st.layers == ["relu#0", "relu#1", "head"]
    st = capture(model, data(), tmp_path / "b", layers=["relu#1"], encoding="float32",
                 progress=False)
    assert st.layers == ["relu#1"]
    with torch.no_grad():
        want = model.relu(model.shared(model.relu(model.inp(torch.from_numpy(data()[0])))))
    np.testing.assert_allclose(st.read("acts/relu#1"), want.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(LayerNotFoundError, match="ran 2 times"):
        capture(model, data(), tmp_path / "c", layers=["relu#2"], progress=False)
    assert not (tmp_path / "c").exists()


def test_the_latent_vector_can_be_one_call(tmp_path):
    model = Reuse().eval()
    x, y = data()
    with torch.no_grad():
        r0 = model.relu(model.inp(torch.from_numpy(x)))
    st = capture(model, (x, y), tmp_path / "s", layers=None, latent_layer="relu#0", encoding="float32",
                 progress=False)
    np.testing.assert_allclose(st.read("latent"), r0.numpy(), rtol=1e-5, atol=1e-6)
    assert st.manifest.latent_layer == "relu#0"


class InputDependent(Reuse):
    def forward(self, x):
        h = self.relu(self.inp(x))
        if x.shape[0] <= 2:  # the probe runs two items
            h = self.relu(self.shared(h))
        return self.head(h)


def test_a_layer_that_stops_running_after_the_probe_is_an_error(tmp_path):
    model = InputDependent().eval()
    with pytest.raises(ModeldxError, match=r"items \[0, 1, 2.*'relu' 1 instead of 2"):
        capture(model, data(), tmp_path / "s", layers=["relu"], batch_size=10, progress=False)
    assert hook_count(model) == 0


class RunsMoreAfterTheProbe(Reuse):
    def forward(self, x):
        h = self.relu(self.inp(x))
        if x.shape[0] > 2:  # a second call only after the probe's two items
            h = self.relu(self.shared(h))
        return self.head(h)


def test_a_module_that_runs_more_often_after_the_probe_is_an_error_not_a_dropped_call(tmp_path):
    model = RunsMoreAfterTheProbe().eval()
    with pytest.raises(ModeldxError, match=r"'relu' 2 instead of 1"):
        capture(model, data(), tmp_path / "s", layers=["relu"], batch_size=10, progress=False,
                gradients=True)
    assert hook_count(model) == 0 and not (tmp_path / "s").exists()
