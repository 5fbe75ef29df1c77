from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modeldx.errors import InvalidParameterError
from modeldx.interactive.sessions import lda_session
from tests.interactive.test_lda import synthetic


def corpus(seed: int = 1):
    topics = np.random.default_rng(seed).dirichlet(np.full(120, 0.3), 6)
    docs = synthetic(topics, docs=200, length=50, seed=seed + 1)
    return SimpleNamespace(docs=docs, vocabulary=SimpleNamespace(words=[f"w{i}" for i in range(120)]))


def test_a_slider_change_shows_in_the_next_steps_and_is_logged_with_its_step():
    s = lda_session(corpus(), k=6, batch_size=40, seed=0, every=5, device="cpu")
    s.start(max_steps=200)
    try:
        assert s.wait(15)
        event = s.set("cosine", 0.05)
        assert s.wait((event.step or 15) + 8)
    finally:
        s.stop()
    state = s.state()
    streams = state["streams"]
    assert {"batch perplexity", "perplexity", "NPMI", "density g1", "topic overlap", "topic sizes",
            "top words", "topic similarity"} <= set(streams)
    logged = [e for e in state["events"] if e["kind"] == "control"]
    assert [(e["name"], e["value"]) for e in logged] == [("cosine", 0.05)] and logged[0]["step"] == event.step
    steps = np.array(streams["topic overlap"]["step"])
    overlap = np.array(streams["topic overlap"]["value"])
    before, after = overlap[steps < event.step], overlap[steps >= event.step + 3]
    assert after.max() < 0.7 * before[-3:].min()  # pushed apart within three steps
    assert s.model.cosine == 0.05
    table = streams["top words"]["latest"][1]["rows"]
    assert len(table) == 6 and len(table[0]["words"].split()) == 10
    matrix = streams["topic similarity"]["latest"][1]["values"]
    assert np.allclose(np.diag(matrix), 1.0)
    sizes = streams["topic sizes"]["latest"][1]
    assert len(sizes["counts"]) == 6 and abs(sum(sizes["counts"]) - 1) < 1e-5
    # one bar per topic, read as topic vs share of tokens (not a histogram's value/count)
    assert sizes["labels"] == [str(t) for t in range(6)]
    assert (sizes["x_title"], sizes["y_title"]) == ("topic", "share of tokens")
    similarity = streams["topic similarity"]["latest"][1]
    assert similarity["rows"] == list(range(6)) and "cosine" in similarity["note"]


def test_k_changes_on_restart():
    s = lda_session(corpus(), k=6, batch_size=40, seed=0, every=5, device="cpu")
    s.set("k", 10)
    s.start(max_steps=3)
    assert s.wait(3)
    assert s.model.k == 6  # a new k waits for the restart button
    s.stop()
    s.set("restart")
    s.start(max_steps=5)
    assert s.wait(5)
    s.stop()
    assert s.model.k == 10 and len(s.state()["streams"]["top words"]["latest"][1]["rows"]) == 10


def test_sliders_at_their_extremes_keep_phi_and_perplexity_finite():
    """nsamps 1 and 1000, l1 at its maximum, cosine at its maximum: 50+ steps each, nothing NaN."""
    s = lda_session(corpus(), k=6, batch_size=40, seed=0, every=5, device="cpu")
    low, high = s.controls["l1"].low, s.controls["l1"].high
    assert low == 0.0
    settings = [{"nsamps": 1}, {"nsamps": 1000}, {"nsamps": 100, "l1": high},
                {"l1": 0.0, "cosine": s.controls["cosine"].high}, {"l1": high}]
    done = 0
    for values in settings:
        for name, value in values.items():
            s.set(name, value)
        done += 50
        s.start(max_steps=done)
        assert s.wait(done, timeout=60)
        s.stop()
        phi = s.model.phi
        assert torch.isfinite(phi).all() and torch.allclose(phi.sum(1), torch.ones(6)), values
    streams = s.state()["streams"]
    assert not [e for e in s.state()["events"] if e["kind"] == "error"]
    for name in ("batch perplexity", "perplexity", "NPMI", "density g1", "topic overlap"):
        assert np.isfinite(streams[name]["value"]).all(), name
    assert len(streams["perplexity"]["value"]) >= 50


def test_k_changes_while_running_and_snapshots_across_k_restore():
    s = lda_session(corpus(), k=6, batch_size=40, seed=0, every=5, device="cpu")
    s.start(max_steps=60)
    try:
        assert s.wait(5)
        s.snapshot("six")
        s.set("k", 10)
        event = s.set("restart")
        assert s.wait((event.step or 5) + 5)
        assert s.model.k == 10 and s.model.phi.shape[0] == 10
        restored = s.restore("six")
        assert s.wait((restored.step or 10) + 3)
    finally:
        s.stop()
    state = s.state()
    assert not [e for e in state["events"] if e["kind"] == "error"]
    assert s.model.k == 6 and len(state["streams"]["top words"]["latest"][1]["rows"]) == 6
    assert np.array(state["streams"]["topic similarity"]["latest"][1]["values"]).shape == (6, 6)


def test_topic_choices_fit_the_vocabulary_and_bad_corpora_are_refused():
    small = corpus()
    small.vocabulary.words = small.vocabulary.words[:120]
    s = lda_session(small, k=6, device="cpu")
    assert max(s.controls["k"].options) <= 120
    with pytest.raises(InvalidParameterError, match="k"):
        lda_session(corpus(), k=500, device="cpu")
    short = SimpleNamespace(docs=[np.array([1, 2, 3])] * 20 + [np.array([4])] * 5,
                            vocabulary=SimpleNamespace(words=[f"w{i}" for i in range(10)]))
    with pytest.raises(InvalidParameterError, match="held-out documents of at least 2 tokens"):
        lda_session(short, k=2, device="cpu")
