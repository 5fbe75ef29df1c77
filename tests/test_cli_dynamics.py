"""``modeldx dynamics``: a missing, non-run or mismatched path as one line, and a real run served from a
subprocess."""

from __future__ import annotations

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

runner = CliRunner()


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("error:") == 1
    for word in words:
        assert word in result.output, result.output


def test_a_missing_or_non_run_path_is_one_line(tmp_path, dynamics_runs):
    from modeldx.zoo.checkpoint import save_checkpoint
    from modeldx.zoo.models import MODELS

    _one_line_error(runner.invoke(app, ["dynamics", str(tmp_path / "nowhere")]), "nowhere")
    (tmp_path / "folder").mkdir()
    _one_line_error(runner.invoke(app, ["dynamics", str(tmp_path / "folder")]), "folder",
                    "not a recorded run")
    _one_line_error(runner.invoke(app, ["dynamics", str(tmp_path / "nowhere"), "--host", "0.0.0.0"]),
                    "pass a token")
    # a checkpoint of another architecture than the run's
    checkpoint = save_checkpoint(MODELS["lenet5"]().eval(), tmp_path / "lenet5.pt", "lenet5", {})
    _one_line_error(runner.invoke(app, ["dynamics", str(dynamics_runs["finite"].path), "--checkpoint",
                                        str(checkpoint)]), "LeNet5", "architecture")


def test_dynamics_serves_a_run(tmp_path):
    from modeldx.dynamics import record
    from modeldx.zoo.checkpoint import save_checkpoint
    from modeldx.zoo.models import MODELS

    torch.manual_seed(0)
    model = MODELS["lenet5"]()
    checkpoint = save_checkpoint(model.eval(), tmp_path / "lenet5.pt", "lenet5", {})
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    with record(model.train(), x[:4], tmp_path / "run", every=2) as rec:
        for _ in range(4):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            rec.step(loss=loss.item())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "modeldx.cli", "dynamics", str(tmp_path / "run"),
                             "--checkpoint", str(checkpoint), "--port", str(port)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, answer = time.monotonic() + 120, None
        while answer is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "modeldx dynamics did not answer"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/run", timeout=5) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(0.3)  # still starting
        assert answer["status"] == "complete" and answer["n_snapshots"] == 2
        assert answer["contributors"]["available"]  # the checkpoint gave the architecture
        layer = answer["layers"][-1]["name"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/neuron/{layer}/0", timeout=60) as response:
            assert json.loads(response.read())["contributors"]["items"]
    finally:
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0]
    assert f"open http://localhost:{port}/" in out
