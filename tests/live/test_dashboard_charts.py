"""Charts as a TensorBoard or W&B user expects them (issue 10, item 15): log y, smoothing, hover values,
zoom that survives updates, CSV export, axis labels, a header that fits a narrow window."""

import csv
import time

import numpy as np
import pytest

from modeldx.live import LiveSession
from tests.browser import not_blank, save

# records the text every canvas draws (installed before the page's own script)
RECORD_TEXT = """
window.__texts = new Set();
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
  window.__texts.add(String(text));
  return fillText.call(this, text, ...rest);
};
"""


@pytest.fixture
def charts(serve):
    """A noisy decaying loss, a histogram and a silhouette graph, stepping every few milliseconds."""
    session = LiveSession("charts")
    session.slider("lr", 1e-4, 1.0, 1e-2, log=True)

    def step(ctx):
        rng = np.random.default_rng(ctx.step)
        ctx.scalar("loss", 2.0 * np.exp(-ctx.step / 80) + 0.05 + 0.1 * rng.random())
        ctx.histogram("weights", np.bincount(rng.integers(0, 10, 200), minlength=10), np.linspace(-1, 1, 11))
        clusters = np.repeat(np.arange(3), 20)
        ctx.silhouette("clusters", clusters, np.clip(rng.normal(0.4, 0.25, 60), -0.3, 1.0))
        time.sleep(0.01)

    session.step_fn = step
    return session, serve(session)


def read_csv(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def open_chart(page, url, name="loss", points=30):
    page.goto(url)
    page.wait_for_function(f"window.modeldx && window.modeldx.widgets.has('stream:{name}')")
    page.wait_for_function(f"window.modeldx.model.streams['{name}'].steps.length > {points}")
    page.wait_for_function(f"window.modeldx.widgets.get('stream:{name}').plot()")


def chart(name="loss"):
    return f"window.modeldx.widgets.get('stream:{name}')"


def test_the_log_toggle_switches_the_y_scale(charts, page):
    session, url = charts
    open_chart(page, url)
    assert page.evaluate(f"{chart()}.plot().scales.y.distr") == 1
    button = page.locator("[data-widget='stream:loss'] button.log")
    button.click()
    assert page.evaluate(f"{chart()}.plot().scales.y.distr") == 3
    assert button.get_attribute("aria-pressed") == "true"
    png = page.screenshot(clip=page.locator("[data-widget='stream:loss']").bounding_box())
    save(png, "dashboard-log-y.png")
    not_blank(png)
    # the choice is kept with the layout
    page.reload()
    open_chart(page, url)
    assert page.evaluate(f"{chart()}.plot().scales.y.distr") == 3
    page.locator("[data-widget='stream:loss'] button.log").click()
    assert page.evaluate(f"{chart()}.plot().scales.y.distr") == 1


def test_smoothing_draws_an_exponential_moving_average_over_the_faint_raw_series(charts, page):
    session, url = charts
    open_chart(page, url)
    assert page.evaluate(f"{chart()}.plot().series[2].show") is False
    page.locator("[data-widget='stream:loss'] input.smooth").evaluate(
        "(el) => { el.value = 0.9; el.dispatchEvent(new Event('input')); }")
    raw, smooth, shown, stroke = page.evaluate(f"""(() => {{ const p = {chart()}.plot();
      return [p.data[1], p.data[2], p.series[2].show, p.series[1].stroke(p, 1)]; }})()""")
    # TensorBoard's debiased EMA
    expected, last = [], 0.0
    for i, v in enumerate(raw):
        last = 0.9 * last + 0.1 * v
        expected.append(last / (1 - 0.9 ** (i + 1)))
    assert shown and np.allclose(smooth, expected)
    assert "0.35" in stroke  # the raw series is drawn faint behind
    assert np.std(np.diff(smooth)) < np.std(np.diff(raw))
    png = page.screenshot(clip=page.locator("[data-widget='stream:loss']").bounding_box())
    save(png, "dashboard-smoothing.png")
    not_blank(png)


def test_hovering_shows_the_step_and_value(charts, page):
    session, url = charts
    open_chart(page, url)
    session.pause()
    page.wait_for_function("window.modeldx.model.paused")
    over = page.locator("[data-widget='stream:loss'] .u-over").bounding_box()
    page.mouse.move(over["x"] + over["width"] / 2, over["y"] + over["height"] / 2)
    readout = page.locator("[data-widget='stream:loss'] .readout")
    page.wait_for_function("document.querySelector(\"[data-widget='stream:loss'] .readout\")"
                           ".textContent !== ''")
    i, steps, values = page.evaluate(f"(() => {{ const p = {chart()}.plot(); "
                                     "return [p.cursor.idx, p.data[0], p.data[1]]; })()")
    text = readout.inner_text()
    assert text.startswith(f"step {steps[i]}: ")
    assert float(text.split(": ")[1]) == pytest.approx(values[i], rel=1e-3)
    png = page.screenshot(clip=page.locator("[data-widget='stream:loss']").bounding_box())
    save(png, "dashboard-hover.png")
    not_blank(png)


def test_a_zoom_survives_new_points_and_a_double_click_resets_it(charts, page):
    session, url = charts
    open_chart(page, url, points=60)
    over = page.locator("[data-widget='stream:loss'] .u-over").bounding_box()
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.5, y, steps=8)
    page.mouse.up()
    zoom = page.evaluate(f"{chart()}.zoom()")
    assert zoom is not None
    scale = page.evaluate(f"(() => {{ const s = {chart()}.plot().scales.x; return [s.min, s.max]; }})()")
    assert scale == pytest.approx([zoom["min"], zoom["max"]])
    last = page.evaluate("window.modeldx.model.streams.loss.steps.at(-1)")
    page.wait_for_function(f"window.modeldx.model.streams.loss.steps.at(-1) > {last + 20}")
    page.wait_for_function(f"{chart()}.plot().data[0].at(-1) > {last + 20}")  # the chart has the new points
    after = page.evaluate(f"(() => {{ const s = {chart()}.plot().scales.x; return [s.min, s.max]; }})()")
    assert after == pytest.approx(scale)
    png = page.screenshot(clip=page.locator("[data-widget='stream:loss']").bounding_box())
    save(png, "dashboard-zoomed.png")
    not_blank(png)
    page.mouse.dblclick(over["x"] + over["width"] / 2, y)
    assert page.evaluate(f"{chart()}.zoom()") is None
    page.wait_for_function(f"(() => {{ const p = {chart()}.plot(); "
                           "return p.scales.x.max === p.data[0].at(-1) && "
                           "p.scales.x.min === p.data[0][0]; })()")


