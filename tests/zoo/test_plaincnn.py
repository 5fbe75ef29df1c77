"""PlainCNN and the dead-ReLU case (CNNVis' training diagnosis), reproduced and diagnosed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.zoo import MODELS, PlainCNN, load_checkpoint, save_checkpoint, train

RELUS = [f"act{i}" for i in range(1, 11)]


def test_plaincnn_has_ten_named_conv_relu_pairs_and_a_linear_head():
    model = PlainCNN()
    names = [name for name, _ in model.named_children()]
    assert [n for n in names if n.startswith("conv")] == [f"conv{i}" for i in range(1, 11)]
    assert all(isinstance(getattr(model, a), nn.ReLU) for a in RELUS)
    # every ReLU is its own module, right after its conv: capture hooks them by name
    assert all(names[names.index(f"conv{i}") + 1] == f"act{i}" for i in range(1, 11))
    assert [n for n in names if n.startswith("pool")] == ["pool1", "pool2", "pool3"]
    assert names[-1] == "fc" and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(getattr(model, f"conv{i}").bias is not None for i in range(1, 11))
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert PlainCNN(in_channels=3, image_size=32, num_classes=7)(torch.zeros(2, 3, 32, 32)).shape == (2, 7)


def test_batch_norm_sits_between_each_conv_and_its_relu():
    model = PlainCNN(batch_norm=True)
    names = [name for name, _ in model.named_children()]
    for i in range(1, 11):
        at = names.index(f"conv{i}")
        assert names[at + 1:at + 3] == [f"bn{i}", f"act{i}"]
        assert isinstance(getattr(model, f"bn{i}"), nn.BatchNorm2d)
        assert getattr(model, f"conv{i}").bias is None  # the norm would subtract it again
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(("arch", "batch_norm"), [("plaincnn", False), ("plaincnn-bn", True)])
def test_both_variants_are_registered_and_survive_a_checkpoint(tmp_path, arch, batch_norm):
    torch.manual_seed(0)
    model = MODELS[arch](in_channels=1, num_classes=10, image_size=28)
    assert isinstance(model, PlainCNN) and model.batch_norm is batch_norm
    args = {"in_channels": 1, "num_classes": 10, "image_size": 28}
    path = save_checkpoint(model, tmp_path / "m.pt", arch, {"model_args": args})
    loaded, _ = load_checkpoint(path)
    assert isinstance(loaded, PlainCNN) and loaded.batch_norm is batch_norm
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def _never_positive(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Per ReLU, the channels whose output is 0 everywhere on every item of ``x``: the ground truth."""
    seen = {}
    hooks = [getattr(model, a).register_forward_hook(
        lambda _m, _i, out, a=a: seen.__setitem__(a, out.amax(dim=(0, 2, 3)) <= 0)) for a in RELUS]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return {a: seen[a].numpy() for a in RELUS}


@pytest.fixture
def one_thread():
    """One torch thread: on a shared CPU, two threads spin against each other (4x slower here)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _train_and_diagnose(arch, mnist_train, mnist_test, tmp_path, seed=0):
    """The example's recipe, shortened: Adam at lr=1e-2, 100 steps of 64 on 6,400 MNIST items."""
    from modeldx import capture
    from modeldx.queries import dead_neurons

    test = mnist_test.subset(np.arange(1000))
    result = train(arch, mnist_train, test, epochs=1, batch_size=64, lr=1e-2, train_items=6400,
                   seed=seed, device="cpu", progress=False)
    store = capture(result.model, test, tmp_path / arch, encoding="float32", device="cpu",
                    progress=False)
    dead = dead_neurons(store, layers=RELUS)
    truth = _never_positive(result.model, test.get_batch(np.arange(len(test)))[0])
    return result, dead, truth, store


def _explorer_dead_share(store, model) -> dict[str, float]:
    """The share of each layer's neurons that the explorer draws in its dead cluster."""
    from modeldx.neurons.explore import Explorer

    graph = Explorer(store, model, top_items=1).graph()
    return {layer["name"]: sum(c["size"] for c in layer["clusters"] if c["dead"]) / layer["neurons"]
            for layer in graph["layers"]}


def test_the_diagnosis_points_at_the_dead_layers_of_the_plain_net(mnist_train, mnist_test, tmp_path,
                                                                  one_thread):
    plain, dead, truth, store = _train_and_diagnose("plaincnn", mnist_train, mnist_test, tmp_path)
    ln10 = math.log(10)
    # stuck at chance: the last 20 steps' loss is ln 10 (measured 2.297-2.304 over seeds 0-5)
    assert abs(np.mean(plain.losses[-20:]) - ln10) < 0.02
    assert plain.test_accuracy < 0.2
    # the query flags exactly the units that never fire ...
    for layer in RELUS:
        flagged = dead[dead.layer == layer].sort_values("neuron").dead.to_numpy()
        np.testing.assert_array_equal(flagged, truth[layer], err_msg=layer)
    share = dead.groupby("layer").dead.mean()
    # ... and those fill the layers after the first: the first conv sees inputs of both signs and
    # keeps firing; above it, inputs are ReLU outputs (>= 0) and kernels whose weights went negative
    # give negative pre-activations on every item. Measured over seeds 0-5: act1 0 dead, act2-10
    # together 86-96 %, the most-dead layer 100 %; test accuracy 0.107-0.126.
    assert share["act1"] < 0.2
    assert share[RELUS[1:]].mean() > 0.5
    assert share.max() == 1.0
    # the explorer draws the same units in each layer's dead cluster
    drawn = _explorer_dead_share(store, plain.model)
    for layer in RELUS:
        assert drawn[layer] == pytest.approx(share[layer]), layer


def test_the_same_recipe_with_batch_norm_trains_and_keeps_its_relus_alive(mnist_train, mnist_test,
                                                                          tmp_path, one_thread):
    bn, dead, _, store = _train_and_diagnose("plaincnn-bn", mnist_train, mnist_test, tmp_path)
    # measured over seeds 0-5: last-20-step loss 0.17-0.28, no dead unit, test accuracy 0.60-0.92
    # (eval mode uses running batch statistics, which lag the fast-moving weights after 100 steps)
    assert np.mean(bn.losses[-20:]) < 0.8
    assert bn.test_accuracy > 0.3
    assert dead.groupby("layer").dead.mean().max() <= 0.05
    assert max(_explorer_dead_share(store, bn.model).values()) <= 0.05
