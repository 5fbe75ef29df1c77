"""One normaliser for "which layers": every entry point that takes ``layers`` uses it."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from torch import nn

from modeldx.errors import InvalidParameterError, LayerNotFoundError

# Modules whose output is an activation in the neuroscience sense.
NONLINEARITIES: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus,
    nn.Softsign, nn.Tanhshrink,
)
WEIGHTED: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

LayerSelector = None | str | Sequence[str] | type | tuple | Callable[[str, nn.Module], bool]


def leaf_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if name and not list(m.children())}


def head_module(model: nn.Module) -> tuple[str, nn.Module]:
    """The last weighted leaf module (the classifier head), in registration order."""
    heads = [(n, m) for n, m in leaf_modules(model).items() if isinstance(m, WEIGHTED)]
    if not heads:
        raise LayerNotFoundError(
            f"{type(model).__name__} has no Linear or Conv module to take as its output layer; "
            "name the layers to capture explicitly"
        )
    return heads[-1]


def auto_layers(model: nn.Module) -> list[str]:
    """Every nonlinearity module's output, plus the output layer (the logits).

    A model that applies its nonlinearities functionally (``F.relu``) has none to
    hook; then every Linear and Conv module is taken instead.
    """
    leaves = leaf_modules(model)
    acts = [n for n, m in leaves.items() if isinstance(m, NONLINEARITIES)]
    head, _ = head_module(model)
    if not acts:
        return [n for n, m in leaves.items() if isinstance(m, WEIGHTED)]
    return [*acts, head] if head not in acts else acts


def select_layers(model: nn.Module, layers: LayerSelector = "auto") -> list[str]:
    """Turn a layer selector into module names, in the model's registration order.

    ``layers`` may be ``"auto"`` (see :func:`auto_layers`), a module name, a list
    of names, a module type or tuple of types, or ``callable(name, module) -> bool``.
    ``None`` or ``[]`` selects nothing (a latent pass).

    Examples
    --------
    >>> from modeldx.zoo import LeNet5
    >>> select_layers(LeNet5(), nn.Linear)
    ['fc1', 'fc2', 'fc3']
    """
    if layers is None:
        return []
    if isinstance(layers, str) and layers == "auto":
        return auto_layers(model)
    modules = dict(model.named_modules())
    modules.pop("", None)
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, type) or (isinstance(layers, tuple) and layers
                                    and all(isinstance(t, type) for t in layers)):
        chosen = [n for n, m in leaf_modules(model).items() if isinstance(m, layers)]
        if not chosen:
            raise LayerNotFoundError(f"{type(model).__name__} has no module of type {layers}")
        return chosen
    if callable(layers):
        return [n for n, m in modules.items() if layers(n, m)]
    if isinstance(layers, Sequence):
        names = list(layers)
        for name in names:
            if not isinstance(name, str):
                raise InvalidParameterError(f"layer names must be strings. Got {name!r}.")
            if name not in modules:
                close = difflib.get_close_matches(name, modules, n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise LayerNotFoundError(
                    f"{type(model).__name__} has no layer {name!r}{hint} Its layers are: "
                    f"{', '.join(modules)}"
                )
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"layer names must be unique. Got {names}.")
        order = list(modules)
        return sorted(names, key=order.index)
    raise InvalidParameterError(
        "The 'layers' parameter must be 'auto', a name, a list of names, a module type or a "
        f"callable(name, module). Got {layers!r} instead."
    )
