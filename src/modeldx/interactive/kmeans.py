"""Minibatch k-means whose objective the user changes while it runs (thesis ch. 2, eqs. 2.3–2.6).

Each step assigns a minibatch to its clusters by eq. 2.4,

    id(x) = argmin_i  d(x, mu_i) + lambda' * size_i,

then moves each centre toward the mean of its points and updates the running
cluster sizes by eq. 2.5 (rates ``eta`` and ``alpha``). ``d`` is eq. 2.6: a
weighted sum of squared distances over feature blocks (e.g. several layers'
activations), ``sum_l s_l * a_l * ||x_l - mu_l||^2`` with ``a_l`` normalising
each block to the same scale and ``s_l`` a slider per block.

The size weight is a slider too. The thesis uses ``lambda`` raw; its useful
range then depends on the data's scale and the batch size, so here the slider
``size_weight`` is unitless: ``lambda' = size_weight * D / (B / k)``, where ``D``
is the running mean of the batch's smallest distances and ``B / k`` the mean
cluster size in a batch. ``size_weight = 1`` makes a cluster of average size
cost as much as an average distance; 0 is plain minibatch k-means.

Centres learn at rate ``eta`` (eq. 2.5) but never faster than ``1 / n_i``, the
count of points a centre has absorbed — with a constant rate alone a centre
keeps jittering around its optimum; the running-mean rate lets it settle, and
``eta`` keeps it able to follow a change of the objective.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from modeldx._params import Interval, check_params
from modeldx.device import resolve_device
from modeldx.errors import InvalidParameterError


@dataclass
class StepResult:
    loss: float  # mean squared (eq. 2.6) distance of the batch to its assigned centres
    objective: float  # loss plus the size penalty of eq. 2.3, per point
    assignments: torch.Tensor
    seconds: float


class InteractiveKMeans:
    """Minibatch k-means with a size-balance weight and per-block distance weights, in torch.

    Parameters
    ----------
    features : tensor or array (n, d)
        Every item's features (blocks side by side).
    k : int
        Number of clusters.
    blocks : sequence of int, optional
        Widths of the feature blocks of eq. 2.6 (default: one block of ``d``).
    eta, alpha : float, default=0.1
        Eq. 2.5's rates for centres and sizes.
    batch_size : int, default=1024
    seed : int, default=0
    device : str, default="auto"
        ``"auto"`` uses CUDA when present.
    """

    def __init__(self, features, k: int, *, blocks: Sequence[int] | None = None, eta: float = 0.1,
                 alpha: float = 0.1, batch_size: int = 1024, seed: int = 0, device: str = "auto") -> None:
        x = torch.as_tensor(np.asarray(features) if not torch.is_tensor(features) else features)
        if x.ndim != 2:
            raise InvalidParameterError(
                f"features must be 2-d (items, features). Got shape {tuple(x.shape)}.")
        check_params("InteractiveKMeans", {"k": k, "eta": eta, "alpha": alpha, "batch_size": batch_size},
                     {"k": Interval(int, 2, x.shape[0]), "eta": Interval(float, 0, 1, closed="right"),
                      "alpha": Interval(float, 0, 1, closed="right"), "batch_size": Interval(int, 1, None)})
        if not torch.isfinite(x).all():
            raise InvalidParameterError("features hold NaN or infinite values")
        blocks = [x.shape[1]] if blocks is None else [int(b) for b in blocks]
        if sum(blocks) != x.shape[1] or min(blocks) < 1:
            raise InvalidParameterError(f"blocks {blocks} must be positive widths summing to {x.shape[1]}")
        self.device = resolve_device(device)
        self.x = x.to(self.device, torch.float32)
        self.k, self.eta, self.alpha, self.batch_size = k, eta, alpha, batch_size
        self.blocks = blocks
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        # a_l of eq. 2.6: one over the block's mean squared distance to its mean
        bounds = np.cumsum([0, *blocks])
        self._slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        sub = self.x[torch.randperm(self.x.shape[0], generator=self.generator)[:5000].to(self.device)]
        self.normalisers = [1.0 / max(float(((sub[:, s] - sub[:, s].mean(0)) ** 2).sum(1).mean()), 1e-12)
                            for s in self._slices] if len(blocks) > 1 else [1.0]
        self.block_weights = [1.0] * len(blocks)
        self.size_weight = 0.0
        self._init_sample = sub
        self.restart()
        self.steps = 0

    def restart(self) -> None:
        """New centres by k-means++ under the current distance (eq. 2.6 weights); sizes and counts reset."""
        self.centres = self._kmeans_plus_plus(self._init_sample)
        self.sizes = torch.full((self.k,), self.batch_size / self.k, device=self.device)
        self.counts = torch.zeros(self.k, device=self.device)
        self.mean_distance: float | None = None

    # ----- eq. 2.6
    def _dim_weights(self) -> torch.Tensor:
        w = torch.empty(self.x.shape[1], device=self.device)
        for s, a, b in zip(self._slices, self.normalisers, self.block_weights, strict=True):
            w[s] = a * b
        return w

    def distances(self, x: torch.Tensor, centres: torch.Tensor | None = None) -> torch.Tensor:
        """(n, k) weighted squared distances of eq. 2.6."""
        c = self.centres if centres is None else centres
        w = self._dim_weights()
        d = (x * x * w).sum(1, keepdim=True) - 2 * (x * w) @ c.T + (c * c * w).sum(1)[None]
        return d.clamp_min_(0)

    def _kmeans_plus_plus(self, sub: torch.Tensor) -> torch.Tensor:
        first = int(torch.randint(sub.shape[0], (1,), generator=self.generator))
        centres = [sub[first]]
        closest = self.distances(sub, sub[first:first + 1])[:, 0]
        for _ in range(1, self.k):
            probs = (closest / closest.sum()).cpu()
            pick = int(torch.multinomial(probs, 1, generator=self.generator))
            centres.append(sub[pick])
            closest = torch.minimum(closest, self.distances(sub, sub[pick:pick + 1])[:, 0])
        return torch.stack(centres).clone()

    # ----- controls
    def set_block_weights(self, weights: Sequence[float]) -> None:
        if len(weights) != len(self.blocks) or any(not np.isfinite(w) or w < 0 for w in weights):
            raise InvalidParameterError(f"block weights must be {len(self.blocks)} finite numbers >= 0. "
                                        f"Got {list(weights)}.")
        if not any(w > 0 for w in weights):
            raise InvalidParameterError("at least one block weight must be positive")
        self.block_weights = [float(w) for w in weights]

    # ----- eqs. 2.4 and 2.5
    def assign(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.distances(x)
        if self.size_weight > 0 and self.mean_distance:
            penalty = self.size_weight * self.mean_distance / (self.batch_size / self.k)
            ids = (d + penalty * self.sizes[None]).argmin(1)
        else:
            ids = d.argmin(1)
        return ids, d.gather(1, ids[:, None])[:, 0]

    def step(self, batch: torch.Tensor | None = None) -> StepResult:
        start = time.perf_counter()
        if batch is None:
            idx = torch.randint(self.x.shape[0], (self.batch_size,), generator=self.generator).to(self.device)
            batch = self.x[idx]
        with torch.no_grad():
            ids, dist = self.assign(batch)
            counts = torch.bincount(ids, minlength=self.k).float()
            sums = torch.zeros_like(self.centres).index_add_(0, ids, batch)
            hit = counts > 0
            average = sums[hit] / counts[hit, None]
            self.counts += counts
            rate = torch.maximum(torch.full_like(counts, self.eta), counts / self.counts.clamp_min(1))[hit]
            self.centres[hit] = (1 - rate[:, None]) * self.centres[hit] + rate[:, None] * average
            self.sizes = (1 - self.alpha) * self.sizes + self.alpha * counts
            loss = float(dist.mean())
            self.mean_distance = loss if self.mean_distance is None else 0.9 * self.mean_distance + 0.1 * loss
            penalty = self.size_weight * self.mean_distance / (self.batch_size / self.k)
            objective = loss + penalty * float((counts ** 2).sum()) / batch.shape[0]
        self.steps += 1
        return StepResult(loss, objective, ids, time.perf_counter() - start)

    # ----- what the dashboard shows
    def inertia(self, chunk: int = 8192) -> float:
        """Sum over every item of its squared distance to the nearest centre (the k-means objective)."""
        total = 0.0
        with torch.no_grad():
            for i in range(0, self.x.shape[0], chunk):
                total += float(self.distances(self.x[i:i + chunk]).min(1).values.sum())
        return total

    def labels(self, chunk: int = 8192) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([self.assign(self.x[i:i + chunk])[0] for i in range(0, self.x.shape[0], chunk)])

    def silhouette(self, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Eq. 2.2 for the items ``rows`` (a fixed subsample): their clusters and silhouette scores."""
        with torch.no_grad():
            x = self.x[rows]
            ids = self.assign(x)[0]
            d = self.distances(x, x).sqrt()
            onehot = torch.nn.functional.one_hot(ids, self.k).float()
            per = d @ onehot  # (n, k) summed distance to each cluster's members
            n_in = onehot.sum(0)
            own = n_in[ids]
            a = per.gather(1, ids[:, None])[:, 0] / (own - 1).clamp_min(1)
            mean_other = per / n_in.clamp_min(1)[None]
            mean_other[onehot.bool()] = float("inf")
            mean_other[:, n_in == 0] = float("inf")
            b = mean_other.min(1).values
            s = (b - a) / torch.maximum(a, b).clamp_min(1e-12)
            s[own <= 1] = 0.0  # a point alone in its cluster scores 0 by convention
            s[~torch.isfinite(s)] = 0.0
        return ids.cpu().numpy(), s.cpu().numpy()
