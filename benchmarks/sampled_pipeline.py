"""The sampled pipeline against a full capture: bytes stored and wall time per sample fraction.

    .venv/bin/python benchmarks/sampled_pipeline.py [--method latent-svm]

Sampled: latent pass over all 70k MNIST items -> choose a sample -> capture every layer for the
sample only. Full: capture every layer for all items (which includes the latent pass's outputs).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from _common import machine, mnist_all, mnist_model

from modeldx import capture, latent_pass, sample


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", default="latent-svm")
    args = parser.parse_args()
    model = mnist_model()
    data = mnist_all()
    work = Path(tempfile.mkdtemp(prefix="modeldx-pipeline-"))
    try:
        start = time.perf_counter()
        full = capture(model, data, work / "full", progress=False)
        t_full = time.perf_counter() - start
        b_full = full.stored_bytes()
        start = time.perf_counter()
        latent = latent_pass(model, data, work / "latent", progress=False)
        t_latent = time.perf_counter() - start
        b_latent = latent.stored_bytes()
        print(f"machine: {machine()}")
        print(f"full capture: {t_full:.2f} s, {b_full / 1e6:.1f} MB; latent pass alone: {t_latent:.2f} s, "
              f"{b_latent / 1e6:.1f} MB")
        print(f"{'fraction':>8s} {'sample s':>9s} {'capture s':>9s} {'total s':>8s} {'vs full':>8s} "
              f"{'acts MB':>8s} {'all MB':>7s} {'vs full':>8s}")
        for fraction in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
            start = time.perf_counter()
            s = sample(latent, args.method, fraction, save=False)
            t_sample = time.perf_counter() - start
            start = time.perf_counter()
            part = capture(model, data, work / f"s{fraction}", items=s.item_ids, progress=False)
            t_cap = time.perf_counter() - start
            total = t_latent + t_sample + t_cap
            acts = sum(part.stored_bytes(f"acts/{n}") for n in part.layers)
            everything = b_latent + part.stored_bytes()
            print(f"{fraction:8.1%} {t_sample:9.2f} {t_cap:9.2f} {total:8.2f} {total / t_full:7.2f}x "
                  f"{acts / 1e6:8.2f} {everything / 1e6:7.1f} {everything / b_full:7.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
