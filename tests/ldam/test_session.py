import base64

import numpy as np

from modeldx.ldam.session import OUTPUTS, ldam_session


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
    assert s.model["ldam"].sigma == 0.2 and s.model["target"] == OUTPUTS
    # picking a neuron in the relevance table retargets the chains: one neuron, its chains as a square
    s.set("target", relevance["rows"][1]["target"])
    s.start(max_steps=40)
    s.wait(40)
    s.stop()
    assert s.model["target"] == relevance["rows"][1]["target"] and s.model["ldam"].neurons == 1
    grid = s.state()["streams"]["chains"]["latest"][1]
    assert grid["shape"] == [3, 28, 28] and grid["columns"] == 2
