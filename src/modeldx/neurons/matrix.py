"""Activation matrices of a layer: clusters x classes, and inside a cluster neurons x classes.

Rows and columns are put in optimal leaf order (SciPy's
``optimal_leaf_ordering`` on an average-linkage tree), so that similar rows
and similar classes sit side by side. The class order is computed once per
layer and shared by every matrix of the layer, so they compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import pdist, squareform

from modeldx._params import OneOf, Satisfies, check_params
from modeldx.neurons.clusters import DEAD, NeuronClusters, cosine_distances

_ZERO = 1e-12


def _finite_2d(v) -> bool:
    return isinstance(v, np.ndarray) and v.ndim == 2 and v.dtype.kind in "biuf" and bool(np.isfinite(v).all())


def leaf_order(matrix, metric: str = "cosine") -> np.ndarray:
    """Row indices of ``matrix`` in optimal leaf order.

    An average-linkage tree over the rows (distance ``metric``: ``"cosine"`` or
    ``"euclidean"``) whose leaves are flipped to minimise the sum of distances
    between neighbours (Bar-Joseph et al. 2001). With 0, 1 or 2 rows the order is
    the identity. With ``"cosine"``, rows of zeros have no direction: they are
    put last, in their original order, after the others.

    Examples
    --------
    >>> leaf_order(np.array([[0, 1.0], [1, 0], [1, 0.1]]))
    array([0, 2, 1])
    """
    m = np.asarray(matrix, dtype=np.float64) if np.asarray(matrix).dtype.kind in "biuf" else matrix
    check_params("leaf_order", {"matrix": m, "metric": metric},
                 {"matrix": Satisfies(_finite_2d, "a finite 2-d numeric array"),
                  "metric": OneOf("cosine", "euclidean")})
    rows = np.arange(m.shape[0])
    if metric == "cosine":
        zero = np.linalg.norm(m, axis=1) < _ZERO
        rows, last = rows[~zero], rows[zero]
    else:
        last = rows[:0]
    if rows.size <= 2:
        return np.concatenate([rows, last])
    x = m[rows]
    dist = squareform(cosine_distances(x), checks=False) if metric == "cosine" else pdist(x, "euclidean")
    tree = optimal_leaf_ordering(linkage(dist, method="average"), dist)
    return np.concatenate([rows[leaves_list(tree)], last])


@dataclass
class ActivationMatrix:
    """The activation matrices of one layer, ordered for display.

    Attributes
    ----------
    class_order
        (classes,) the column order shared by every matrix of the layer.
    cluster_ids
        The cluster id of each row of ``cluster_rows``: ``0..k-1``, then
        :data:`~modeldx.neurons.clusters.DEAD` if the layer has dead neurons.
    cluster_rows
        (clusters, classes): each cluster's mean of its members' class means,
        columns in ``class_order``.
    cluster_order
        Cluster ids in display order: live clusters in leaf order of their rows,
        the dead cluster last.
    neuron_order
        cluster id -> its member neurons in leaf order.
    blocks
        cluster id -> (members, classes): the members' class means, rows in
        ``neuron_order[cid]``, columns in ``class_order``.
    scale
        The layer's largest ``|mean|`` (1 where all are 0): the normalised copies
        are the values divided by it, in [-1, 1], one colour scale per layer.
    """

    class_order: np.ndarray
    cluster_ids: np.ndarray
    cluster_rows: np.ndarray
    cluster_order: np.ndarray
    neuron_order: dict[int, np.ndarray]
    blocks: dict[int, np.ndarray]
    scale: float

    @property
    def cluster_rows_norm(self) -> np.ndarray:
        """``cluster_rows / scale``: for colour, comparable across the layer."""
        return self.cluster_rows / self.scale

    def block_norm(self, cid: int) -> np.ndarray:
        """``blocks[cid] / scale``."""
        return self.blocks[cid] / self.scale

    def row_of(self, cid: int) -> np.ndarray:
        """The row of ``cluster_rows`` for cluster ``cid``."""
        return self.cluster_rows[int(np.flatnonzero(self.cluster_ids == cid)[0])]

    def to_dict(self, classes: list[str] | None = None) -> dict[str, Any]:
        """Plain lists for JSON, clusters in display order; ``classes`` names the columns."""
        names = None if classes is None else [classes[i] for i in self.class_order]
        return {
            "class_order": self.class_order.tolist(), "classes": names, "scale": self.scale,
            "clusters": [{"id": int(cid), "row": self.row_of(cid).tolist(),
                          "row_norm": (self.row_of(cid) / self.scale).tolist(),
                          "neurons": self.neuron_order[int(cid)].tolist(),
                          "block": self.blocks[int(cid)].tolist(),
                          "block_norm": self.block_norm(int(cid)).tolist()}
                         for cid in self.cluster_order],
        }


def activation_matrix(means, clusters: NeuronClusters, *, class_order=None) -> ActivationMatrix:
    """The layer's activation matrices, rows and columns in optimal leaf order.

    Parameters
    ----------
    means
        (neurons, classes): the layer's class means (as given to :func:`cluster_neurons`).
    clusters
        The layer's clusters.
    class_order
        The column order; by default computed once from the whole layer (the
        classes leaf-ordered by cosine distance over all its neurons), so every
        matrix of the layer shares it.

    Returns
    -------
    ActivationMatrix

    Examples
    --------
    >>> cl = cluster_neurons(means)  # doctest: +SKIP
    >>> mat = activation_matrix(means, cl)
    >>> mat.cluster_order, mat.blocks[mat.cluster_order[0]].shape
    """
    m = np.asarray(means, dtype=np.float64) if np.asarray(means).dtype.kind in "biuf" else means
    check_params("activation_matrix", {"means": m, "clusters": clusters},
                 {"means": Satisfies(_finite_2d, "a finite 2-d numeric array (neurons, classes)"),
                  "clusters": Satisfies(
                      lambda c: isinstance(c, NeuronClusters) and c.labels.shape == (m.shape[0],),
                      f"the NeuronClusters of these {m.shape[0]} neurons")})
    n_classes = m.shape[1]
    if class_order is None:
        cols = leaf_order(m.T)
    else:
        cols = np.asarray(class_order)
        check_params("activation_matrix", {"class_order": cols}, {"class_order": Satisfies(
            lambda c: c.dtype.kind in "iu" and sorted(c.tolist()) == list(range(n_classes)),
            f"a permutation of 0..{n_classes - 1}")})
    ordered = m[:, cols]
    ids = np.array(clusters.ids, dtype=np.int64)
    rows = np.stack([ordered[clusters.members(c)].mean(axis=0) for c in ids]) if ids.size \
        else np.zeros((0, n_classes))
    live = ids[ids != DEAD]
    order = live[leaf_order(rows[: live.size])]
    if (ids == DEAD).any():
        order = np.append(order, DEAD)
    neuron_order, blocks = {}, {}
    for cid in ids.tolist():
        members = clusters.members(cid)
        members = members[leaf_order(ordered[members])]
        neuron_order[cid] = members
        blocks[cid] = ordered[members]
    peak = float(np.abs(m).max()) if m.size else 0.0
    return ActivationMatrix(cols, ids, rows, order, neuron_order, blocks, peak if peak > 0 else 1.0)


__all__ = ["ActivationMatrix", "activation_matrix", "leaf_order"]
