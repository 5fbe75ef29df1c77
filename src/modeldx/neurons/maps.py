"""A 2-D map of a layer's neurons: each neuron is its vector of activations over a set of items."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, OneOf, check_params
from modeldx.engine.gather import gather_rows
from modeldx.errors import InvalidParameterError


def neuron_map(store, layer: str, *, items: int = 2000, method: str = "pca", seed: int = 0,
               engine=None) -> pd.DataFrame:
    """Place the neurons of ``layer`` in 2-D by their activations over ``items`` items of ``store``.

    Each neuron's activation vector is standardised (so the map shows which
    neurons respond to the same items, not which are large), then reduced by
    PCA, or t-SNE (``method="tsne"``, perplexity adapted to few neurons).
    Dead neurons (constant) sit at the origin and are flagged.

    Only the chunks holding the chosen items are read, through ``engine`` (see
    :func:`~modeldx.engine.base.get_engine`).

    Returns ``neuron, x, y, dead, mean`` — one row per neuron.
    """
    check_params("neuron_map", {"items": items, "method": method},
                 {"items": Interval(int, 10, None), "method": OneOf("pca", "tsne")})
    n = store.n_items
    rows = np.sort(np.random.default_rng(seed).choice(n, min(items, n), replace=False))
    width = store.neurons(layer)  # an unknown layer is named before any read
    acts = gather_rows(store, f"acts/{layer}", width, rows, engine=engine).astype(np.float64)
    if acts.shape[1] < 3:
        raise InvalidParameterError(f"layer {layer!r} has {acts.shape[1]} neurons; a map needs at least 3")
    vectors = acts.T
    std = vectors.std(axis=1, keepdims=True)
    dead = std[:, 0] < 1e-8
    centred = vectors - vectors.mean(axis=1, keepdims=True)
    z = np.where(dead[:, None], 0.0, centred / np.where(dead[:, None], 1, std))
    if method == "pca":
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    else:
        from sklearn.manifold import TSNE

        xy = TSNE(n_components=2, perplexity=max(2.0, min(30.0, (z.shape[0] - 1) / 3)), init="pca",
                  random_state=seed).fit_transform(z)
    xy[dead] = 0.0
    return pd.DataFrame({"neuron": np.arange(z.shape[0]), "x": xy[:, 0], "y": xy[:, 1], "dead": dead,
                         "mean": acts.mean(axis=0)})
