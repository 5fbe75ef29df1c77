"""The power-law embedding and output layer (thesis chapter 5)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.data import load_ptb
from modeldx.errors import InvalidParameterError
from modeldx.nn import PowerLawEmbedding, PowerLawOutput, power_law_blocks
from tests.conftest import other_data_root

THESIS_ROW_1 = [(625, 256), (625, 256), (1250, 128), (2500, 64), (5000, 32)]


def expected_count(blocks, dim, projection):
    return sum(n * d for n, d in blocks) + (
        sum(d * dim for _, d in blocks if d < dim) if projection == "linear" else 0)


def test_thesis_ptb_layouts_and_their_parameter_counts():
    # Table 5.2 row 2 is the default layout; Table 5.3 counts input + output matrices
    emb = PowerLawEmbedding(10000, 512)
    assert emb.blocks == [(625, 512), (625, 256), (1250, 128), (2500, 64), (5000, 32)]
    out = PowerLawOutput(emb, tie=False, bias=False)
    assert emb.num_parameters + out.num_parameters == 1_920_000
    row1 = PowerLawEmbedding(10000, 256, blocks=THESIS_ROW_1)
    assert 2 * row1.num_parameters == 1_600_000
    assert 2 * PowerLawEmbedding(10000, 200, exponent=0).num_parameters == 4_000_000  # "200 Dense: 4M"
    assert emb.full_parameters == 5_120_000 and emb.parameter_share == pytest.approx(0.1875)


@pytest.mark.parametrize("projection", ["pad", "linear"])
@pytest.mark.parametrize(("num_words", "dim", "exponent", "num_blocks"),
                         [(10000, 64, 1.0, 5), (777, 48, 0.5, 4), (50, 8, 2.0, 3), (10, 4, 1.0, 1)])
def test_parameter_count_by_formula(projection, num_words, dim, exponent, num_blocks):
    emb = PowerLawEmbedding(num_words, dim, exponent=exponent, num_blocks=num_blocks, projection=projection)
    assert sum(n for n, _ in emb.blocks) == num_words and len(emb.blocks) == num_blocks
    assert emb.num_parameters == expected_count(emb.blocks, dim, projection)
    assert emb.num_parameters == sum(p.numel() for p in emb.parameters())
    tied, untied = PowerLawOutput(emb), PowerLawOutput(emb, tie=False)
    assert tied.num_parameters == num_words
    assert untied.num_parameters == emb.num_parameters + num_words


def test_dimension_falls_with_rank_by_the_power_law():
    for exponent in (0.5, 1.0, 1.5):
        blocks = power_law_blocks(2 ** 16, 4096, exponent=exponent, num_blocks=8)
        starts = np.cumsum([0] + [n for n, _ in blocks])[1:-1]  # start rank of blocks 1..7
        dims = np.array([d for _, d in blocks[1:]])
        slope = np.polyfit(np.log(starts), np.log(dims), 1)[0]
        assert slope == pytest.approx(-exponent, abs=0.02)
    assert all(d == 64 for _, d in power_law_blocks(1000, 64, exponent=0))


@pytest.mark.parametrize("projection", ["pad", "linear"])
def test_forward_is_a_lookup_in_the_dense_weight(projection):
    torch.manual_seed(0)
    emb = PowerLawEmbedding(300, 16, num_blocks=4, projection=projection)
    ids = torch.randint(0, 300, (3, 7))
    x = emb(ids)
    assert x.shape == (3, 7, 16) and x.dtype == torch.float32
    torch.testing.assert_close(x, emb.dense_weight()[ids])
    assert emb(torch.tensor(5)).shape == (16,) and emb(torch.zeros(0, dtype=torch.long)).shape == (0, 16)
    emb64 = emb.double()
    assert emb64(ids).dtype == torch.float64
    if projection == "pad":  # a rare word lives in its block's first coordinates only
        d_last = emb.blocks[-1][1]
        assert torch.all(emb(torch.tensor([299]))[0, d_last:] == 0)


@pytest.mark.parametrize("projection", ["pad", "linear"])
def test_tied_output_is_the_transpose_of_the_embedding(projection):
    torch.manual_seed(0)
    emb = PowerLawEmbedding(300, 16, num_blocks=4, projection=projection)
    out = PowerLawOutput(emb)
    h = torch.randn(2, 5, 16)
    logits = out(h)
    assert logits.shape == (2, 5, 300)
    torch.testing.assert_close(logits, h @ emb.dense_weight().T + out.bias)
    assert {id(p) for p in emb.parameters()} <= {id(p) for p in out.parameters()}
    untied = PowerLawOutput(emb, tie=False)
    assert not {id(p) for p in emb.parameters()} & {id(p) for p in untied.parameters()}
    assert untied.source.blocks == emb.blocks


@pytest.mark.parametrize("projection", ["pad", "linear"])
def test_gradient_reaches_every_block_and_projection(projection):
    emb = PowerLawEmbedding(300, 16, num_blocks=4, projection=projection)
    out = PowerLawOutput(emb)
    ids = torch.tensor([0, 50, 100, 200, 299])
    loss = nn.functional.cross_entropy(out(emb(ids)), ids)
    loss.backward()
    for p in emb.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert out.bias.grad.abs().sum() > 0


def test_from_budget_takes_the_smallest_exponent_that_fits():
    emb = PowerLawEmbedding.from_budget(10000, 200, 400_000)
    assert emb.num_parameters <= 400_000
    looser = PowerLawEmbedding(10000, 200, exponent=emb.exponent * 0.99)
    assert looser.num_parameters > 400_000
    assert PowerLawEmbedding.from_budget(10000, 200, 2_000_000).exponent == 0
    lin = PowerLawEmbedding.from_budget(10000, 200, 500_000, projection="linear")
    assert lin.num_parameters <= 500_000 and lin.projection == "linear"
    with pytest.raises(InvalidParameterError, match="'budget' parameter .* at least 134375"):
        PowerLawEmbedding.from_budget(10000, 200, 1000)


def test_bad_arguments_are_rejected():
    with pytest.raises(InvalidParameterError, match="'num_words' parameter of PowerLawEmbedding.*Got 0"):
        PowerLawEmbedding(0, 8)
    with pytest.raises(InvalidParameterError, match="'exponent' parameter.*Got -1"):
        PowerLawEmbedding(100, 8, exponent=-1)
    with pytest.raises(InvalidParameterError, match="'projection' parameter.*Got 'tied'"):
        PowerLawEmbedding(100, 8, projection="tied")
    with pytest.raises(InvalidParameterError, match="'num_blocks' parameter.*too large for 10 words"):
        PowerLawEmbedding(10, 8, num_blocks=6)
    with pytest.raises(InvalidParameterError, match="'blocks' parameter.*summing to num_words=100"):
        PowerLawEmbedding(100, 8, blocks=[(50, 8), (40, 4)])
    with pytest.raises(InvalidParameterError, match="'blocks' parameter.*dims in \\[1, 8\\]"):
        PowerLawEmbedding(100, 8, blocks=[(50, 16), (50, 4)])
    with pytest.raises(InvalidParameterError, match="'min_dim' parameter.*at most dim=8"):
        PowerLawEmbedding(100, 8, min_dim=9)
    emb = PowerLawEmbedding(100, 8, num_blocks=3)
    with pytest.raises(InvalidParameterError, match=r"Word ids must be in \[0, 100\). Got ids in \[0, 100\]"):
        emb(torch.tensor([0, 100]))
    with pytest.raises(InvalidParameterError, match="integer word ids"):
        emb(torch.tensor([0.0]))
    with pytest.raises(InvalidParameterError, match="last dimension 8"):
        PowerLawOutput(emb)(torch.zeros(2, 7))
    with pytest.raises(InvalidParameterError, match="'embedding' parameter of PowerLawOutput"):
        PowerLawOutput(nn.Embedding(100, 8))


class TinyLM(nn.Module):
    def __init__(self, embed: nn.Module, out: nn.Module, dim: int):
        super().__init__()
        self.embed, self.lstm, self.out = embed, nn.LSTM(dim, dim, batch_first=True), out

    def forward(self, ids):
        return self.out(self.lstm(self.embed(ids))[0])


def test_drop_in_for_nn_embedding_in_a_tiny_lstm_language_model():
    torch.manual_seed(0)
    root = other_data_root()
    ptb = load_ptb("train", root=root)
    num_words, dim = len(ptb.vocabulary), 32
    tokens = ptb.ids[:401].view(1, -1)  # a few hundred tokens as one sequence
    x, y = tokens[:, :-1].reshape(4, 100), tokens[:, 1:].reshape(4, 100)
    emb = PowerLawEmbedding(num_words, dim)
    model = TinyLM(emb, PowerLawOutput(emb), dim)
    dense = TinyLM(nn.Embedding(num_words, dim), nn.Linear(dim, num_words), dim)
    assert model(x).shape == dense(x).shape == (4, 100, num_words)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x).reshape(-1, num_words), y.reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(num_words), rel=0.3)
    assert losses[-1] < 0.7 * losses[0]
