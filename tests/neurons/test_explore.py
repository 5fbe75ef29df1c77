"""The explorer's data: each neuron in one cluster, bundles between real clusters, groups as queried."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.neurons import cluster_top_items
from modeldx.neurons.explore import ClusterNotFoundError, Explorer, ItemNotFoundError
from modeldx.queries import class_means, top_k_inputs
from tests.conftest import MNIST_DIR


@pytest.fixture(scope="module")
def lenet(mnist_store, mnist_model):
    return Explorer(mnist_store, mnist_model.model, data_root=MNIST_DIR)


@pytest.fixture(scope="module")
def chain(digits_store):
    return Explorer(digits_store)


@pytest.fixture(scope="module")
def tiny(digits_store, tiny_model):
    return Explorer(digits_store, tiny_model)


def _ids(layer: dict) -> list[int]:
    return [c["id"] for c in layer["clusters"]]


@pytest.mark.parametrize("which", ["lenet", "tiny", "chain"])
def test_the_graph_has_every_layer_and_its_clusters_hold_every_neuron_once(which, request):
    ex = request.getfixturevalue(which)
    g = json.loads(json.dumps(ex.graph()))  # JSON as it is served
    assert sorted(layer["name"] for layer in g["layers"]) == sorted(ex.store.layers)
    for layer in g["layers"]:
        members = np.concatenate([ex.clusters[layer["name"]].members(c) for c in _ids(layer)])
        assert np.array_equal(np.sort(members), np.arange(layer["neurons"]))  # each neuron once
        assert sum(c["size"] for c in layer["clusters"]) == layer["neurons"]
        assert sorted(layer["class_order"]) == list(range(len(g["classes"])))
        for c in layer["clusters"]:
            assert len(c["row"]) == len(c["raw"]) == len(g["classes"])
            assert c["dead"] == (c["id"] == -1) and max(abs(v) for v in c["row"]) <= 1 + 1e-9
            assert len(c["top_items"]) == (0 if c["dead"] else min(ex.top_items, ex.store.n_items))
    depths = [layer["depth"] for layer in g["layers"]]
    assert depths == sorted(depths)  # columns left to right from the input side


@pytest.mark.parametrize("which", ["lenet", "tiny"])
def test_bundles_join_existing_clusters_of_the_layers_they_connect(which, request):
    g = request.getfixturevalue(which).graph()
    ids = {layer["name"]: set(_ids(layer)) for layer in g["layers"]}
    assert g["edges"] and all(e["bundles"] for e in g["edges"])
    for e in g["edges"]:
        share = 0.0
        for b in e["bundles"]:
            assert set(b["sources"]) <= ids[e["source"]] and set(b["targets"]) <= ids[e["target"]]
            assert all(s in ids[e["source"]] and t in ids[e["target"]] for s, t, _, _ in b["edges"])
            assert b["sign"] in (-1, 1) and 0 < b["share"] <= 1
            share += b["share"]
        assert share <= 1 + 1e-9


def test_lenet5_is_drawn_as_its_five_layers_in_order(lenet):
    g = lenet.graph()
    assert [layer["name"] for layer in g["layers"]] == ["act1", "act2", "act3", "act4", "fc3"]
    assert [(e["source"], e["target"]) for e in g["edges"]] == [
        ("act1", "act2"), ("act2", "act3"), ("act3", "act4"), ("act4", "fc3")]
    assert g["source"]["exact"] and g["source"]["items"] == 70_000
    assert g["images"]["available"] and g["ldam"]["available"]


def test_without_a_model_the_layers_are_a_chain_without_bundles_and_the_page_is_told(chain, digits_store):
    g = chain.graph()
    assert [(e["source"], e["target"]) for e in g["edges"]] == list(
        zip(digits_store.layers, digits_store.layers[1:], strict=False))
    assert all(not e["bundles"] for e in g["edges"])
    assert any("--checkpoint" in n for n in g["notes"]) and not g["ldam"]["available"]
    with pytest.raises(InvalidParameterError, match="checkpoint"):
        chain.ldam_png(g["layers"][0]["name"], g["layers"][0]["clusters"][0]["id"])


def test_top_items_are_those_of_cluster_top_items(tiny, digits_store):
    for layer in tiny.graph()["layers"]:
        for c in layer["clusters"]:
            members = tiny.clusters[layer["name"]].members(c["id"])
            expect = cluster_top_items(digits_store, layer["name"], members, k=tiny.top_items)
            # a dead cluster's scores all tie at 0: no top items rather than the first rows
            assert c["top_items"] == ([] if c["dead"] else expect["item_id"].tolist())


def test_a_cluster_lists_its_neurons_in_leaf_order_with_their_matrix(tiny):
    layer = tiny.graph()["layers"][-1]
    cid = layer["clusters"][0]["id"]
    c = tiny.cluster(layer["name"], cid)
    mat = tiny.matrices[layer["name"]]
    assert c["neurons"] == mat.neuron_order[cid].tolist()
    means = tiny.means.means[layer["name"]]
    assert np.allclose(c["matrix"], means[np.ix_(c["neurons"], c["class_order"])], atol=1e-6)
    for n in c["neurons"]:  # each neuron's own top items
        expect = top_k_inputs(tiny.store, layer=layer["name"], neurons=n, k=3)["item_id"].tolist()
        assert c["neuron_top_items"][str(n)] == expect
    assert [i["item_id"] for i in c["top_items"]] == layer["clusters"][0]["top_items"]


def test_groups_are_class_means_on_correct_misclassified_train_and_test_items(lenet, mnist_store):
    layer = lenet.graph()["layers"][3]
    c = lenet.cluster(layer["name"], layer["clusters"][0]["id"])
    items = mnist_store.items()
    masks = {"correct": items["correct"].to_numpy(), "incorrect": ~items["correct"].to_numpy(),
             "train": (items["split"] == "train").to_numpy(), "test": (items["split"] == "test").to_numpy()}
    assert [g["name"] for g in c["groups"]] == ["correct", "incorrect", "train", "test"]
    for g in c["groups"]:
        ids = items["item_id"].to_numpy()[masks[g["name"]]]
        expect = class_means(mnist_store, layers=layer["name"], items=ids).means[layer["name"]]
        assert g["items"] == ids.size
        assert np.allclose(g["matrix"], expect[np.ix_(c["neurons"], c["class_order"])], atol=1e-6)


def test_a_sampled_store_says_so_and_every_number_comes_from_the_sample(tmp_path, tiny_model, digits):
    from modeldx import capture, sample

    store = capture(tiny_model, digits, tmp_path / "s", progress=False)
    s = sample(store.path, "uniform", 0.25, name="quarter")
    from modeldx.api import open_store

    store = open_store(store.path)
    ex = Explorer(store, tiny_model, sample="quarter")
    src = ex.graph()["source"]
    assert not src["exact"] and src["sample"] == "quarter" and src["items"] == s.size
    assert src["fraction"] == pytest.approx(s.size / store.n_items, abs=0.01)
    layer = store.layers[-1]
    expect = class_means(store, layers=layer, items=s.item_ids, weights=s.weights).means[layer]
    assert np.allclose(ex.means.means[layer], expect)
    kept = set(s.item_ids.tolist())
    for c in ex.graph()["layers"][-1]["clusters"]:
        assert set(c["top_items"]) <= kept
    g = ex.cluster(layer, ex.graph()["layers"][-1]["clusters"][0]["id"])["groups"]
    assert sum(x["items"] for x in g if x["name"] in ("correct", "incorrect")) == s.size


def test_items_and_ldam_render_as_png(lenet):
    img = Image.open(io.BytesIO(lenet.item_png(60_000)))  # the first test image: a 7
    assert img.size == (56, 56) and np.asarray(img).std() > 20
    layer = lenet.graph()["layers"][-1]
    small = min((c for c in layer["clusters"] if not c["dead"]), key=lambda c: c["size"])  # fewest chains
    png = lenet.ldam_png(layer["name"], small["id"])
    img = Image.open(io.BytesIO(png))
    assert img.size == (84, 84) and np.asarray(img).std() > 5
    assert lenet.ldam_png(layer["name"], small["id"]) is png  # computed once


def test_bad_names_are_errors_naming_them(tiny):
    with pytest.raises(LayerNotFoundError, match="'nope'"):
        tiny.cluster("nope", 0)
    with pytest.raises(ClusterNotFoundError, match="no cluster 99"):
        tiny.cluster(tiny.layers[0], 99)
    with pytest.raises(ItemNotFoundError, match="no item 123456"):
        tiny.item_png(123456)
    with pytest.raises(InvalidParameterError, match="'k'"):
        Explorer(tiny.store, k=1)


def test_without_the_data_set_the_explorer_works_and_says_images_are_unavailable(mnist_store, tmp_path):
    g = Explorer(mnist_store, data_root=tmp_path).graph()
    assert not g["images"]["available"] and "mnist" in g["images"]["reason"]
    assert len(g["layers"]) == 5


class _DigitRows(torch.nn.Module):
    """A transformer encoder reading a digit's 8 rows as a sequence: its stored layers are sequences."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = torch.nn.Linear(8, 16)
        self.enc = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.fc = torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.enc(self.inp(x[:, 0])).mean(1))


