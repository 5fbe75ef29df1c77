"""Reducing a layer's output to one row of neurons per item."""

from __future__ import annotations

import torch

from modeldx.errors import InvalidParameterError

REDUCTIONS = ("max", "mean", "last", "none")
KINDS = ("dense", "conv", "sequence")


def layer_kind(shape: tuple[int, ...]) -> str:
    """``"dense"`` for (batch, features), ``"conv"`` for (batch, channels, *space).

    Shape alone cannot tell a (batch, time, features) sequence from a 1-d conv
    map; :func:`modeldx.capture.probe.call_kind` decides that from the module.
    """
    return "dense" if len(shape) == 2 else "conv"


def reduce_output(output: torch.Tensor, reduction: str, kind: str | None = None) -> torch.Tensor:
    """(batch, ...) -> (batch, neurons).

    A conv map (batch, channels, *space) is reduced per channel over space
    (``"max"`` or ``"mean"``); a sequence (batch, time, features) per feature
    over time (``"max"``, ``"mean"`` or ``"last"``); ``"none"`` keeps either
    whole, flattened. Dense outputs pass through.
    """
    kind = kind or layer_kind(tuple(output.shape))
    if output.dim() == 2:
        return output
    if output.dim() < 2:
        return output.reshape(output.shape[0], -1)
    if reduction == "none":
        return output.flatten(1)
    if kind == "sequence":
        if reduction == "last":
            return output[:, -1]
        return output.amax(dim=1) if reduction == "max" else output.mean(dim=1)
    if reduction == "last":
        raise InvalidParameterError("reduction 'last' is for sequence outputs (batch, time, features), "
                         f"not a conv map of shape {tuple(output.shape)}")
    flat = output.flatten(2)
    if reduction == "max":
        return flat.amax(dim=2)
    if reduction == "mean":
        return flat.mean(dim=2)
    raise InvalidParameterError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")


def neuron_count(raw_shape: tuple[int, ...], reduction: str, kind: str | None = None) -> int:
    """Stored columns of a layer whose output for one item has ``raw_shape``."""
    if len(raw_shape) <= 1 or reduction == "none":
        n = 1
        for d in raw_shape:
            n *= d
        return n
    return raw_shape[-1] if kind == "sequence" else raw_shape[0]
