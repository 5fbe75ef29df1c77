"""The dynamics page in a real headless Chromium on real recorded runs: the first non-finite marker at
its step, sampled polylines with outliers marked, a zoom that re-samples, a click that opens the neuron
with its contributors, and a recording run followed live."""

from __future__ import annotations

import pytest
import torch

from modeldx.live.dynamics_app import DynamicsThread
from tests.browser import not_blank, save

DRAWN = "s => s.drawnAt !== null && s.linesDrawnAt !== null"


@pytest.fixture(scope="module")
def servers(dynamics_runs):
    running = {name: DynamicsThread(dynamics_runs[name], model=dynamics_runs["model"])
               for name in ("finite", "nan")}
    yield {name: server.url for name, server in running.items()}
    for server in running.values():
        server.stop()


def errors_of(page) -> list[str]:
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    return console


def load(page, url):
    page.goto(url)
    page.wait_for_function(f"({DRAWN})(window.modeldxDynamics)")


def click_on_line(page, selector: str) -> None:
    """A real mouse click on a point of the first ``selector`` path (halfway along it)."""
    x, y = page.evaluate("""sel => { const p = document.querySelector(sel);
        p.closest("svg").scrollIntoView({block: "center"});
        const pt = p.getPointAtLength(p.getTotalLength() / 2).matrixTransform(p.getScreenCTM());
        return [pt.x, pt.y]; }""", selector)
    page.mouse.click(x, y)


def test_a_finite_run_lines_zoom_and_neuron(servers, dynamics_runs, page):
    run = dynamics_runs["finite"]
    console = errors_of(page)
    load(page, servers["finite"])
    assert page.locator("#status").inner_text() == "complete"
    assert page.locator(".marker").count() == 0 and page.locator("#failure").is_hidden()
    assert page.locator("#multiples .small").count() == len(run.layers)  # every layer has max_abs
    assert page.locator("#loss-chart path.loss-line").count() == 1

    # layer "2" (a Linear after a recorded ReLU: it has contributors), fewer lines than neurons
    page.select_option("#layer-select", "2")
    page.wait_for_function("window.modeldxDynamics.lines.layer === '2'")
    before = page.evaluate("window.modeldxDynamics.linesRequests")
    page.fill("#line-count", "10")
    page.locator("#line-count").dispatch_event("change")
    page.wait_for_function(f"window.modeldxDynamics.linesRequests > {before} && "
                           "window.modeldxDynamics.lines.lines.length === 10")
    page.wait_for_function("document.querySelectorAll('#polylines path.line').length === 10")
    lines = page.evaluate("window.modeldxDynamics.lines")
    marked = {int(n) for n in page.eval_on_selector_all("path.line.outlier",
                                                        "ps => ps.map(p => p.dataset.neuron)")}
    assert marked == {line["neuron"] for line in lines["lines"] if line["outlier"]}
    assert marked  # true_outliers flags at least one
    page.mouse.move(0, 0)  # no line under the pointer: a hovered line is drawn wide too
    width = page.eval_on_selector("path.line.outlier", "p => getComputedStyle(p).strokeWidth")
    plain = page.eval_on_selector("path.line:not(.outlier)", "p => getComputedStyle(p).strokeWidth")
    assert float(width.rstrip("px")) > float(plain.rstrip("px"))  # outliers emphasised

    # drag sideways across the middle of the chart: a time range, sampled again by the server
    box = page.locator("#lines-chart svg").bounding_box()
    requests = page.evaluate("window.modeldxDynamics.linesRequests")
    drawn = page.evaluate("window.modeldxDynamics.linesDrawnAt")
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.35, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, y + 2, steps=4)
    page.mouse.move(box["x"] + box["width"] * 0.7, y + 3, steps=4)
    page.mouse.up()
    page.wait_for_function(f"window.modeldxDynamics.linesRequests > {requests} && "
                           f"window.modeldxDynamics.linesDrawnAt > {drawn}")
    zoomed = page.evaluate("window.modeldxDynamics.lines")
    assert zoomed["start"] > 0 and zoomed["stop"] < run.n_snapshots
    assert zoomed["stop"] - zoomed["start"] >= 2
    assert zoomed["steps"] == run.steps[zoomed["start"]:zoomed["stop"]].tolist()
    assert f"steps {zoomed['steps'][0]}–{zoomed['steps'][-1]}" in page.locator("#lines-note").inner_text()

    # then up/down: a value band within that window
    requests = page.evaluate("window.modeldxDynamics.linesRequests")
    drawn = page.evaluate("window.modeldxDynamics.linesDrawnAt")
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(x + 2, box["y"] + box["height"] * 0.6, steps=5)
    page.mouse.up()
    page.wait_for_function(f"window.modeldxDynamics.linesRequests > {requests} && "
                           f"window.modeldxDynamics.linesDrawnAt > {drawn}")  # the answer drawn, not asked
    assert page.evaluate("window.modeldxDynamics.window.lo") is not None
    band = page.evaluate("window.modeldxDynamics.lines")
    assert band["start"] == zoomed["start"] and band["stop"] == zoomed["stop"]
    assert band["eligible"] <= zoomed["eligible"]
    assert "values " in page.locator("#lines-note").inner_text()

    page.click("#reset-zoom")
    page.wait_for_function(f"window.modeldxDynamics.lines.steps.length === {run.n_snapshots}")

    # a click on a line: its neuron's series beside its top contributors, named
    click_on_line(page, "#polylines path.line")
    page.wait_for_function("window.modeldxDynamics.neuronDrawnAt !== null")
    d = page.evaluate("window.modeldxDynamics.neuron")
    assert d["layer"] == page.evaluate("window.modeldxDynamics.layer")
    assert d["neuron"] in {line["neuron"] for line in page.evaluate("window.modeldxDynamics.lines.lines")}
    assert page.locator("#neuron-stats .small").count() == len(run.stats_of(d["layer"]))
    assert page.locator("#contributors .small").count() == 5
    title = page.locator("#contrib-title").inner_text()
    assert title == f"Top contributors in {d['contributors']['source_layer']}"
    first = d["contributors"]["items"][0]
    assert page.locator("#contributors .small svg .title").first.text_content().startswith(
        f"{first['layer']} #{first['neuron']} · total")
    not_blank(page.screenshot(full_page=True))
    assert not console, console


