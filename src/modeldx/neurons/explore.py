"""The network explorer's data: clusters, matrices, bundles, top items and images of a store, as JSON.

:class:`Explorer` computes everything the page draws once, when it is made —
class means of every stored layer in one pass, clusters, activation matrices,
the layer graph and its bundles (with a model), every cluster's top items in
one more pass — and answers JSON-able dicts. What a click asks for (a cluster's
per-neuron top items, the correct/misclassified and train/test matrices, LDAM
images) is computed on first request and kept.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.engine.subset import Sample, make_subset
from modeldx.errors import InvalidParameterError, LayerNotFoundError, ModeldxError
from modeldx.queries import class_means

LDAM_NEURONS = 16  # a cluster's LDAM image averages at most this many of its neurons ...
LDAM_CHAINS = 2  # ... each with this many chains
LDAM_STEPS = 150
LDAM_BURN_IN = 50
GROUPS = (("correct", "correctly classified"), ("incorrect", "misclassified"), ("train", "train"),
          ("test", "test"))


class TopPerColumn:
    """One pass: the ``k`` rows with the largest score in each column of ``block @ weights``, per layer.

    ``weights[layer]`` is (neurons, columns): a column holding ``1 / (size * max)``
    on a cluster's neurons scores items as
    :func:`~modeldx.neurons.cluster_top_items` does, for every cluster of every
    layer in the same pass. Ties go to the lower row.
    """

    def __init__(self, weights: dict[str, np.ndarray], k: int) -> None:
        self.weights, self.k = weights, k
        self.arrays = [f"acts/{layer}" for layer in weights]

    def map(self, chunk: Chunk) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for layer, w in self.weights.items():
            scores = chunk.arrays[f"acts/{layer}"].astype(np.float64) @ w
            rows = np.broadcast_to(chunk.rows[:, None], scores.shape)
            out[layer] = self._top(scores, rows)
        return out

    def _top(self, scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, k = scores.shape[0], min(self.k, scores.shape[0])
        keep_s = np.empty((k, scores.shape[1]))
        keep_r = np.empty(keep_s.shape, dtype=np.int64)
        if k == 0:
            return keep_s, keep_r
        # candidates: at least the k-th largest score of each column (ties kept, so the row breaks them)
        kth = np.partition(scores, n - k, axis=0)[n - k]
        for c in range(scores.shape[1]):
            cand = np.flatnonzero(scores[:, c] >= kth[c])
            order = cand[np.lexsort((rows[cand, c], -scores[cand, c]))[:k]]
            keep_s[:, c], keep_r[:, c] = scores[order, c], rows[order, c]
        return keep_s, keep_r

    def combine(self, a, b):
        return {layer: self._top(np.concatenate([a[layer][0], b[layer][0]]),
                                 np.concatenate([a[layer][1], b[layer][1]])) for layer in a}

    def finalize(self, state):
        return state


class ColumnPeaks:
    """One pass: every column's largest value, per layer."""

    def __init__(self, layers: Sequence[str]) -> None:
        self.arrays = [f"acts/{layer}" for layer in layers]

    def map(self, chunk: Chunk) -> dict[str, np.ndarray]:
        return {name: chunk.arrays[name].max(axis=0).astype(np.float64) for name in self.arrays}

    def combine(self, a, b):
        return {name: np.maximum(a[name], b[name]) for name in a}

    def finalize(self, state):
        return state


