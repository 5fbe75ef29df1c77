import base64

import numpy as np

from modeldx.interactive.features import layer_features, pixel_features
from modeldx.interactive.sessions import classifier_session, kmeans_session
from modeldx.zoo import LeNet5


def test_kmeans_session_streams_what_the_thesis_dashboard_shows(mnist_test):
    x, blocks, names = pixel_features(mnist_test)
    images = x.reshape(-1, 28, 28)
    s = kmeans_session(x[:5000], k=16, images=images[:5000], batch_size=256, every=5)
    s.start(max_steps=200)
    try:
        assert s.wait(12)
        event = s.set("size weight", 3.0)
        assert s.wait(event.step + 6 if event.step is not None else 40)
        s.snapshot("before")
        s.wait(s.step + 2)
    finally:
        s.stop()
    state = s.state()
    streams = state["streams"]
    assert {"loss", "objective", "cluster sizes", "centres", "silhouette"} <= set(streams)
    assert streams["loss"]["kind"] == "scalar" and len(streams["loss"]["step"]) >= 12
    centres = streams["centres"]["latest"][1]
    assert centres["shape"] == [16, 28, 28] and len(base64.b64decode(centres["data"])) == 16 * 28 * 28
    sil = streams["silhouette"]["latest"][1]
    assert len(sil["score"]) == 1000 and -1 <= min(sil["score"]) <= max(sil["score"]) <= 1
    assert s.model.size_weight == 3.0 and "before" in s.snapshots
    assert [e["name"] for e in state["events"] if e["kind"] == "control"] == ["size weight"]


def test_kmeans_on_layer_features_has_a_slider_per_layer(mnist_test):
    import torch

    torch.manual_seed(0)
    model = LeNet5()
    x, blocks, names = layer_features(model, mnist_test, ["act2", "act4"])
    assert names == ["act2", "act4"] and blocks == [16 * 16, 84] and x.shape == (10_000, 340)
    s = kmeans_session(x, k=8, blocks=blocks, block_names=names, batch_size=256)
    assert {"weight: act2", "weight: act4"} <= set(s.controls)
    s.set("weight: act2", 0.0)
    s.start(max_steps=5)
    s.wait(5)
    s.stop()
    assert s.model.block_weights == [0.0, 1.0]


def test_classifier_session_learns_and_follows_its_sliders(mnist_test):
    s = classifier_session(mnist_test, mnist_test, batch_size=64, eval_every=20, eval_items=500)
    s.set("learning rate", 3e-3)
    s.start(max_steps=60)
    s.wait(60)
    s.stop()
    streams = s.state()["streams"]
    acc = streams["test accuracy"]["value"]
    assert len(acc) == 3 and acc[-1] > 0.6 > acc[0]
    loss = streams["loss"]["value"]
    assert np.mean(loss[-10:]) < np.mean(loss[:10])


def test_sessions_leave_the_callers_global_rng_alone(mnist_test):
    import torch

    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    first = classifier_session(mnist_test, mnist_test, batch_size=32, eval_every=5, eval_items=100, seed=3)
    first.start(max_steps=6)
    assert first.wait(6)
    first.stop()
    x, _, _ = pixel_features(mnist_test)
    km = kmeans_session(x[:2000], k=4, batch_size=128)
    km.start(max_steps=3)
    assert km.wait(3)
    km.stop()
    assert torch.equal(torch.random.get_rng_state(), before)
    # and the seed still decides the weights
    again = classifier_session(mnist_test, mnist_test, eval_items=100, seed=3).model.state_dict()
    other = classifier_session(mnist_test, mnist_test, eval_items=100, seed=4).model.state_dict()
    key = next(iter(again))
    fresh = classifier_session(mnist_test, mnist_test, eval_items=100, seed=3).model.state_dict()
    assert torch.equal(again[key], fresh[key]) and not torch.equal(again[key], other[key])
