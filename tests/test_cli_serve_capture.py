"""``modeldx serve capture``: bad flags as one line, and a checkpoint captured in the background while the
server answers, from a subprocess, until the exact answer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import torch
from typer.testing import CliRunner

from modeldx.cli import app
from tests.conftest import REPO
from tests.test_cli_dynamics import _one_line_error

runner = CliRunner()


def test_bad_flags_are_one_line(tmp_path):
    _one_line_error(runner.invoke(app, ["serve", "capture", str(tmp_path / "s"), "--order", "shuffled"]),
                    "'order'", "random")
    _one_line_error(runner.invoke(app, ["serve", "capture", str(tmp_path / "s"), "--host", "0.0.0.0"]),
                    "pass a token")
    _one_line_error(runner.invoke(app, ["serve", "capture", str(tmp_path / "nowhere")]), "nowhere",
                    "--checkpoint")
    # a URL stays a URL (a Path made "file:/x" of it): the message names it as given
    _one_line_error(runner.invoke(app, ["serve", "capture", f"file://{tmp_path}/nowhere"]),
                    f"no store at file://{tmp_path}/nowhere", "--checkpoint")


def _get(port: int, route: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=60) as response:
        return json.loads(response.read())


def test_serve_capture_captures_a_checkpoint_and_answers(tmp_path):
    from modeldx.zoo.checkpoint import save_checkpoint
    from modeldx.zoo.models import MODELS

    torch.manual_seed(0)
    checkpoint = save_checkpoint(MODELS["lenet5"]().eval(), tmp_path / "lenet5.pt", "lenet5", {})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "modeldx.cli", "serve", "capture", str(tmp_path / "store"),
                             "--checkpoint", str(checkpoint), "--splits", "test", "--chunk-items", "2500",
                             "--k", "3", "--port", str(port)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.monotonic() + 240, None
        while status is None or status["status"] != "complete":
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, f"the capture did not complete: {status}"
            with contextlib.suppress(OSError):  # still starting
                status = _get(port, "/api/status")
            assert status is None or status["error"] is None, status["error"]
            time.sleep(0.3)  # polling a subprocess, as the page does
        assert status["chunks_total"] == 4 and status["items_total"] == 10_000
        assert status["chunk_order"] == "random" and not status["biased"]
        answer = _get(port, "/api/answer?layer=act4")
        assert answer["complete"] and answer["groups"] and answer["mean_confidence"] == 1.0
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert f"open http://localhost:{port}/" in out
