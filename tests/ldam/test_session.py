import base64

import numpy as np
import pytest
import torch

from modeldx.errors import InvalidParameterError
from modeldx.ldam import LDAM
from modeldx.ldam.session import OUTPUTS, ldam_session
from tests.waiting import until


def test_ldam_session_streams_the_grid_and_follows_its_controls(mnist_model, mnist_train, mnist_store):
    reals = mnist_train.get_batch(np.arange(2000))[0]
    s = ldam_session(mnist_model.model, (1, 28, 28), real_images=reals, store=mnist_store, chains=3)
    assert {"L2 weight", "step size", "noise", "momentum", "discriminator weight", "show", "target",
            "restart", "explain class", "map layer"} <= set(s.controls)
    s.set("noise", 0.2)
    s.start(max_steps=30)
    s.wait(30)
    streams = s.state()["streams"]
    grid = streams["chains"]["latest"][1]
    assert grid["shape"] == [30, 28, 28] and grid["columns"] == 10
    pixels = np.frombuffer(base64.b64decode(grid["data"]), dtype=np.uint8)
    assert pixels.min() < 80 and pixels.max() > 180  # negative and positive regions around grey
    relevance = streams["relevance"]["latest"][1]
    assert relevance["control"] == "target" and relevance["rows"][0]["target"] == "fc3:0"
    scatter = streams["neuron map"]["latest"][1]
    assert scatter["control"] == "target" and scatter["keys"][0].endswith(":0")
    # the map is a figure (thesis Fig. 4.7): axis titles, hover with the mean activation, LDAM thumbnails
    assert (scatter["x_title"], scatter["y_title"]) == ("PCA 1", "PCA 2")
    assert scatter["hover"][0].startswith(scatter["keys"][0] + ", mean activation")
    thumbs = scatter["thumbnails"]
    assert 1 <= len(thumbs["index"]) <= 12 and thumbs["shape"][1:] == [28, 28]
    assert grid["column_names"] == [f"fc3:{n}" for n in range(10)]
    assert s.model["ldam"].sigma == 0.2 and s.model["target"] == OUTPUTS
    # picking a neuron in the relevance table retargets the chains: one neuron, its chains as a square
    s.set("target", relevance["rows"][1]["target"])
    s.start(max_steps=40)
    s.wait(40)
    s.stop()
    assert s.model["target"] == relevance["rows"][1]["target"] and s.model["ldam"].neurons == 1
    grid = s.state()["streams"]["chains"]["latest"][1]
    assert grid["shape"] == [3, 28, 28] and grid["columns"] == 2
    assert grid["column_names"] == [relevance["rows"][1]["target"], ""]


def digits_session(tiny_model, digits, **options):
    reals = digits.get_batch(np.arange(300))[0]
    return ldam_session(tiny_model, (1, 8, 8), real_images=reals, chains=3, **options)


def test_restore_after_a_target_change_brings_back_the_chains_not_noise(tiny_model, digits):
    s = digits_session(tiny_model, digits)
    s.start(paused=True)
    try:
        for _ in range(12):
            s.step_once()
        assert until(lambda: s.step == 12)
        snap = s.snapshot("a")
        assert until(lambda: snap.step is not None)
        saved = s.model["ldam"].x.clone()
        disc_weight = s.model["trainer"].disc.net.head.weight.detach().clone()
        s.set("target", "fc1:3")
        for _ in range(5):
            s.step_once()
        assert until(lambda: s.step == 17)
        assert s.model["target"] == "fc1:3" and s.model["ldam"].neurons == 1
        restore = s.restore("a")
        assert until(lambda: restore.step is not None)
        assert s.error is None and s.model["target"] == OUTPUTS and s.model["ldam"].neurons == 10
        assert torch.equal(s.model["ldam"].x, saved)  # the chains of the snapshot, not a restart from noise
        assert torch.equal(s.model["trainer"].disc.net.head.weight, disc_weight)
        assert restore.value["controls"]["target"] == OUTPUTS
        s.step_once()  # and the next step continues them
        assert until(lambda: s.step == 18)
        assert s.model["target"] == OUTPUTS
        assert (s.model["ldam"].x - saved).abs().mean() < 0.5 * saved.abs().mean()
    finally:
        s.stop()


def test_a_snapshot_before_the_first_step_can_be_restored(tiny_model, digits):
    s = digits_session(tiny_model, digits)
    s.snapshot("start")
    s.set("target", "fc1:0")
    s.start(max_steps=3)
    assert s.wait(3)
    s.stop()
    s.restore("start")
    assert s.error is None and s.model["target"] == OUTPUTS and s.controls["target"].value == OUTPUTS


@pytest.mark.parametrize("name,value,match", [
    ("gamma", 1.0, r"'gamma' parameter of LDAM must be a float in \[0, 1\)"),
    ("gamma", -0.1, "'gamma'"), ("sigma", -0.01, "'sigma'"), ("beta", 0.0, "'beta'"),
    ("l2", -1.0, "'l2'"), ("l2", float("inf"), "'l2'"),
    ("chains", 0, "'chains'"), ("chains", 2.5, "'chains'"),
    ("rms_decay", 1.0, "'rms_decay'"), ("disc_weight", float("nan"), "'disc_weight'")])
def test_ldam_settings_are_checked_at_construction_and_when_set_later(tiny_model, name, value, match):
    with pytest.raises(InvalidParameterError, match=match):
        LDAM(tiny_model, (1, 8, 8), **{name: value})
    ldam = LDAM(tiny_model, (1, 8, 8))
    before = getattr(ldam, name)
    with pytest.raises(InvalidParameterError, match=match):
        setattr(ldam, name, value)  # as a live slider does
    assert getattr(ldam, name) == before


def test_the_ldam_session_leaves_the_global_rng_alone(tiny_model, digits):
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    s = digits_session(tiny_model, digits)
    s.start(max_steps=5)
    assert s.wait(5)
    s.stop()
    assert torch.equal(torch.random.get_rng_state(), before)
