"""Credit assignment: which neurons of an earlier layer fed one target neuron.

DGMTracker (Liu et al., TVCG 2018) explains a neuron that broke by its
upstream contributors, forward by layer-wise relevance propagation and
backward by back-propagation. Both are here, per neuron of a *source* layer
(a conv neuron is a channel, summed over space), averaged over a batch:

- ``method="lrp"``: the ε-rule propagated through the chain of modules between
  the source and the target. The chain must be sequential (each module reads
  the previous one's output) and made of Linear, Conv2d, ReLU, pooling, Flatten
  and Identity; anything else is refused by name, since a rule for it would be
  a guess. With ε → 0 and zero biases the contributions sum to the target's
  value (conservation).
- ``method="grad_x_act"``: the source's activation times the gradient of the
  target with respect to it, through any graph. On a purely linear path
  without biases it, too, sums to the target's value.

The target's value is the neuron's activation (a channel: summed over space),
so both methods answer in the target's units.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modeldx._params import Interval, OneOf, check_params
from modeldx.errors import (
    CheckpointError,
    InputShapeError,
    InvalidParameterError,
    LayerNotFoundError,
)

__all__ = ["contributions", "contribution_series", "LRP_MODULES"]

#: Modules the LRP chain may contain; ReLU, pooling and reshapes keep relevance as it is
#: (pooling redistributes it to what it read), Linear and Conv2d use the ε-rule.
LRP_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d, nn.Flatten, nn.Identity,
)
_WEIGHTED = (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
             nn.AdaptiveMaxPool2d)


def contributions(
    model: nn.Module,
    inputs: torch.Tensor,
    target_layer: str,
    target_neuron: int,
    *,
    source_layer: str,
    method: str = "lrp",
    eps: float = 1e-6,
) -> np.ndarray:
    """Contribution of every neuron of ``source_layer`` to one neuron of ``target_layer``.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode for the call (its mode is restored); hooks are removed
        even on error and no parameter's ``.grad`` is touched.
    inputs : torch.Tensor
        A batch; the result is the mean over its items.
    target_layer, source_layer : str
        Module names as in ``dict(model.named_modules())``; the source runs before
        the target.
    target_neuron : int
        Index along the target's axis 1 (a unit of a Linear layer, a conv channel).
    method : {"lrp", "grad_x_act"}
        Forward relevance (ε-rule) or backward gradient × activation.
    eps : float
        The ε of the ε-rule (stabilises ``R / z`` where ``z`` is near 0).

    Returns
    -------
    np.ndarray
        float64, one value per source neuron (shape ``(C_source,)``).

    Examples
    --------
    >>> import torch
    >>> from modeldx.zoo import LeNet5
    >>> c = contributions(LeNet5(), torch.rand(4, 1, 28, 28), "fc3", 3, source_layer="act3")
    >>> c.shape
    (120,)
    """
    check_params("contributions",
                 {"method": method, "eps": eps, "target_neuron": target_neuron},
                 {"method": OneOf("lrp", "grad_x_act"), "eps": Interval(float, 0, None),
                  "target_neuron": Interval(int, 0, None)})
    modules = dict(model.named_modules())
    for role, name in (("target_layer", target_layer), ("source_layer", source_layer)):
        if name not in modules or name == "":
            raise LayerNotFoundError(
                f"{role} {name!r} is not a module of {type(model).__name__}; expected one of "
                f"{', '.join(n for n in modules if n)}")
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 1 or len(inputs) == 0:
        raise InvalidParameterError(f"inputs must be a non-empty batch tensor. Got {inputs!r}.")
    was_training = model.training
    model.eval()
    try:
        run = _lrp if method == "lrp" else _grad_x_act
        with torch.enable_grad():
            return run(model, modules, inputs, target_layer, int(target_neuron), source_layer, eps)
    finally:
        model.train(was_training)


def contribution_series(
    checkpoints_or_state_dicts: Sequence[Mapping[str, torch.Tensor] | str | os.PathLike],
    model: nn.Module,
    inputs: torch.Tensor,
    target_layer: str,
    target_neuron: int,
    *,
    source_layer: str,
    method: str = "lrp",
    eps: float = 1e-6,
) -> np.ndarray:
    """:func:`contributions` at each snapshot: an array (snapshots x source neurons).

    Each snapshot is a state dict or the path of one saved with ``torch.save``
    (a dict holding it under ``"state_dict"`` or ``"model_state_dict"`` is fine).
    The snapshots are loaded into a copy of ``model``; ``model`` itself is untouched.
    """
    snaps = list(checkpoints_or_state_dicts)
    if not snaps:
        raise InvalidParameterError("checkpoints_or_state_dicts must hold at least one snapshot. Got none.")
    work = copy.deepcopy(model)
    rows = []
    for i, snap in enumerate(snaps):
        state = _state_dict(snap, i)
        try:
            work.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"snapshot {i} does not fit {type(model).__name__}: {exc}") from exc
        rows.append(contributions(work, inputs, target_layer, target_neuron,
                                  source_layer=source_layer, method=method, eps=eps))
    return np.stack(rows)


def _state_dict(snap: Any, index: int) -> Mapping[str, torch.Tensor]:
    if isinstance(snap, str | os.PathLike):
        try:
            snap = torch.load(snap, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"snapshot {index} ({os.fspath(snap)!r}) could not be read: {exc}") from exc
    if isinstance(snap, Mapping):
        for key in ("state_dict", "model_state_dict"):
            if isinstance(snap.get(key), Mapping):
                return snap[key]
        return snap
    raise InvalidParameterError(
        f"snapshot {index} must be a state dict or a checkpoint path. Got {type(snap).__name__}.")


def _per_neuron(t: torch.Tensor) -> torch.Tensor:
    """(N, C, ...) -> (N, C): a conv neuron is its channel, summed over space."""
    return t.reshape(t.shape[0], t.shape[1], -1).sum(-1) if t.ndim > 2 else t


def _check_neuron(out: torch.Tensor, name: str, neuron: int) -> None:
    if out.ndim < 2:
        raise InvalidParameterError(f"layer {name!r} gives shape {tuple(out.shape)}; expected (N, C, ...).")
    if neuron >= out.shape[1]:
        raise InvalidParameterError(
            f"target_neuron {neuron} is out of range: layer {name!r} has {out.shape[1]} neurons "
            f"(expected 0..{out.shape[1] - 1}).")


def _run_recorded(model: nn.Module, inputs: torch.Tensor, hooked: dict[str, nn.Module], hook) -> None:
    """One forward pass with ``hook(name, module, args, output)`` on ``hooked``; hooks always come off."""
    handles = [m.register_forward_hook(lambda mod, args, out, n=n: hook(n, mod, args, out))
               for n, m in hooked.items()]
    try:
        device = next((p.device for p in model.parameters()), inputs.device)
        model(inputs.to(device))
    except (RuntimeError, ValueError, TypeError) as exc:
        raise InputShapeError(f"{type(model).__name__} could not run on inputs of shape "
                              f"{tuple(inputs.shape)}: {exc}") from exc
    finally:
        for h in handles:
            h.remove()


def _grad_x_act(model, modules, inputs, target_layer, neuron, source_layer, eps) -> np.ndarray:
    del eps  # the ε-rule's only
    seen: dict[str, torch.Tensor] = {}

    def hook(name, _mod, _args, out):
        if name in seen or not isinstance(out, torch.Tensor):
            return None  # a module called twice: its first call counts
        if name == source_layer:
            # A fresh leaf so the gradient exists even with frozen parameters; its clone
            # goes on, so an in-place module after it cannot modify the leaf.
            leaf = out.detach().requires_grad_(True)
            seen[name] = leaf
            return leaf.clone()
        seen[name] = out
        return out.clone()  # an in-place module after the target must not change its value

    _run_recorded(model, inputs, {source_layer: modules[source_layer],
                                  target_layer: modules[target_layer]}, hook)
    for name in (source_layer, target_layer):
        if name not in seen:
            raise LayerNotFoundError(
                f"layer {name!r} did not run in a forward pass of {type(model).__name__}")
    _check_neuron(seen[target_layer], target_layer, neuron)
    target = _per_neuron(seen[target_layer])[:, neuron].sum()
    (grad,) = torch.autograd.grad(target, seen[source_layer], allow_unused=True)
    if grad is None:
        raise InvalidParameterError(
            f"target_layer {target_layer!r} does not depend on source_layer {source_layer!r} "
            "(is the source after the target?)")
    contrib = _per_neuron(grad * seen[source_layer]).sum(0) / len(inputs)
    return contrib.detach().double().cpu().numpy()


def _lrp(model, modules, inputs, target_layer, neuron, source_layer, eps) -> np.ndarray:
    # Record every leaf module's call in order, to find (and verify) the chain.
    leaves = {n: m for n, m in modules.items() if n and not any(True for _ in m.children())}
    # A container as source or target is hooked too; its output is its last leaf's.
    leaves[source_layer] = modules[source_layer]
    leaves[target_layer] = modules[target_layer]
    calls: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    source_out: list[torch.Tensor] = []

    def hook(name, _mod, args, out):
        if name == source_layer and not source_out:
            source_out.append(out.detach().clone())  # an in-place module after it would change it
        if source_out and isinstance(out, torch.Tensor):
            calls.append((name, args[0] if args else None, out))

    with torch.no_grad():
        _run_recorded(model, inputs, leaves, hook)
    if not source_out:
        raise LayerNotFoundError(f"source_layer {source_layer!r} did not run in a forward pass of "
                                 f"{type(model).__name__}")
    names = [c[0] for c in calls]
    if target_layer not in names[1:]:
        raise InvalidParameterError(
            f"target_layer {target_layer!r} does not run after source_layer {source_layer!r}")
    stop = names.index(target_layer, 1)
    chain = calls[1:stop + 1]
    if any(True for _ in modules[target_layer].children()):
        if len(chain) < 2 or chain[-1][2] is not chain[-2][2]:
            raise InvalidParameterError(
                f"LRP needs target_layer {target_layer!r}'s output to be its last module's output.")
        chain = chain[:-1]  # the container's own entry: its leaves are the chain
    previous = calls[0][2]
    for name, arg, out in chain:
        module = modules[name]
        if not isinstance(module, LRP_MODULES):
            raise InvalidParameterError(
                f"LRP cannot pass {name!r} ({type(module).__name__}) between {source_layer!r} and "
                f"{target_layer!r}; it handles {', '.join(t.__name__ for t in LRP_MODULES)}. "
                "Use method='grad_x_act' or a source layer after it.")
        if arg is not previous:
            raise InvalidParameterError(
                f"LRP needs a sequential chain from {source_layer!r} to {target_layer!r}, but {name!r} "
                "does not read the previous module's output (a branch, or a functional op between "
                "them). Use method='grad_x_act'.")
        previous = out

    # Forward again from the source's activation, out of place, keeping each module's input.
    acts = [source_out[0]]
    with torch.no_grad():
        for name, _arg, _out in chain:
            module = modules[name]
            acts.append(F.relu(acts[-1]) if isinstance(module, nn.ReLU) else module(acts[-1]))
    _check_neuron(acts[-1], target_layer, neuron)
    relevance = torch.zeros_like(acts[-1])
    relevance[:, neuron] = acts[-1][:, neuron]
    for (name, _arg, _out), a in zip(reversed(chain), reversed(acts[:-1]), strict=True):
        module = modules[name]
        if isinstance(module, _WEIGHTED):
            relevance = _epsilon_rule(module, a, relevance, eps)
        else:  # ReLU, Flatten, Identity: relevance passes unchanged, reshaped to the input
            relevance = relevance.reshape(a.shape)
    return (_per_neuron(relevance).sum(0) / len(inputs)).double().cpu().numpy()


def _epsilon_rule(module: nn.Module, a: torch.Tensor, relevance: torch.Tensor, eps: float) -> torch.Tensor:
    """R_i = a_i * sum_j w_ij R_j / (z_j + eps * sign(z_j)), by one vector-Jacobian product.

    The gradient of ``z`` with respect to ``a`` contracted with ``s = R / z`` is
    ``sum_j w_ij s_j`` for Linear, Conv2d and average pooling, and routes ``s`` to
    the winner for max pooling (so the winner gets all of ``R``).
    """
    a = a.detach().requires_grad_(True)
    z = module(a)
    stab = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
    s = (relevance / (z + eps * stab)).detach()
    (c,) = torch.autograd.grad(z, a, grad_outputs=s)
    return (a * c).detach()
