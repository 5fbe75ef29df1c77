"""``modeldx explore``: argument errors as one line, and the explorer served for real from a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from modeldx.cli import app
from tests.conftest import MNIST_DIR, REPO

runner = CliRunner()


@pytest.fixture(scope="module")
def lenet_store(tmp_path_factory):
    """An untrained LeNet-5 as a zoo checkpoint, and its store of 300 MNIST test items."""
    from modeldx import capture
    from modeldx.data import load_mnist
    from modeldx.zoo.checkpoint import save_checkpoint
    from modeldx.zoo.models import MODELS

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MODELS["lenet5"]().eval()
    folder = tmp_path_factory.mktemp("explore")
    checkpoint = save_checkpoint(model, folder / "lenet5.pt", "lenet5", {"dataset": "mnist"})
    capture(model, {"test": load_mnist("test", root=MNIST_DIR).subset(np.arange(300))}, folder / "store",
            progress=False)
    return checkpoint, folder / "store"


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    for word in words:
        assert word in result.output, result.output


def test_an_open_bind_without_a_token_is_refused_before_anything_loads(tmp_path):
    result = runner.invoke(app, ["explore", str(tmp_path / "none"), "--host", "0.0.0.0"])
    _one_line_error(result, "pass a token")


def test_a_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _one_line_error(runner.invoke(app, ["explore", str(tmp_path), "--port", str(port)]),
                        f"127.0.0.1:{port}", "--port")


def test_bad_arguments_are_one_line_errors(lenet_store, digits_store, tmp_path):
    checkpoint, store = lenet_store
    _one_line_error(runner.invoke(app, ["explore", str(tmp_path / "nowhere")]), "nowhere")
    _one_line_error(runner.invoke(app, ["explore", str(store), "--k", "1"]), "--k")
    _one_line_error(runner.invoke(app, ["explore", str(store), "--sample", "missing"]), "'missing'")
    # a checkpoint of another model than the store's
    _one_line_error(runner.invoke(app, ["explore", str(digits_store.path), "--checkpoint", str(checkpoint)]),
                    "model")


def test_explore_serves_the_page_and_the_graph(lenet_store):
    checkpoint, store = lenet_store
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "modeldx.cli", "explore", str(store), "--checkpoint",
                             str(checkpoint), "--port", str(port), "--data-root", str(MNIST_DIR)], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, graph = time.monotonic() + 240, None
        while graph is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "modeldx explore did not answer"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/graph", timeout=5) as response:
                    graph = json.loads(response.read())
            except OSError:
                time.sleep(0.5)  # still computing the clusters
        assert [layer["name"] for layer in graph["layers"]] == ["act1", "act2", "act3", "act4", "fc3"]
        assert graph["checkpoint"] and all(e["bundles"] for e in graph["edges"])
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert f"open http://localhost:{port}/" in out
