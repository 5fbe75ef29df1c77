"""Thesis Figure 4.5: LDAM images of LeNet-5 trained with and without parameter averaging.

Trains the zoo LeNet-5 on MNIST for ten epochs twice from the same seed — once plain, once with
the parameters averaged over the last five epochs (thesis §4.4) — prints both test accuracies and
writes their LDAM images (L2 regularisation, sample averaging; columns are the ten output
neurons, rows are chains) side by side. Run: ``.venv/bin/python examples/parameter_averaging.py``.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from modeldx.data import load_mnist  # noqa: E402
from modeldx.ldam import LDAM, grid_image  # noqa: E402
from modeldx.zoo import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/ldam-parameter-averaging.png"))
    args = parser.parse_args()
    data = load_mnist("train"), load_mnist("test")
    runs = {}
    for label, average_from in (("plain", None), ("parameter averaging", args.epochs // 2)):
        result = train("lenet5", *data, epochs=args.epochs, average_from=average_from, progress=False)
        ldam = LDAM(result.model, (1, 28, 28), chains=4, burn_in=150)
        ldam.step(args.steps)
        runs[label] = (result.test_accuracy, grid_image(ldam.grid("average")))
        print(f"{label}: test accuracy {result.test_accuracy:.2%}, mean activation "
              f"{float(ldam.activation.mean()):.3f}")
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), dpi=130)
    for ax, (label, (acc, image)) in zip(axes, runs.items(), strict=True):
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{label}: test accuracy {acc:.2%}", fontsize=10)
        ax.axis("off")
    fig.suptitle("LDAM (L2, sample averaging) of LeNet-5's ten output neurons; columns 0–9, rows: chains",
                 fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
