"""Blue-noise polyline sampling of 10^5 series x 200 snapshots, against uniform sampling.

Synthetic training dynamics: eight sine bundles with noise, and 1 % of the series
that leave their bundle by a ramp at a random snapshot (the planted outliers).
For each m: the time of ``blue_noise_sample`` (median of 3, one torch thread),
and for it and for uniform random sampling at the same m, the share of true
outliers kept (top 1 % by k-NN distance, ``outliers_kept``) and the clutter on an
800 x 300 chart (``clutter``). Uniform figures are means over 3 seeds.
Run: ``.venv/bin/python benchmarks/polyline_sampling.py``.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, timed  # noqa: E402

from modeldx.dynamics import blue_noise_sample, clutter, outliers_kept  # noqa: E402


def synthetic(n: int = 100_000, t: int = 200, share: float = 0.01, seed: int = 0):
    rng = np.random.default_rng(seed)
    time_ = np.linspace(0, 1, t)
    params = rng.uniform([0.5, 0, 0.5], [2, 1, 2], (8, 3))
    centers = np.stack([a * np.sin(2 * np.pi * (f * time_ + p)) for f, p, a in params])
    x = centers[rng.integers(0, 8, n)] + rng.normal(0, 0.05, (n, t)) + rng.normal(0, 0.1, (n, 1))
    planted = rng.choice(n, int(share * n), replace=False)
    onset = rng.uniform(0.1, 0.9, (len(planted), 1))
    amp = rng.choice([-1, 1], (len(planted), 1)) * rng.uniform(1, 3, (len(planted), 1))
    x[planted] += amp * np.clip((time_ - onset) / 0.1, 0, 1)
    return x.astype(np.float32)


def main() -> None:
    torch.set_num_threads(1)
    print(machine())
    x = synthetic()
    print(f"{x.shape[0]:,} series x {x.shape[1]} snapshots, 1 % planted outliers; chart 800 x 300")
    print(f"{'m':>6} {'time s':>7} | {'outliers kept':>13} {'uniform':>8} | {'clutter':>8} {'uniform':>8}")
    for m in (500, 2000, 5000):
        seconds, chosen = timed(lambda m=m: blue_noise_sample(x, m), repeat=3)
        uniform = [np.random.default_rng(s).choice(len(x), m, replace=False) for s in range(3)]
        kept = outliers_kept(x, chosen)
        kept_u = np.mean([outliers_kept(x, u) for u in uniform])
        clut = clutter(x, chosen)
        clut_u = np.mean([clutter(x, u) for u in uniform])
        print(f"{m:>6} {seconds:>7.2f} | {kept:>13.3f} {kept_u:>8.3f} | {clut:>8.3f} {clut_u:>8.3f}",
              flush=True)


if __name__ == "__main__":
    main()
