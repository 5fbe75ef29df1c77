"""DGMTracker's failed-VAE case on MNIST: a run whose loss turns NaN, localised, and the fix.

Trains the zoo's MLP ``VAE`` with plain SGD at a learning rate of 3e-2 (seed 2) under the
training-dynamics recorder (one snapshot per 10 steps, probe = the first 256 MNIST test images):
the loss overflows at step 56 — ``exp(logvar)`` of the log-variance head turns inf. The example
prints where the run first went non-finite and what ``modeldx.dynamics.localize`` makes of the
snapshots before it, the upstream neurons credit assignment names, then trains the same recipe with
``logvar_clamp=5`` and shows it stays finite. Both runs go to ``OUT/diverged`` and ``OUT/clamped``
(default ``runs/vae-nan/``).

Run: ``PYTHONPATH=src .venv/bin/python examples/vae_nan.py [OUT]``.
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from modeldx.data import load_mnist
from modeldx.dynamics import localize, open_run, record, upstream
from modeldx.errors import ModeldxError
from modeldx.zoo import VAE, train_vae, vae_images

RECIPE = {"steps": 300, "lr": 3e-2, "optimizer": "sgd", "batch_size": 128, "seed": 2}


def train_recorded(path: Path, images: torch.Tensor, probe: torch.Tensor, clamp: float | None):
    torch.manual_seed(RECIPE["seed"])
    model = VAE(logvar_clamp=clamp)
    with record(model, probe, path, every=10, overwrite=True, arch="vae",
                model_args={"logvar_clamp": clamp}) as rec:
        losses = train_vae(model, images, after_step=lambda loss: rec.step(loss=loss), **RECIPE)
    return open_run(path), losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="runs/vae-nan", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = vae_images(load_mnist("train"))
    probe = vae_images(load_mnist("test"))[:256]

    start = time.perf_counter()
    run, losses = train_recorded(args.out / "diverged", images, probe, clamp=None)
    print(f"diverged run: {len(losses)} steps, {run.n_snapshots} snapshots, "
          f"{time.perf_counter() - start:.1f} s -> {run.path}")
    pairs = zip(run.steps, run.loss, strict=True)
    print("  loss at the snapshots:", ", ".join(f"{s}: {v:.4g}" for s, v in pairs))
    failure = localize(run)
    if failure is None:
        print("  the run stayed finite")
    else:
        print(f"  first non-finite snapshot {failure.snapshot} (step {failure.step}); "
              f"layer {failure.layer}, neurons {failure.neurons}, stat {failure.stat}")
        print(f"  reason: {failure.reason}")
        print("  scores:", ", ".join(f"{k} {v:.2f}" for k, v in failure.scores.items()))
        try:
            for u in upstream(run, failure):
                print(f"  upstream {u['layer']}[{u['neuron']}]: total {u['total']:.4g}")
        except ModeldxError as exc:
            print(f"  upstream: {exc}")

    start = time.perf_counter()
    fixed, fixed_losses = train_recorded(args.out / "clamped", images, probe, clamp=5.0)
    finite = all(math.isfinite(v) for v in fixed_losses)
    print(f"clamped run (logvar_clamp=5): {len(fixed_losses)} steps, {fixed.n_snapshots} snapshots, "
          f"{time.perf_counter() - start:.1f} s; finite: {finite}, localize: {localize(fixed)}; loss "
          f"{np.mean(fixed_losses[:10]):.1f} (first 10 steps) -> {np.mean(fixed_losses[-10:]):.1f} (last 10)")


if __name__ == "__main__":
    main()
