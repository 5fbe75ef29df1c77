"""Sequence outputs: a neuron of a (batch, time, features) output is one feature, reduced over time."""

import numpy as np
import pytest
import torch
from torch import nn

from modeldx import capture
from modeldx.capture import hook_count
from modeldx.errors import InvalidParameterError, LayerNotFoundError

N, T, D, V, C = 40, 7, 6, 11, 3
close = dict(rtol=1e-5, atol=1e-6)


def float_seqs(seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=(N, T, D)).astype(np.float32), g.integers(0, C, N)


def token_seqs(seed=0):
    g = np.random.default_rng(seed)
    return g.integers(0, V, (N, T)), g.integers(0, C, N)


class RNNClassifier(nn.Module):
    def __init__(self, cell, batch_first):
        super().__init__()
        torch.manual_seed(0)
        self.batch_first = batch_first
        self.rnn = cell(D, 5, batch_first=batch_first)
        self.head = nn.Linear(5, C)

    def forward(self, x):
        if not self.batch_first:
            x = x.transpose(0, 1)
        out, _ = self.rnn(x)
        out = out if self.batch_first else out.transpose(0, 1)
        return self.head(out[:, -1])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("reduction", ["max", "mean", "last"])
def test_rnn_neurons_are_features_reduced_over_time(tmp_path, cell, batch_first, reduction):
    model = RNNClassifier(cell, batch_first).eval()
    x, y = float_seqs()
    st = capture(model, (x, y), tmp_path / "s", layers=["rnn"], reduction=reduction,
                 encoding="float32", batch_size=16, chunk_items=16, progress=False)
    with torch.no_grad():
        xt = torch.from_numpy(x)
        out, _ = model.rnn(xt if batch_first else xt.transpose(0, 1))
        out = out if batch_first else out.transpose(0, 1)  # (N, T, 5)
    want = {"max": out.amax(1), "mean": out.mean(1), "last": out[:, -1]}[reduction]
    np.testing.assert_allclose(st.read("acts/rnn"), want.numpy(), **close)
    spec = st.manifest.layer("rnn")
    assert (spec.kind, spec.raw_shape, spec.neurons, spec.reduction) == ("sequence", [T, 5], 5, reduction)
    assert hook_count(model) == 0


def test_whole_sequence_map_and_gradients(tmp_path):
    """Before: the gradient was reduced while the map was not, and the store refused the shapes."""
    model = RNNClassifier(nn.LSTM, False).eval()
    x, y = float_seqs()
    st = capture(model, (x, y), tmp_path / "s", layers=["rnn"], reduction="none", gradients=True,
                 grad_reduction="last", encoding="float32", batch_size=16, progress=False)
    xt = torch.from_numpy(x).transpose(0, 1)
    out, _ = model.rnn(xt)
    out_bf = out.transpose(0, 1)
    loss = nn.functional.cross_entropy(model.head(out_bf[:, -1]), torch.from_numpy(y), reduction="sum")
    (grad,) = torch.autograd.grad(loss, out)
    np.testing.assert_allclose(st.read("acts/rnn"), out_bf.detach().reshape(N, -1).numpy(), **close)
    # kept whole, its gradient is kept whole too (grad_reduction is for reduced layers)
    np.testing.assert_allclose(st.read("grads/rnn"), grad.transpose(0, 1).reshape(N, -1).numpy(),
                               **close)
    assert st.manifest.layer("rnn").neurons == T * 5


class EncoderClassifier(nn.Module):
    def __init__(self, batch_first=True):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(V, 8)
        layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                           batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.batch_first = batch_first
        self.head = nn.Linear(8, C)

    def forward(self, tokens):
        h = self.embed(tokens)
        if not self.batch_first:
            h = h.transpose(0, 1)
        h = self.encoder(h)
        if not self.batch_first:
            h = h.transpose(0, 1)
        return self.head(h.mean(1))


@pytest.mark.parametrize("batch_first", [True, False])
def test_transformer_encoder_auto_takes_modules_that_run(tmp_path, batch_first):
    model = EncoderClassifier(batch_first).eval()
    st = capture(model, token_seqs(), tmp_path / "s", encoding="float32", batch_size=16,
                 progress=False)
    assert not any("out_proj" in name for name in st.layers)  # MultiheadAttention calls it functionally
    assert "head" in st.layers and "encoder.layers.0.linear1" in st.layers
    tokens = torch.from_numpy(token_seqs()[0])
    with torch.no_grad():
        h = model.embed(tokens)
        h = h if batch_first else h.transpose(0, 1)
        layer0 = model.encoder.layers[0](h)
        layer0 = layer0 if batch_first else layer0.transpose(0, 1)
    st2 = capture(model, token_seqs(), tmp_path / "s2", layers=["encoder.layers.0", "embed"],
                  reduction="mean", encoding="float32", batch_size=16, progress=False)
    np.testing.assert_allclose(st2.read("acts/encoder.layers.0"), layer0.mean(1).numpy(), **close)
    st3 = capture(model, token_seqs(), tmp_path / "s3", layers=["encoder.layers.0.self_attn"],
                  reduction="last", encoding="float32", batch_size=16, progress=False)
    with torch.no_grad():
        attn = model.encoder.layers[0].self_attn(h, h, h, need_weights=False)[0]
        attn = attn if batch_first else attn.transpose(0, 1)
    np.testing.assert_allclose(st3.read("acts/encoder.layers.0.self_attn"), attn[:, -1].numpy(),
                               **close)
    np.testing.assert_allclose(st2.read("acts/embed"), model.embed(tokens).mean(1).detach().numpy(),
                               **close)
    for name in ("encoder.layers.0", "embed", "encoder.layers.0.linear1"):
        spec = (st2 if name in st2.layers else st).manifest.layer(name)
        assert spec.kind == "sequence", name
    assert st.manifest.layer("encoder.layers.0.linear1").neurons == 16


