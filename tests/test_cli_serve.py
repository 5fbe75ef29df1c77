"""``modeldx serve ...`` started for real, in a subprocess, as a user starts it."""

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
from websockets.sync.client import connect

from modeldx.cli import app
from tests.conftest import MNIST_DIR, REPO

runner = CliRunner()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """An untrained LeNet-5 saved as a zoo checkpoint, and a store of it over 200 MNIST test items."""
    from modeldx import capture
    from modeldx.data import load_mnist
    from modeldx.zoo.checkpoint import save_checkpoint
    from modeldx.zoo.models import MODELS

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = MODELS["lenet5"]().eval()
    folder = tmp_path_factory.mktemp("serve")
    checkpoint = save_checkpoint(model, folder / "lenet5.pt", "lenet5", {"dataset": "mnist"})
    items = load_mnist("test", root=MNIST_DIR).subset(np.arange(200))
    capture(model, items, folder / "store", progress=False)
    return checkpoint, folder / "store"


def served(args: list[str], timeout: float = 240.0) -> dict:
    """Start ``modeldx serve ARGS`` on a free port; wait for the page and the WebSocket's state; stop it."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "modeldx.cli", "serve", *args, "--port", str(port),
                             "--data-root", str(MNIST_DIR)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        page = None
        while page is None:
            if proc.poll() is not None:
                raise AssertionError(f"serve {args[0]} exited with {proc.returncode}: {proc.stdout.read()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve {args[0]} did not answer on port {port} in {timeout} s")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.5)  # still loading data or building the session
        assert "modeldx" in page
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30) as ws:
            state = json.loads(ws.recv(timeout=30))
        assert state["type"] == "state"
        return state
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_ldam_with_a_store_starts_and_serves_its_session(tiny_checkpoint):
    checkpoint, store = tiny_checkpoint
    state = served(["ldam", str(checkpoint), "--store", str(store), "--chains", "2"])
    assert state["name"] == "ldam"
    names = {c["name"] for c in state["controls"]}
    assert {"target", "map layer", "discriminator weight"} <= names  # the store enabled the neuron map


def test_serve_kmeans_starts_and_serves_its_session():
    state = served(["kmeans", "--split", "test", "--k", "8", "--batch-size", "256"])
    assert state["name"] == "kmeans" and "size weight" in {c["name"] for c in state["controls"]}


def test_serve_classifier_starts_and_serves_its_session():
    state = served(["classifier"])
    assert state["name"] == "classifier" and "learning rate" in {c["name"] for c in state["controls"]}


@pytest.mark.parametrize("command", [["classifier"], ["kmeans"], ["ldam", "no-such.pt"]])
def test_an_open_bind_without_a_token_is_refused_before_anything_loads(command, tmp_path):
    # the data root is empty: had it loaded data first, it would fail on the missing data instead
    result = runner.invoke(app, ["serve", *command, "--host", "0.0.0.0", "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and "pass a token" in result.output
    result = runner.invoke(app, ["serve", *command, "--host", "0.0.0.0", "--token", "short",
                                 "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and "at least 16 characters" in result.output


@pytest.mark.parametrize("command", [["classifier"], ["kmeans"], ["ldam", "no-such.pt"]])
def test_a_port_in_use_is_one_line_naming_it_before_anything_loads(command, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", *command, "--port", str(port), "--data-root", str(tmp_path)])
    assert result.exit_code == 2 and f"127.0.0.1:{port}" in result.output and "--port" in result.output
    assert "open http" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("flags", "message"), [
    (["--k", "0"], "'k' parameter of serve lda"), (["--k", "1"], "'k' parameter of serve lda"),
    (["--k", "100000"], "'k' parameter of serve lda"), (["--batch", "0"], "'batch' parameter"),
    (["--nsamps", "0"], "'nsamps' parameter"), ([], "Reuters-21578 not found")])
def test_serve_lda_refuses_bad_flags_and_a_missing_data_root_in_one_line(flags, message, tmp_path):
    # the data root is empty: the flags are checked before Reuters is looked for
    result = runner.invoke(app, ["serve", "lda", *flags, "--port", str(free_port()), "--data-root",
                                 str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
