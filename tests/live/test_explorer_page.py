"""The explorer page in a real headless Chromium: the network drawn, a click opening a cluster."""

from __future__ import annotations

import pytest

from modeldx.live.explorer_app import ExplorerThread
from modeldx.neurons.explore import Explorer
from tests.browser import not_blank, save
from tests.conftest import MNIST_DIR


@pytest.fixture(scope="module")
def lenet(mnist_store, mnist_model):
    explorer = Explorer(mnist_store, mnist_model.model, data_root=MNIST_DIR)
    server = ExplorerThread(explorer)
    yield explorer, server.url
    server.stop()


def test_the_network_is_drawn_and_a_click_opens_a_cluster(lenet, page):
    explorer, url = lenet
    console = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_function("window.modeldxExplorer && window.modeldxExplorer.drawnAt !== null")
    g = explorer.graph()
    for layer in g["layers"]:  # every column and every cluster box
        assert page.locator(f"g.layer[data-layer='{layer['name']}']").count() == 1
        assert page.locator(f"g.box[data-layer='{layer['name']}']").count() == len(layer["clusters"])
        if any(c["dead"] for c in layer["clusters"]):  # the dead cluster is marked
            dead = page.locator(f"g.box.dead[data-layer='{layer['name']}'][data-cluster='-1']")
            assert dead.text_content().startswith("dead: ")
    bundles = sum(len(e["bundles"]) for e in g["edges"])
    assert bundles and page.locator("#bundles g.bundle").count() == bundles
    assert page.locator("#bundles path").count() >= bundles
    assert "exact" in page.locator("#source").inner_text()
    page.wait_for_function("[...document.querySelectorAll('image.thumb')].length > 0")
    png = page.screenshot(full_page=True)
    save(png, "explorer-lenet5.png")
    not_blank(png)

    layer = g["layers"][3]
    live = next(c for c in layer["clusters"] if not c["dead"])
    page.locator(f"g.box[data-layer='{layer['name']}'][data-cluster='{live['id']}']").click()
    page.wait_for_selector("#neuron-matrix svg")
    assert page.locator("#neuron-matrix rect.cell").count() == live["size"] * len(g["classes"])
    assert page.locator("#top-items .item").count() == len(live["top_items"])
    assert page.locator(".pair[data-pair='correct-incorrect'] figure").count() == 2
    assert page.locator(".pair[data-pair='train-test'] figure").count() == 2
    page.locator("#neuron-matrix rect.cell").first.hover()
    assert "neuron n" in page.locator("#tip").inner_text()
    page.wait_for_selector("#ldam img", timeout=60_000)  # sampled on request, then shown
    save(page.screenshot(full_page=False), "explorer-cluster.png")
    assert not console, console


def test_a_sampled_store_without_a_model_says_both(tmp_path, tiny_model, digits, page):
    from modeldx import capture, sample

    store = capture(tiny_model, digits, tmp_path / "s", progress=False)
    sample(store.path, "uniform", 0.5, name="half")
    server = ExplorerThread(Explorer(store, sample="half"))
    try:
        page.goto(server.url)
        page.wait_for_function("window.modeldxExplorer && window.modeldxExplorer.drawnAt !== null")
        badge = page.locator("#source").inner_text()
        assert badge.startswith("sampled (half)") and "% of the store" in badge
        assert "--checkpoint" in page.locator("#notes").inner_text()
        assert page.locator("#bundles g.bundle").count() == 0
        assert page.locator("#bundles path.chain").count() == len(store.layers) - 1
        page.locator("g.box").first.click()
        page.wait_for_selector("#neuron-matrix svg")
        assert "--checkpoint" in page.locator("#ldam").inner_text()  # no model: no LDAM, and why
    finally:
        server.stop()


def test_a_long_layer_name_stays_in_its_column_and_is_whole_on_hover(tmp_path, digits, page):
    import torch

    from modeldx import capture

    long = "feature_extractor_stage_one_activation_function"
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    for name, module in [("flat", torch.nn.Flatten()), ("fc1", torch.nn.Linear(64, 16)),
                         (long, torch.nn.ReLU()), ("fc2", torch.nn.Linear(16, 10))]:
        model.add_module(name, module)
    store = capture(model.eval(), digits, tmp_path / "long", progress=False)
    assert store.layers == [long, "fc2"]
    server = ExplorerThread(Explorer(store))
    try:
        page.goto(server.url)
        page.wait_for_function("window.modeldxExplorer && window.modeldxExplorer.drawnAt !== null")
        first = page.locator(f"g.layer[data-layer='{long}'] text.layer-title")
        second = page.locator("g.layer[data-layer='fc2'] text.layer-title")
        a, b = first.bounding_box(), second.bounding_box()
        assert a["x"] + a["width"] < b["x"]  # it used to run on under the next column's name
        assert first.locator("title").text_content() == long
        assert first.evaluate("t => t.firstChild.textContent").startswith("…")
        assert second.evaluate("t => t.firstChild.textContent") == "fc2"
    finally:
        server.stop()


def test_a_dead_cluster_opens_without_asking_for_an_ldam_image(tmp_path, digits, page):
    import torch

    from modeldx import capture

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 10)).eval()
    with torch.no_grad():  # neurons 0 and 1 never fire
        model[1].weight[:2], model[1].bias[:2] = 0.0, -1.0
    store = capture(model, digits, tmp_path / "dead", progress=False)
    server = ExplorerThread(Explorer(store, model))
    failed = []
    page.on("console", lambda m: failed.append(m.text) if m.type == "error" else None)
    try:
        page.goto(server.url)
        page.wait_for_function("window.modeldxExplorer && window.modeldxExplorer.drawnAt !== null")
        page.locator("g.box.dead[data-layer='2'][data-cluster='-1']").click()
        page.wait_for_selector("#neuron-matrix svg")
        assert "never active" in page.locator("#ldam").inner_text()
        assert "none" in page.locator("#top-items").inner_text()
        assert not failed, failed  # no refused LDAM request (a 409 in the console)
    finally:
        server.stop()