def _mean_columns(peak: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """(neurons, len(groups)): column g averages the neurons of ``groups[g]``, each divided by its peak.

    As :func:`~modeldx.neurons.cluster_top_items` scores: every neuron counts
    alike, and one never positive adds 0.
    """
    inv = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
    w = np.zeros((peak.size, len(groups)))
    for g, members in enumerate(groups):
        if len(members):
            w[members, g] = inv[members] / len(members)
    return w


def _active_items(store, top: tuple[np.ndarray, np.ndarray], column: int) -> list[int]:
    """Item ids of one column of a :class:`TopPerColumn` answer, those that activate it only.

    As in :func:`~modeldx.neurons.cluster_top_items`: an item scoring 0 (a dead
    neuron's every item, tied) is no top item.
    """
    scores, rows = top
    keep = rows[:, column][scores[:, column] > 0]
    return store.items()["item_id"].to_numpy()[keep].tolist()


class ItemImages:
    """Item ids of a store -> thumbnails, from the data set the store was captured from.

    A store of ``{"train": ..., "test": ...}`` numbers its items split after
    split in that order (:class:`~modeldx.data.arrays.SplitDataset`), so an item
    id less the sizes of the splits before its own is its index in its split.
    """

    def __init__(self, store, data_root=None) -> None:
        self.reason: str | None = None
        self.parts: list[tuple[str, Any, int]] = []  # (split, data set, first item id)
        self.shape: tuple[int, ...] = ()
        try:
            self._load(store, data_root)
        except (ModeldxError, OSError) as exc:
            self.parts, self.reason = [], f"the data set {store.manifest.dataset_name!r} cannot be " \
                                            f"loaded ({' '.join(str(exc).split())[:200]})"

    def _load(self, store, data_root) -> None:
        from modeldx.data import load_dataset

        splits = list(dict.fromkeys(store.items()["split"].astype(str)))
        names = store.manifest.dataset_name.split("+")
        if len(names) != len(splits):
            raise InvalidParameterError(f"its name does not say which data set each of the splits "
                                        f"{splits} is")
        offset = 0
        for name, split in zip(names, splits, strict=True):
            data = load_dataset(name.removesuffix(f"-{split}"), split, root=data_root)
            self.parts.append((split, data, offset))
            offset += len(data)
        self.shape = tuple(int(s) for s in self.parts[0][1].get_batch(np.array([0]))[0].shape[1:])
        if len(self.shape) != 3 or self.shape[0] not in (1, 3):
            self.parts, self.reason = [], f"items of shape {self.shape} are not images"

    @property
    def available(self) -> bool:
        return bool(self.parts)

    def inputs(self, item_ids: np.ndarray) -> torch.Tensor:
        """The model's inputs for these item ids (as the data set gives them, normalised)."""
        out = []
        for item in np.asarray(item_ids):
            split, data, first = next(p for p in reversed(self.parts) if item >= p[2])
            if not 0 <= item - first < len(data):
                raise ItemNotFoundError(f"item {int(item)} is not in the data set")
            out.append(data.get_batch(np.array([item - first]))[0])
        return torch.cat(out)

    def png(self, item_id: int, size: int = 56) -> bytes:
        """A thumbnail: the item's input scaled to its own range, nearest-neighbour enlarged."""
        from PIL import Image

        x = self.inputs(np.array([item_id]))[0].float().numpy()
        lo, hi = float(x.min()), float(x.max())
        pixels = np.round((x - lo) / (hi - lo if hi > lo else 1.0) * 255).astype(np.uint8)
        img = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
        scale = max(1, size // max(img.size))
        return _png(img.resize((img.size[0] * scale, img.size[1] * scale), Image.NEAREST))


def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class ClusterNotFoundError(LayerNotFoundError):
    """A cluster id that a layer does not have."""


class ItemNotFoundError(ModeldxError, KeyError):
    """An item id that the store does not hold."""


class Explorer:
    """Everything the network explorer page shows, computed from a store (and optionally its model).

    Parameters
    ----------
    store
        An open store (:func:`modeldx.open_store`).
    model
        The store's model: gives the layer graph, the weight bundles and LDAM
        images. Without it layers are a chain in store order and there are no
        bundles.
    sample
        Name of a sample saved in the store: every number comes from it, with its weights.
    k
        Clusters per layer (``None``: chosen by silhouette).
    center
        Cluster neurons by the cosine distance of their class means after
        subtracting each neuron's mean over the classes (correlation distance).
        Without it, the positive baseline every ReLU shares dominates the
        distance and the silhouette picks two clusters in most layers (LeNet-5:
        k = 2, 2, 2, 2, 3; centred: 2, 3, 11, 9, 4).
    top_items
        Top items kept per cluster.
    data_root
        Where the store's data set is (thumbnails); without it the page says images are unavailable.

    Examples
    --------
    >>> ex = Explorer(open_store("modeldx-demo/mnist-lenet5"))  # doctest: +SKIP
    >>> [layer["name"] for layer in ex.graph()["layers"]]  # doctest: +SKIP
    ['act1', 'act2', 'act3', 'act4', 'fc3']
    """

    _limits = {"k": [Interval(int, 2, None), None], "top_items": Interval(int, 1, 100),
               "seed": Interval(int, 0, None)}

    def __init__(self, store, model=None, *, sample: str | None = None, k: int | None = None,
                 center: bool = True, top_items: int = 9, data_root=None, seed: int = 0) -> None:
        from modeldx.neurons import activation_matrix, cluster_neurons

        check_params("Explorer", {"k": k, "top_items": top_items, "seed": seed}, self._limits)
        started = time.perf_counter()
        self.store, self.model, self.k, self.top_items, self.seed = store, model, k, top_items, seed
        self.sample_name = sample
        self.subset: Sample | None = None
        if sample is not None:
            ids, weights, info = store.load_sample(sample)
            self.subset = make_subset(store, ids, weights, {"sample": sample, **info})  # rows resolved
        self.layers = list(store.layers)
        self.means = class_means(store, layers=self.layers, items=self.subset)
        self.classes = list(self.means.classes)
        self.clusters = {layer: cluster_neurons(self.means.means[layer], active=self.means.active[layer], k=k,
                                                center=center, seed=seed) for layer in self.layers}
        self.matrices = {layer: activation_matrix(self.means.means[layer], self.clusters[layer])
                         for layer in self.layers}
        self.images = ItemImages(store, data_root)
        self.notes: list[str] = []
        if k is not None:  # a layer with fewer live neurons than k gets fewer clusters: say so
            self.notes.extend(f"{layer}: {cl.k} clusters, not {k}: it has {int(np.sum(~cl.dead))} live "
                              "neurons" for layer, cl in self.clusters.items() if cl.k < k)
        self._graph_edges()
        self._top = self._cluster_top_items()
        self.compute_s = time.perf_counter() - started
        self._lock = threading.Lock()  # the groups, computed once
        self._ldam_lock = threading.Lock()  # one LDAM at a time: two would only slow each other down
        self._groups: dict[str, Any] | None = None
        self._neuron_top: dict[tuple[str, int], dict[int, list[int]]] = {}
        self._ldam: dict[tuple[str, int], bytes] = {}

    # --- computed once ------------------------------------------------------------
    def _graph_edges(self) -> None:
        """Columns and edges: the model's layer graph and bundles, else the store's layers as a chain."""
        self.depth = {layer: i for i, layer in enumerate(self.layers)}
        self.edges: list[dict[str, Any]] = [
            {"source": a, "target": b, "via": "", "strength": None, "signed": None, "bundles": []}
            for a, b in zip(self.layers, self.layers[1:], strict=False)]
        if self.model is None:
            self.notes.append("no checkpoint given: layers are drawn in store order as a chain, without "
                              "weight bundles (pass --checkpoint for the model's graph and its bundles)")
            return
        sequences = [layer for layer in self.layers if self.store.manifest.layer(layer).kind == "sequence"]
        if sequences:
            # the layer graph maps channels on axis 1; a sequence's features are its last axis
            self.notes.append(f"layers {', '.join(sequences)} are sequences (batch, time, features): their "
                              "weights are not mapped to clusters, so layers are drawn in store order as a "
                              "chain, without weight bundles")
            return
        from modeldx.neurons import layer_bundles, layer_graph

        example = self._example_input()
        graph = layer_graph(self.model, self.layers, example)
        self.depth = {node: int(graph.depth[node]) for node in graph.nodes if node in self.depth}
        self.layers = [node for node in graph.nodes if node in self.depth]
        labels = {layer: self.clusters[layer].labels for layer in self.layers}
        strength = {(e.source, e.target): e for e in graph.edges}
        self.edges = []
        for found in layer_bundles(graph, labels, seed=self.seed):
            edge = strength[(found["source"], found["target"])]
            self.edges.append({"source": found["source"], "target": found["target"], "via": str(found["via"]),
                               "strength": float(np.sum(edge.strength)), "signed": float(np.sum(edge.signed)),
                               "bundles": [_bundle_json(b) for b in found["bundles"]]})
        self.notes.extend(f"layer graph: {n}" for n in graph.notes)

    def _example_input(self) -> torch.Tensor:
        if self.images.available:
            return self.images.inputs(np.array([0]))
        raise InvalidParameterError(
            f"the layer graph needs one input of the model, from the store's data set: {self.images.reason}; "
            "pass --data-root")

    def _cluster_top_items(self) -> dict[str, dict[int, list[int]]]:
        """Every cluster's top items as :func:`~modeldx.neurons.cluster_top_items` finds them, but for
        every cluster of every layer in two passes (the neurons' peaks, then the top items)."""
        peaks = run_reduction(self.store, ColumnPeaks(self.layers), self.subset)
        weights, ids = {}, {}
        for layer in self.layers:
            cl = self.clusters[layer]
            ids[layer] = [int(c) for c in self.matrices[layer].cluster_order]
            weights[layer] = _mean_columns(peaks[f"acts/{layer}"], [cl.members(c) for c in ids[layer]])
        state = run_reduction(self.store, TopPerColumn(weights, self.top_items), self.subset)
        return {layer: {c: _active_items(self.store, state[layer], j) for j, c in enumerate(ids[layer])}
                for layer in self.layers}

    # --- answers -------------------------------------------------------------------
    def source(self) -> dict[str, Any]:
        """Exact (every item) or sampled (which sample, how many items, what fraction)."""
        src = dict(self.means.source)
        return {k: v for k, v in src.items() if isinstance(v, str | int | float | bool) or v is None}

    def graph(self) -> dict[str, Any]:
        """The page's whole picture: layers as columns of clusters, and the bundles of every edge."""
        m = self.store.manifest
        layers = []
        for layer in self.layers:
            spec, cl, mat = m.layer(layer), self.clusters[layer], self.matrices[layer]
            order = [int(c) for c in mat.class_order]
            # colour: one scale per layer, its largest cluster mean (a neuron's peak would wash every row out)
            peak = float(np.abs(mat.cluster_rows).max()) if mat.cluster_rows.size else 0.0
            scale = peak if peak > 0 else 1.0
            clusters = []
            for cid in (int(c) for c in mat.cluster_order):
                row = mat.row_of(cid)
                clusters.append({"id": cid, "size": int(len(cl.members(cid))), "dead": cid == -1,
                                 "row": _floats(row / scale), "raw": _floats(row),
                                 "top_items": self._top[layer][cid]})
            layers.append({"name": layer, "kind": spec.kind, "module_type": spec.module_type,
                           "neurons": int(spec.neurons), "depth": self.depth[layer], "class_order": order,
                           "class_names": [self.classes[i] for i in order], "k": int(cl.k),
                           "dead": int(np.sum(cl.dead)), "clusters": clusters})
        return {"store": str(self.store.path), "model": m.model_name, "dataset": m.dataset_name,
                "checkpoint": self.model is not None, "source": self.source(), "classes": self.classes,
                "layers": layers, "edges": self.edges, "notes": self.notes,
                "images": {"available": self.images.available, "reason": self.images.reason},
                "ldam": {"available": self.ldam_reason() is None, "reason": self.ldam_reason()},
                "compute_s": round(self.compute_s, 3)}

    def _check(self, layer: str, cid: int) -> None:
        if layer not in self.clusters:
            raise LayerNotFoundError(f"no layer {layer!r} in the explorer; layers: {', '.join(self.layers)}")
        ids = [int(c) for c in self.matrices[layer].cluster_order]
        if cid not in ids:
            raise ClusterNotFoundError(f"layer {layer!r} has no cluster {cid}; its clusters: {ids}")

    def groups(self) -> dict[str, Any]:
        """Class means on correctly and incorrectly classified items, and on train and test items.

        Each group is the store's (or the sample's) items of that kind, with the
        sample's weights; a group with no items is left out.
        """
        with self._lock:
            if self._groups is None:
                self._groups = self._compute_groups()
        return self._groups

    def _compute_groups(self) -> dict[str, Any]:
        items = self.store.items()
        rows = np.arange(len(items)) if self.subset is None else np.asarray(self.subset.rows)
        weights = None if self.subset is None else np.asarray(self.subset.weights)
        table = items.iloc[rows]
        masks = {"correct": table["correct"].to_numpy(bool), "incorrect": ~table["correct"].to_numpy(bool),
                 "train": table["split"].astype(str).to_numpy() == "train",
                 "test": table["split"].astype(str).to_numpy() == "test"}
        out = {}
        for name, title in GROUPS:
            mask = masks[name]
            if not mask.any():
                continue
            ids = table["item_id"].to_numpy()[mask]
            cm = class_means(self.store, layers=self.layers, items=ids,
                             weights=None if weights is None else weights[mask])
            out[name] = {"title": title, "items": int(mask.sum()), "means": cm}
        return out

    def cluster(self, layer: str, cid: int) -> dict[str, Any]:
        """One cluster: its neurons in leaf order with their neuron x class matrix, top items and groups."""
        self._check(layer, cid)
        mat = self.matrices[layer]
        order = [int(c) for c in mat.class_order]
        neurons = np.asarray(mat.neuron_order[cid])
        per_neuron = self._neuron_tops(layer, cid, neurons)
        groups = [{"name": name, "title": g["title"], "items": g["items"],
                   "matrix": [_floats(g["means"].means[layer][n, order]) for n in neurons]}
                  for name, g in self.groups().items()]
        table = self.store.items().set_index("item_id")
        top = [{"item_id": i, **_item_row(table.loc[i])} for i in self._top[layer][cid]]
        return {"layer": layer, "id": cid, "dead": cid == -1, "size": int(neurons.size),
                "class_order": order, "class_names": [self.classes[i] for i in order],
                "neurons": [int(n) for n in neurons],
                "matrix": [_floats(row) for row in mat.blocks[cid]], "scale": float(mat.scale),
                "active": _floats(self.means.active[layer][neurons]),
                "neuron_top_items": {str(n): per_neuron[int(n)] for n in neurons},
                "top_items": top, "groups": groups, "source": self.source()}

    def _neuron_tops(self, layer: str, cid: int, neurons: np.ndarray, k: int = 3) -> dict[int, list[int]]:
        key = (layer, cid)
        if key not in self._neuron_top:
            w = np.zeros((self.store.neurons(layer), len(neurons)))
            w[neurons, np.arange(len(neurons))] = 1.0
            state = run_reduction(self.store, TopPerColumn({layer: w}, k), self.subset)
            self._neuron_top[key] = {int(n): _active_items(self.store, state[layer], j)
                                     for j, n in enumerate(neurons)}
        return self._neuron_top[key]

    def item_png(self, item_id: int) -> bytes:
        """A thumbnail of one item of the store."""
        ids = self.store.items()["item_id"].to_numpy()
        if not np.isin(item_id, ids):
            raise ItemNotFoundError(f"the store has no item {item_id}")
        if not self.images.available:
            raise InvalidParameterError(f"item images are unavailable: {self.images.reason}")
        return self.images.png(item_id)

    def ldam_reason(self) -> str | None:
        """Why LDAM images cannot be made, or None."""
        if self.model is None:
            return "LDAM images need the model: pass --checkpoint"
        if not self.images.available:
            return f"LDAM images need image inputs of a known shape: {self.images.reason}"
        return None

    def ldam_png(self, layer: str, cid: int) -> bytes:
        """The LDAM running average over (up to 16 of) the cluster's neurons, computed once and kept."""
        from PIL import Image

        from modeldx.ldam import LDAM, to_display

        self._check(layer, cid)
        if (why := self.ldam_reason()) is not None:
            raise InvalidParameterError(why)
        if "#" in layer:
            raise InvalidParameterError(f"LDAM targets a module, and layer {layer!r} is one of several calls "
                                        "of its module: no LDAM image for it")
        if cid == -1:
            raise InvalidParameterError(f"the dead neurons of layer {layer!r} were never active: LDAM has "
                                        "nothing to sample toward (their gradient is 0)")
        if self.store.manifest.layer(layer).kind == "sequence":
            # LDAM's targets count neurons on axis 1, a sequence's time axis
            raise InvalidParameterError(f"layer {layer!r} is a sequence (batch, time, features): LDAM images "
                                        "are made for dense and conv layers only")
        key = (layer, cid)
        with self._ldam_lock:
            if key not in self._ldam:
                members = [int(n) for n in self.clusters[layer].members(cid)][:LDAM_NEURONS]
                module = self.store.manifest.layer(layer).module
                sampler = LDAM(self.model, self.images.shape, layer=module, neurons=members,
                               chains=LDAM_CHAINS, burn_in=LDAM_BURN_IN, seed=self.seed)
                sampler.step(LDAM_STEPS)
                average = sampler.grid("average").mean(axis=(0, 1))  # over chains and neurons
                pixels = to_display(average[None])[0]
                img = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
                self._ldam[key] = _png(img.resize((img.size[0] * 3, img.size[1] * 3), Image.NEAREST))
            return self._ldam[key]


def _floats(values) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(values, dtype=np.float64).ravel()]


def _item_row(row) -> dict[str, Any]:
    return {"split": str(row["split"]), "label": int(row["label"]), "pred": int(row["pred"]),
            "correct": bool(row["correct"])}


def _bundle_json(bundle: dict) -> dict[str, Any]:
    return {"sources": [int(s) for s in bundle["sources"]], "targets": [int(t) for t in bundle["targets"]],
            "strength": float(bundle["strength"]), "share": float(bundle["share"]),
            "sign": float(bundle["sign"]),
            "edges": [[int(s), int(t), float(w), float(g)] for s, t, w, g in bundle["edges"]]}


__all__ = ["ClusterNotFoundError", "Explorer", "ItemNotFoundError", "ItemImages", "TopPerColumn"]
