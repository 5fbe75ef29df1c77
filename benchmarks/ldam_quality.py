"""LDAM quality on the demo LeNet-5: recognisability and diversity of the ten output neurons' chains.

A judge of another architecture (an MLP, cached in the output folder) trained on MNIST train
names every chain average (:func:`modeldx.ldam.quality.recognisability`); diversity compares
chains of one neuron with chains of different neurons (:func:`modeldx.ldam.quality.diversity`),
against the same ratio for real MNIST test images. Each seed runs LDAM without and with the
discriminator (Algorithm 2: ``OnlineDiscriminator`` + ``DiscriminatorTrainer`` as the live
session uses them). Settings default to the LDAM constructor's; ``--set name=value`` overrides.
Tune on seeds 0-2, report held-out seeds 3-7:

    .venv/bin/python benchmarks/ldam_quality.py --seeds 3-7 [--set beta=0.05 --set sigma=0.05 ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine  # noqa: E402

from modeldx.data import load_mnist  # noqa: E402
from modeldx.ldam import LDAM, DiscriminatorTrainer, OnlineDiscriminator, grid_image, save_png  # noqa: E402
from modeldx.ldam.quality import diversity, recognisability, reference_diversity  # noqa: E402
from modeldx.zoo import load_checkpoint  # noqa: E402

MEAN, STD = 0.1307, 0.3081  # MNIST's normalisation (modeldx.data.datasets)


def judge_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def train_judge(train, test, epochs: int = 3, seed: int = 0) -> tuple[nn.Module, float]:
    """An MLP on MNIST train (Adam, 3 epochs); returns it and its test accuracy."""
    torch.manual_seed(seed)
    net = judge_net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = train.get_batch(np.arange(len(train)))
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(x)), len(x) // 128):
            loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval(), accuracy(net, test)


def accuracy(net: nn.Module, data) -> float:
    x, y = data.get_batch(np.arange(len(data)))
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def judge(folder) -> tuple[nn.Module, float]:
    path = folder / "judge-mlp.pt"
    test = load_mnist("test")
    if path.exists():
        net = judge_net()
        net.load_state_dict(torch.load(path))
        return net.eval(), accuracy(net, test)
    net, acc = train_judge(load_mnist("train"), test)
    torch.save(net.state_dict(), path)
    return net, acc


def run(model, reals, settings: dict, seed: int, steps: int, disc_weight: float) -> tuple[np.ndarray, float]:
    """LDAM of the ten output neurons; with ``disc_weight`` > 0, Algorithm 2 as ``serve ldam`` runs it."""
    start = time.perf_counter()
    disc = trainer = None
    if disc_weight > 0:
        disc = OnlineDiscriminator(reals, seed=seed, max_wait=20)
        trainer = DiscriminatorTrainer(
            lambda: LDAM(model, (1, 28, 28), discriminator=disc, **{**settings, "disc_weight": 1.0,
                         "burn_in": 0, "chains": 2, "seed": seed + 1}), disc)
    ldam = LDAM(model, (1, 28, 28), **{**settings, "discriminator": disc, "disc_weight": disc_weight,
                                       "seed": seed})
    for _ in range(steps):
        if trainer is not None:
            trainer.step()
        ldam.step()
    return ldam.grid("average"), time.perf_counter() - start


def t_interval(values) -> str:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.3f}"
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():.3f} ± {half:.3f} (95% t, n={len(v)})"


def parse_seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--disc-weight", type=float, default=1.0)
    parser.add_argument("--set", action="append", default=[], help="an LDAM setting, name=value")
    parser.add_argument("--out", default=str(REPO / "modeldx-demo" / "ldam-quality"))
    parser.add_argument("--figures", default="", help="save the first seed's grids as PNGs with this prefix")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from pathlib import Path

    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {}
    for item in args.set:
        name, value = item.split("=")
        settings[name] = int(value) if name in ("chains", "burn_in") else float(value)
    print(machine())
    net, acc = judge(folder)
    test = load_mnist("test")
    pixels = test.get_batch(np.arange(len(test)))[0].numpy() * STD + MEAN
    real = reference_diversity(pixels, test.labels, per_class=8, seed=0)
    print(f"judge: MLP 784-512-256-10, MNIST test accuracy {acc:.4f}; real MNIST test diversity {real:.3f}")
    print(f"settings: {settings or 'defaults'}, steps {args.steps}, discriminator weight {args.disc_weight}")
    model = load_checkpoint(REPO / "modeldx-demo" / "lenet5-mnist.pt")[0].eval()
    train = load_mnist("train")
    reals = train.get_batch(np.arange(10_000))[0]
    results = {0.0: [], args.disc_weight: []} if args.disc_weight > 0 else {0.0: []}
    for seed in parse_seeds(args.seeds):
        for weight in results:
            grid, seconds = run(model, reals, settings, seed, args.steps, weight)
            rec = recognisability(grid, net, range(10), mean=MEAN, std=STD)
            div = diversity(grid)
            results[weight].append((rec.score, div, seconds))
            print(f"seed {seed} disc {weight}: recognisability {rec.score:.3f} "
                  f"per digit {np.round(rec.per_neuron, 2).tolist()} diversity {div:.3f} ({seconds:.1f} s)")
            if args.figures and seed == parse_seeds(args.seeds)[0]:
                save_png(grid_image(grid), f"{args.figures}-disc{weight:g}.png")
    for weight, rows in results.items():
        rec, div, sec = zip(*rows, strict=True)
        print(f"discriminator weight {weight:g}: recognisability {t_interval(rec)}; diversity "
              f"{t_interval(div)}; {np.mean(sec):.1f} s per run")


if __name__ == "__main__":
    main()
