"""Peer: the same layers of the MNIST model over all 70k MNIST items, captured by modeldx and by
TorchLens (`torchlens.extract_dataset`), in one run.

    .venv/bin/pip install torchlens && .venv/bin/python benchmarks/peer_torchlens.py

TorchLens keeps whole conv maps in float32, so modeldx runs with reduction="none" and
encoding="float32" for the like-for-like row; its default (per-channel max, float16) is shown too.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import machine, mnist_all, mnist_model, timed

from modeldx import capture
from modeldx.data import as_dataset

# TorchLens names layers by operation; these are LeNet-5's act1..act4 and fc3.
TL_LAYERS = {"relu_1_2": "act1", "relu_2_5": "act2", "relu_3_9": "act3", "relu_4_11": "act4",
             "linear_3_12": "fc3"}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    import torchlens as tl

    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=70_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = mnist_model()
    data = as_dataset(mnist_all())
    n = min(args.items, len(data))
    x, _ = data.get_batch(np.arange(n))
    work = Path(tempfile.mkdtemp(prefix="modeldx-peer-"))
    try:
        tl.extract_dataset(model, x[:500], layers=list(TL_LAYERS), batch_size=500, progress=False)  # warm-up

        def torchlens_disk():
            shutil.rmtree(work / "tl", ignore_errors=True)
            return tl.extract_dataset(model, x, layers=list(TL_LAYERS), batch_size=500, progress=False,
                                      output_dir=work / "tl")

        items = np.arange(n)
        t_tl, _ = timed(torchlens_disk, args.repeat)
        t_full, full = timed(lambda: capture(model, data, work / "full", items=items, reduction="none",
                                             encoding="float32", overwrite=True, progress=False), args.repeat)
        t_def, default = timed(lambda: capture(model, data, work / "default", items=items, overwrite=True,
                                               progress=False), args.repeat)
        # the two captures hold the same numbers
        tl_mem = tl.extract_dataset(model, x[:1000], layers=list(TL_LAYERS), batch_size=500, progress=False)
        for tl_name, name in TL_LAYERS.items():
            ours = full.read(f"acts/{name}", 0, 1000)
            theirs = tl_mem[tl_name].reshape(1000, -1).numpy()
            assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-5), name
        print(f"machine: {machine()}")
        print(f"items: {n:,}; layers act1, act2, act3, act4, fc3; values checked equal on 1,000 items")
        print(f"TorchLens extract_dataset -> disk : {t_tl:7.2f} s  {folder_bytes(work / 'tl') / 1e6:8.1f} MB")
        print(f"modeldx full maps, float32        : {t_full:7.2f} s  {full.stored_bytes() / 1e6:8.1f} MB"
              f"   speed-up {t_tl / t_full:.2f}x")
        print(f"modeldx default (max, float16)    : {t_def:7.2f} s  {default.stored_bytes() / 1e6:8.1f} MB"
              f"   speed-up {t_tl / t_def:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
