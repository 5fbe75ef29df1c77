"""Every hook comes off: after a capture, after bad input, and when forward raises."""

import numpy as np
import pytest
import torch
from torch import nn

from modeldx import capture
from modeldx.capture import hook_count, hook_group
from modeldx.errors import InputShapeError, LayerNotFoundError, ModeldxError
from tests.conftest import TinyNet


class Exploding(TinyNet):
    """Raises in forward on the second batch."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 2:
            raise RuntimeError("boom")
        return super().forward(x)


def test_hook_group_removal_is_idempotent():
    model = nn.Linear(2, 2)
    with hook_group() as hooks:
        hooks.add(model.register_forward_hook(lambda *a: None))
        assert hook_count(model) == 1
        hooks.remove()
        hooks.remove()
    assert hook_count(model) == 0


@pytest.mark.parametrize("case", ["normal", "gradients", "forward raises", "bad layer", "bad input",
                                  "nan"])
def test_no_hook_left(case, tmp_path, digits):
    model = Exploding() if case == "forward raises" else TinyNet()
    if case == "nan":
        with torch.no_grad():
            model.fc1.weight[0, 0] = float("nan")
    data = digits
    if case == "bad input":
        data = (np.zeros((10, 3, 5)), np.zeros(10, dtype=int))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"layers": ["nope"]} if case == "bad layer" else {}
    run = lambda: capture(model, data, tmp_path / "s", batch_size=100, chunk_items=200,  # noqa: E731
                          gradients=case == "gradients", progress=False, **kwargs)
    if case in ("normal", "gradients"):
        run()
    else:
        with pytest.raises((ModeldxError, RuntimeError)):
            run()
    assert hook_count(model) == 0
    # capture never changes the weights and leaves no gradient behind
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) or torch.isnan(before[k]).any() for k in before)


def test_forward_error_is_reported_with_the_input_shape(tmp_path):
    data = (np.zeros((10, 3, 5), dtype=np.float32), np.zeros(10, dtype=int))
    with pytest.raises(InputShapeError, match=r"shape \(2, 3, 5\)"):
        capture(TinyNet(), data, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()  # nothing was created for a model that cannot run


def test_unknown_layer_creates_nothing(tmp_path, digits):
    with pytest.raises(LayerNotFoundError):
        capture(TinyNet(), digits, tmp_path / "s", layers=["fc9"], progress=False)
    assert not (tmp_path / "s").exists()


class ReusedReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.relu = nn.Linear(64, 8), nn.Linear(8, 10), nn.ReLU()

    def forward(self, x):
        return self.fc2(self.relu(self.relu(self.fc1(x.flatten(1)))))


class TupleOut(TinyNet):
    def forward(self, x):
        return super().forward(x), x


@pytest.mark.parametrize("case", ["reused module", "frozen gradients", "bad label", "tuple output",
                                  "never ran", "single logit", "reduction last on a conv map"])
def test_no_hook_left_on_the_new_paths(case, tmp_path, digits):
    x, y = digits.get_batch(np.arange(200))
    data, kwargs, fails = (x.numpy(), y.numpy()), {}, True
    model = TinyNet()
    if case == "reused module":
        model, fails = ReusedReLU(), False
        kwargs = {"gradients": True}
    elif case == "frozen gradients":
        model.requires_grad_(False)
        kwargs, fails = {"gradients": True}, False
    elif case == "bad label":
        labels = y.numpy().copy()
        labels[150] = 10
        data = [(x[i], int(labels[i])) for i in range(200)]
    elif case == "tuple output":
        model = TupleOut()
    elif case == "never ran":
        model.unused = nn.Linear(2, 2)
        kwargs = {"layers": ["unused"]}
    elif case == "single logit":
        model.fc2 = nn.Linear(16, 1)
    else:
        kwargs = {"layers": ["act1"], "reduction": "last"}
    run = lambda: capture(model, data, tmp_path / "s", batch_size=50, chunk_items=100,  # noqa: E731
                          progress=False, **kwargs)
    if fails:
        with pytest.raises(ModeldxError):
            run()
    else:
        run()
    assert hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())
