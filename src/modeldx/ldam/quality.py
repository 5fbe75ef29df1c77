"""Is an LDAM picture worth looking at? Two measures (issue 11 item 7).

- **Recognisability**: the share of an output neuron's chain averages that an
  independently trained classifier of another architecture (the *judge*)
  assigns to that neuron's class. LDAM images are not in the data's range:
  their scale is arbitrary, and negative pixels mean "this pixel lowers the
  activation". The judge sees what a reader sees as the *ink* of the picture:
  the positive part, scaled by its peak into the data's pixel range [0, 1],
  then normalised as the judge's training data were (``mean``, ``std``).
  Scaling by the peak makes the measure blind to the image's overall scale, so
  it cannot be raised by blowing pixels up; a judge of another architecture is
  not fooled by LeNet-5's adversarial directions. ``presentation="display"``
  gives the judge the picture as shown instead (:func:`to_display`, grey 0).
- **Diversity**: the mean distance between the chains of one neuron divided by
  the mean distance between chains of different neurons, on images scaled to
  unit L2 norm (Euclidean distance, so 0 to 2). 0: every neuron's chains are
  the same image; about 1: chains of one neuron differ as much as chains of
  different neurons. :func:`reference_diversity` is the same ratio for real
  images grouped by class — the yardstick for "chains collapsed".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from modeldx._params import OneOf, check_params
from modeldx.errors import InvalidParameterError
from modeldx.ldam.sampler import to_display


@dataclass(frozen=True)
class Recognisability:
    """The share of chains the judge assigns to their neuron's class: overall, per neuron, and its votes."""

    score: float
    per_neuron: np.ndarray  # (neurons,) share of that neuron's chains judged as its class
    predicted: np.ndarray  # (chains, neurons) the judge's class for every chain average


def _check_grid(grid: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(grid, dtype=np.float64)
    if x.ndim != 5 or min(x.shape) < 1:
        raise InvalidParameterError(f"{name} must be a (chains, neurons, C, H, W) grid as LDAM.grid() "
                                    f"returns. Got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise InvalidParameterError(f"{name} holds NaN or infinite pixels")
    return x


def present(images: np.ndarray, *, mean: float = 0.0, std: float = 1.0,
            presentation: str = "ink") -> np.ndarray:
    """(N, C, H, W) LDAM images as a judge trained on data normalised by ``mean``, ``std`` sees them.

    ``"ink"``: the positive part scaled by its peak into [0, 1]; ``"display"``:
    :func:`to_display` (grey is 0) into [0, 1]. Then ``(p - mean) / std``.
    """
    check_params("present", {"presentation": presentation}, {"presentation": OneOf("ink", "display")})
    x = np.asarray(images, dtype=np.float64)
    if presentation == "display":
        pixels = to_display(x).astype(np.float64) / 255.0
    else:
        ink = np.clip(x, 0, None).reshape(len(x), -1)
        peak = ink.max(axis=1, keepdims=True)
        pixels = (ink / np.where(peak > 0, peak, 1)).reshape(x.shape)
    return ((pixels - mean) / std).astype(np.float32)


def recognisability(averages: np.ndarray, classifier: nn.Module, classes: Sequence[int], *,
                    mean: float = 0.0, std: float = 1.0, presentation: str = "ink") -> Recognisability:
    """How often the judge ``classifier`` names chain averages after their neuron's class.

    Parameters
    ----------
    averages : (chains, neurons, C, H, W)
        Chain averages, ``LDAM.grid("average")``.
    classifier : nn.Module
        The judge: another architecture than the model LDAM sampled, trained on the same data.
    classes : sequence of int
        The class of each neuron (column), e.g. ``range(10)`` for the output neurons.
    mean, std : float
        The normalisation of the judge's training data (pixels in [0, 1]).
    """
    grid = _check_grid(averages, "averages")
    chains, neurons = grid.shape[:2]
    labels = np.asarray(list(classes), dtype=np.int64)
    if labels.shape != (neurons,):
        raise InvalidParameterError(f"classes must name one class per neuron ({neurons}). "
                                    f"Got {len(labels)}.")
    if std == 0:
        raise InvalidParameterError("std must be non-zero. Got 0.")
    shown = present(grid.reshape(chains * neurons, *grid.shape[2:]), mean=mean, std=std,
                    presentation=presentation)
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        with torch.no_grad():
            logits = classifier(torch.from_numpy(shown).to(device))
    finally:
        classifier.train(was_training)
    predicted = logits.argmax(1).cpu().numpy().reshape(chains, neurons)
    hits = predicted == labels[None, :]
    return Recognisability(float(hits.mean()), hits.mean(axis=0), predicted)


def _unit(images: np.ndarray) -> np.ndarray:
    flat = images.reshape(len(images), -1)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.where(norm > 0, norm, 1)


def _ratio(groups: np.ndarray) -> float:
    """groups: (members, groups, D) unit vectors; mean within-group over mean between-group distance."""
    members, count, _ = groups.shape
    flat = groups.transpose(1, 0, 2).reshape(count * members, -1)
    sq = np.clip(2 - 2 * flat @ flat.T, 0, None)  # unit vectors: |a - b|^2 = 2 - 2 a.b
    dist = np.sqrt(sq)
    group = np.repeat(np.arange(count), members)
    same = group[:, None] == group[None, :]
    off_diagonal = ~np.eye(len(flat), dtype=bool)
    between = dist[~same].mean()
    within = dist[same & off_diagonal].mean()
    return float(within / between) if between > 0 else 0.0


def diversity(grid: np.ndarray, smooth: float = 1.0) -> float:
    """Mean distance between chains of one neuron / mean distance between chains of different neurons.

    ``grid`` is (chains, neurons, C, H, W), e.g. ``LDAM.grid("average")``;
    distances are Euclidean between images blurred by a Gaussian of ``smooth``
    pixels and scaled to unit norm. The blur keeps pixel noise, which differs
    between any two chains, from counting as diversity: what is compared is
    the shapes a reader sees. Needs at least two chains and two neurons.
    """
    from scipy.ndimage import gaussian_filter

    x = _check_grid(grid, "grid")
    chains, neurons = x.shape[:2]
    if chains < 2 or neurons < 2:
        raise InvalidParameterError(f"diversity needs at least 2 chains and 2 neurons. Got {chains} chains, "
                                    f"{neurons} neurons.")
    if smooth < 0:
        raise InvalidParameterError(f"smooth must be >= 0 pixels. Got {smooth}.")
    if smooth > 0:
        x = gaussian_filter(x, sigma=(0, 0, 0, smooth, smooth))
    unit = _unit(x.reshape(chains * neurons, -1)).reshape(chains, neurons, -1)
    return _ratio(unit)


def reference_diversity(images: np.ndarray, labels: np.ndarray, per_class: int = 8, seed: int = 0,
                        smooth: float = 1.0) -> float:
    """:func:`diversity` of real images: ``per_class`` random images of each class as its "chains".

    Pixels as stored (e.g. in [0, 1]); classes with fewer images than ``per_class`` are an error.
    """
    x, y = np.asarray(images, dtype=np.float64), np.asarray(labels)
    if len(x) != len(y):
        raise InvalidParameterError(f"images and labels differ in length: {len(x)} vs {len(y)}")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    picks = []
    for c in classes:
        where = np.flatnonzero(y == c)
        if len(where) < per_class:
            raise InvalidParameterError(f"class {c} has {len(where)} images; per_class is {per_class}")
        picks.append(rng.choice(where, per_class, replace=False))
    grid = np.stack([x[p] for p in picks], axis=1)  # (per_class, classes, ...)
    return diversity(grid, smooth)
