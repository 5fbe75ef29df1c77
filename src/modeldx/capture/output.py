"""Picking the logits out of whatever a model returns (``capture(output=...)``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from modeldx.errors import InvalidParameterError, ModelOutputError

OutputPicker = None | str | int | Callable[[object], torch.Tensor]


def describe(value, depth: int = 0) -> str:
    """A short account of a model output's structure: ``tuple of 2: [0] tensor (2, 10), ...``."""
    if isinstance(value, torch.Tensor):
        return f"tensor {tuple(value.shape)}"
    if depth > 1:
        return type(value).__name__
    if isinstance(value, Mapping):
        parts = ", ".join(f"{k!r} {describe(v, depth + 1)}" for k, v in list(value.items())[:8])
        return f"dict with keys {list(value)[:8]}: {parts}"
    if isinstance(value, tuple | list):
        parts = ", ".join(f"[{i}] {describe(v, depth + 1)}" for i, v in enumerate(value[:8]))
        return f"{type(value).__name__} of {len(value)}: {parts}"
    return type(value).__name__


def check_picker(output: OutputPicker) -> OutputPicker:
    if output is None or isinstance(output, str | int) or callable(output):
        return output
    raise InvalidParameterError(
        "The 'output' parameter must be None, a key, an index or a callable picking the logits "
        f"from the model's output. Got {output!r} instead."
    )


def pick_logits(out, output: OutputPicker) -> torch.Tensor:
    """The logits tensor in a model's output ``out``, chosen by ``output``."""
    hint = ("pass output= to capture (a key, an index, or a callable taking the output and "
            "returning the logits)")
    if output is None:
        if isinstance(out, torch.Tensor):
            return out
        raise ModelOutputError(f"the model returned a {describe(out)}, not one tensor of logits; "
                               f"{hint}")
    if callable(output):
        picked = output(out)
    elif isinstance(out, Mapping):
        if output not in out:
            raise ModelOutputError(f"output={output!r}: the model's output has no key {output!r}; "
                                   f"it is a {describe(out)}")
        picked = out[output]
    elif isinstance(out, tuple | list) and isinstance(output, int):
        if not -len(out) <= output < len(out):
            raise ModelOutputError(f"output={output!r}: index {output} is out of range for the "
                                   f"model's output, a {describe(out)}")
        picked = out[output]
    else:
        raise ModelOutputError(f"output={output!r} cannot pick from the model's output, a "
                               f"{describe(out)}")
    if not isinstance(picked, torch.Tensor):
        raise ModelOutputError(f"output={output!r} picked a {describe(picked)}, not a tensor of "
                               "logits")
    return picked
