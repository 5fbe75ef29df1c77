"""Bundled edges between neuron clusters of connected layers (CNNVis' bicluster-based bundling).

The neuron-level strength of an edge of the layer DAG (:mod:`modeldx.neurons.graph`)
is summed into a cluster x cluster matrix; scikit-learn's ``SpectralCoclustering``
splits that matrix into biclusters — groups of target clusters and source
clusters that connect mostly among themselves — and each bicluster is drawn
as one bundle of curves. A bundle holds only the edges inside its bicluster;
edges between two biclusters belong to no bundle. Every source and target
cluster with some strength is in exactly one bundle (the number of biclusters
is lowered until each holds some strength); clusters with no strength at all
(a dead cluster whose weights are zero) are in none, there being nothing to
draw.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from modeldx._params import Interval, check_params
from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.neurons.graph import LayerGraph

MAX_BUNDLES = 4  # the default cap: a few bundles per edge stay readable
DEAD = -1  # the label of the dead cluster


@dataclass
class Bundle:
    """A bicluster of one cluster-level edge matrix, drawn as one bundle of curves.

    ``edges`` are ``(source id, target id, strength, sign)`` for the cluster pairs
    inside it with strength > 0, strongest first.
    """

    sources: list[int]
    targets: list[int]
    strength: float  # total strength of the edges inside
    share: float  # strength / total strength of the matrix
    sign: int  # +1 or -1: the sign of the signed sum inside
    edges: list[tuple[int, int, float, int]] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["edges"] = [list(e) for e in self.edges]
        return d


def cluster_ids(labels: np.ndarray) -> list[int]:
    """The cluster ids in ``labels``: live ids ascending, the dead cluster (-1) last."""
    ids = sorted(int(i) for i in np.unique(labels))
    return [i for i in ids if i != DEAD] + ([DEAD] if DEAD in ids else [])


def _labels(labels, n: int, what: str) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n or not np.issubdtype(arr.dtype, np.integer):
        raise InvalidParameterError(
            f"{what} must be {n} integer cluster labels, one per neuron. Got an array of "
            f"shape {arr.shape} and dtype {arr.dtype}.")
    if (arr < DEAD).any():
        raise InvalidParameterError(f"{what} must be -1 (dead) or a cluster id >= 0. Got {arr.min()}.")
    return arr


def _indicator(labels: np.ndarray, ids: list[int]) -> np.ndarray:
    """(clusters, neurons) 0/1 matrix: which neuron is in which cluster."""
    pos = {c: i for i, c in enumerate(ids)}
    out = np.zeros((len(ids), len(labels)))
    out[[pos[int(c)] for c in labels], np.arange(len(labels))] = 1.0
    return out


def cluster_strength(edge_strength: np.ndarray, source_labels, target_labels, *,
                     signed: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, list[int], list[int]]:
    """Cluster x cluster strength: the sum over the neuron pairs of each pair of clusters.

    Parameters
    ----------
    edge_strength : (target neurons, source neurons) array
        A :class:`~modeldx.neurons.graph.LayerEdge`'s ``strength`` (>= 0).
    source_labels, target_labels : int arrays
        One cluster label per neuron, ``-1`` for the dead cluster.
    signed : array like ``edge_strength``, optional
        The edge's ``signed`` matrix; without it, the signed sum is the
        strength itself.

    Returns
    -------
    strength, signed : (target clusters, source clusters) arrays
    source_ids, target_ids : list of int
        The cluster id of each column and row: live ids ascending, -1 last.

    Examples
    --------
    >>> s, v, cols, rows = cluster_strength(np.ones((3, 2)), [0, -1], [1, 0, 1])
    >>> s.tolist(), cols, rows
    ([[1.0, 1.0], [2.0, 2.0]], [0, -1], [0, 1])
    """
    w = np.asarray(edge_strength, dtype=np.float64)
    if w.ndim != 2:
        raise InvalidParameterError(f"edge_strength must be a 2-d array. Got shape {w.shape}.")
    v = w if signed is None else np.asarray(signed, dtype=np.float64)
    if v.shape != w.shape:
        raise InvalidParameterError(f"signed must have edge_strength's shape {w.shape}. Got {v.shape}.")
    src = _labels(source_labels, w.shape[1], "source_labels")
    tgt = _labels(target_labels, w.shape[0], "target_labels")
    source_ids, target_ids = cluster_ids(src), cluster_ids(tgt)
    rows, cols = _indicator(tgt, target_ids), _indicator(src, source_ids).T
    return rows @ w @ cols, rows @ v @ cols, source_ids, target_ids


def _fit(a: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import SpectralCoclustering
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    # One thread: the matrices are cluster x cluster (tens of rows), where a thread pool's start
    # costs ten times the work (320 ms vs 26 ms per fit on a busy 2-core machine).
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # judged by _usable instead
        model = SpectralCoclustering(n_clusters=n, random_state=seed).fit(a)
    return model.row_labels_, model.column_labels_


def _usable(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> bool:
    """Each bicluster holds rows, columns and some strength between them."""
    return all(a[np.ix_(rows == b, cols == b)].sum() > 0 for b in np.union1d(rows, cols))


def modularity(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    """Barber's bipartite modularity of a biclustering: the share of strength inside the
    biclusters minus the share expected if rows and columns connected at random (their sums
    kept). 0 for one bicluster, up to 1 - 1/k for k perfect blocks."""
    total = a.sum()
    r, c = a.sum(axis=1) / total, a.sum(axis=0) / total
    return float(sum(a[np.ix_(rows == b, cols == b)].sum() / total - r[rows == b].sum() * c[cols == b].sum()
                     for b in np.union1d(rows, cols)))


def _bicluster(a: np.ndarray, k: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column bicluster labels of a matrix whose rows and columns are all positive.

    With ``k``: the largest number of biclusters up to ``k`` that gives usable
    ones (each with rows, columns and strength between them), so that every
    row and column is in a bundle. Without: of 1 .. ``MAX_BUNDLES`` biclusters,
    the usable split of highest bipartite modularity — one bundle for a matrix
    with no block structure.
    """
    n_rows, n_cols = a.shape
    best = (0.0, np.zeros(n_rows, int), np.zeros(n_cols, int))  # one bicluster: modularity 0
    for n in range(min(MAX_BUNDLES if k is None else k, n_rows, n_cols), 1, -1):
        rows, cols = _fit(a, n, seed)
        if not _usable(a, rows, cols):
            continue
        if k is not None:
            return rows, cols
        q = modularity(a, rows, cols)
        if q > best[0] + 1e-9:  # a split must beat chance to count
            best = (q, rows, cols)
    return best[1], best[2]


