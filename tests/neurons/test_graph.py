import numpy as np
import pytest
import torch
from torch import nn

from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.neurons import LayerGraph, layer_graph
from modeldx.zoo import LeNet5

LENET_LAYERS = ["act1", "act2", "act3", "act4", "fc3"]


def weights(module: nn.Module) -> np.ndarray:
    return module.weight.detach().double().numpy()


@pytest.fixture(scope="module")
def lenet():
    torch.manual_seed(0)
    return LeNet5().eval()


def by_pair(graph: LayerGraph) -> dict:
    return {(e.source, e.target, e.via): e for e in graph.edges}


def test_lenet_is_a_chain_with_cnnvis_strengths(lenet):
    g = layer_graph(lenet, LENET_LAYERS, torch.zeros(1, 1, 28, 28))
    assert g.nodes == LENET_LAYERS
    assert g.depth == {name: i for i, name in enumerate(LENET_LAYERS)}
    assert [(e.source, e.target, e.via) for e in g.edges] == [
        ("act1", "act2", "conv2"), ("act2", "act3", "fc1"), ("act3", "act4", "fc2"),
        ("act4", "fc3", "fc3")]
    e = by_pair(g)
    conv2 = weights(lenet.conv2)  # 16 x 6 x 5 x 5
    np.testing.assert_allclose(e["act1", "act2", "conv2"].strength, np.abs(conv2).sum(axis=(2, 3)))
    np.testing.assert_allclose(e["act1", "act2", "conv2"].signed, conv2.sum(axis=(2, 3)))
    fc1 = weights(lenet.fc1).reshape(120, 16, 25)  # flattened 16 x 5 x 5 map
    assert e["act2", "act3", "fc1"].strength.shape == (120, 16)
    np.testing.assert_allclose(e["act2", "act3", "fc1"].strength, np.abs(fc1).sum(axis=2))
    np.testing.assert_allclose(e["act2", "act3", "fc1"].signed, fc1.sum(axis=2))
    np.testing.assert_allclose(e["act3", "act4", "fc2"].strength, np.abs(weights(lenet.fc2)))
    np.testing.assert_allclose(e["act4", "fc3", "fc3"].signed, weights(lenet.fc3))
    assert all(edge.strength.dtype == np.float64 and (edge.strength >= 0).all() for edge in g.edges)
    assert "torch.fx" in g.notes[0]


def test_layer_specs_are_accepted_and_order_follows_execution(lenet):
    from modeldx.store.manifest import LayerSpec

    specs = [LayerSpec(n, n, "dense", [1], 1, "none") for n in reversed(LENET_LAYERS)]
    assert layer_graph(lenet, specs, torch.zeros(2, 1, 28, 28)).nodes == LENET_LAYERS


def test_an_unstored_layer_in_between_is_composed(lenet):
    g = layer_graph(lenet, ["act2", "fc3"], torch.zeros(1, 1, 28, 28))
    (edge,) = g.edges
    assert (edge.source, edge.target, edge.via) == ("act2", "fc3", "fc1 > fc2 > fc3")
    fc1 = np.abs(weights(lenet.fc1).reshape(120, 16, 25)).sum(axis=2)
    expected = np.abs(weights(lenet.fc3)) @ np.abs(weights(lenet.fc2)) @ fc1
    np.testing.assert_allclose(edge.strength, expected)
    assert g.depth == {"act2": 0, "fc3": 1}


