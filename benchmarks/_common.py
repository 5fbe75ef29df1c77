"""Helpers shared by the benchmark scripts: machine description, timing, model and data."""

from __future__ import annotations

import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {torch.get_num_threads()} torch threads, {gpu}; torch {torch.__version__}; "
            f"{datetime.now(UTC):%Y-%m-%d}")


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    """Median wall time of ``repeat`` runs, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def mnist_model():
    """The demo's trained LeNet-5 (modeldx-demo/lenet5-mnist.pt), trained first if missing."""
    from modeldx.errors import CheckpointError
    from modeldx.zoo import load_checkpoint, train

    ckpt = REPO / "modeldx-demo" / "lenet5-mnist.pt"
    try:
        return load_checkpoint(ckpt)[0]
    except CheckpointError:
        data = mnist_all()
        return train("lenet5", data["train"], data["test"], checkpoint=ckpt, progress=False).model


def mnist_all():
    from modeldx.data import load_mnist

    return {"train": load_mnist("train", root=REPO / "data"), "test": load_mnist("test", root=REPO / "data")}