def test_a_sequence_store_with_its_model_opens_as_a_chain_and_says_why(tmp_path, digits):
    from modeldx import capture

    torch.manual_seed(0)
    model = _DigitRows().eval()
    store = capture(model, digits, tmp_path / "seq", progress=False)
    assert store.manifest.layer("enc.linear1").kind == "sequence"
    ex = Explorer(store, model)  # the layer graph would find no channels on axis 1: not a crash
    g = ex.graph()
    assert [(e["source"], e["target"]) for e in g["edges"]] == list(zip(store.layers, store.layers[1:],
                                                                        strict=False))
    assert any("enc.linear1" in n and "sequence" in n for n in g["notes"])
    layer = g["layers"][0]
    assert layer["neurons"] == 16 and sum(c["size"] for c in layer["clusters"]) == 16
    with pytest.raises(InvalidParameterError, match="'inp' is a sequence"):  # not "has 8 neurons"
        ex.ldam_png("inp", layer["clusters"][0]["id"])


def test_a_dead_cluster_has_no_top_items_and_no_ldam(tmp_path, digits):
    from modeldx import capture

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 10)).eval()
    with torch.no_grad():  # neurons 0 and 1 never fire: every score of theirs ties at 0
        model[1].weight[:2], model[1].bias[:2] = 0.0, -1.0
    store = capture(model, digits, tmp_path / "dead", progress=False)
    ex = Explorer(store, model)
    layer = next(x for x in ex.graph()["layers"] if x["name"] == "2")
    dead = next(c for c in layer["clusters"] if c["dead"])
    assert dead["size"] == 2 and dead["top_items"] == []  # not the first 9 items of the store
    c = ex.cluster("2", -1)
    assert c["top_items"] == [] and c["neuron_top_items"] == {"0": [], "1": []}
    with pytest.raises(InvalidParameterError, match="never active"):
        ex.ldam_png("2", -1)
    live = next(c for c in layer["clusters"] if not c["dead"])
    assert len(live["top_items"]) == ex.top_items


def test_more_clusters_than_a_layer_can_hold_are_lowered_and_the_page_is_told(digits_store, tiny_model):
    ex = Explorer(digits_store, tiny_model, k=40)
    widths = {layer: digits_store.neurons(layer) for layer in digits_store.layers}
    lowered = [layer for layer, cl in ex.clusters.items() if cl.k < 40]
    assert lowered and lowered == [layer for layer, n in widths.items() if n <= 40]
    notes = ex.graph()["notes"]
    for layer in lowered:
        assert any(note.startswith(f"{layer}: {ex.clusters[layer].k} clusters, not 40") for note in notes)
