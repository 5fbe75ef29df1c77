"""Blue-noise sampling of polylines: keep the outliers, thin the bundles (DGMTracker).

A training run yields one series per neuron (a statistic over snapshots); a
chart cannot draw 10^5 of them legibly. Uniform sampling keeps the bundles and
drops the rare series that matter, so we select by dart throwing instead: a
random candidate is accepted only when no accepted series lies within a radius
``r``, and ``r`` is halved whenever a whole pass stalls short of ``m``.

Distance between two series ``a`` and ``b`` of ``T`` aligned snapshots: the sum
over the ``T - 1`` segments of the mean of the two endpoint gaps,

    d(a, b) = sum_{t=0}^{T-2} (|a_t - b_t| + |a_{t+1} - b_{t+1}|) / 2,

i.e. an L1 distance with weight 1/2 on the first and last snapshot. That
weighting lets ``torch.cdist(p=1)`` compute many pairs at once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from modeldx._params import Interval, check_params
from modeldx.errors import InvalidParameterError

__all__ = ["blue_noise_sample", "clutter", "outliers_kept", "polyline_distance"]

_REFERENCE = 4096  # rows a k-NN distance is measured against (a random subset of larger sets)
_PREFILTER = 32  # L2-nearest rows whose exact distance is computed per query (see _knn_distance)
_MAX_PASSES = 40  # halvings after which the remaining places are filled at random


def _as_series(series, owner: str, name: str = "series") -> torch.Tensor:
    x = torch.as_tensor(np.asarray(series) if not torch.is_tensor(series) else series)
    if x.ndim != 2 or x.shape[1] < 2:
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be a 2-D array (series x snapshots) with "
            f"at least 2 snapshots. Got shape {tuple(x.shape)} instead.")
    if not x.is_floating_point():
        x = x.double()
    return x


def _weights(t: int, dtype: torch.dtype) -> torch.Tensor:
    w = torch.ones(t, dtype=dtype)
    w[0] = w[-1] = 0.5
    return w


def polyline_distance(a, b) -> torch.Tensor:
    """Distances between the polylines of ``a`` and ``b`` (snapshots aligned).

    Parameters
    ----------
    a, b : array-like of shape (T,) or (p, T) and (q, T)
        Series over the same ``T >= 2`` snapshots.

    Returns
    -------
    torch.Tensor
        The ``(p, q)`` matrix of distances (a scalar when both are 1-D): the sum over
        segments of the mean of the two endpoint gaps (module docstring). Non-finite
        values give non-finite distances.
    """
    one_a, one_b = np.ndim(a) == 1, np.ndim(b) == 1
    xa = _as_series(torch.as_tensor(a)[None] if one_a else a, "polyline_distance", "a")
    xb = _as_series(torch.as_tensor(b)[None] if one_b else b, "polyline_distance", "b")
    if xa.shape[1] != xb.shape[1]:
        raise InvalidParameterError(
            f"polyline_distance needs series over the same snapshots. Got {xa.shape[1]} and "
            f"{xb.shape[1]} snapshots.")
    dtype = torch.promote_types(xa.dtype, xb.dtype)
    w = _weights(xa.shape[1], dtype)
    d = torch.cdist(xa.to(dtype) * w, xb.to(dtype) * w, p=1)
    if one_a and one_b:
        return d[0, 0]
    return d[0] if one_a else d[:, 0] if one_b else d


def _knn_distance(xw: torch.Tensor, query: torch.Tensor, ref: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each ``query`` row to its ``k``-th nearest ``ref`` row (itself excluded).

    ``xw`` holds weighted rows (so L1 is the polyline distance). The exact L1 is
    computed for the ``_PREFILTER`` (at least 4k) L2-nearest rows only -- L2 is a matrix
    product, L1 is not -- so on large sets the result can overestimate slightly.
    """
    j = min(len(ref), max(_PREFILTER, 4 * k + 1))
    out = torch.empty(len(query), dtype=xw.dtype)
    r = xw[ref]
    for start in range(0, len(query), 2048):
        q = query[start:start + 2048]
        if j == len(ref):
            d = torch.cdist(xw[q], r, p=1)
        else:
            near = torch.cdist(xw[q], r).topk(j, largest=False).indices
            d = (xw[q][:, None, :] - r[near]).abs().sum(-1)
        d = torch.where(q[:, None] == ref[None, :] if j == len(ref) else q[:, None] == ref[near],
                        torch.inf, d)
        out[start:start + len(q)] = d.kthvalue(min(k, d.shape[1] - 1), dim=1).values
    return out