def test_a_nan_run_marks_its_first_nonfinite_step(servers, dynamics_runs, page):
    run = dynamics_runs["nan"]
    step = int(run.steps[run.first_nonfinite()])
    console = errors_of(page)
    load(page, servers["nan"])
    assert page.locator("#loss-chart .marker").get_attribute("data-step") == str(step)
    assert f"first non-finite: step {step}" in page.locator("#loss-chart .marker").text_content()
    # the marker is drawn where that step is on the x axis
    line = page.locator("#loss-chart .marker line")
    x = float(line.get_attribute("x1"))
    ticks = page.eval_on_selector_all("#loss-chart .axis text[text-anchor=middle]",
                                      "ts => ts.map(t => [+t.textContent, +t.getAttribute('x')])")
    (s0, x0), (s1, x1) = ticks[0], ticks[-1]
    assert x == pytest.approx(x0 + (step - s0) * (x1 - x0) / (s1 - s0), abs=1.0)
    stat = page.evaluate("window.modeldxDynamics.summaryStat")  # the localisation's statistic
    assert page.locator("#multiples .marker").count() == sum(stat in run.stats_of(la) for la in run.layers)
    assert page.locator("#loss-chart .nf-mark").count() > 0  # the NaN losses are drawn as marks
    failure = page.locator("#failure").inner_text()
    assert f"First non-finite value at step {step}" in failure
    located = page.evaluate("window.modeldxDynamics.run.failure")  # the localisation's reason; its layer open
    assert located["reason"] in failure
    assert page.evaluate("window.modeldxDynamics.layer") == located["layer"]
    assert page.locator("#polylines path.line").count() > 0
    assert page.locator("#polylines path.line.suspect").count() == len(located["neurons"])
    assert page.locator("#lines-chart .marker").get_attribute("data-step") == str(step)
    page.click("#failure-open")  # the localisation's layer and its first suspect's neuron view
    first = located["neurons"][0]
    page.wait_for_function(f"(window.modeldxDynamics.neuron || {{}}).neuron === {first}")
    assert page.locator("#neuron-title").inner_text() == f"{located['layer']} · neuron {first}"
    png = page.screenshot(full_page=True)
    save(png, "dynamics-nan-mlp.png")
    not_blank(png)
    assert not console, console


