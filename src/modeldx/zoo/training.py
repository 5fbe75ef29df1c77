"""Training recipes for the zoo models: classifiers (progress, a checkpoint at the end) and the VAE."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from modeldx._params import Interval, OneOf, check_params
from modeldx.data.arrays import ArrayDataset
from modeldx.device import resolve_device
from modeldx.errors import InvalidParameterError
from modeldx.fingerprint import model_fingerprint
from modeldx.zoo.checkpoint import save_checkpoint
from modeldx.zoo.models import CLASSIFIERS, MODELS, VAE


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, dataset: ArrayDataset, *, batch_size: int = 1000,
                      device: str | torch.device = "auto") -> float:
    """Top-1 accuracy of ``model`` on ``dataset``."""
    dev = resolve_device(device)
    model.eval().to(dev)
    correct = 0
    for start in range(0, len(dataset), batch_size):
        x, y = dataset.get_batch(np.arange(start, min(start + batch_size, len(dataset))))
        correct += (model(x.to(dev)).argmax(1).cpu() == y).sum().item()
    return correct / len(dataset)


@dataclass
class TrainResult:
    model: nn.Module
    test_accuracy: float
    seconds: float
    checkpoint: Path | None
    losses: list[float] = field(default_factory=list)
    """The training loss of every step, in order."""


def train(
    arch: str,
    train_set: ArrayDataset,
    test_set: ArrayDataset,
    *,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    dataset_name: str = "mnist",
    average_from: int | None = None,
    train_items: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a zoo model with Adam and a step-down learning rate; save a checkpoint.

    The default recipe brings LeNet-5 to about 99% MNIST test accuracy in four
    epochs on a laptop CPU. ``average_from=e`` turns on parameter averaging
    (thesis §4.4): from epoch ``e`` (0-based) on, the running mean of the
    parameters after every step is kept, and the returned model is that mean.
    ``train_items=n`` trains on a random subset of ``n`` items drawn with
    ``seed`` (quick runs); the test set is always used whole.

    A learning rate too large for the architecture is the classic way to kill
    ReLUs: ``train("plaincnn", ..., lr=1e-2)`` leaves the plain ten-layer CNN
    stuck at a loss of ln 10 with most units dead, while ``"plaincnn-bn"``
    trains with the same settings (docs/neurons.md, "The dead-ReLU case").

    Examples
    --------
    >>> from modeldx.data import load_mnist
    >>> result = train("lenet5", load_mnist("train"), load_mnist("test"))  # doctest: +SKIP
    """
    check_params("train", {"arch": arch, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                           "average_from": 0 if average_from is None else average_from,
                           "train_items": 1 if train_items is None else train_items},
                 {"arch": OneOf(*CLASSIFIERS), "epochs": Interval(int, 1, None),
                  "batch_size": Interval(int, 1, None), "lr": Interval(float, 0, None, "neither"),
                  "average_from": Interval(int, 0, epochs - 1),
                  "train_items": Interval(int, 1, len(train_set))})
    dev = resolve_device(device)
    # the seed drives init and dropout inside forked RNG state: the caller's generators are left as
    # they were, and the same seed gives the same weights whatever the caller did before
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        if train_items is not None:
            train_set = train_set.subset(np.sort(rng.choice(len(train_set), train_items, replace=False)))
        x0, _ = train_set.get_batch(np.arange(1))
        model_args = {"in_channels": int(x0.shape[1]), "num_classes": train_set.num_classes,
                      "image_size": int(x0.shape[-1])}
        model = MODELS[arch](**model_args).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 2), gamma=0.3)
        loss_fn = nn.CrossEntropyLoss()
        n = len(train_set)
        steps = (n + batch_size - 1) // batch_size
        averaged = None if average_from is None else torch.optim.swa_utils.AveragedModel(model)
        losses: list[float] = []
        start = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            order = rng.permutation(n)
            bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, leave=False)
            for step in bar:
                x, y = train_set.get_batch(np.sort(order[step * batch_size:(step + 1) * batch_size]))
                loss = loss_fn(model(x.to(dev)), y.to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item())
                if averaged is not None and epoch >= average_from:
                    averaged.update_parameters(model)
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{losses[-1]:.3f}")
            sched.step()
    seconds = time.perf_counter() - start
    if averaged is not None:
        model.load_state_dict(averaged.module.state_dict())
    acc = evaluate_accuracy(model, test_set, device=dev)
    model.eval().cpu()
    path = None
    if checkpoint is not None:
        meta = {"arch": arch, "dataset": dataset_name, "seed": seed, "epochs": epochs, "lr": lr,
                "batch_size": batch_size, "test_accuracy": acc, "train_seconds": seconds,
                "average_from": average_from, "train_items": train_items, "losses": losses,
                "model_args": model_args, "fingerprint": model_fingerprint(model),
                "train_fingerprint": train_set.fingerprint()}
        path = save_checkpoint(model, checkpoint, arch, meta)
    return TrainResult(model=model, test_accuracy=acc, seconds=seconds, checkpoint=path, losses=losses)