def bundle_edges(strength: np.ndarray, signed: np.ndarray, source_ids: list, target_ids: list, *,
                 n_bundles: int | None = None, seed: int = 0) -> list[Bundle]:
    """Bicluster a cluster-level edge matrix into bundles (CNNVis' edge bundling).

    Parameters
    ----------
    strength, signed : (target clusters, source clusters) arrays
        From :func:`cluster_strength`.
    source_ids, target_ids : lists
        The cluster id of each column and row.
    n_bundles : int, optional
        Biclusters to look for: the most up to ``n_bundles`` that leave none
        without an edge inside (and at most the number of rows and of columns
        with any strength). Default: of 1 to ``min(rows, cols, 4)``, the
        number whose biclustering has the highest bipartite modularity
        (:func:`modularity`), so a matrix without block structure is one
        bundle rather than an arbitrary split.
    seed : int
        The co-clustering's random state; the same seed gives the same bundles.

    Returns
    -------
    list of Bundle
        Strongest first. Every row and column with some strength is in
        exactly one bundle; those whose strength is all zero are in none; an
        all-zero matrix has no bundles.

    Examples
    --------
    >>> s = np.array([[5.0, 4.0, 0.0], [0.0, 0.0, 3.0]])
    >>> [(b.sources, b.targets, b.share) for b in bundle_edges(s, -s, [0, 1, 2], [0, 1])]
    [([0, 1], [0], 0.75), ([2], [1], 0.25)]
    """
    check_params("bundle_edges", {"n_bundles": n_bundles, "seed": seed},
                 {"n_bundles": [None, Interval(int, 1, None)], "seed": Interval(int, 0, None)})
    a = np.asarray(strength, dtype=np.float64)
    v = np.asarray(signed, dtype=np.float64)
    if a.ndim != 2 or v.shape != a.shape or a.shape != (len(target_ids), len(source_ids)):
        raise InvalidParameterError(
            f"strength and signed must both be (len(target_ids), len(source_ids)) = "
            f"({len(target_ids)}, {len(source_ids)}). Got {a.shape} and {v.shape}.")
    if not np.isfinite(a).all() or (a < 0).any():
        raise InvalidParameterError("strength must be finite and >= 0.")
    total = float(a.sum())
    live_rows, live_cols = np.flatnonzero(a.sum(axis=1) > 0), np.flatnonzero(a.sum(axis=0) > 0)
    if total <= 0:
        return []
    sub = a[np.ix_(live_rows, live_cols)]
    row_labels, col_labels = _bicluster(sub, n_bundles, seed)
    bundles = []
    for b in range(int(max(row_labels.max(), col_labels.max())) + 1):
        rows, cols = live_rows[row_labels == b], live_cols[col_labels == b]
        inside = a[np.ix_(rows, cols)]
        if inside.sum() <= 0:
            continue  # a bicluster of only rows or only columns, or of no edge
        edges = [(source_ids[c], target_ids[r], float(a[r, c]), 1 if v[r, c] >= 0 else -1)
                 for r in rows for c in cols if a[r, c] > 0]
        edges.sort(key=lambda e: -e[2])
        s = float(inside.sum())
        bundles.append(Bundle(
            sources=[source_ids[c] for c in cols], targets=[target_ids[r] for r in rows],
            strength=s, share=s / total, sign=1 if v[np.ix_(rows, cols)].sum() >= 0 else -1,
            edges=edges))
    bundles.sort(key=lambda b: (-b.strength, b.sources, b.targets))
    return bundles