def test_a_recording_run_is_followed_live(tmp_path, page):
    from modeldx.dynamics import open_run, record

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    rec = record(model, torch.randn(6, 3), tmp_path / "run", every=1)
    server = DynamicsThread(open_run(tmp_path / "run"))
    try:
        console = errors_of(page)
        page.goto(server.url)  # no snapshot yet: the page waits for the first
        page.wait_for_function("window.modeldxDynamics.drawnAt !== null")
        assert page.locator("#status").inner_text() == "recording…"
        assert page.locator("#multiples").inner_text() == "no snapshot yet"
        for i in range(3):
            rec.step(loss=1.0 / (i + 1))
        page.wait_for_function("window.modeldxDynamics.linesDrawnAt !== null", timeout=20_000)
        for i in range(3, 6):
            rec.step(loss=1.0 / (i + 1))
        page.wait_for_function("window.modeldxDynamics.run.n_snapshots === 6", timeout=20_000)
        page.wait_for_function("window.modeldxDynamics.lines.steps.length === 6", timeout=20_000)
        assert "6 snapshots" in page.locator("#counts").inner_text()
        rec.close()
        page.wait_for_function("document.getElementById('status').textContent === 'complete'", timeout=20_000)
        assert not console, console
    finally:
        rec.close()
        server.stop()


def test_with_a_token_the_page_carries_it_to_every_request(dynamics_runs, page):
    token = "a-token-long-enough-1234"
    server = DynamicsThread(dynamics_runs["finite"], model=dynamics_runs["model"], token=token)
    try:
        console = errors_of(page)
        asked = []
        page.on("request", lambda r: asked.append(r.url) if "/api/" in r.url else None)
        load(page, server.url)
        click_on_line(page, "#polylines path.line")
        page.wait_for_function("window.modeldxDynamics.neuronDrawnAt !== null")
        assert asked and all(f"token={token}" in url for url in asked)
        assert not console, console
    finally:
        server.stop()


def test_a_run_of_one_snapshot_draws_its_points(tmp_path, page):
    """One snapshot (or a finite value between non-finite ones) is a point, not a segment: it must
    still be drawn, in the layer view and the summaries, and a click on it opens the neuron."""
    from modeldx.dynamics import open_run, record

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with record(model, torch.randn(6, 3), tmp_path / "run", every=1) as rec:
        rec.step(loss=1.0)
    server = DynamicsThread(open_run(tmp_path / "run"))
    try:
        console = errors_of(page)
        load(page, server.url)
        lengths = page.eval_on_selector_all("#polylines path.line", "ps => ps.map(p => p.getTotalLength())")
        assert lengths and min(lengths) > 1
        means = page.eval_on_selector_all("#multiples path.mean", "ps => ps.map(p => p.getTotalLength())")
        assert means and min(means) > 1
        assert page.eval_on_selector("#loss-chart path.loss-line", "p => p.getTotalLength()") > 1
        click_on_line(page, "#polylines path.line")
        page.wait_for_function("window.modeldxDynamics.neuronDrawnAt !== null")
        save(page.screenshot(full_page=True), "dynamics-one-snapshot.png")
        assert not console, console
    finally:
        server.stop()


