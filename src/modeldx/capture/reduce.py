"""Reducing a layer's output to one row of neurons per item."""

from __future__ import annotations

import torch

REDUCTIONS = ("max", "mean", "none")


def layer_kind(shape: tuple[int, ...]) -> str:
    """``"dense"`` for (batch, features), ``"conv"`` for (batch, channels, *space)."""
    return "dense" if len(shape) == 2 else "conv"


def reduce_output(output: torch.Tensor, reduction: str) -> torch.Tensor:
    """(batch, ...) -> (batch, neurons).

    A conv map is reduced per channel over space (``"max"`` or ``"mean"``), or kept
    whole and flattened (``"none"``). Dense outputs pass through.
    """
    if output.dim() == 2:
        return output
    if output.dim() < 2:
        return output.reshape(output.shape[0], -1)
    if reduction == "none":
        return output.flatten(1)
    flat = output.flatten(2)
    if reduction == "max":
        return flat.amax(dim=2)
    if reduction == "mean":
        return flat.mean(dim=2)
    raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")


def neuron_count(raw_shape: tuple[int, ...], reduction: str) -> int:
    if len(raw_shape) <= 1 or reduction == "none":
        n = 1
        for d in raw_shape:
            n *= d
        return n
    return raw_shape[0]
