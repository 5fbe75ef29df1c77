"""Features to cluster: raw pixels, or several layers' activations of a model (thesis eq. 2.6)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from modeldx.capture.hooks import hook_group
from modeldx.capture.layers import leaf_modules, select_layers
from modeldx.device import resolve_device


def pixel_features(dataset) -> tuple[np.ndarray, list[int], list[str]]:
    """Every item's input, flattened: one block."""
    x = dataset.get_batch(np.arange(len(dataset)))[0]
    flat = x.reshape(len(dataset), -1).numpy().astype(np.float32)
    return flat, [flat.shape[1]], ["pixels"]


@torch.no_grad()
def layer_features(model: nn.Module, dataset, layers: Sequence[str] | str = "auto", *, pool: int = 4,
                   batch_size: int = 1000, device: str = "auto") -> tuple[np.ndarray, list[int], list[str]]:
    """Activations of ``layers`` for every item, one block per layer, side by side.

    Conv maps are average-pooled to at most ``pool x pool`` per channel: the
    thesis clusters whole pooled maps (eq. 2.6); pooling keeps the spatial layout
    and keeps 60,000 items in memory.
    """
    names = select_layers(model, layers)
    modules = leaf_modules(model)
    dev = resolve_device(device)
    model = model.eval().to(dev)
    outputs: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def keep(name):
        def hook(_module, _inputs, out):
            if out.ndim == 4 and (out.shape[2] > pool or out.shape[3] > pool):
                out = nn.functional.adaptive_avg_pool2d(out, pool)
            outputs[name].append(out.reshape(out.shape[0], -1).float().cpu().numpy())
        return hook

    with hook_group() as hooks:
        for name in names:
            hooks.add(modules[name].register_forward_hook(keep(name)))
        for start in range(0, len(dataset), batch_size):
            x, _ = dataset.get_batch(np.arange(start, min(start + batch_size, len(dataset))))
            model(x.to(dev))
    blocks = [np.concatenate(outputs[n]) for n in names]
    return np.hstack(blocks), [b.shape[1] for b in blocks], names
