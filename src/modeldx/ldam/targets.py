"""Which neurons LDAM samples for, and how their activations are read off a model.

A target is a layer (a module name) and neurons of it. For a linear or
activation layer a neuron is an output unit; for a conv map it is a channel,
by default the mean of its map, or the unit at one ``position`` (row, column) —
the thesis' correctness check needs single units of the first conv layer. The
default layer is the classifier head (the pre-softmax outputs, thesis §4.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from modeldx.capture.hooks import hook_group
from modeldx.capture.layers import head_module, leaf_modules
from modeldx.errors import InvalidParameterError, LayerNotFoundError


@dataclass(frozen=True)
class Target:
    layer: str
    neurons: tuple[int, ...]
    position: tuple[int, int] | None = None  # conv maps: one unit instead of the map's mean


def make_target(model: nn.Module, image_shape: Sequence[int], layer: str | None = None,
                neurons: Sequence[int] | None = None, position: Sequence[int] | None = None) -> Target:
    """Check a target against the model, once, by one forward pass of a blank image.

    ``layer=None`` is the head, ``neurons=None`` its first ten.
    """
    modules = leaf_modules(model)
    name = layer or head_module(model)[0]
    if name not in modules:
        raise LayerNotFoundError(f"the model has no layer {name!r}; layers: {', '.join(modules)}")
    chosen = tuple(range(10)) if neurons is None else tuple(int(n) for n in neurons)
    if not chosen or min(chosen) < 0:
        raise InvalidParameterError(f"neurons must be non-negative indices. Got {list(chosen)}.")
    where = None if position is None else (int(position[0]), int(position[1]))
    seen: dict[str, torch.Tensor] = {}
    with hook_group() as hooks, torch.no_grad():
        hooks.add(modules[name].register_forward_hook(lambda _m, _i, out: seen.__setitem__("out", out)))
        was_training = model.training
        model.eval()
        try:
            model(torch.zeros(1, *image_shape, device=next(model.parameters()).device))
        finally:
            model.train(was_training)
    shape = tuple(seen["out"].shape[1:])
    if max(chosen) >= shape[0]:
        raise InvalidParameterError(f"layer {name!r} has {shape[0]} neurons; got neurons {list(chosen)}")
    if where is not None and (len(shape) != 3 or not (0 <= where[0] < shape[1] and 0 <= where[1] < shape[2])):
        raise InvalidParameterError(f"position {where} is outside the {shape[1:]} map of layer {name!r}")
    return Target(name, chosen, where)


@contextmanager
def reading(model: nn.Module, target: Target):
    """Yield ``read(x) -> (batch,)`` activations, chain ``b`` reading neuron ``neurons[b % len]``.

    The hook exists only inside the ``with`` block; the model's training mode is
    set to eval inside it and restored after, and no parameter gets a gradient.
    """
    module = leaf_modules(model)[target.layer]
    seen: dict[str, torch.Tensor] = {}
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    index = torch.tensor(target.neurons)
    with hook_group() as hooks:
        hooks.add(module.register_forward_hook(lambda _m, _i, out: seen.__setitem__("out", out)))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        try:
            def read(x: torch.Tensor) -> torch.Tensor:
                model(x)
                out = seen["out"]
                which = index.to(out.device).repeat(x.shape[0] // len(target.neurons) + 1)[:x.shape[0]]
                picked = out[torch.arange(x.shape[0], device=out.device), which]
                if picked.ndim == 3:  # a conv channel: one unit, or the mean of its map
                    if target.position is not None:
                        return picked[:, target.position[0], target.position[1]]
                    return picked.mean(dim=(1, 2))
                return picked.reshape(x.shape[0], -1).mean(1)

            yield read
        finally:
            for p, flag in zip(model.parameters(), flags, strict=True):
                p.requires_grad_(flag)
            model.train(was_training)
