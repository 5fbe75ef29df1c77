"""LDAM iterations per second vs activation maximisation by gradient ascent, side by side.

The zoo LeNet-5 (trained by the demo, or here when missing), its 10 output neurons x 8 chains in
one batch of 80 images, the same number of steps from the same random start. The reference is
torch-lucent when it imports beside this torch; where it does not (see docs/benchmarks.md: its
torchvision dependency fails to load beside the CPU build of torch 2.13.0), plain gradient
ascent with Adam at Lucent's default step size (lr = 0.05) — the method LDAM replaces.
Run: ``.venv/bin/python benchmarks/ldam_speed.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine  # noqa: E402

from modeldx.data import load_mnist  # noqa: E402
from modeldx.ldam import LDAM  # noqa: E402
from modeldx.zoo import load_checkpoint, train  # noqa: E402


def model_under_test():
    path = REPO / "modeldx-demo" / "lenet5-mnist.pt"
    if path.exists():
        return load_checkpoint(path)[0]
    return train("lenet5", load_mnist("train"), load_mnist("test"), progress=False).model


def lucent_status() -> str:
    try:
        import lucent.optvis.render  # noqa: F401
    except Exception as exc:  # report exactly why the peer cannot run here
        return f"torch-lucent unavailable: {type(exc).__name__}: {exc}"
    return "torch-lucent importable"


def gradient_ascent(model, x0: torch.Tensor, steps: int) -> tuple[float, float]:
    """Adam on the input, lr 0.05 (Lucent's default), maximising each image's own output neuron."""
    x = x0.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    neuron = torch.arange(x.shape[0]) % 10
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    start = time.perf_counter()
    for _ in range(steps):
        f = model(x)[torch.arange(x.shape[0]), neuron]
        opt.zero_grad()
        (-f.sum()).backward()
        opt.step()
    seconds = time.perf_counter() - start
    for p, flag in zip(model.parameters(), flags, strict=True):
        p.requires_grad_(flag)
    return steps / seconds, f.mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()
    print(machine())
    print(lucent_status())
    model = model_under_test().eval()
    ldam = LDAM(model, (1, 28, 28), chains=8, burn_in=100, seed=0)
    x0 = ldam.x.clone()
    ldam.step(5)  # warm-up
    ldam.restart()
    start = time.perf_counter()
    ldam.step(args.steps)
    ldam_rate = args.steps / (time.perf_counter() - start)
    ga_rate, ga_act = gradient_ascent(model, x0, 5)
    ga_rate, ga_act = gradient_ascent(model, x0, args.steps)
    print(f"10 neurons x 8 chains, {args.steps} steps")
    print(f"LDAM (L2, noise, momentum, running average): {ldam_rate:.1f} it/s, mean activation "
          f"{float(ldam.activation.mean()):.2f}")
    print(f"gradient ascent (Adam, lr 0.05):              {ga_rate:.1f} it/s, mean activation {ga_act:.2f}")
    print(f"ratio LDAM / gradient ascent: {ldam_rate / ga_rate:.2f}x")


if __name__ == "__main__":
    main()