class Block(nn.Module):
    """relu(bn(conv(x)) + x)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)) + x)


class SkipNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.block1 = Block(4)
        self.block2 = Block(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = self.block2(self.block1(self.act(self.stem(x))))
        return self.head(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def skipnet():
    torch.manual_seed(1)
    model = SkipNet()
    with torch.no_grad():  # a BatchNorm with statistics of its own, so its scale shows
        model.block1.bn.running_var.uniform_(0.5, 2.0)
        model.block1.bn.weight.uniform_(-1.0, 1.0)
    return model.eval()


def test_a_skip_connection_gives_an_identity_edge(skipnet):
    layers = ["act", "block1.relu", "block2", "head"]
    g = layer_graph(skipnet, layers, torch.zeros(1, 1, 8, 8))
    assert g.nodes == layers
    assert {(e.source, e.target, e.via) for e in g.edges} == {
        ("act", "block1.relu", "block1.conv"), ("act", "block1.relu", "identity"),
        ("block1.relu", "block2", "block2.conv"), ("block1.relu", "block2", "identity"),
        ("block2", "head", "head")}
    assert g.depth == {"act": 0, "block1.relu": 1, "block2": 2, "head": 3}
    e = by_pair(g)
    np.testing.assert_array_equal(e["act", "block1.relu", "identity"].strength, np.eye(4))
    bn = skipnet.block1.bn
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    kernel = weights(skipnet.block1.conv)
    np.testing.assert_allclose(e["act", "block1.relu", "block1.conv"].strength,
                               np.abs(scale)[:, None] * np.abs(kernel).sum(axis=(2, 3)))
    np.testing.assert_allclose(e["act", "block1.relu", "block1.conv"].signed,
                               scale[:, None] * kernel.sum(axis=(2, 3)))


def test_a_skip_across_a_stored_layer_and_the_longest_path_sets_depth(skipnet):
    # with block1's inner output unstored, act reaches block2 through block1 and around it
    g = layer_graph(skipnet, ["act", "block1", "block2"], torch.zeros(1, 1, 8, 8))
    assert g.depth == {"act": 0, "block1": 1, "block2": 2}
    g = layer_graph(skipnet, ["act", "block2"], torch.zeros(1, 1, 8, 8))
    vias = {e.via for e in g.edges}
    # the paths x -> conv1 -> conv2, x -> conv1 -> (skip), x -> (skip) -> conv2, x -> skip -> skip
    assert vias == {"block1.conv > block2.conv", "block1.conv", "block2.conv", "identity"}


class Untraceable(nn.Module):
    """Control flow on a tensor's value: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 5)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(5, 5)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(5, 2)

    def forward(self, x):
        h = self.act1(self.fc1(x))
        if h.sum() > -1:  # always true; fx cannot know
            h = self.act2(self.fc2(h)) + h
        return self.fc3(h)


def test_a_model_fx_cannot_trace_is_recorded_from_a_run():
    torch.manual_seed(2)
    model = Untraceable().eval()
    g = layer_graph(model, ["act1", "act2", "fc3"], torch.randn(3, 6))
    assert any("torch.fx could not trace Untraceable" in n for n in g.notes)
    assert {(e.source, e.target, e.via) for e in g.edges} == {
        ("act1", "act2", "fc2"), ("act1", "fc3", "fc3"), ("act2", "fc3", "fc3")}
    assert g.depth == {"act1": 0, "act2": 1, "fc3": 2}
    e = by_pair(g)
    np.testing.assert_allclose(e["act1", "act2", "fc2"].strength, np.abs(weights(model.fc2)))
    np.testing.assert_allclose(e["act1", "fc3", "fc3"].signed, weights(model.fc3))


def test_the_run_recording_leaves_no_hook(lenet):
    import modeldx.neurons.graph as graph

    ops = graph._runtime_ops(lenet, set(LENET_LAYERS), (torch.zeros(1, 1, 28, 28),))
    assert [op.name for op in ops if op.kind == "stored"] == LENET_LAYERS
    for m in lenet.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_a_grouped_conv_connects_only_its_groups():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, groups=2), nn.ReLU()).eval()
    g = layer_graph(model, ["1", "3"], torch.zeros(1, 1, 5, 5))
    (edge,) = g.edges
    w = np.abs(weights(model[2])).sum(axis=(2, 3))  # 6 x 2
    expected = np.zeros((6, 4))
    expected[:3, :2], expected[3:, 2:] = w[:3], w[3:]
    np.testing.assert_allclose(edge.strength, expected)


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(self.act(self.fc(x))))


def test_a_module_called_twice_is_named_per_call():
    model = Twice().eval()
    g = layer_graph(model, ["act#0", "act#1"], torch.zeros(1, 3))
    assert [(e.source, e.target, e.via) for e in g.edges] == [("act#0", "act#1", "fc")]
    with pytest.raises(InvalidParameterError, match="act#0"):
        layer_graph(model, ["act"], torch.zeros(1, 3))


