"""One probe forward pass: which modules run, how often, and what their outputs are.

Registration order says nothing about execution: ``nn.MultiheadAttention``
applies its ``out_proj`` weights functionally, so that module never runs, and
a module reused in one forward runs more than once. The probe hooks every
module for one small batch and records each call, so capture only hooks
modules that run and gives each call its own layer (``<name>#0``,
``<name>#1``).

It also decides each call's *kind* — how its output becomes neurons:

- 2-d output (batch, features): ``"dense"``; 4-d and more: ``"conv"``.
- 3-d output: ``"sequence"`` (batch, time, features), one neuron per feature,
  for recurrent and attention modules, ``Embedding``, and ``Linear`` and
  ``LayerNorm`` (both act on the last axis); ``"conv"`` (batch, channels,
  length) for 1-d convolutions, norms and pools. Any other module (an
  activation, dropout, a user's block) takes the kind of the last call before
  it with an output of the same shape — a ReLU after a ``Conv1d`` is a conv
  map, a GELU after a ``Linear`` a sequence — and is a sequence when there is
  none. ``capture(kinds={name: "conv" | "sequence"})`` overrides the rule.
- Modules with ``batch_first=False`` (RNN, LSTM, GRU, attention and
  transformer layers) and the modules inside them return (time, batch,
  features); their outputs are transposed to batch first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from modeldx.capture.hooks import hook_group
from modeldx.errors import InvalidParameterError

SEQUENCE_MODULES: tuple[type[nn.Module], ...] = (
    nn.RNNBase, nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
    nn.TransformerEncoder, nn.TransformerDecoder, nn.Transformer, nn.Embedding, nn.Linear,
    nn.LayerNorm, nn.Bilinear,
)
CONV_MODULES: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd, nn.GroupNorm,
    nn.Upsample,
)
SEQUENCE_KINDS = ("sequence", "conv")  # the values capture(kinds=...) accepts


@dataclass(frozen=True)
class Call:
    """One call of one module in the probe forward pass."""

    module: str  # the module's name in the model
    index: int  # 0 for its first call in a forward, 1 for the second, ...
    shape: tuple[int, ...] | None  # output shape (batch first), None when not a tensor
    raw: tuple[int, ...] | None  # output shape as the module returned it
    kind: str  # "dense", "conv" or "sequence"
    time_major: bool  # the module returns (time, batch, features)


def output_tensor(output) -> torch.Tensor | None:
    """The tensor a module returns, or the first of a tuple (LSTM's ``(out, (h, c))``)."""
    if isinstance(output, tuple | list) and output:
        output = output[0]
    return output if isinstance(output, torch.Tensor) else None


def _batch_first(module: nn.Module) -> bool | None:
    flag = getattr(module, "batch_first", None)
    if isinstance(flag, bool):
        return flag
    attn = getattr(module, "self_attn", None)
    if isinstance(attn, nn.MultiheadAttention):
        return attn.batch_first
    layers = getattr(module, "layers", None)
    if isinstance(layers, nn.ModuleList) and len(layers):
        return _batch_first(layers[0])
    return None


def time_major(name: str, modules: Mapping[str, nn.Module]) -> bool:
    """Whether the module ``name`` (or the nearest enclosing one that says) is ``batch_first=False``."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        flag = _batch_first(modules[".".join(parts[:end])])
        if flag is not None:
            return not flag
    return False


def call_kind(name: str, module: nn.Module, shape: tuple[int, ...], previous: list[Call],
              modules: Mapping[str, nn.Module]) -> tuple[str, bool]:
    """The kind of an output of ``shape`` (batch included), and whether it is time-major.

    See the module docstring for the rule.
    """
    if len(shape) <= 2:
        return "dense", False
    if len(shape) > 3 or isinstance(module, CONV_MODULES):
        return "conv", False
    if isinstance(module, SEQUENCE_MODULES):
        return "sequence", time_major(name, modules)
    same = next((c for c in reversed(previous) if c.raw == shape and c.kind != "dense"), None)
    if same is not None:
        return same.kind, same.time_major
    return "sequence", time_major(name, modules)


def probe_calls(model: nn.Module, forward: Callable[[], object],
                kinds: Mapping[str, str] | None = None) -> list[Call]:
    """Run ``forward()`` once with every module hooked; every call, in execution order."""
    modules = dict(model.named_modules())
    kinds = dict(kinds or {})
    calls: list[Call] = []
    counts: dict[str, int] = {}

    def hook_for(name: str):
        def hook(module, inputs, output):
            index = counts.get(name, 0)
            counts[name] = index + 1
            out = output_tensor(output)
            if out is None or out.dim() == 0:
                calls.append(Call(name, index, None, None, "dense", False))
                return
            raw = tuple(out.shape)
            kind, tm = call_kind(name, module, raw, calls, modules)
            override = kinds.get(f"{name}#{index}", kinds.get(name))
            if override is not None and out.dim() == 3:
                kind = override
            shape = (raw[1], raw[0], raw[2]) if tm else raw
            calls.append(Call(name, index, shape, raw, kind, tm))

        return hook

    with hook_group() as hooks:
        for name, module in modules.items():
            if name:
                hooks.add(module.register_forward_hook(hook_for(name)))
        forward()
    return calls


def check_kinds(kinds: Mapping[str, str] | None) -> dict[str, str]:
    """Validate ``capture(kinds=...)``: layer or module name -> ``"sequence"`` or ``"conv"``."""
    if kinds is None:
        return {}
    if not isinstance(kinds, Mapping):
        raise InvalidParameterError(
            f"kinds must map layer names to 'sequence' or 'conv'. Got {type(kinds).__name__}.")
    bad = {k: v for k, v in kinds.items() if v not in SEQUENCE_KINDS}
    if bad:
        raise InvalidParameterError(
            f"kinds must map layer names to 'sequence' or 'conv'. Got {bad} instead.")
    return dict(kinds)


def call_counts(calls: list[Call]) -> dict[str, int]:
    """How many times each module ran."""
    counts: dict[str, int] = {}
    for call in calls:
        counts[call.module] = max(counts.get(call.module, 0), call.index + 1)
    return counts
