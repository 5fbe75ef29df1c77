"""Capture overhead: every layer of the MNIST model over all 70k MNIST items written to a store,
against a plain inference pass over the same items and batches, in one run.

    .venv/bin/python benchmarks/capture_overhead.py [--device cpu|cuda] [--repeat 3]

Goal: capture / inference <= 1.3 on CPU.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import machine, mnist_all, mnist_model, timed

from modeldx import capture
from modeldx.data import as_dataset


def plain_inference(model, data, batch_size: int, device) -> np.ndarray:
    """What a user runs without modeldx: batches through the model, predictions kept."""
    preds = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x, _ = data.get_batch(np.arange(start, min(start + batch_size, len(data))))
            preds.append(model(x.to(device)).argmax(1).cpu())
    return torch.cat(preds).numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--model", default="lenet5", choices=["lenet5", "deepcnn"],
                        help="deepcnn: a seeded, untrained DeepCNN (speed does not depend on weights)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.model == "lenet5":
        model = mnist_model()
    else:
        from modeldx.zoo import DeepCNN

        torch.manual_seed(0)
        model = DeepCNN().eval()
    model = model.to(device)
    data = as_dataset(mnist_all())
    work = Path(tempfile.mkdtemp(prefix="modeldx-bench-"))
    try:
        plain_inference(model, data, args.batch_size, device)  # warm-up
        plain, captured = [], []
        for _ in range(args.repeat):  # interleaved, so drifts of a shared machine hit both alike
            plain.append(timed(lambda: plain_inference(model, data, args.batch_size, device), 1)[0])
            t, store = timed(lambda: capture(model, data, work / "store", device=device, overwrite=True,
                                             batch_size=args.batch_size, progress=False), 1)
            captured.append(t)
        t_plain, t_cap = statistics.median(plain), statistics.median(captured)
        print(f"machine: {machine()}")
        print(f"model: {args.model}; items: {len(data):,}; layers: {', '.join(store.layers)} "
              f"({sum(store.neurons(name) for name in store.layers)} neurons/item); device {device}")
        print(f"plain inference : {t_plain:7.2f} s")
        print(f"modeldx capture : {t_cap:7.2f} s  ({store.stored_bytes() / 1e6:.1f} MB written, float16)")
        runs = (f"plain {', '.join(f'{t:.2f}' for t in plain)}; "
                f"capture {', '.join(f'{t:.2f}' for t in captured)}")
        runs = (f"plain {', '.join(f'{t:.2f}' for t in plain)}; "
                f"capture {', '.join(f'{t:.2f}' for t in captured)}")
        print(f"ratio capture / inference: {t_cap / t_plain:.2f}x (goal <= 1.3x); runs: {runs}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