def test_an_all_nan_layer_says_so_and_tiny_values_get_distinct_ticks(tmp_path, page):
    from modeldx.dynamics import open_run, record

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 40), torch.nn.Linear(40, 2))
    with torch.no_grad():
        model[0].weight.mul_(1e-4)
        model[0].bias.mul_(1e-4).add_(1e-3)  # means between about 0.9e-3 and 1.1e-3
        model[1].weight.fill_(float("nan"))
    with record(model, torch.randn(6, 3), tmp_path / "run", every=1) as rec:
        for i in range(4):
            rec.step(loss=1.0 / (i + 1))
    server = DynamicsThread(open_run(tmp_path / "run"))
    try:
        console = errors_of(page)
        load(page, server.url)
        page.select_option("#layer-select", "0")
        page.wait_for_function("window.modeldxDynamics.lines.layer === '0'")
        labels = page.eval_on_selector_all("#lines-chart .axis text[text-anchor=end]",
                                           "ts => ts.map(t => t.textContent)")
        assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
        page.select_option("#layer-select", "1")
        page.wait_for_function("window.modeldxDynamics.lines.layer === '1'")
        note = page.locator("#lines-chart .empty-note")
        text = note.text_content() if note.count() == 1 else ""
        assert "non-finite" in text and "2 neurons" in text, text
        save(page.screenshot(full_page=True), "dynamics-all-nan-layer.png")
        assert not console, console
    finally:
        server.stop()


def wait_held(page, held, limit_ms: int = 5000) -> None:
    """Let Playwright dispatch events until the route handler has held a request."""
    for _ in range(limit_ms // 20):
        if held:
            return
        page.wait_for_timeout(20)  # a turn of Playwright's event loop, not a guess at timing
    raise AssertionError("no request was held")


def test_a_late_answer_never_replaces_a_newer_one(servers, page):
    """Zooming (or clicking neurons) faster than the server answers: an answer that comes back after
    a newer request's is dropped, not drawn over it (the chart would show a window nobody asked for)."""
    held = []

    def hold_first(route):
        url = route.request.url
        if not held and ("lo=" in url or "hi=" in url or "/api/neuron/" in url):
            held.append(route)  # answered later, below
        else:
            route.continue_()

    console = errors_of(page)
    load(page, servers["finite"])
    page.route("**/api/**", hold_first)
    page.select_option("#layer-select", "2")
    page.wait_for_function("window.modeldxDynamics.lines.layer === '2'")
    box = page.locator("#lines-chart svg").bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] * 0.3)  # an up/down drag: a value band, held
    page.mouse.down()
    page.mouse.move(x + 2, box["y"] + box["height"] * 0.6, steps=4)
    page.mouse.up()
    wait_held(page, held)
    drawn = page.evaluate("window.modeldxDynamics.linesDrawnAt")
    page.click("#reset-zoom")  # the newer request, answered at once
    page.wait_for_function(f"window.modeldxDynamics.linesDrawnAt > {drawn}")
    page.evaluate("window.newest = window.modeldxDynamics.lines")
    late = held.pop()
    with page.expect_response(lambda r: r.url == late.request.url):
        late.continue_()
    page.wait_for_function("window.modeldxDynamics.linesAnswers >= 3")  # the late one arrived too
    assert page.evaluate("window.modeldxDynamics.lines === window.newest")

    # two neurons clicked in a row, the first answered last: the view shows the second
    page.evaluate("() => { const ps = document.querySelectorAll('#polylines path.line'); ps[0].dispatchEvent("
                  "new MouseEvent('click', {bubbles: true})); }")
    wait_held(page, held)
    second = page.evaluate("() => { const ps = document.querySelectorAll('#polylines path.line'); "
                           "ps[1].dispatchEvent(new MouseEvent('click', {bubbles: true})); "
                           "return +ps[1].dataset.neuron; }")
    page.wait_for_function(f"(window.modeldxDynamics.neuron || {{}}).neuron === {second}")
    late = held.pop()
    with page.expect_response(lambda r: r.url == late.request.url):
        late.continue_()
    page.wait_for_function("window.modeldxDynamics.neuronAnswers >= 2")
    assert page.evaluate("window.modeldxDynamics.neuron.neuron") == second
    assert page.locator("#neuron-title").inner_text().endswith(f"neuron {second}")
    assert not console, console
