"""Credit assignment on small networks whose answers are known (conservation, a hand example)."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.dynamics import contribution_series, contributions
from modeldx.errors import InputShapeError, InvalidParameterError, LayerNotFoundError
from modeldx.zoo import LeNet5


def _no_bias(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    return model


def _cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(2, 4, 3, padding=1)), ("act1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(4, 5, 3)), ("act2", nn.ReLU(inplace=True)), ("pool2", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(5 * 1 * 1, 6)), ("act3", nn.ReLU()),
        ("fc2", nn.Linear(6, 3)),
    ])).double()


def _target_value(model, x, layer, neuron) -> float:
    out = {}
    h = dict(model.named_modules())[layer].register_forward_hook(
        lambda m, a, o: out.update(v=o.detach().clone()))  # act2 is in place
    with torch.no_grad():
        model(x)
    h.remove()
    v = out["v"][:, neuron]
    return float(v.reshape(len(x), -1).sum(1).mean())


_WIDTH = {"conv1": 4, "act1": 4, "pool1": 4, "act2": 5}


@pytest.mark.parametrize("source,target,neuron", [
    (s, t, n) for s in _WIDTH for t, n in [("fc2", 1), ("act3", 2), ("conv2", 3)]
    if (s, t) != ("act2", "conv2")  # act2 runs after conv2
])
def test_lrp_conserves_the_target_value_with_zero_biases(source, target, neuron):
    model = _no_bias(_cnn())
    x = torch.rand(3, 2, 10, 10, dtype=torch.float64) - 0.3
    c = contributions(model, x, target, neuron, source_layer=source, eps=1e-12)
    assert c.shape == (_WIDTH[source],)
    # eps leaks eps / z of the relevance at each neuron, z as small as 1e-3 here
    assert c.sum() == pytest.approx(_target_value(model, x, target, neuron), rel=1e-6)
    # and on a ReLU network at eps -> 0, gradient x activation is the same (Ancona et al., 2018)
    gxa = contributions(model, x, target, neuron, source_layer=source, method="grad_x_act")
    np.testing.assert_allclose(gxa, c, rtol=1e-6, atol=1e-12)


def test_lrp_with_biases_does_not_conserve_but_grad_x_act_agrees_at_small_eps():
    # With biases the bias terms take their share, so the sum differs from the value;
    # for ReLU networks at eps -> 0 the two methods coincide (Ancona et al., 2018).
    model = _cnn(1)
    with torch.no_grad():
        model.fc2.bias.fill_(0.5)
    x = torch.rand(4, 2, 10, 10, dtype=torch.float64)
    lrp = contributions(model, x, "fc2", 0, source_layer="act1", eps=1e-12)
    gxa = contributions(model, x, "fc2", 0, source_layer="act1", method="grad_x_act")
    np.testing.assert_allclose(lrp, gxa, rtol=1e-6, atol=1e-9)
    assert lrp.sum() != pytest.approx(_target_value(model, x, "fc2", 0), rel=1e-3)


def test_grad_x_act_conserves_on_a_linear_path_without_bias():
    torch.manual_seed(2)
    model = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(3, 4, 3, bias=False)), ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(4 * 4 * 4, 7, bias=False)), ("fc2", nn.Linear(7, 2, bias=False)),
    ])).double()
    x = torch.randn(5, 3, 6, 6, dtype=torch.float64)
    for source in ("conv", "fc1"):
        c = contributions(model, x, "fc2", 1, source_layer=source, method="grad_x_act")
        assert c.sum() == pytest.approx(_target_value(model, x, "fc2", 1), rel=1e-10)


def _hand_model() -> nn.Sequential:
    model = nn.Sequential(OrderedDict([
        ("inp", nn.Identity()), ("l1", nn.Linear(2, 2)), ("relu", nn.ReLU()), ("l2", nn.Linear(2, 1)),
    ])).double()
    with torch.no_grad():
        model.l1.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        model.l1.bias.copy_(torch.tensor([1.0, 0.0]))
        model.l2.weight.copy_(torch.tensor([[1.0, 1.0]]))
        model.l2.bias.zero_()
    return model


def test_hand_computed_two_layer_example():
    # x = [1, 2]: z1 = [4, -1], h = [4, 0], y = 4. Gradient x activation: x * (W2 diag(h > 0) W1)
    # = [1, 2] * [1, 1]. LRP with eps = 1: R_h = h * w2 * y / (y + 1) = [3.2, 0], then
    # R_x = x * W1[0] * 3.2 / (4 + 1) = [0.64, 1.28]; with eps -> 0 it is [1, 2] (the bias keeps 1).
    model = _hand_model()
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    np.testing.assert_allclose(contributions(model, x, "l2", 0, source_layer="inp", method="grad_x_act"),
                               [1.0, 2.0])
    np.testing.assert_allclose(contributions(model, x, "l2", 0, source_layer="inp", eps=1.0), [0.64, 1.28])
    np.testing.assert_allclose(contributions(model, x, "l2", 0, source_layer="inp", eps=1e-12), [1.0, 2.0])
    # The hidden layer: h * w2 = [4, 0].
    np.testing.assert_allclose(contributions(model, x, "l2", 0, source_layer="relu", eps=1e-12), [4.0, 0.0])


def test_batch_gives_the_mean_of_the_items():
    model = _hand_model()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]], dtype=torch.float64)
    for method in ("lrp", "grad_x_act"):
        both = contributions(model, x, "l2", 0, source_layer="inp", method=method)
        each = [contributions(model, x[i:i + 1], "l2", 0, source_layer="inp", method=method)
                for i in range(2)]
        np.testing.assert_allclose(both, np.mean(each, axis=0))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("method", ["lrp", "grad_x_act"])
def test_errors_name_the_bad_value_and_leave_no_hooks(method):
    model = _cnn()
    x = torch.rand(2, 2, 10, 10, dtype=torch.float64)
    with pytest.raises(LayerNotFoundError, match="'nope'"):
        contributions(model, x, "nope", 0, source_layer="act1", method=method)
    with pytest.raises(LayerNotFoundError, match="'nada'"):
        contributions(model, x, "fc2", 0, source_layer="nada", method=method)
    with pytest.raises(InvalidParameterError, match="target_neuron 3 is out of range.*3 neurons"):
        contributions(model, x, "fc2", 3, source_layer="act1", method=method)
    with pytest.raises(InvalidParameterError, match="target_neuron"):
        contributions(model, x, "fc2", -1, source_layer="act1", method=method)
    with pytest.raises(InvalidParameterError, match="act1"):
        contributions(model, x, "act1", 0, source_layer="fc1", method=method)
    assert _hooks(model) == 0
    assert all(p.grad is None for p in model.parameters())


def test_bad_method_and_eps():
    model = _hand_model()
    x = torch.ones(1, 2, dtype=torch.float64)
    with pytest.raises(InvalidParameterError, match="'method'.*'shap'"):
        contributions(model, x, "l2", 0, source_layer="inp", method="shap")
    with pytest.raises(InvalidParameterError, match="'eps'"):
        contributions(model, x, "l2", 0, source_layer="inp", eps=-1.0)


def test_lrp_refuses_unsupported_modules_by_name_but_grad_x_act_passes():
    model = nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(3, 4)), ("bn", nn.BatchNorm1d(4)), ("act", nn.ReLU()), ("fc2", nn.Linear(4, 2)),
    ]))
    x = torch.randn(4, 3)
    with pytest.raises(InvalidParameterError, match="'bn' \\(BatchNorm1d\\)"):
        contributions(model, x, "fc2", 0, source_layer="fc1")
    assert _hooks(model) == 0
    assert contributions(model, x, "fc2", 0, source_layer="fc1", method="grad_x_act").shape == (4,)
    assert contributions(model, x, "fc2", 0, source_layer="act").shape == (4,)  # after bn: fine
    assert model.training  # eval for the call, restored after


def test_lrp_refuses_a_chain_with_a_functional_op():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(3, 3), nn.Linear(3, 2)

        def forward(self, x):
            h = self.fc1(x)
            return self.fc2(h + x)  # the add is no module: LRP has no rule for it here

    model = Residual()
    with pytest.raises(InvalidParameterError, match="sequential chain"):
        contributions(model, torch.randn(2, 3), "fc2", 0, source_layer="fc1")
    assert contributions(model, torch.randn(2, 3), "fc2", 0, source_layer="fc1",
                         method="grad_x_act").shape == (3,)


def test_frozen_parameters_and_no_grad_context():
    model = LeNet5()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        for method in ("lrp", "grad_x_act"):
            assert contributions(model, x, "fc3", 4, source_layer="act2", method=method).shape == (16,)


def test_contribution_series_over_state_dicts_and_paths(tmp_path):
    torch.manual_seed(0)
    model = LeNet5()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    snaps = []
    for i in range(3):
        torch.manual_seed(10 + i)
        snaps.append({k: v + 0.01 * torch.randn_like(v) for k, v in original.items()})
    torch.save({"state_dict": snaps[2]}, tmp_path / "s2.pt")
    x = torch.rand(4, 1, 28, 28)
    series = contribution_series([snaps[0], snaps[1], tmp_path / "s2.pt"], model, x, "fc3", 7,
                                 source_layer="act3")
    assert series.shape == (3, 120)
    for i, snap in enumerate(snaps):
        m = LeNet5()
        m.load_state_dict(snap)
        np.testing.assert_allclose(series[i], contributions(m, x, "fc3", 7, source_layer="act3"), rtol=1e-6)
    assert not np.allclose(series[0], series[1])
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(InvalidParameterError, match="at least one"):
        contribution_series([], model, x, "fc3", 7, source_layer="act3")


def test_blocks_as_source_and_target():
    # A container as target or source: its output is its last leaf's, so the chain is its leaves.
    torch.manual_seed(3)
    model = _no_bias(nn.Sequential(OrderedDict([
        ("stem", nn.Sequential(nn.Linear(4, 5), nn.ReLU())),
        ("head", nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 2))),
    ])).double())
    x = torch.randn(3, 4, dtype=torch.float64)
    for method in ("lrp", "grad_x_act"):
        c = contributions(model, x, "head", 1, source_layer="stem", method=method, eps=1e-12)
        assert c.shape == (5,)
        assert c.sum() == pytest.approx(float(model(x)[:, 1].mean().detach()), rel=1e-6)


@pytest.mark.parametrize("method", ["lrp", "grad_x_act"])
def test_a_model_that_fails_on_the_inputs_raises_input_shape_error_and_leaves_no_hooks(method):
    model = LeNet5()
    with pytest.raises(InputShapeError, match=r"\(2, 3, 28, 28\)"):
        contributions(model, torch.rand(2, 3, 28, 28), "fc3", 0, source_layer="act1", method=method)
    assert _hooks(model) == 0
