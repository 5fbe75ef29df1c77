"""Gradients are taken w.r.t. the captured activations only: no parameter's .grad is touched."""

import numpy as np
import torch
import torch.nn.functional as F

from modeldx import capture
from modeldx.capture import hook_count
from tests.conftest import TinyNet


def test_parameter_grads_are_left_as_they_were(tmp_path, digits):
    model = TinyNet()
    mine = {n: torch.full_like(p, 7.0) for n, p in model.named_parameters()}
    for n, p in model.named_parameters():
        p.grad = mine[n].clone()
    capture(model, digits, tmp_path / "s", gradients=True, batch_size=200, progress=False)
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, mine[n]), n
    model.fc1.weight.grad = None
    capture(model, digits, tmp_path / "t", gradients=True, batch_size=200, progress=False)
    assert model.fc1.weight.grad is None


def test_a_frozen_model_gives_the_same_gradients(tmp_path, digits):
    model = TinyNet()
    x, y = digits.get_batch(np.arange(300))
    a2 = model.act2(model.fc1(model.flat(model.pool(model.act1(model.conv(x))))))
    loss = F.cross_entropy(model.fc2(a2), y, reduction="sum")
    (want,) = torch.autograd.grad(loss, a2)
    model.requires_grad_(False)
    st = capture(model, (x.numpy(), y.numpy()), tmp_path / "s", layers=["act1", "act2"],
                 gradients=True, encoding="float32", batch_size=100, progress=False)
    np.testing.assert_allclose(st.read("grads/act2"), want.numpy(), rtol=1e-5, atol=1e-7)
    assert st.read("grads/act1").shape == (300, 4)
    assert np.abs(st.read("grads/act1")).sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert hook_count(model) == 0


def test_an_in_place_op_after_a_layer_changes_neither_its_activation_nor_its_gradient(tmp_path, digits):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16),
                                torch.nn.ReLU(inplace=True), torch.nn.Linear(16, 10))
    x, y = digits.get_batch(np.arange(300))
    h = model[1](model[0](x))
    loss = F.cross_entropy(model[3](torch.relu(h)), y, reduction="sum")
    (want,) = torch.autograd.grad(loss, h)
    for frozen in (False, True):
        model.requires_grad_(not frozen)
        st = capture(model, (x.numpy(), y.numpy()), tmp_path / f"s{frozen}", layers=["1"],
                     gradients=True, encoding="float32", batch_size=100, progress=False)
        np.testing.assert_allclose(st.read("acts/1"), h.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.read("grads/1"), want.numpy(), rtol=1e-5, atol=1e-7)


def test_a_whole_conv_map_keeps_its_gradient_whole(tmp_path, digits):
    model = TinyNet()
    x, y = digits.get_batch(np.arange(100))
    a1 = model.act1(model.conv(x))
    logits = model.fc2(model.act2(model.fc1(model.flat(model.pool(a1)))))
    (want,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), a1)
    st = capture(model, (x.numpy(), y.numpy()), tmp_path / "s", layers=["act1"], reduction="none",
                 gradients=True, encoding="float32", progress=False)
    np.testing.assert_allclose(st.read("grads/act1"), want.flatten(1).numpy(), rtol=1e-5, atol=1e-7)
