"""``modeldx serve lda`` on Reuters-21578 in a browser: the top-words table and similarity matrix update."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

from tests.browser import not_blank, save
from tests.conftest import REPO, other_data_root
from tests.test_cli_serve import free_port


@contextlib.contextmanager
def serving(args: list[str], timeout: float = 120.0):
    """``modeldx serve lda ARGS`` in a subprocess, as a user starts it; yields its URL; Ctrl-C at the end."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "modeldx.cli", "serve", "lda", *args, "--port", str(port),
                             "--data-root", str(other_data_root())], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve lda exited with {proc.returncode}: {proc.stdout.read()}")
            assert time.monotonic() < deadline, f"serve lda did not answer on port {port} in {timeout} s"
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                time.sleep(0.5)  # still loading Reuters
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_lda_shows_top_words_and_topic_similarity_updating(page):
    with serving(["--k", "12", "--batch", "128"]) as url:
        page.goto(url)
        for name in ("top words", "topic similarity", "perplexity", "NPMI"):
            page.wait_for_function(f"window.modeldx && window.modeldx.widgets.has('stream:{name}')")
        table = page.locator("[data-widget='stream:top words'] table")
        page.wait_for_function("window.modeldx.model.streams['top words'].step >= 1")
        first_step = page.evaluate("window.modeldx.model.streams['top words'].step")
        first_matrix = page.evaluate("window.modeldx.model.streams['topic similarity'].value.values")
        assert len(first_matrix) == 12 and all(len(r) == 12 for r in first_matrix)
        # it keeps learning: later steps bring a new table and a new matrix to the page
        page.wait_for_function(f"window.modeldx.model.streams['top words'].step >= {first_step + 8}")
        page.wait_for_function(f"window.modeldx.model.streams['topic similarity'].step >= {first_step + 8}")
        assert table.locator("tr").count() == 13  # a header and a row per topic
        assert page.locator("[data-widget='stream:top words'] .info, [data-widget='stream:top words']"
                            ).first.inner_text().count("step") >= 1
        later = page.evaluate("window.modeldx.model.streams['topic similarity'].value.values")
        assert later != first_matrix
        words = table.locator("tr").nth(1).locator("td").nth(2).inner_text().split()
        assert len(words) == 10 and all(w.isalpha() for w in words)
        # a slider moved on the page reaches the model and is logged with its step
        slider = page.locator("[data-widget='control:cosine'] input[type=range]")
        slider.evaluate("(el) => { el.value = el.max; el.dispatchEvent(new Event('input', {bubbles: true}));"
                        " el.dispatchEvent(new Event('change', {bubbles: true})); }")
        page.wait_for_function("window.modeldx.model.events.some(e => e.kind === 'control' && "
                               "e.name === 'cosine' && e.step !== null)")
        png = page.screenshot(full_page=True)
        not_blank(png)
        save(png, "lda-dashboard.png")
