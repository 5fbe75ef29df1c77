"""The LDAM view in a real headless Chromium: the grid, the PNG button, and neurons sent to it by a click."""

import pytest

from modeldx.ldam.session import ldam_session
from modeldx.live.server import BackgroundServer
from tests.browser import not_blank, save


@pytest.fixture
def served(tiny_model, digits_store):
    session = ldam_session(tiny_model, (1, 8, 8), store=digits_store, chains=4)
    session.start()
    server = BackgroundServer(session)
    yield session, server.url
    server.stop()
    session.stop()


def test_clicking_the_relevance_table_and_the_neuron_map_retargets_the_chains(served, page):
    session, url = served
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:chains')"
                           " && window.modeldx.widgets.has('stream:relevance')"
                           " && window.modeldx.widgets.has('stream:neuron map')")
    assert page.locator("[data-png='chains']").count() == 1
    assert page.evaluate("window.modeldx.model.streams.chains.value.shape") == [40, 8, 8]
    row = page.locator("[data-widget='stream:relevance'] tr[data-row='1']")
    wanted = row.locator("td").nth(1).inner_text()
    row.click()
    page.wait_for_function(f"window.modeldx.model.controls.target.value === '{wanted}'")
    page.wait_for_function("window.modeldx.model.streams.chains.value.shape[0] === 4")
    assert session.model["target"] == wanted and session.model["ldam"].neurons == 1
    # a point of the neuron map: click where the dashboard drew the first one
    canvas = page.locator("[data-widget='stream:neuron map'] canvas")
    x, y = page.evaluate(
        "(() => { const c = document.querySelector(\"[data-widget='stream:neuron map'] canvas\");"
        " const [px, py] = c._points[0]; return [px / devicePixelRatio, py / devicePixelRatio]; })()")
    # the map's axes have titles, a point under the pointer says which neuron it is
    assert canvas.evaluate("c => [c.dataset.xTitle, c.dataset.yTitle]") == ["PCA 1", "PCA 2"]
    canvas.hover(position={"x": x, "y": y})
    tip = page.locator("[data-widget='stream:neuron map'] .tooltip")
    tip.wait_for(state="visible")
    hover = page.evaluate("window.modeldx.model.streams['neuron map'].value.hover[0]")
    assert tip.inner_text() == hover and "mean activation" in hover
    assert page.evaluate("window.modeldx.model.streams['neuron map'].value.thumbnails.index.length") >= 1
    canvas.click(position={"x": x, "y": y})
    key = page.evaluate("window.modeldx.model.streams['neuron map'].value.keys[0]")
    page.wait_for_function(f"window.modeldx.model.controls.target.value === '{key}'")
    # the chains' grid names its column: the neuron the chains sample
    page.wait_for_function(f"document.querySelector(\"[data-widget='stream:chains'] canvas\")"
                           f".dataset.columns.startsWith('{key},')")
    png = page.screenshot(full_page=True)
    save(png, "ldam-view.png")
    not_blank(png)
