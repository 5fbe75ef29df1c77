"""Top-down neuron relevance (thesis §4.6): from an output neuron, the neurons below that feed it most.

For a linear layer with weights W (out x in), the relevance of input neuron j
to output neuron m is W[m, j]; when that input is a flattened conv map, the
weights of a channel's positions are averaged (the thesis' "averaged weight"
for Conv5 -> FC6). For a conv layer it is the mean of the kernel W[m, j]. The
walk goes through the model's weighted layers in registration order, from the
last one down, keeping the top ``k`` per neuron, to ``depth`` layers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from modeldx.capture.layers import leaf_modules
from modeldx.errors import InvalidParameterError, LayerNotFoundError


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in leaf_modules(model).items() if isinstance(m, (nn.Linear, nn.Conv2d))]


def relevance_matrix(layer: nn.Module, inputs: int) -> np.ndarray:
    """(outputs, inputs) relevance of each input neuron (channel) to each output neuron."""
    w = layer.weight.detach().cpu().numpy().astype(np.float64)
    if isinstance(layer, nn.Conv2d):
        return w.reshape(w.shape[0], w.shape[1], -1).mean(axis=2)
    if w.shape[1] != inputs:  # a flattened conv map: average each channel's positions
        if w.shape[1] % inputs:
            raise InvalidParameterError(f"cannot map {w.shape[1]} inputs onto {inputs} channels")
        return w.reshape(w.shape[0], inputs, -1).mean(axis=2)
    return w


def top_down(model: nn.Module, neuron: int, *, layer: str | None = None, k: int = 3,
             depth: int = 3) -> pd.DataFrame:
    """The relevance tree below ``neuron`` of weighted layer ``layer`` (default: the last one).

    Returns
    -------
    DataFrame
        ``depth, layer, neuron, parent_layer, parent, weight`` — one row per
        neuron found (depth 0 is the start), ``layer`` being the weighted layer
        whose output holds it, so that it can be handed to LDAM as a target.
    """
    layers = weighted_layers(model)
    names = [n for n, _ in layers]
    start = names[-1] if layer is None else layer
    if start not in names:
        raise LayerNotFoundError(f"{start!r} is not a linear or conv layer; those are: {', '.join(names)}")
    i = names.index(start)
    width = layers[i][1].weight.shape[0]
    if not 0 <= neuron < width:
        raise InvalidParameterError(f"layer {start!r} has {width} neurons. Got neuron {neuron}.")
    if k < 1 or depth < 0:
        raise InvalidParameterError(f"k must be >= 1 and depth >= 0. Got k={k}, depth={depth}.")
    rows = [(0, start, int(neuron), None, None, np.nan)]
    frontier = [int(neuron)]
    for d in range(1, depth + 1):
        if i - d < 0:
            break
        upper_name, upper = layers[i - d + 1]
        lower_name, lower = layers[i - d]
        rel = relevance_matrix(upper, lower.weight.shape[0])
        nxt = []
        for m in frontier:
            for j in np.argsort(-rel[m], kind="stable")[:k]:
                rows.append((d, lower_name, int(j), upper_name, m, float(rel[m, j])))
                nxt.append(int(j))
        frontier = list(dict.fromkeys(nxt))
    frame = pd.DataFrame(rows, columns=["depth", "layer", "neuron", "parent_layer", "parent", "weight"])
    return frame.astype({"parent": "Int64"})
