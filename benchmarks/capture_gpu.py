"""Capture on a CUDA device: plain LeNet-5 inference against capture over the same tensors, in one
run, as items/s and their ratio.

    .venv/bin/python benchmarks/capture_gpu.py [--items 1000000] [--batch-size 8192] [--repeat 3]

Plain inference copies each batch from pinned host memory to the device (non_blocking), runs the
model and keeps the predictions (copied to the host once at the end). Capture reads the same
tensors as a ``TensorDataset`` with ``device="cuda"``: batches fetched ahead and pinned, copies to
the device overlapping compute, every captured block copied back on a side stream, and the store
written (float16, zstd) on the writer thread.

Anchor (issue 14): plain LeNet-5 inference ~5.1M images/s on an H100, 4.4M with hooks and a copy
to the host. Goal: capture / inference <= 1.3x. Exits with a message where there is no CUDA device.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import machine, mnist_model
from torch.utils.data import TensorDataset

from modeldx import capture


def plain_inference(model, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    preds = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device, non_blocking=True)
            preds.append(model(xb).argmax(1))
    return torch.cat(preds).cpu()  # waits for the device


def seconds(fn) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("capture_gpu.py needs a CUDA device, and torch finds none on this machine "
                 "(torch.cuda.is_available() is False); run it where a GPU is")
    device = torch.device("cuda")
    model = mnist_model().to(device).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.items, 1, 28, 28, generator=g).pin_memory()
    y = torch.randint(0, 10, (args.items,), generator=g)
    data = TensorDataset(x, y)
    work = Path(tempfile.mkdtemp(prefix="modeldx-gpu-bench-"))
    try:
        plain_inference(model, x[:args.batch_size * 4], args.batch_size, device)  # warm-up
        plain, captured = [], []
        for _ in range(args.repeat):  # interleaved, so drifts hit both alike
            plain.append(seconds(lambda: plain_inference(model, x, args.batch_size, device)))
            captured.append(seconds(lambda: capture(
                model, data, work / "store", device=device, overwrite=True,
                batch_size=args.batch_size, progress=False)))
        t_plain, t_cap = statistics.median(plain), statistics.median(captured)
        print(f"machine: {machine()}")
        print(f"LeNet-5, {args.items:,} random 1x28x28 items, batches of {args.batch_size:,}; "
              f"{args.repeat} interleaved runs, medians")
        print(f"plain inference : {t_plain:7.3f} s  {args.items / t_plain / 1e6:6.2f}M items/s")
        print(f"modeldx capture : {t_cap:7.3f} s  {args.items / t_cap / 1e6:6.2f}M items/s")
        print(f"ratio capture / inference: {t_cap / t_plain:.2f}x (goal <= 1.3x; anchor: 5.1M/s "
              "plain, 4.4M/s hooks + host copy on an H100); runs: plain "
              f"{', '.join(f'{t:.3f}' for t in plain)}; capture {', '.join(f'{t:.3f}' for t in captured)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
