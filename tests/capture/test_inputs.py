"""Any model: token-id inputs, models returning tuples or dicts, DataLoaders and lists as data."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from modeldx import capture, latent_pass
from modeldx.capture import hook_count
from modeldx.errors import ModelOutputError
from tests.conftest import TinyNet


class BagOfTokens(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(20, 4)
        self.fc = nn.Linear(4, 3)

    def forward(self, tokens):
        assert tokens.dtype == torch.int64
        return self.fc(self.embed(tokens).mean(1))


def tokens():
    g = np.random.default_rng(0)
    return g.integers(0, 20, (24, 5)), g.integers(0, 3, 24)


@pytest.mark.parametrize("wrap", ["arrays", "tensor dataset", "list", "loader"])
def test_token_ids_stay_integers(tmp_path, wrap):
    x, y = tokens()
    data = {
        "arrays": (x, y),
        "tensor dataset": TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        "list": [(x[i], int(y[i])) for i in range(len(y))],
        "loader": DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                             batch_size=7, shuffle=True),
    }[wrap]
    model = BagOfTokens().eval()
    st = capture(model, data, tmp_path / "s", layers=["embed", "fc"], encoding="float32",
                 batch_size=10, progress=False)
    with torch.no_grad():
        emb = model.embed(torch.from_numpy(x))
    assert st.manifest.layer("embed").kind == "sequence"
    np.testing.assert_allclose(st.read("acts/embed"), emb.amax(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(st.read("acts/fc"), model.fc(emb.mean(1)).detach().numpy(), rtol=1e-5)
    np.testing.assert_array_equal(st.items().label.to_numpy(), y)  # the loader's shuffle is ignored


def test_float_inputs_go_to_the_model_dtype(tmp_path, digits):
    model = TinyNet().double()
    st = capture(model, digits, tmp_path / "s", layers=["fc2"], encoding="float32", progress=False)
    x, _ = digits.get_batch(np.arange(len(digits)))
    with torch.no_grad():
        want = model(x.double()).float()
    np.testing.assert_allclose(st.read("acts/fc2"), want.numpy(), rtol=1e-5, atol=1e-6)


class Multi(TinyNet):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, x):
        logits = super().forward(x)
        if self.how == "tuple":
            return logits, x.mean()
        return {"aux": x.mean(), "logits": logits}


@pytest.mark.parametrize("how, output", [("tuple", 0), ("dict", "logits"),
                                         ("dict", lambda out: out["logits"])])
def test_output_picks_the_logits(tmp_path, digits, how, output):
    model = Multi(how)
    st = capture(model, digits, tmp_path / "s", layers=["fc2"], output=output, encoding="float32",
                 progress=False)
    x, _ = digits.get_batch(np.arange(len(digits)))
    with torch.no_grad():
        want = TinyNet.forward(model, x)
    np.testing.assert_allclose(st.read("acts/fc2"), want.numpy(), rtol=1e-5, atol=1e-6)
    st = latent_pass(model, digits, tmp_path / "l", output=output, progress=False)
    assert st.read("probs").shape == (len(digits), 10)


@pytest.mark.parametrize("how, output, match", [
    ("tuple", None, r"tuple of 2: \[0\] tensor \(2, 10\).*output="),
    ("dict", None, r"dict with keys \['aux', 'logits'\].*output="),
    ("dict", "nope", r"no key 'nope'.*'aux', 'logits'"),
    ("tuple", 5, r"index 5"),
])
def test_structured_outputs_without_a_valid_pick_are_refused(tmp_path, digits, how, output, match):
    model = Multi(how)
    with pytest.raises(ModelOutputError, match=match):
        capture(model, digits, tmp_path / "s", output=output, progress=False)
    assert not (tmp_path / "s").exists()
    assert hook_count(model) == 0
