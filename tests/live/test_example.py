"""The documented example of making a training loop live runs and learns."""

import importlib.util

from tests.conftest import MNIST_DIR, REPO


def test_the_live_classifier_example():
    spec = importlib.util.spec_from_file_location("live_classifier", REPO / "examples" / "live_classifier.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    session = example.make_session(data_root=MNIST_DIR, batch_size=64)
    session.set("learning rate", 3e-3)
    session.start(max_steps=101)
    session.wait(101)
    session.snapshot("end")
    session.stop()
    acc = session.state()["streams"]["test accuracy"]["value"]
    assert len(acc) == 3 and acc[-1] > 0.8 and "end" in session.snapshots
