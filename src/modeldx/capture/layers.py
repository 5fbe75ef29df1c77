"""One normaliser for "which layers": every entry point that takes ``layers`` uses it."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence

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


def head_module(model: nn.Module, calls: Mapping[str, int] | None = None) -> tuple[str, nn.Module]:
    """The last weighted leaf module (the classifier head), in registration order.

    With ``calls`` (module name -> times it ran, from a probe forward pass),
    only modules that ran are candidates.
    """
    heads = [(n, m) for n, m in leaf_modules(model).items() if isinstance(m, WEIGHTED)
             and (calls is None or calls.get(n, 0) > 0)]
    if not heads:
        raise LayerNotFoundError(
            f"{type(model).__name__} has no Linear or Conv module to take as its output layer; "
            "name the layers to capture explicitly"
        )
    return heads[-1]


def auto_layers(model: nn.Module, calls: Mapping[str, int] | None = None) -> list[str]:
    """Every nonlinearity module's output, plus the output layer (the logits).

    A model that applies its nonlinearities functionally (``F.relu``) has none to
    hook; then every Linear and Conv module is taken instead. With ``calls``
    (module name -> times it ran), modules that never ran are left out.
    """
    leaves = {n: m for n, m in leaf_modules(model).items()
              if calls is None or calls.get(n, 0) > 0}
    acts = [n for n, m in leaves.items() if isinstance(m, NONLINEARITIES)]
    head, _ = head_module(model, calls)
    if not acts:
        return [n for n, m in leaves.items() if isinstance(m, WEIGHTED)]
    return [*acts, head] if head not in acts else acts


def select_layers(model: nn.Module, layers: LayerSelector = "auto",
                  calls: Mapping[str, int] | None = None) -> list[str]:
    """Turn a layer selector into module names, in the model's registration order.

    ``layers`` may be ``"auto"`` (see :func:`auto_layers`), a module name, a list
    of names, a module type or tuple of types, or ``callable(name, module) -> bool``.
    ``None`` or ``[]`` selects nothing (a latent pass).

    With ``calls`` (module name -> times it ran in a probe forward pass, see
    :mod:`modeldx.capture.probe`) the answer names calls, not modules: modules
    that never ran are left out (a name given explicitly is an error), and a
    module that ran *k* > 1 times becomes ``name#0`` ... ``name#{k-1}``; a name
    may also pick one call, ``"relu#1"``.

    Examples
    --------
    >>> from modeldx.zoo import LeNet5
    >>> select_layers(LeNet5(), nn.Linear)
    ['fc1', 'fc2', 'fc3']
    """
    if calls is not None:
        return _select_calls(model, layers, calls)
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


def split_call(name: str) -> tuple[str, int | None]:
    """``"relu#1"`` -> ``("relu", 1)``; ``"relu"`` -> ``("relu", None)``."""
    base, sep, index = name.rpartition("#")
    if sep and index.isdigit():
        return base, int(index)
    return name, None


def _select_calls(model: nn.Module, layers: LayerSelector, calls: Mapping[str, int]) -> list[str]:
    modules = dict(model.named_modules())
    picked: dict[str, int | None] = {}  # module -> one call, or None for all its calls
    if isinstance(layers, str) and layers != "auto":
        layers = [layers]
    if isinstance(layers, Sequence) and not isinstance(layers, str):
        plain = []
        for name in layers:
            base, index = split_call(name) if isinstance(name, str) else (name, None)
            if index is not None and base in modules and name not in modules:
                ran = calls.get(base, 0)
                if index >= ran:
                    raise LayerNotFoundError(
                        f"{name!r} asks for call {index} of {base!r}, which ran {ran} times "
                        f"in one forward pass; its calls are {base}#0 .. {base}#{max(ran - 1, 0)}"
                    )
                if name in picked:
                    raise InvalidParameterError(f"layer names must be unique. Got {list(layers)}.")
                picked[name] = index
            else:
                plain.append(name)
        names = select_layers(model, plain) if plain else []
        never = [n for n in names if calls.get(n, 0) == 0]
        if never:
            raise LayerNotFoundError(
                f"{', '.join(map(repr, never))} never ran in a forward pass of "
                f"{type(model).__name__} (a module whose weights are applied functionally, such "
                "as MultiheadAttention's out_proj, never runs as a module); choose modules that "
                "run, e.g. their parent"
            )
    elif isinstance(layers, str):  # "auto"
        names = auto_layers(model, calls)
    else:
        names = [n for n in select_layers(model, layers) if calls.get(n, 0) > 0]
        if not names and layers is not None:
            raise LayerNotFoundError(
                f"no module of {type(model).__name__} chosen by {layers!r} ran in a forward pass")
    for n in names:
        picked[n] = None
    order = {n: i for i, n in enumerate(modules)}
    out = []
    for key in sorted(picked, key=lambda k: (order[split_call(k)[0] if k not in order else k],
                                             split_call(k)[1] or 0)):
        base = key if key in modules else split_call(key)[0]
        if picked[key] is None and calls[base] > 1:
            out += [f"{base}#{i}" for i in range(calls[base])]
        else:
            out.append(key)
    if len(set(out)) != len(out):
        raise InvalidParameterError(f"layers must not name one call twice. Got {out}.")
    return out
