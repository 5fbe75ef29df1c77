"""A capture killed with SIGKILL midway resumes to the same bytes as an uninterrupted one."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from modeldx import capture, open_store
from modeldx.zoo import LeNet5
from tests.conftest import MNIST_DIR, REPO

CHILD = textwrap.dedent("""
    import sys, time, torch
    from modeldx import capture
    from modeldx.data import load_mnist
    from modeldx.zoo import LeNet5
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LeNet5()
    model.register_forward_pre_hook(lambda m, i: time.sleep(0.03))  # slow enough to be caught midway
    capture(model, load_mnist("test", root=sys.argv[2]), sys.argv[1], chunk_items=500, batch_size=250,
            progress=False)
""")


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # same float summation order as the child process
    yield
    torch.set_num_threads(before)


def test_sigkill_then_resume_equals_uninterrupted(tmp_path, mnist_test, one_thread):
    path = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(MNIST_DIR)], env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = list((path / "_progress").glob("chunk-*.done")) if (path / "_progress").is_dir() else []
            if len(done) >= 4 or child.poll() is not None:
                break
            time.sleep(0.02)
        assert child.poll() is None, "the child finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    interrupted = open_store(path)
    assert interrupted.status == "capturing"
    assert 4 <= len(interrupted.done_chunks()) < 20

    torch.manual_seed(0)
    model = LeNet5()
    resumed = capture(model, mnist_test, path, chunk_items=500, batch_size=250, progress=False)
    fresh = capture(model, mnist_test, tmp_path / "fresh", chunk_items=500, batch_size=250,
                    progress=False)
    assert resumed.complete and not (path / "_progress").exists()
    for name in fresh.array_names():
        assert np.array_equal(resumed.read(name), fresh.read(name)), name
    assert resumed.items().equals(fresh.items())