def vae_images(dataset: ArrayDataset) -> torch.Tensor:
    """A 28x28 image set as float32 ``(N, 1, 28, 28)`` in [0, 1]: the VAE's Bernoulli targets.

    The loaders' normalisation (mean/std) is for classifiers; the VAE reads raw intensities.
    """
    x = torch.from_numpy(np.array(dataset.inputs, dtype=np.float32)).mul_(float(dataset.scale))
    return x.unsqueeze(1) if dataset.add_channel else x


def train_vae(
    model: VAE,
    images: torch.Tensor,
    *,
    steps: int,
    lr: float = 1e-3,
    optimizer: str = "adam",
    batch_size: int = 128,
    seed: int = 0,
    after_step: Callable[[float], object] | None = None,
    stop_on_nonfinite: bool = True,
) -> list[float]:
    """Train ``model`` in place for ``steps`` minibatch steps; return every step's loss.

    Batches are drawn with replacement from ``images`` by a generator seeded with
    ``seed`` (the caller's RNG state is left as it was), so a run repeats exactly.
    ``after_step(loss)`` is called after each ``optimizer.step()`` — where a
    recorder's ``rec.step(loss=...)`` goes. ``stop_on_nonfinite`` ends the loop
    after the first step whose loss is inf or NaN (later steps only spread NaN).

    The divergence recipes of docs/dynamics.md: ``VAE(decoder="gaussian")`` with Adam
    at the default ``lr=1e-3`` and ``seed=0`` — the decoder's log-variance head collapses
    on MNIST's blank pixels and ``exp(-logvar)`` overflows at step 878, while
    ``logvar_clamp=5`` trains through; and the Bernoulli ``VAE()`` with plain SGD at
    ``lr=3e-2``, ``seed=2`` — a general blow-up that overflows at step 56.
    """
    check_params("train_vae", {"steps": steps, "lr": lr, "optimizer": optimizer, "batch_size": batch_size},
                 {"steps": Interval(int, 1, None), "lr": Interval(float, 0, None, "neither"),
                  "optimizer": OneOf("adam", "sgd"), "batch_size": Interval(int, 1, None)})
    if not isinstance(model, VAE):
        raise InvalidParameterError(f"train_vae trains a zoo VAE. Got {type(model).__name__}.")
    opt = (torch.optim.Adam(model.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(model.parameters(), lr=lr))
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    with torch.random.fork_rng(devices=[]):  # the sampling noise is seeded too
        torch.manual_seed(seed)
        model.train()
        for _ in range(steps):
            x = images[torch.randint(len(images), (batch_size,), generator=gen)]
            loss = model.loss(x, model(x))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if after_step is not None:
                after_step(losses[-1])
            if stop_on_nonfinite and not math.isfinite(losses[-1]):
                break
    return losses
