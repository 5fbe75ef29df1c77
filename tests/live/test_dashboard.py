"""The dashboard in a real headless Chromium (Debian's, driven by Playwright): what a user sees and does."""

import time

import numpy as np
import pytest

from modeldx.live import LiveSession
from modeldx.live.server import BackgroundServer
from tests.browser import not_blank, save
from tests.waiting import until


@pytest.fixture
def served():
    """A session whose 'level' stream repeats the 'level' slider: a chart shows when a change took effect."""
    session = LiveSession("browser-test")
    session.slider("level", 0.0, 10.0, 1.0)
    session.slider("rate", 1e-4, 1.0, 1e-2, log=True)

    def step(ctx):
        ctx.scalar("level", ctx.controls["level"] + 0.01 * np.sin(ctx.step / 5))
        ctx.histogram("spread", np.bincount(np.random.default_rng(ctx.step).integers(0, 8, 50), minlength=8),
                      np.arange(9))
        ctx.images("noise", np.random.default_rng(ctx.step).random((6, 8, 8)))
        time.sleep(0.01)

    session.step_fn = step
    session.state_fns = (lambda: {}, lambda s: None)
    session.start()
    server = BackgroundServer(session)
    yield session, server.url
    server.stop()
    session.stop()


def test_a_slider_change_shows_up_in_the_chart(served, page):
    session, url = served
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:level')")
    page.wait_for_function("window.modeldx.model.streams.level.steps.length > 10")
    # move the slider the way a user's drag ends: set the position, fire 'input' and 'change'
    slider = page.locator("[data-widget='control:level'] input[type=range]")
    slider.evaluate("(el) => { el.value = 700; el.dispatchEvent(new Event('input')); "
                    "el.dispatchEvent(new Event('change')); }")
    page.wait_for_function(
        "window.modeldx.model.events.some(e => e.kind === 'control' && e.name === 'level')")
    event = page.evaluate("window.modeldx.model.events.find(e => e.kind === 'control' && e.name === 'level')")
    assert event["value"] == pytest.approx(7.0) and session.controls["level"].value == pytest.approx(7.0)
    # the chart receives points computed after the change, with the new value
    page.wait_for_function(f"window.modeldx.model.streams.level.steps.some(s => s > {event['step'] + 5})")
    steps, values = page.evaluate("[window.modeldx.model.streams.level.steps, "
                                  "window.modeldx.model.streams.level.values]")
    after = [v for s, v in zip(steps, values, strict=True) if s >= event["step"]]
    before = [v for s, v in zip(steps, values, strict=True) if s < event["step"]]
    assert after and all(abs(v - 7.0) < 0.02 for v in after) and all(abs(v - 1.0) < 0.02 for v in before)
    assert page.locator("[data-widget='control:level'] .value").inner_text() == "7"
    png = page.screenshot(full_page=True)
    save(png, "dashboard-after-slider.png")
    not_blank(png)


def test_widgets_are_added_removed_moved_and_the_layout_survives_a_reload(served, page):
    session, url = served
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:noise')")
    # remove a widget, then add it back from the menu
    page.locator("[data-widget='stream:spread'] .close").click()
    assert page.locator("[data-widget='stream:spread']").count() == 0
    page.locator("#add").click()
    page.locator("[data-add='stream:spread']").click()
    page.wait_for_function("window.modeldx.widgets.has('stream:spread')")
    # drag the images widget by its title bar to the top-left corner
    head = page.locator("[data-widget='stream:noise'] .widget-head")
    box = head.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 20, 60, steps=12)
    page.mouse.move(15, 60, steps=12)
    page.mouse.up()
    page.wait_for_timeout(300)
    node = page.evaluate("(() => { const n = window.modeldx.widgets.get('stream:noise').el.gridstackNode;"
                         " return {x: n.x, y: n.y}; })()")
    assert node == {"x": 0, "y": 0}
    # resize it by its corner handle
    page.locator("[data-widget='stream:noise']").hover()
    handle = page.locator("[data-widget='stream:noise'] .ui-resizable-se")
    hb = handle.bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(hb["x"] + 200, hb["y"] + 150, steps=10)
    page.mouse.up()
    page.wait_for_timeout(300)
    size = page.evaluate("(() => { const n = window.modeldx.widgets.get('stream:noise').el.gridstackNode;"
                         " return [n.w, n.h]; })()")
    assert size[0] > 6 and size[1] > 4
    png = page.screenshot(full_page=True)
    save(png, "dashboard-moved.png")
    not_blank(png)
    # the layout is kept across a reload
    page.reload()
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:noise')")
    again = page.evaluate("(() => { const n = window.modeldx.widgets.get('stream:noise').el.gridstackNode;"
                          " return {x: n.x, y: n.y, w: n.w, h: n.h}; })()")
    assert again == {"x": 0, "y": 0, "w": size[0], "h": size[1]}


def test_pause_step_and_snapshot_buttons(served, page):
    session, url = served
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 5")
    page.locator("#pause").click()
    page.wait_for_function("window.modeldx.model.paused === true || document.querySelector('#pause')"
                           ".textContent === 'Resume'")
    assert until(lambda: session.paused)
    page.wait_for_timeout(100)  # a step that was running when the pause arrived has finished
    at = session.step
    page.locator("#single").click()
    assert until(lambda: session.step == at + 1)
    page.wait_for_timeout(200)
    assert session.step == at + 1 and session.paused
    page.locator("#snapshot").click()
    page.wait_for_function("window.modeldx.model.snapshots.length === 1")
    assert page.locator("#snapshots option").first.inner_text().startswith("step ")
    page.locator("#pause").click()
    assert until(lambda: not session.paused)
