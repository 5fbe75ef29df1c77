"""The zoo ResNet: shapes, residual blocks, training through ``train``, and what capture picks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from modeldx import capture
from modeldx.data import ArrayDataset
from modeldx.zoo import CLASSIFIERS, MODELS, BasicBlock, ResNet, load_checkpoint, train

BLOCK_OUTPUTS = [f"layer{s}.{b}.act2" for s in (1, 2, 3) for b in (0, 1)]


def test_resnet_is_registered_and_takes_mnist_and_cifar_shapes():
    assert "resnet" in CLASSIFIERS and MODELS["resnet"] is ResNet
    torch.manual_seed(0)
    assert ResNet()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert ResNet(in_channels=3, image_size=32, num_classes=7)(torch.zeros(2, 3, 32, 32)).shape == (2, 7)
    model = ResNet()
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 6 and sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 1 + 6 * 2 + 2
    assert [b.conv2.out_channels for b in blocks] == [16, 16, 32, 32, 64, 64]
    assert model.fc.in_features == 64


def test_a_block_adds_its_input_before_the_last_relu():
    torch.manual_seed(0)
    block = BasicBlock(8, 8).eval()
    x = torch.randn(2, 8, 6, 6)
    inner = block.bn2(block.conv2(block.act1(block.bn1(block.conv1(x)))))
    torch.testing.assert_close(block(x), torch.relu(inner + x))
    down = BasicBlock(8, 16, stride=2).eval()
    assert down(x).shape == (2, 16, 3, 3)  # the shortcut is a strided 1x1 conv + norm


def _digits_28(n: int = 300) -> ArrayDataset:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    images = rng.random((n, 28, 28), dtype=np.float32) * 0.2
    for i, y in enumerate(labels):  # a bright bar whose row says the class: learnable in one epoch
        images[i, 2 + 2 * y: 4 + 2 * y, 4:24] = 1.0
    return ArrayDataset(images, labels, add_channel=True, name="bars")


def test_train_and_checkpoint_round_trip(tmp_path):
    data = _digits_28()
    result = train("resnet", data, data, epochs=3, batch_size=16, lr=3e-3, checkpoint=tmp_path / "r.pt",
                   progress=False)
    # chance is 0.1; fewer steps leave batch norm's running statistics too far from the data
    assert result.test_accuracy > 0.9
    loaded, meta = load_checkpoint(result.checkpoint)
    assert isinstance(loaded, ResNet) and meta["arch"] == "resnet"
    x, _ = data.get_batch(np.arange(4))
    torch.testing.assert_close(loaded(x), result.model.eval()(x))


def test_capture_takes_every_relu_with_the_block_outputs_after_the_add(tmp_path):
    torch.manual_seed(0)
    model = ResNet().eval()
    store = capture(model, _digits_28(40), tmp_path / "s", progress=False)
    assert store.layers == ["act", *[f"layer{s}.{b}.{a}" for s in (1, 2, 3) for b in (0, 1)
                                     for a in ("act1", "act2")], "fc"]
    assert set(BLOCK_OUTPUTS) <= set(store.layers)
    # the latent vector is the pooled 64-d input of the head
    assert store.manifest.latent_layer == "input:fc" and store.read("latent").shape == (40, 64)
    # a block's stored value is the max over space of its output after the residual add
    x, _ = _digits_28(40).get_batch(np.arange(40))
    with torch.no_grad():
        h = model.layer1(model.act(model.bn(model.conv(x))))
    np.testing.assert_allclose(store.read("acts/layer1.1.act2"), h.amax(dim=(2, 3)).numpy(),
                               rtol=1e-2, atol=1e-2)


def test_whole_maps_and_gradients_of_every_layer_are_captured(tmp_path):
    # what the sampled pipeline benchmark captures: no spatial reduction, a gradient per layer
    torch.manual_seed(0)
    store = capture(ResNet().eval(), _digits_28(8), tmp_path / "s", reduction="none", gradients=True,
                    progress=False)
    assert store.manifest.layer("layer1.0.act2").neurons == 16 * 28 * 28
    assert store.manifest.layer("layer3.1.act2").neurons == 64 * 7 * 7
    for layer in store.layers:
        assert store.read(f"grads/{layer}").shape == store.read(f"acts/{layer}").shape