def test_a_charts_data_downloads_as_csv(charts, page):
    session, url = charts
    open_chart(page, url)
    session.pause()
    page.wait_for_function("window.modeldx.model.paused")
    page.wait_for_timeout(200)  # the last push after the pause has arrived
    with page.expect_download() as info:
        page.locator("[data-widget='stream:loss'] [data-csv]").click()
    download = info.value
    name = download.suggested_filename
    assert name.startswith("loss-step") and name.endswith(".csv")
    rows = read_csv(download.path())
    assert rows[0] == ["step", "value", "min", "max"]
    stream = page.evaluate("window.modeldx.model.streams.loss")
    assert [int(r[0]) for r in rows[1:]] == stream["steps"]
    assert np.allclose([float(r[1]) for r in rows[1:]], stream["values"])
    assert all(float(r[2]) <= float(r[1]) <= float(r[3]) for r in rows[1:])
    # a histogram downloads its bins
    with page.expect_download() as info:
        page.locator("[data-widget='stream:weights'] [data-csv]").click()
    rows = read_csv(info.value.path())
    assert rows[0] == ["low", "high", "count"] and len(rows) == 11
    assert sum(float(r[2]) for r in rows[1:]) == 200


def test_histograms_and_silhouettes_have_axis_labels(charts, page):
    session, url = charts
    page.add_init_script(RECORD_TEXT)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:clusters') && "
                           "window.modeldx.widgets.has('stream:weights')")
    page.wait_for_function("['value', 'count', 'silhouette score', 'item'].every(t => window.__texts.has(t))")
    png = page.screenshot(full_page=True)
    save(png, "dashboard-axes.png")
    not_blank(png)