def layer_bundles(graph: LayerGraph, labels: Mapping[str, np.ndarray], **kw) -> list[dict]:
    """For every edge of ``graph`` whose two layers have labels: its clusters' bundles, as JSON.

    Parameters
    ----------
    graph : LayerGraph
        From :func:`~modeldx.neurons.graph.layer_graph`.
    labels : dict
        Layer name -> one cluster label per neuron (``-1``: dead). Edges of a
        layer without labels are left out.
    **kw
        ``n_bundles``, ``seed``: see :func:`bundle_edges`.

    Returns
    -------
    list of dict
        ``source, target, via``, ``clusters`` (``sources``, ``targets``: the
        ids of columns and rows; ``strength``, ``signed``: the cluster-level
        matrices as lists) and ``bundles``: ``[{sources, targets, strength,
        share, sign, edges}]``.
    """
    unknown = [name for name in labels if name not in graph.nodes]
    if unknown:
        raise LayerNotFoundError(
            f"labels name {', '.join(map(repr, unknown))}, not in the graph; its layers are "
            f"{', '.join(graph.nodes)}")
    out = []
    for edge in graph.edges:
        if edge.source not in labels or edge.target not in labels:
            continue
        strength, signed, source_ids, target_ids = cluster_strength(
            edge.strength, labels[edge.source], labels[edge.target], signed=edge.signed)
        bundles = bundle_edges(strength, signed, source_ids, target_ids, **kw)
        out.append({
            "source": edge.source, "target": edge.target, "via": edge.via,
            "clusters": {"sources": source_ids, "targets": target_ids,
                         "strength": strength.tolist(), "signed": signed.tolist()},
            "bundles": [b.to_dict() for b in bundles],
        })
    return out
