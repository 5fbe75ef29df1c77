"""The dashboard in a long session: thousands of control events, a held arrow key (issue 10, item 13)."""

import threading
import time

import numpy as np
import pytest

from modeldx.live import LiveSession
from tests.browser import not_blank, save
from tests.waiting import until

# counts the control messages the page sends, and when (installed before the page's own script)
COUNT_SENDS = """
window.__sent = [];
const original = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === "string" && data.includes('"control"')) {
    window.__sent.push([performance.now(), JSON.parse(data)]);
  }
  return original.call(this, data);
};
"""

# the time one round trip into the page takes, and how many frames the page paints in half a second
RESPONSIVE = """async () => {
  const t0 = performance.now();
  let frames = 0;
  await new Promise((done) => {
    const tick = () => {
      frames++;
      if (performance.now() - t0 < 500) requestAnimationFrame(tick); else done();
    };
    requestAnimationFrame(tick);
  });
  return frames;
}"""


def changing_every_step(n_changes: int) -> tuple[LiveSession, threading.Event, list[int]]:
    """Once ``go`` is set, the slider moves at each step, ``n_changes`` times; the list says at what steps."""
    session = LiveSession("long-session")
    session.slider("level", 0.0, 10.0, 1.0)
    go, changes = threading.Event(), []  # the steps at which a change was made

    def step(ctx):
        ctx.scalar("level", ctx.controls["level"])
        if go.is_set() and len(changes) < n_changes:
            session.set("level", float(ctx.step % 10))
            changes.append(ctx.step)
        time.sleep(0.001)  # a step's work: the changes spread over most of the chart

    session.step_fn = step
    return session, go, changes


def dom_size(page) -> int:
    return page.evaluate("document.getElementsByTagName('*').length")


def test_two_thousand_control_events_leave_the_page_responsive_and_its_dom_bounded(serve, page):
    session, go, changes = changing_every_step(2000)
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:level')")
    page.wait_for_function("window.modeldx.model.streams.level.steps.length > 5")
    before = dom_size(page)
    go.set()
    assert until(lambda: len(changes) == 2000, timeout=60)
    # the last change takes effect at the next step; all 2,000 are events, one per step
    page.wait_for_function("window.modeldx.model.events.some(e => e.kind === 'control' && "
                           f"e.step > {changes[-1]})", timeout=60_000)
    assert page.evaluate("window.modeldx.model.events.filter(e => e.kind === 'control').length") == 500
    # a round trip into the page is quick, and it paints frames while all those markers are on the chart
    t0 = time.perf_counter()
    page.evaluate("1 + 1")
    assert time.perf_counter() - t0 < 0.5
    frames = page.evaluate(RESPONSIVE)
    assert frames >= 10, f"{frames} frames in half a second"
    # one redraw of the chart with every marker in view takes milliseconds, not seconds
    redraw_ms = page.evaluate("(() => { const p = window.modeldx.widgets.get('stream:level').plot();"
                              " const t = performance.now(); p.redraw(false, false);"
                              " return performance.now() - t; })()")
    assert redraw_ms < 100
    # the page keeps a bounded list of events, and no element per event
    assert page.evaluate("window.modeldx.model.events.length") <= 500
    assert dom_size(page) <= before + 10
    # markers are merged where they are closer than a few pixels; labels do not overlap and stay inside
    drawn = page.evaluate("window.modeldx.widgets.get('stream:level').drawn")
    width = drawn["right"] - drawn["left"]
    assert 1 <= drawn["markers"] <= width / 4 + 1
    labels = drawn["labels"]
    assert labels
    for a, b in zip(labels, labels[1:], strict=False):
        assert a["x"] + a["width"] <= b["x"]
    assert all(drawn["left"] <= lab["x"] and lab["x"] + lab["width"] <= drawn["right"] for lab in labels)
    png = page.screenshot(full_page=True)
    save(png, "dashboard-long-session.png")
    not_blank(png)


def test_marker_labels_are_left_aligned_separate_and_inside_the_chart(serve, page):
    """A few changes: each label starts just right of its marker, unless it would overlap or run off."""
    session = LiveSession("few-changes")
    session.slider("level", 0.0, 10.0, 1.0)

    def step(ctx):
        ctx.scalar("level", ctx.controls["level"])
        if ctx.step in (20, 60, 62, 100, 137):  # each takes effect at the next step
            session.set("level", float(ctx.step % 7))

    session.step_fn = step
    url = serve(session, start=False)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:level')")
    session.start(max_steps=140)
    page.wait_for_function("window.modeldx.model.streams.level && "
                           "window.modeldx.model.streams.level.steps.includes(139)")
    page.wait_for_function("window.modeldx.widgets.get('stream:level').drawn.markers === 5")
    drawn = page.evaluate("window.modeldx.widgets.get('stream:level').drawn")
    at = page.evaluate("(() => { const p = window.modeldx.widgets.get('stream:level').plot();"
                       " return [21, 61, 101].map(s => p.valToPos(s, 'x', true)); })()")
    dpr = page.evaluate("devicePixelRatio")
    labels = drawn["labels"]
    # the change at step 63 is two steps after the one at 61: its label would overlap, so it is left out
    assert [lab["text"] for lab in labels] == ["level=6", "level=4", "level=2", "level=4"]
    for lab, x in zip(labels, at, strict=False):  # left-aligned, just right of the marker
        assert lab["x"] == pytest.approx(x + 3 * dpr, abs=1)
    # the last change is near the right edge: its label is moved left to stay inside the plot
    assert labels[3]["x"] + labels[3]["width"] == pytest.approx(drawn["right"], abs=1)
    png = page.screenshot(clip=page.locator("[data-widget='stream:level']").bounding_box())
    save(png, "dashboard-markers.png")
    not_blank(png)


def test_holding_an_arrow_key_on_a_slider_sends_at_most_one_message_per_100_ms(serve, page):
    session = LiveSession("held-key")
    session.slider("level", 0.0, 10.0, 1.0)
    session.step_fn = lambda ctx: ctx.scalar("level", ctx.controls["level"])
    url = serve(session)
    page.add_init_script(COUNT_SENDS)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:level')")
    slider = page.locator("[data-widget='control:level'] input[type=range]")
    slider.focus()
    t0 = page.evaluate("performance.now()")
    for _ in range(60):  # a held key: each repeat moves the slider one notch (input and change)
        page.keyboard.press("ArrowRight")
    t1 = page.evaluate("performance.now()")
    # echoes of the values sent on the way did not pull the slider back while the key was held
    assert slider.evaluate("(el) => +el.value") == 160
    final = 1.0 + 60 * 10.0 / 1000
    # the trailing value always goes out, and the session ends at it
    page.wait_for_function(f"window.__sent.some(([t, m]) => Math.abs(m.value - {final}) < 1e-9)")
    page.wait_for_function(f"Math.abs(window.modeldx.model.controls.level.value - {final}) < 1e-9")
    assert session.controls["level"].value == pytest.approx(final)
    sent = page.evaluate("window.__sent")
    times = np.array([t for t, _ in sent])
    assert len(sent) <= (t1 - t0) / 100 + 2, f"{len(sent)} messages in {t1 - t0:.0f} ms"
    assert np.all(np.diff(times) >= 99)
    assert len(sent) < 60