def test_the_header_fits_a_700_pixel_window(charts, page):
    session, url = charts
    page.set_viewport_size({"width": 700, "height": 800})
    open_chart(page, url)
    header = page.evaluate("(() => { const h = document.querySelector('header');"
                           " return [h.scrollWidth, h.clientWidth,"
                           " document.documentElement.scrollWidth]; })()")
    assert header[0] <= header[1] and header[2] <= 700
    # every button of the header is inside the window
    for box in page.locator("header button, header select").evaluate_all(
            "(els) => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"):
        assert box[0] >= 0 and box[1] <= 700
    png = page.screenshot()
    save(png, "dashboard-700px.png")
    not_blank(png)


@pytest.fixture
def small(serve):
    """A scalar around 3e-4 (LDA's density g1), topic shares as labelled bars, a labelled matrix."""
    session = LiveSession("small")

    def step(ctx):
        ctx.scalar("g1", 3.0e-4 + 2e-6 * ctx.step)
        ctx.histogram("shares", [0.5, 0.3, 0.2], labels=["t0", "t1", "t2"], x_title="topic",
                      y_title="share of tokens")
        ctx.matrix("similarity", np.eye(3), rows=[0, 1, 2], columns=[0, 1, 2], note="topics x topics, cosine")
        time.sleep(0.002)

    session.step_fn = step
    return session, serve(session)


def test_small_values_get_distinct_readable_y_ticks(small, page):
    """Issue 13: the g1 chart's ticks (~3e-4) all read "0"."""
    session, url = small
    open_chart(page, url, "g1")
    # one evaluate: the chart redraws between two calls (CI once read labels of one draw, splits of the next)
    axis = f"{chart('g1')}.plot().axes[1]"
    labels, splits = page.evaluate(f"[{axis}._values, {axis}._splits]")
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert "0" not in labels and all(float(t.replace(",", "")) > 0 for t in labels), labels
    # each label says its tick's value (distinct is not enough: 2.5e-4 must not read 3e-4)
    spacing = min(np.diff(splits))
    assert np.allclose([float(t) for t in labels], splits, rtol=0, atol=spacing / 100), (labels, splits)


def test_tick_labels_say_their_values(small, page):
    """Distinct is not enough: ticks 2.5e-4 apart (g1 from 0 to 1e-3) must not read 0.0003, 0.0008."""
    session, url = small
    open_chart(page, url, "g1")
    for splits in ([0, 0.00025, 0.0005, 0.00075, 0.001], [2.5e-5, 5e-5, 7.5e-5], [0.85, 0.9, 0.95, 1.0],
                   [0, 2500, 5000, 7500], [1e5, 2e5, 3e5]):
        labels = page.evaluate(f"window.modeldx.tickLabels({splits})")
        spacing = min(np.diff(splits))
        values = [float(t.replace(",", "")) for t in labels]
        assert np.allclose(values, splits, rtol=0, atol=spacing / 100), labels
        assert len(labels) == len(set(labels)) and all(len(t) <= 8 for t in labels), labels


def test_large_and_ordinary_ticks_keep_their_look(charts, page):
    session, url = charts
    open_chart(page, url)
    labels = page.evaluate(f"{chart()}.plot().axes[1]._values")
    assert len(set(labels)) == len(labels) and all(len(t) <= 5 for t in labels), labels


def test_labelled_bars_and_matrix_notes_are_drawn(small, page):
    session, url = small
    page.add_init_script(RECORD_TEXT)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:shares') && "
                           "window.modeldx.widgets.has('stream:similarity')")
    page.wait_for_function("['topic', 'share of tokens', 't0', 't2', 'topics x topics, cosine']"
                           ".every(t => window.__texts.has(t))")
    assert not page.evaluate("window.__texts.has('value') || window.__texts.has('count')")
    # the bars download as label, value
    with page.expect_download() as info:
        page.locator("[data-widget='stream:shares'] [data-csv]").click()
    rows = read_csv(info.value.path())
    assert rows == [["topic", "share of tokens"], ["t0", "0.5"], ["t1", "0.3"], ["t2", "0.2"]]
