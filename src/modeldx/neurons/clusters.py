"""Neuron clusters of a layer, CNNVis-style: neurons grouped by their per-class mean activations.

Each neuron is described by its vector of mean activations per class
(:func:`modeldx.queries.class_means`). Live neurons are clustered by the cosine
distance of these vectors (what a neuron responds to, not how strongly) with
average-linkage hierarchical clustering; the number of clusters is chosen by
the silhouette within a range a screen can hold. Dead neurons form an explicit
cluster of their own, :data:`DEAD`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from modeldx._params import Interval, Satisfies, check_params

DEAD = -1  # the id of the cluster of dead neurons
_SILHOUETTE_ITEMS = 4000  # above this many live neurons, the silhouette is estimated on a seeded subset
_ZERO = 1e-12  # a class vector with a norm below this has no direction
_SAME = 1e-10  # cosine distances below this are rounding: the directions are the same


@dataclass
class NeuronClusters:
    """The clusters of a layer's neurons.

    Attributes
    ----------
    labels
        (neurons,) int: each neuron's cluster id, ``0..k-1`` for live clusters and
        :data:`DEAD` (-1) for dead neurons.
    k
        The number of live clusters.
    dead
        (neurons,) bool: the dead neurons.
    silhouette
        The (cosine) silhouette of the chosen clustering of the live neurons; NaN
        where it is undefined (fewer than 2 clusters, or as many clusters as neurons).
    sizes
        (k,) int: the size of each live cluster (``dead.sum()`` is the dead one's).
    top_class
        (k,) int: the class each live cluster responds to most (the argmax of its
        members' mean class vector); live ids are ordered by it, then by size.
    scores
        k -> silhouette, for every k that was tried (NaN where undefined).
    """

    labels: np.ndarray
    k: int
    dead: np.ndarray
    silhouette: float
    sizes: np.ndarray
    top_class: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)

    @property
    def ids(self) -> list[int]:
        """Cluster ids present: ``0..k-1``, then :data:`DEAD` if any neuron is dead."""
        return list(range(self.k)) + ([DEAD] if self.dead.any() else [])

    def members(self, cid: int) -> np.ndarray:
        """Indices of the neurons in cluster ``cid`` (ascending)."""
        return np.flatnonzero(self.labels == cid)


def _check(means, active, k, k_range, dead_tol, seed, center) -> np.ndarray:
    m = np.asarray(means, dtype=np.float64) if _is_numeric(means) else means
    check_params("cluster_neurons", {"means": m}, {"means": Satisfies(
        lambda v: isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] >= 1
        and bool(np.isfinite(v).all()),
        "a finite 2-d array (neurons, classes) with at least one class")})
    check_params("cluster_neurons", {"k": k, "k_range": k_range, "dead_tol": dead_tol, "seed": seed,
                                     "center": center}, {
        "center": bool,
        "k": [None, Interval(int, 1, None)],
        "k_range": Satisfies(lambda r: isinstance(r, tuple | list) and len(r) == 2
                             and all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in r)
                             and 1 <= r[0] <= r[1], "a pair (low, high) of ints with 1 <= low <= high"),
        "dead_tol": Interval(float, 0, None),
        "seed": Interval(int, 0, None),
    })
    if active is not None:
        a = np.asarray(active, dtype=np.float64) if _is_numeric(active) else active
        check_params("cluster_neurons", {"active": a}, {"active": Satisfies(
            lambda v: isinstance(v, np.ndarray) and v.shape == (m.shape[0],) and bool(np.isfinite(v).all()),
            f"a finite 1-d array of one share per neuron ({m.shape[0]})")})
    return m


def _is_numeric(x) -> bool:
    try:
        return np.asarray(x).dtype.kind in "biuf"
    except (ValueError, TypeError):
        return False


def cosine_distances(x: np.ndarray) -> np.ndarray:
    """Pairwise cosine distances of the rows of ``x``, defined for zero rows too.

    A zero row has no direction: it is at distance 1 (orthogonal) from every
    other row and at 0 from other zero rows, instead of SciPy's NaN.
    """
    norms = np.linalg.norm(x, axis=1)
    zero = norms < _ZERO
    unit = x / np.where(zero, 1.0, norms)[:, None]
    d = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    d[d < _SAME] = 0.0  # rounding of parallel vectors (1 - 1.0000000000000002) is no distance
    d[zero] = 1.0
    d[:, zero] = 1.0
    d[np.ix_(zero, zero)] = 0.0
    np.fill_diagonal(d, 0.0)
    return (d + d.T) / 2  # exactly symmetric, as squareform requires


def _silhouette(dist: np.ndarray, labels: np.ndarray, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    n_labels = np.unique(labels).size
    if not 2 <= n_labels <= labels.size - 1:
        return float("nan")
    size = _SILHOUETTE_ITEMS if labels.size > _SILHOUETTE_ITEMS else None
    return float(silhouette_score(dist, labels, metric="precomputed", sample_size=size, random_state=seed))


def _cut(tree: np.ndarray, k: int) -> np.ndarray:
    """At most k clusters from the tree (fewer where neurons are identical), labelled 0..k'-1."""
    raw = fcluster(tree, t=k, criterion="maxclust")
    return np.unique(raw, return_inverse=True)[1]


def cluster_neurons(means, *, active=None, k: int | None = None, k_range: tuple[int, int] = (2, 12),
                    dead_tol: float = 1e-6, seed: int = 0, center: bool = False) -> NeuronClusters:
    """Cluster a layer's neurons by the cosine distance of their per-class mean activations.

    Parameters
    ----------
    means
        (neurons, classes): each neuron's mean activation per class
        (``class_means(store).means[layer]``).
    active
        (neurons,) optional: each neuron's share of items on which it is active
        (``class_means(store).active[layer]``). Given, a neuron is dead when that
        share is 0; else when every class mean is within ``dead_tol`` of 0.
    k
        The number of live clusters; ``None`` chooses it by the silhouette among
        ``k_range``. Either is capped by the number of live neurons.
    k_range
        (low, high), inclusive: the k tried when ``k`` is None.
    dead_tol
        How close to 0 every class mean of a dead neuron is (without ``active``).
    seed
        Seeds the subset the silhouette is estimated on for layers of more than
        4,000 live neurons (below that it is exact and the seed unused).
    center
        Subtract each neuron's mean over the classes before the cosine distance
        (that is, the correlation distance): neurons are then grouped by which
        classes they prefer rather than by a shared baseline. ReLU layers, whose
        class means are all positive, often give only k=2 by plain cosine
        (the demo LeNet-5's act3 and act4) and 9-11 class-selective clusters
        centred. A neuron equal on every class has no direction once centred:
        it is at distance 1 from every other.

    The clustering is deterministic and follows content, not position: live
    neurons are put in a canonical order (by their class vectors) before the
    average-linkage tree is built, so the same neurons in another order get the
    same cluster ids. Live ids are ordered by the class each cluster responds to
    most, then by size (largest first). Live neurons that all point the same way
    make one cluster (whatever ``k``); when no k in range has a silhouette
    otherwise (2 live neurons), the smallest k in range is taken.

    Returns
    -------
    NeuronClusters

    Examples
    --------
    >>> cm = class_means(store, layers="act3")  # doctest: +SKIP
    >>> cl = cluster_neurons(cm.means["act3"], active=cm.active["act3"])
    >>> cl.k, cl.sizes, cl.members(DEAD)
    """
    m = _check(means, active, k, k_range, dead_tol, seed, center)
    n = m.shape[0]
    if active is not None:
        dead = np.asarray(active, dtype=np.float64) <= 0
    else:
        dead = np.all(np.abs(m) <= dead_tol, axis=1)
    live = np.flatnonzero(~dead)
    labels = np.full(n, DEAD, dtype=np.int64)
    if live.size == 0:
        return NeuronClusters(labels, 0, dead, float("nan"), np.zeros(0, np.int64), np.zeros(0, np.int64))

    # canonical order: by content (lexicographic over the class means), so ids do not depend on position
    canon = live[np.lexsort(m[live].T[::-1])]
    x = m[canon] - m[canon].mean(axis=1, keepdims=True) if center else m[canon]
    dist = cosine_distances(x)
    scores: dict[int, float] = {}
    if canon.size == 1 or float(dist.max()) == 0.0:  # one direction: one cluster, whatever k
        local = np.zeros(canon.size, dtype=np.int64)
    else:
        tree = linkage(squareform(dist, checks=False), method="average")
        if k is not None:
            local = _cut(tree, min(k, canon.size))
        else:
            lo, hi = min(k_range[0], canon.size), min(k_range[1], canon.size)
            cuts = {kk: _cut(tree, kk) for kk in range(lo, hi + 1)}
            scores = {kk: _silhouette(dist, cut, seed) for kk, cut in cuts.items()}
            finite = {kk: s for kk, s in scores.items() if np.isfinite(s)}
            if finite:
                best = max(finite.values())
                chosen = min(kk for kk, s in finite.items() if s == best)  # ties: the fewer clusters
                local = cuts[chosen]
            else:
                local = cuts[lo]
    local, top, sizes = _order_ids(x, local)
    labels[canon] = local
    silhouette = _silhouette(dist, local, seed) if canon.size > 1 else float("nan")
    return NeuronClusters(labels, int(sizes.size), dead, silhouette, sizes, top, scores)


def _order_ids(x: np.ndarray, local: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber clusters by (top class, larger first, first canonical member): content, not chance."""
    n_clusters = int(local.max()) + 1
    sizes = np.bincount(local, minlength=n_clusters)
    centroids = np.stack([x[local == c].mean(axis=0) for c in range(n_clusters)])
    top = centroids.argmax(axis=1)
    first = np.array([np.flatnonzero(local == c)[0] for c in range(n_clusters)])
    order = np.lexsort((first, -sizes, top))  # new id i is old cluster order[i]
    new_of_old = np.empty(n_clusters, dtype=np.int64)
    new_of_old[order] = np.arange(n_clusters)
    return new_of_old[local], top[order], sizes[order]


__all__ = ["DEAD", "NeuronClusters", "cluster_neurons", "cosine_distances"]
