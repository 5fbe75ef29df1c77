import numpy as np
import torch
from torch import nn

from modeldx import capture
from modeldx.queries import dead_neurons
from tests.conftest import TinyNet


def test_a_killed_neuron_is_found(tmp_path, digits):
    model = TinyNet()
    with torch.no_grad():
        model.fc1.bias[5] = -1e4  # unit 5 of act2 can never fire
    st = capture(model, digits, tmp_path / "s", encoding="float32", progress=False)
    dead = dead_neurons(st, layers="act2")
    acts = st.read("acts/act2")
    np.testing.assert_allclose(dead.frac_active, (acts > 0).mean(0))
    assert dead.loc[dead.neuron == 5, "dead"].item()
    assert dead.dead.tolist() == ((acts > 0).sum(0) == 0).tolist()
    assert not dead.saturated.any() and dead.frac_saturated.isna().all()  # ReLU: no ceiling


class TanhNet(TinyNet):
    def __init__(self):
        super().__init__()
        self.act2 = nn.Tanh()


def test_saturated_tanh_units(tmp_path, digits):
    model = TanhNet()
    with torch.no_grad():
        model.fc1.weight[2] *= 0
        model.fc1.bias[2] = 50.0  # always at +1
    st = capture(model, digits, tmp_path / "s", encoding="float32", progress=False)
    dead = dead_neurons(st, layers="act2")
    assert dead.module_type.eq("Tanh").all()
    assert dead.loc[dead.neuron == 2, "saturated"].item()
    acts = st.read("acts/act2")
    np.testing.assert_allclose(dead.frac_saturated, (np.abs(acts) >= 0.99).mean(0))
