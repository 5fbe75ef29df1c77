"""WordLSTM with a full or power-law embedding: shapes, parameter counts, errors, a PTB smoke run."""

import math

import pytest
import torch

from modeldx.data import load_ptb
from modeldx.errors import InvalidParameterError
from modeldx.nn import PowerLawEmbedding
from modeldx.zoo.language import WordLSTM, batchify, evaluate_perplexity, train_language_model
from tests.data.test_ptb import ptb_root


def lstm_parameters(dim, hidden):
    return 4 * (dim * hidden + hidden * hidden + 2 * hidden)


@pytest.mark.parametrize("embedding", ["full", "power-law"])
def test_shapes_and_state(embedding):
    model = WordLSTM(500, 16, 16, layers=2, embedding=embedding)
    logits, (h, c) = model(torch.randint(0, 500, (7, 3)))
    assert logits.shape == (7, 3, 500)
    assert h.shape == c.shape == (2, 3, 16)
    with pytest.raises(InvalidParameterError, match=r"\(seq, batch\)"):
        model(torch.zeros(3, dtype=torch.long))


def test_full_tied_parameter_count_and_sharing():
    model = WordLSTM(1000, 32, 32)
    assert model.out.weight is model.embed.weight
    assert model.embedding_parameters == model.full_embedding_parameters == 32000
    assert model.num_parameters == 32000 + lstm_parameters(32, 32) + 1000  # output bias
    untied = WordLSTM(1000, 32, 48, tie=False)
    assert untied.num_parameters == 32000 + lstm_parameters(32, 48) + 48 * 1000 + 1000


def test_power_law_parameter_count_within_budget():
    model = WordLSTM(10000, 200, 200, embedding="power-law", budget=500_000)
    emb = model.embed
    assert isinstance(emb, PowerLawEmbedding)
    assert 450_000 < model.embedding_parameters == emb.num_parameters <= 500_000
    assert model.num_parameters == emb.num_parameters + lstm_parameters(200, 200) + 10000
    # the thesis' layout by default (exponent 1)
    assert WordLSTM(10000, 512, 512, embedding="power-law").embedding_parameters == 960_000


def test_bad_arguments():
    with pytest.raises(InvalidParameterError, match="hidden == dim"):
        WordLSTM(100, 16, 32)
    with pytest.raises(InvalidParameterError, match="embedding='full'"):
        WordLSTM(100, 16, 16, budget=800)
    with pytest.raises(InvalidParameterError, match="not both"):
        WordLSTM(100, 16, 16, embedding="power-law", budget=800, exponent=1.0)
    with pytest.raises(InvalidParameterError, match="embedding"):
        WordLSTM(100, 16, 16, embedding="sparse")


def test_batchify_columns_are_contiguous_streams():
    data = batchify(torch.arange(23), 4)
    assert data.shape == (5, 4)
    assert data[:, 1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(InvalidParameterError, match="at least"):
        batchify(torch.arange(5), 4)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    model = WordLSTM(300, 8, 8, embedding="power-law")
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    ppl = evaluate_perplexity(model, torch.randint(0, 300, (1000,)), batch_size=4, bptt=9)
    assert ppl == pytest.approx(300)


@pytest.mark.parametrize("embedding", ["full", "power-law"])
def test_smoke_training_on_ptb_lowers_the_loss(embedding):
    torch.set_num_threads(1)
    train = load_ptb("train", root=ptb_root())
    kwargs = {"budget": 10000 * 32 // 4} if embedding == "power-law" else {}
    model = WordLSTM(10000, 32, 32, embedding=embedding, **kwargs)
    result = train_language_model(model, train.ids[:30000], train.ids[30000:36000], steps=80,
                                  batch_size=10, bptt=20, seed=0)
    assert result.steps == len(result.losses) == 80
    assert result.losses[0] == pytest.approx(math.log(10000), abs=0.1)  # uniform at the start
    assert sum(result.losses[-10:]) / 10 < result.losses[0] - 1.5
    assert result.valid_perplexity < 2000
    # the same seed gives the same run
    again = train_language_model(model, train.ids[:30000], None, steps=5, batch_size=10, bptt=20, seed=0)
    assert again.losses == result.losses[:5]