def test_a_module_that_never_runs_is_refused_by_name(tmp_path):
    model = EncoderClassifier().eval()
    with pytest.raises(LayerNotFoundError, match="never ran"):
        capture(model, token_seqs(), tmp_path / "s", layers=["encoder.layers.0.self_attn.out_proj"],
                progress=False)
    assert not (tmp_path / "s").exists()
    assert hook_count(model) == 0


class CausalSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Token + position embeddings, causal blocks, an LM head read at the last token."""

    def __init__(self, d=8, heads=2, layers=2):
        super().__init__()
        torch.manual_seed(0)
        self.tok = nn.Embedding(V, d)
        self.pos = nn.Embedding(T, d)
        self.blocks = nn.Sequential(*(Block(d, heads) for _ in range(layers)))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, V)

    def hidden(self, tokens):
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        return self.ln_f(self.blocks(self.tok(tokens) + self.pos(pos)))

    def forward(self, tokens):
        return self.head(self.hidden(tokens)[:, -1])


def test_gpt_style_decoder(tmp_path):
    model = TinyGPT().eval()
    tokens, _ = token_seqs()
    labels = np.roll(tokens, -1, axis=1)[:, -1]  # next-token classes
    st = capture(model, (tokens, labels), tmp_path / "s", encoding="float32", batch_size=16,
                 gradients=True, progress=False)
    assert st.layers == ["blocks.0.mlp.1", "blocks.1.mlp.1", "head"]
    tt = torch.from_numpy(tokens)
    with torch.no_grad():
        b0 = model.blocks[0]
        x = model.tok(tt) + model.pos(torch.arange(T))
        x = x + b0.attn(b0.ln1(x))
        gelu = b0.mlp[1](b0.mlp[0](b0.ln2(x)))
        logits = model(tt)
    np.testing.assert_allclose(st.read("acts/blocks.0.mlp.1"), gelu.amax(1).numpy(), **close)
    np.testing.assert_allclose(st.read("acts/head"), logits.numpy(), rtol=1e-5, atol=1e-5)
    spec = st.manifest.layer("blocks.0.mlp.1")
    assert (spec.kind, spec.raw_shape, spec.neurons) == ("sequence", [T, 32], 32)
    assert st.manifest.layer("head").kind == "dense"
    assert st.manifest.num_classes == V
    np.testing.assert_array_equal(st.items().label.to_numpy(), labels)


def test_conv1d_stays_a_conv_map_and_the_rule_can_be_overridden(tmp_path):
    model = nn.Sequential(nn.Conv1d(D, 4, 3), nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(),
                          nn.Linear(4, C)).eval()
    x, y = float_seqs()
    x = np.ascontiguousarray(x.transpose(0, 2, 1))  # (N, D, T): channels first
    st = capture(model, (x, y), tmp_path / "a", layers=["0", "1"], encoding="float32",
                 progress=False)
    with torch.no_grad():
        conv = model[1](model[0](torch.from_numpy(x)))  # (N, 4, T - 2)
    assert st.manifest.layer("1").kind == "conv"  # a ReLU after a Conv1d follows its producer
    np.testing.assert_allclose(st.read("acts/1"), conv.amax(2).numpy(), **close)
    st = capture(model, (x, y), tmp_path / "b", layers=["1"], kinds={"1": "sequence"},
                 encoding="float32", progress=False)
    assert st.manifest.layer("1").kind == "sequence"
    np.testing.assert_allclose(st.read("acts/1"), conv.amax(1).numpy(), **close)


class RaisingLSTM(RNNClassifier):
    def __init__(self):
        super().__init__(nn.LSTM, True)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out, _ = self.rnn(x)
        if self.calls > 3:
            raise RuntimeError("boom mid-way")
        return self.head(out[:, -1])


def test_no_hook_left_when_a_sequence_model_raises_mid_way(tmp_path):
    model = RaisingLSTM()
    with pytest.raises(RuntimeError, match="boom"):
        capture(model, float_seqs(), tmp_path / "s", batch_size=8, chunk_items=8, gradients=True,
                progress=False)
    assert hook_count(model) == 0
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("grad_reduction", ["last", "mean"])
def test_sequence_gradients_are_reduced_over_time(tmp_path, grad_reduction):
    model = RNNClassifier(nn.GRU, True).eval()
    x, y = float_seqs()
    st = capture(model, (x, y), tmp_path / "s", layers=["rnn"], gradients=True,
                 grad_reduction=grad_reduction, encoding="float32", batch_size=16, progress=False)
    out, _ = model.rnn(torch.from_numpy(x))
    loss = nn.functional.cross_entropy(model.head(out[:, -1]), torch.from_numpy(y), reduction="sum")
    (grad,) = torch.autograd.grad(loss, out)
    want = grad[:, -1] if grad_reduction == "last" else grad.mean(1)
    np.testing.assert_allclose(st.read("grads/rnn"), want.numpy(), **close)


def test_kinds_must_name_modules_that_run(tmp_path):
    with pytest.raises(LayerNotFoundError, match="nope"):
        capture(RNNClassifier(nn.LSTM, True), float_seqs(), tmp_path / "s", kinds={"nope": "conv"},
                progress=False)
    with pytest.raises(InvalidParameterError, match="'sequence' or 'conv'"):
        capture(RNNClassifier(nn.LSTM, True), float_seqs(), tmp_path / "s", kinds={"rnn": "dense"},
                progress=False)
    assert not (tmp_path / "s").exists()