def test_bad_layers_are_refused(lenet):
    with pytest.raises(LayerNotFoundError, match="'actx'"):
        layer_graph(lenet, ["act1", "actx"], torch.zeros(1, 1, 28, 28))
    with pytest.raises(InvalidParameterError, match="non-empty"):
        layer_graph(lenet, [], torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize("case", ["lenet", "skipnet", "branches"])
def test_the_recorded_run_agrees_with_fx(case, lenet, skipnet, monkeypatch):
    import modeldx.neurons.graph as graph

    model, layers, x = {
        "lenet": (lenet, LENET_LAYERS, torch.zeros(1, 1, 28, 28)),
        "skipnet": (skipnet, ["act", "block1.relu", "block2", "head"], torch.zeros(1, 1, 8, 8)),
        "branches": (Branches().eval(), ["act_a", "act_b", "act"], torch.zeros(1, 1, 6, 6)),
    }[case]
    traced = layer_graph(model, layers, x)

    def untraceable(*args):
        raise RuntimeError("no fx here")

    monkeypatch.setattr(graph, "_fx_ops", untraceable)
    recorded = layer_graph(model, layers, x)
    assert "no fx here" in recorded.notes[0]
    assert (recorded.nodes, recorded.depth) == (traced.nodes, traced.depth)
    assert [(e.source, e.target, e.via) for e in recorded.edges] == \
        [(e.source, e.target, e.via) for e in traced.edges]
    for a, b in zip(recorded.edges, traced.edges, strict=True):
        np.testing.assert_allclose(a.strength, b.strength)
        np.testing.assert_allclose(a.signed, b.signed)


def test_an_input_the_model_cannot_run_is_refused():
    from modeldx.errors import InputShapeError

    with pytest.raises(InputShapeError, match=r"example_input \[\(1, 5\)\]"):
        layer_graph(Untraceable(), ["act1", "act2"], torch.zeros(1, 5))


def test_the_digits_store_layers_and_their_bundles(tiny_model, digits_store, digits):
    from modeldx.neurons import layer_bundles

    x, _ = digits.get_batch(np.arange(2))
    g = layer_graph(tiny_model, digits_store.manifest.layers, x)
    assert g.nodes == digits_store.layers
    assert all(e.strength.shape == (digits_store.neurons(e.target), digits_store.neurons(e.source))
               for e in g.edges)
    acts = {n: digits_store.read(f"acts/{n}") for n in g.nodes}
    classes = digits_store.items()["label"].to_numpy()
    labels = {}
    for name, a in acts.items():  # cluster = the class of the largest class mean, -1 when dead
        means = np.stack([a[classes == c].mean(axis=0) for c in np.unique(classes)])
        labels[name] = np.where(means.max(axis=0) > 0, means.argmax(axis=0), -1)
    out = layer_bundles(g, labels)
    assert [(e["source"], e["target"]) for e in out] == [(e.source, e.target) for e in g.edges]
    for edge in out:
        assert edge["bundles"]
        assert sum(b["share"] for b in edge["bundles"]) <= 1 + 1e-9


class Branches(nn.Module):
    """Two branches concatenated along channels (Inception / DenseNet style), then a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.act_a = nn.ReLU()
        self.b = nn.Conv2d(1, 3, 3, padding=1)
        self.act_b = nn.ReLU()
        self.mix = nn.Conv2d(5, 4, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.mix(torch.cat([self.act_a(self.a(x)), self.act_b(self.b(x))], dim=1)))


def test_concatenated_branches_each_get_their_columns_of_the_kernel():
    torch.manual_seed(5)
    model = Branches().eval()
    g = layer_graph(model, ["act_a", "act_b", "act"], torch.zeros(1, 1, 6, 6))
    assert g.depth == {"act_a": 0, "act_b": 0, "act": 1}
    e = by_pair(g)
    mix = np.abs(weights(model.mix)).sum(axis=(2, 3))  # 4 x 5
    np.testing.assert_allclose(e["act_a", "act", "mix"].strength, mix[:, :2])
    np.testing.assert_allclose(e["act_b", "act", "mix"].strength, mix[:, 2:])


def test_a_failing_run_leaves_no_hook():
    model = Untraceable()
    with pytest.raises(Exception, match="could not run"):
        layer_graph(model, ["act1"], torch.zeros(1, 5))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
