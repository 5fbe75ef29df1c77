"""DGMTracker's failed-VAE case on MNIST: a run whose loss turns NaN, localised, and the fix.

Trains the zoo's MLP ``VAE`` with a Gaussian decoder (``decoder="gaussian"``: a per-pixel mean and
a learned per-pixel log-variance, the head ``fc4_logvar``) by Adam at 1e-3 (seed 0) under the
training-dynamics recorder (one snapshot per 10 steps, probe = the first 256 MNIST test images).
On the pixels that are 0 in every MNIST image the mean fits exactly and the variance collapses:
those units of ``fc4_logvar`` drift down step after step until ``exp(-logvar)`` overflows and the
loss turns NaN (step 878). The example prints the drift, where the run first went non-finite and
what ``modeldx.dynamics.localize`` makes of the snapshots before it, the upstream neurons credit
assignment names, then trains the same recipe with ``logvar_clamp=5`` and shows it stays finite.
Both runs go to ``OUT/diverged`` and ``OUT/clamped`` (default ``runs/vae-nan/``).

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

RECIPE = {"steps": 1000, "lr": 1e-3, "optimizer": "adam", "batch_size": 128, "seed": 0}
DECODER = "gaussian"


def train_recorded(path: Path, images: torch.Tensor, probe: torch.Tensor, clamp: float | None):
    torch.manual_seed(RECIPE["seed"])
    model = VAE(logvar_clamp=clamp, decoder=DECODER)
    with record(model, probe, path, every=10, overwrite=True, arch="vae",
                model_args={"logvar_clamp": clamp, "decoder": DECODER}) as rec:
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
    every = max(1, run.n_snapshots // 10)
    shown = list(range(0, run.n_snapshots - 1, every)) + [run.n_snapshots - 2, run.n_snapshots - 1]
    print("  loss at the snapshots:", ", ".join(f"{run.steps[i]}: {run.loss[i]:.4g}" for i in shown))
    # the direct trace: the largest |a| of each layer on the probe, snapshot by snapshot
    for layer in run.layers:
        peak = np.abs(run.series(layer, "max_abs")).max(axis=1)
        print(f"  max |a| {layer:>10} at those steps: " + " ".join(f"{peak[i]:.3g}" for i in shown))
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
