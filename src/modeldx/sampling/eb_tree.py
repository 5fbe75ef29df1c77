"""Explicable-boundary (EB) tree sampling: a boundary tree on the latent space, its nodes the sample."""

from __future__ import annotations

import numpy as np

from modeldx._params import Interval
from modeldx.sampling.base import Sample, Sampler, post_stratified_weights, register


class BoundaryTree:
    """Mathy et al.'s boundary tree over points with labels.

    Query(y): from the root, move to the closest of (the node's children, plus
    the node itself while it has fewer than ``max_children`` children) until the
    node itself is the closest. Train(y, c): if the closest node's label differs
    from c, add (y, c) as its child; otherwise drop y.
    """

    def __init__(self, points: np.ndarray, labels: np.ndarray, max_children: int) -> None:
        self.points, self.labels, self.max_children = points, labels, max_children
        self.nodes: list[int] = []
        self.children: list[list[int]] = []  # node index -> child node indices
        self._kid_points: list[np.ndarray] = []  # node index -> its children's points, stacked

    def query(self, x: np.ndarray) -> int:
        node = 0
        while True:
            kids = self.children[node]
            if not kids:
                return node
            d_kids = ((self._kid_points[node] - x) ** 2).sum(1)
            best = int(np.argmin(d_kids))
            if len(kids) < self.max_children:  # the node itself is still a candidate
                own = ((self.points[self.nodes[node]] - x) ** 2).sum()
                if own <= d_kids[best]:
                    return node
            node = kids[best]

    def train(self, row: int) -> bool:
        """Offer item ``row``; True when it became a node."""
        if not self.nodes:
            self._add(row)
            return True
        near = self.query(self.points[row])
        if self.labels[self.nodes[near]] == self.labels[row]:
            return False
        self.children[near].append(self._add(row))
        kid_points = self._kid_points[near]
        self._kid_points[near] = np.vstack([kid_points, self.points[row]])
        return True

    def _add(self, row: int) -> int:
        self.nodes.append(row)
        self.children.append([])
        self._kid_points.append(np.empty((0, self.points.shape[1])))
        return len(self.nodes) - 1


@register
class EBTreeSampler(Sampler):
    """The nodes of a boundary tree built on the latent vectors with the model's predicted labels.

    The tree keeps an item only where its nearest node disagrees with it, so its
    nodes trace the model's decision boundaries (Wu et al.'s explicable boundary
    trees). To reach the budget exactly: insertion stops at the budget; if a
    pass over a random order yields fewer nodes, more trees are built over new
    permutations and their nodes united (up to ``max_trees``); the rest is
    topped up uniformly. ``info["tree_nodes"]`` says how many came from trees.
    Weights are post-stratified by predicted class.
    """

    name = "eb-tree"
    _limits = {"max_children": Interval(int, 1, None), "max_trees": Interval(int, 1, 100)}

    def __init__(self, *, max_children: int = 10, max_trees: int = 3, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.max_children = max_children
        self.max_trees = max_trees

    def _fit(self, latent, pred, labels) -> None:
        self.latent_ = latent
        self.pred_ = pred

    def _select(self, budget: int, rng: np.random.Generator) -> Sample:
        n = self.latent_.shape[0]
        chosen: dict[int, None] = {}  # insertion-ordered set
        trees = 0
        while len(chosen) < budget and trees < self.max_trees:
            trees += 1
            tree = BoundaryTree(self.latent_, self.pred_, self.max_children)
            for row in rng.permutation(n):
                if row in chosen and tree.nodes:
                    continue  # already in the sample; a later tree need not hold it again
                if tree.train(int(row)):
                    chosen[int(row)] = None
                    if len(chosen) == budget:
                        break
        from_trees = len(chosen)
        if from_trees < budget:
            rest = np.setdiff1d(np.arange(n), np.fromiter(chosen, dtype=np.int64))
            for row in rng.choice(rest, size=budget - from_trees, replace=False):
                chosen[int(row)] = None
        rows = np.fromiter(chosen, dtype=np.int64)
        return Sample(rows, post_stratified_weights(rows, self.pred_),
                         {"tree_nodes": from_trees, "trees": trees})
