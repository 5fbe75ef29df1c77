"""The capture page in a real headless Chromium, following a capture that runs in a background thread: the
progress and the answer refresh as chunks land, every neuron shows its confidence, and once complete the
answer is the exact one and the history is scored against it."""

from __future__ import annotations

import re

from modeldx.live.capture_app import CaptureThread, CaptureView
from modeldx.queries import top_k_neurons
from tests.browser import not_blank, save
from tests.queries.test_progressive import GatedCapture
from tests.store.test_partial import CHUNK

K = 3

# the lowest text/background contrast ratio (WCAG) over the cells, their rgba background over white
CONTRAST = """cs => Math.min(...cs.map(c => {
  const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
  const st = getComputedStyle(c), fg = rgb(st.color), bg = rgb(st.backgroundColor);
  const a = bg.length > 3 ? bg[3] : 1;
  const over = bg.slice(0, 3).map(v => v * a + 255 * (1 - a));
  const lum = (p) => p.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((t, v, i) => t + v * [0.2126, 0.7152, 0.0722][i], 0);
  const [hi, lo] = [lum(fg.slice(0, 3)), lum(over)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}))"""


def test_the_page_follows_a_capture_to_the_exact_answer(tmp_path, monkeypatch, page, tiny_model, digits,
                                                        digits_store):
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    server = CaptureThread(CaptureView(tmp_path / "s", k=K, replicates=50))
    running = GatedCapture(monkeypatch, tiny_model, digits, tmp_path / "s", chunk_order="random", seed=0)
    total = -(-len(digits) // CHUNK)
    try:
        page.goto(server.url)
        page.wait_for_function("window.modeldxCapture.polls > 0")
        running.release(3)
        page.wait_for_function("(window.modeldxCapture.answer || {}).chunks_done === 3", timeout=30_000)
        assert page.locator("#status").inner_text() == "capturing…"
        assert f"3 of {total} chunks" in page.locator("#counts").inner_text()
        assert page.locator("#biased").is_hidden()
        layer = page.locator("#layer-select").input_value()
        assert layer == "fc2"
        rows = page.locator("#answer tbody tr")
        assert rows.count() == len(page.evaluate("window.modeldxCapture.answer.groups")) > 0
        cells = page.locator("#answer td.cell[data-neuron]")
        assert cells.count() == rows.count() * K
        shown = [float(c) for c in page.eval_on_selector_all("#answer td.cell",
                                                             "cs => cs.map(c => c.dataset.confidence)")]
        assert all(0 <= c <= 1 for c in shown)
        assert page.locator("#answer td.cell .conf").count() == cells.count()  # a confidence bar on each
        width = page.locator("#progress-fill").evaluate("e => parseFloat(e.style.width)")
        assert abs(width - 100 * 3 * CHUNK / len(digits)) < 0.2

        page.select_option("#layer-select", "act2")
        page.wait_for_function("window.modeldxCapture.answer.layer === 'act2'")
        running.release(5)
        page.wait_for_function("window.modeldxCapture.answer.chunks_done >= 8", timeout=30_000)
        # every neuron's number readable on its shade: WCAG AA contrast (4.5:1) over the white card; white
        # text on a cell of confidence 0.6 was 2.3:1
        worst = page.eval_on_selector_all("#answer td.cell[data-neuron]", CONTRAST)
        assert worst >= 4.5, f"a neuron's number is hard to read: contrast {worst:.2f}:1"
        note = page.locator("#history-note").inner_text()
        assert not re.search(r"\b1 answers\b", note), note
        png = page.screenshot(full_page=True)
        save(png, "capture-progress.png")
        not_blank(png)

        running.join()  # every chunk: the capture completes
        page.wait_for_function("document.getElementById('status').textContent === 'complete'", timeout=30_000)
        page.wait_for_function("(window.modeldxCapture.answer || {}).complete === true", timeout=30_000)
        exact = top_k_neurons(digits_store, k=K, layers="act2")
        got = page.eval_on_selector_all("#answer td.cell[data-neuron]",
                                        "cs => cs.map(c => +c.dataset.neuron)")
        assert got == exact.neuron.tolist()
        assert page.locator("#history-chart path.prec-line").count() == 1
        entries = page.evaluate("window.modeldxCapture.history.entries")
        assert entries[-1]["precision"] == 1.0 and len(entries) >= 3
        save(page.screenshot(full_page=True), "capture-complete.png")
        assert not console, console
    finally:
        running.join()
        server.stop()
