"""CNNVis' training diagnosis, reproduced: a plain 10-layer CNN whose ReLUs die, and its batch-norm twin.

Trains the zoo's ``plaincnn`` and ``plaincnn-bn`` on a seeded MNIST subset with the same recipe —
Adam at a learning rate of 0.01, ten times the zoo default, batches of 64 — captures the MNIST test
set through each, and prints the loss curve, the share of dead ReLUs per layer
(``modeldx.queries.dead_neurons``: units that never fire on any test item) and the test
accuracies. Checkpoints and stores go to ``--out`` (``plaincnn.pt`` + ``plaincnn/``, the same for
``plaincnn-bn``), ready for ``modeldx explore OUT/plaincnn --checkpoint OUT/plaincnn.pt``.

Run: ``PYTHONPATH=src .venv/bin/python examples/dead_relu.py`` (about a minute of CPU time: 56 s
user time, 3.6 min wall-clock on a heavily shared 2-core machine). The same checkpoint from the
command line::

    modeldx train --model plaincnn --lr 0.01 --batch-size 64 --epochs 1 --train-items 19200
"""

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from modeldx import capture
from modeldx.data import load_mnist
from modeldx.queries import dead_neurons
from modeldx.zoo import MODELS, train

ARCHS = ("plaincnn", "plaincnn-bn")
RELUS = [f"act{i}" for i in range(1, 11)]


def loss_summary(losses: list[float], marks: tuple[int, ...]) -> str:
    """Mean loss of the ten steps before each mark (steps counted from 1)."""
    return "  ".join(f"{m:>5}: {np.mean(losses[max(0, m - 10):m]):.3f}" for m in marks if m <= len(losses))


def filter_sums(model: torch.nn.Module) -> list[float]:
    """Per conv layer, the mean over its filters of the sum of the filter's weights.

    Above conv1 every input is a ReLU output (>= 0), so a filter whose weights sum far below zero
    gives a negative pre-activation on almost every input: the unit behind it is dead.
    """
    return [getattr(model, f"conv{i}").weight.detach().sum(dim=(1, 2, 3)).mean().item() for i in range(1, 11)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/dead-relu"))
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-items", type=int, default=19_200, help="300 steps of 64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args()
    train_set, test_set = load_mnist("train", root=args.data_root), load_mnist("test", root=args.data_root)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results, shares = {}, {}
    torch.manual_seed(args.seed)  # train() seeds the same way: these are its initial weights
    initial = filter_sums(MODELS[ARCHS[0]]())
    for arch in ARCHS:
        if not args.quiet:
            print(f"training {arch} ...", flush=True)
        result = train(arch, train_set, test_set, epochs=1, batch_size=args.batch_size, lr=args.lr,
                       train_items=args.train_items, seed=args.seed, checkpoint=args.out / f"{arch}.pt",
                       progress=not args.quiet)
        store = capture(result.model, test_set, args.out / arch, overwrite=True, progress=not args.quiet)
        dead = dead_neurons(store, layers=RELUS)
        results[arch] = result
        shares[arch] = dead.groupby("layer").dead.agg(["sum", "size"]).loc[RELUS]

    steps = len(results[ARCHS[0]].losses)
    marks = tuple(m for m in (10, 50, 100, 200, 300, 500, 1000) if m < steps) + (steps,)
    print(f"\nloss (mean of the 10 steps up to step n; ln 10 = {math.log(10):.3f} is chance), lr={args.lr}")
    for arch in ARCHS:
        print(f"  {arch:<12} {loss_summary(results[arch].losses, marks)}")
    print("\ndead ReLUs per layer (never positive on any of the 10,000 test items)")
    print("and, for plaincnn, the mean weight sum of the filters feeding each layer, init -> trained")
    print(f"  {'layer':<6}" + "".join(f"{arch:>16}" for arch in ARCHS) + f"{'filter sum':>22}")
    final = filter_sums(results[ARCHS[0]].model)
    for i, layer in enumerate(RELUS):
        cells = "".join(f"{int(s.loc[layer, 'sum']):>6}/{int(s.loc[layer, 'size']):<3}"
                        f"{s.loc[layer, 'sum'] / s.loc[layer, 'size']:>7.0%}" for s in shares.values())
        print(f"  {layer:<6}{cells}{initial[i]:>+12.2f} -> {final[i]:+.2f}")
    print("\ntest accuracy: " + ", ".join(f"{arch} {results[arch].test_accuracy:.2%}" for arch in ARCHS))
    print(f"{time.perf_counter() - started:.0f} s; checkpoints and stores in {args.out}/; open one with\n"
          f"  modeldx explore {args.out / ARCHS[0]} --checkpoint {args.out / ARCHS[0]}.pt")


if __name__ == "__main__":
    main()