def _subset(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    return torch.arange(n) if n <= size else torch.randperm(n, generator=gen)[:size]


def _radius(xw: torch.Tensor, k: int, gen: torch.Generator) -> float:
    """Mean distance to the k-th nearest neighbour, estimated on random subsets."""
    n = len(xw)
    ref = _subset(n, _REFERENCE, gen)
    query = ref[:1024]
    # The k-th neighbour among n rows is about the (k * |ref| / n)-th among |ref|.
    kk = max(1, min(len(ref) - 1, round(k * (len(ref) - 1) / max(n - 1, 1))))
    return float(_knn_distance(xw, query, ref, kk).mean())


def _dart_pass(xw, order, chosen: list[int], r: float, m: int) -> None:
    """One greedy pass over ``order`` at radius ``r``, appending to ``chosen`` (at most m)."""
    pos = 0
    while pos < len(order) and len(chosen) < m:
        # Batches grow with the accepted set: a small first batch keeps its own
        # pairwise matrix small while almost every candidate is still accepted.
        size = min(4096, max(64, 4 * len(chosen)))
        cand = order[pos:pos + size]
        pos += size
        if chosen:
            acc = xw[torch.as_tensor(chosen)]
            xc = xw[cand]
            # Cheap rejection first: the exact distance to the few L2-nearest accepted
            # series; only candidates not rejected so are checked against all of them.
            j = min(len(chosen), 8)
            near = torch.cdist(xc, acc).topk(j, largest=False).indices
            hit = ((xc[:, None, :] - acc[near]).abs().sum(-1) < r).any(1)
            rest = cand[~hit]
            if len(rest):
                far = ~(torch.cdist(xw[rest], acc, p=1) < r).any(1)
                rest = rest[far]
        else:
            rest = cand
        if not len(rest):
            continue
        inner = (torch.cdist(xw[rest], xw[rest], p=1) < r).numpy()
        taken: list[int] = []
        for i in range(len(rest)):
            if len(chosen) + len(taken) >= m:
                break
            if not inner[i, taken].any():
                taken.append(i)
        chosen.extend(rest[taken].tolist())


def blue_noise_sample(series, m: int, *, seed: int = 0, k: int | None = None) -> np.ndarray:
    """Choose ``m`` of the series by dart throwing, keeping outliers and thinning bundles.

    Parameters
    ----------
    series : array-like of shape (n, T)
        One series per row over ``T >= 2`` aligned snapshots.
    m : int
        How many to choose, ``1 <= m <= n``.
    seed : int
        The random order of candidates (same seed, same choice).
    k : int, optional
        The starting radius is the mean distance to the k-th nearest neighbour
        (estimated on random subsets of 4,096 rows); default ``round(n / m)``.

    Returns
    -------
    np.ndarray
        ``m`` distinct row indices, in the order they were accepted.

    Notes
    -----
    Series with a NaN or an infinite value are the failures a training chart is
    for, so they are kept first (a random ``m`` of them if there are more); the
    darts are thrown among the finite series. A pass in random order accepts a
    candidate when no accepted series lies closer than ``r``; when a pass ends
    short of ``m``, ``r`` is halved and the rejected candidates are tried again.
    If the first pass would accept more than ``m`` the radius is too small for an
    outlier to be sure of its place, so it is doubled and the pass restarted.
    """
    x = _as_series(series, "blue_noise_sample")
    n = len(x)
    check_params("blue_noise_sample", {"m": m, "seed": seed, "k": k},
                 {"m": Interval(int, 1, n), "seed": Interval(int, 0, None),
                  "k": [None, Interval(int, 1, max(n - 1, 1))]})
    gen = torch.Generator().manual_seed(seed)
    finite = torch.isfinite(x).all(1)
    bad = torch.nonzero(~finite).flatten()
    bad = bad[torch.randperm(len(bad), generator=gen)]
    if len(bad) >= m:
        return bad[:m].numpy()
    good = torch.nonzero(finite).flatten()
    need = m - len(bad)
    xw = (x[good] * _weights(x.shape[1], x.dtype)).float()
    if need == len(good):
        chosen_local = torch.arange(len(good))
    else:
        k = k if k is not None else max(1, round(len(good) / need))
        r = _radius(xw, min(k, len(good) - 1), gen)
        order = torch.randperm(len(good), generator=gen)
        chosen: list[int] = []
        for _ in range(_MAX_PASSES):
            if r <= 0:
                break
            _dart_pass(xw, order, chosen, r, need if chosen else need + 1)
            if len(chosen) > need:  # first pass overflowed: a larger radius, from scratch
                chosen, r = [], 2 * r
                continue
            if len(chosen) == need:
                break
            taken = torch.zeros(len(good), dtype=torch.bool)
            taken[torch.as_tensor(chosen, dtype=torch.long)] = True
            order = order[~taken[order]]
            r /= 2
        if len(chosen) < need:  # duplicates or a radius gone to zero: fill at random
            taken = torch.zeros(len(good), dtype=torch.bool)
            taken[torch.as_tensor(chosen, dtype=torch.long)] = True
            left = torch.nonzero(~taken).flatten()
            left = left[torch.randperm(len(left), generator=gen)]
            chosen.extend(left[:need - len(chosen)].tolist())
        chosen_local = torch.as_tensor(chosen, dtype=torch.long)
    return torch.cat([bad, good[chosen_local]]).numpy()


def true_outliers(series, *, k: int = 10, share: float = 0.01, seed: int = 0) -> np.ndarray:
    """Rows of the finite series in the top ``share`` by distance to their k-th nearest neighbour
    (only those at a distance above 0: identical series have no outlier).

    On more than 4,096 series the distance is measured against a random 4,096 of
    them (k scaled to match), with the exact distance computed for the L2-nearest
    candidates only.
    """
    x = _as_series(series, "true_outliers")
    check_params("true_outliers", {"k": k, "share": share, "seed": seed},
                 {"k": Interval(int, 1, None), "share": Interval(float, 0, 1, "right"),
                  "seed": Interval(int, 0, None)})
    good = torch.nonzero(torch.isfinite(x).all(1)).flatten()
    if len(good) < 2:
        return good.numpy()
    xw = (x[good] * _weights(x.shape[1], x.dtype)).float()
    gen = torch.Generator().manual_seed(seed)
    ref = _subset(len(good), _REFERENCE, gen)
    kk = max(1, min(len(ref) - 1, round(k * (len(ref) - 1) / (len(good) - 1))))
    d = _knn_distance(xw, torch.arange(len(good)), ref, kk)
    top = max(1, math.ceil(share * len(good)))
    picked = d.topk(top).indices
    # a series no farther from its neighbours than they are from each other is not apart from them:
    # among identical series (a zero-initialised or dead layer) there is no outlier
    return good[picked[d[picked] > 0]].numpy()


def outliers_kept(series, chosen, *, k: int = 10, share: float = 0.01, seed: int = 0) -> float:
    """Share of the true outliers (:func:`true_outliers`) that ``chosen`` contains."""
    truth = true_outliers(series, k=k, share=share, seed=seed)
    return float(np.isin(truth, np.asarray(chosen)).mean()) if len(truth) else 1.0


def clutter(series, chosen, *, width: int = 800, height: int = 300,
            value_range: tuple[float, float] | None = None) -> float:
    """Share of drawn pixels covered by more than one of the ``chosen`` polylines.

    The chosen rows are rasterised on a ``width`` x ``height`` chart: snapshots
    spread evenly over the width, values over the height between ``value_range``
    (default: the finite range of all ``series``, the same axes for any choice).
    Segments with a non-finite end are not drawn. 0 means no pixel is shared.
    """
    x = _as_series(series, "clutter")
    check_params("clutter", {"width": width, "height": height},
                 {"width": Interval(int, 2, None), "height": Interval(int, 2, None)})
    rows = torch.as_tensor(np.asarray(chosen), dtype=torch.long)
    if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= len(x))):
        raise InvalidParameterError(
            f"The 'chosen' parameter of clutter must be row indices in [0, {len(x)}). "
            f"Got {np.asarray(chosen)!r} instead.")
    fin = x[torch.isfinite(x)]
    lo, hi = value_range if value_range is not None else (
        (float(fin.min()), float(fin.max())) if len(fin) else (0.0, 1.0))
    span = hi - lo if hi > lo else 1.0
    t = x.shape[1]
    px = torch.arange(t, dtype=torch.float64) * (width - 1) / (t - 1)
    counts = torch.zeros(width * height, dtype=torch.long)
    for start in range(0, len(rows), 64):
        y = (x[rows[start:start + 64]].double() - lo) / span * (height - 1)
        ok = torch.isfinite(y[:, :-1]) & torch.isfinite(y[:, 1:])
        y = y.nan_to_num(0.0, 0.0, 0.0).clamp(-1, height)  # out-of-range values clip at the edge
        dy = (y[:, 1:] - y[:, :-1]).abs()
        steps = int(math.ceil(max(float(dy.max()) if dy.numel() else 0.0,
                                  float(px[1] - px[0])))) + 1
        f = torch.linspace(0, 1, steps, dtype=torch.float64)
        xs = (px[:-1, None] + f * (px[1] - px[0])).round().long()  # (T-1, steps)
        ys = (y[:, :-1, None] + f * (y[:, 1:] - y[:, :-1])[..., None]).round().long()
        inside = ok[..., None] & (ys >= 0) & (ys < height)
        line = torch.arange(len(y))[:, None, None].expand_as(ys)
        pix = ys * width + xs.expand_as(ys)
        key = torch.unique(line[inside] * (width * height) + pix[inside])  # once per line
        counts += torch.bincount(key % (width * height), minlength=width * height)
    drawn = int((counts > 0).sum())
    return float((counts > 1).sum()) / drawn if drawn else 0.0
