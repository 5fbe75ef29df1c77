"""The layer DAG: how a model's stored layers connect, and how strongly (CNNVis' edges).

Two stored layers are joined by an edge when data flows from one to the other
without passing through a third stored layer. The edge's ``via`` is the
weighted module (``nn.Linear``, ``nn.Conv1d/2d/3d``) on the way, or
``"identity"`` when none is (a ResNet skip ``relu(bn(conv(x)) + x)`` gives
both an edge via ``conv`` and an identity edge). Everything else on the way —
BatchNorm, pooling, activations, dropout, flatten and reshapes — passes
channels through.

Strength (Liu et al.'s CNNVis): for a Linear ``strength[t, s] = |W[t, s]|``,
summed over a source channel's positions when the Linear reads a flattened
conv map; for a conv, ``|W[t, s]|`` summed over the kernel (grouped convs fill
only their groups); for an identity skip, the identity matrix. ``signed`` is
the same sum without the absolute value. Two choices of ours:

- A BatchNorm in eval form is a per-channel scale ``gamma / sqrt(var + eps)``;
  it scales the rows of ``strength`` by its absolute value and those of
  ``signed`` by its value, so that a conv edge and the identity edge meeting it
  at a residual add compare.
- Several weighted modules in a row with no stored layer between them compose
  by matrix product (``strength = |W2| @ |W1|``, ``signed = W2 @ W1``, each at
  channel level); ``via`` then names them in order, joined by ``" > "``.

The dataflow comes from ``torch.fx.symbolic_trace``; a model fx cannot trace
(control flow on tensor values) is run once on ``example_input`` and recorded
op by op instead (a ``TorchFunctionMode`` and module hooks); ``notes`` says
which was used and what was left out. Both give ops in execution order, so a
module called twice becomes ``name#0``, ``name#1`` as in a store.

Dense and conv layers are supported; a Linear applied to a sequence
(batch, time, features) stops the paths through it, with a note.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from modeldx.capture.hooks import hook_group
from modeldx.capture.layers import split_call
from modeldx.capture.probe import output_tensor
from modeldx.errors import InputShapeError, InvalidParameterError, LayerNotFoundError

WEIGHTED_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_ADD = {"add", "iadd", "add_", "__add__", "__iadd__", "__radd__"}
_SUB = {"sub", "isub", "sub_", "__sub__", "__isub__"}
_CAT = {"cat", "concat", "concatenate"}


@dataclass
class LayerEdge:
    """Data flow from stored layer ``source`` to stored layer ``target``.

    ``strength`` and ``signed`` are (target neurons, source neurons) float64;
    ``strength`` is >= 0.
    """

    source: str
    target: str
    via: str  # module path of the weighted module(s), or "identity"
    strength: np.ndarray
    signed: np.ndarray


@dataclass
class LayerGraph:
    """Stored layers as a DAG: ``nodes`` in topological order, ``depth`` their drawing column."""

    nodes: list[str]
    depth: dict[str, int]
    edges: list[LayerEdge]
    notes: list[str] = field(default_factory=list)

    def edges_into(self, layer: str) -> list[LayerEdge]:
        return [e for e in self.edges if e.target == layer]


# --- the op graph both tracers produce ---------------------------------------------------------

@dataclass
class _Op:
    kind: str  # "input", "module", "call", "stored" (a stored layer's output), "const"
    name: str  # module path, function name or stored layer name
    inputs: list[int]  # ops whose tensors it reads, in argument order
    shape: tuple[int, ...] | None
    module: nn.Module | None = None
    dim: int | None = None  # torch.cat's dim


@dataclass
class _Path:
    """A linear map from a stored layer's channels to the channels of a tensor on its way."""

    source: str
    via: tuple[str, ...]
    strength: np.ndarray | None  # rows: channels here, cols: source channels; None = identity
    signed: np.ndarray | None
    width: int  # channels here (rows)
    positions: int = 1  # features per channel when the map is flattened


def _stored(x, name):  # marks a stored layer's output in an fx graph; identity at run time
    return x


class _Tracer(fx.Tracer):
    """torch.nn modules are leaves (fx's default); every call of a stored module gets a marker."""

    def __init__(self, wanted: set[str]) -> None:
        super().__init__()
        self.wanted = wanted
        self.counts: dict[str, int] = {}

    def call_module(self, m, forward, args, kwargs):
        path = self.path_of_module(m)
        index = self.counts.get(path, 0)
        self.counts[path] = index + 1
        out = super().call_module(m, forward, args, kwargs)
        for name in (f"{path}#{index}", path):
            if name in self.wanted and isinstance(out, fx.Proxy):
                return self.create_proxy("call_function", _stored, (out, name), {})
        return out


def _fn_name(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", str(target))


def _fx_ops(model: nn.Module, wanted: set[str], example: tuple) -> list[_Op]:
    tracer = _Tracer(wanted)
    graph = tracer.trace(model)
    gm = fx.GraphModule(model, graph)
    from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

    ShapeProp(gm).propagate(*example)
    ops: list[_Op] = []
    index: dict[fx.Node, int] = {}
    for node in graph.nodes:
        if node.op == "output":
            continue
        meta = node.meta.get("tensor_meta")
        shape = tuple(meta.shape) if isinstance(meta, TensorMetadata) else None
        reads: list[fx.Node] = []
        fx.node.map_arg((node.args, node.kwargs), lambda n, acc=reads: acc.append(n))
        inputs = [index[n] for n in reads if n in index]
        if node.op == "placeholder":
            op = _Op("input", node.target, [], shape)
        elif node.op == "get_attr":
            op = _Op("const", node.target, [], shape)
        elif node.op == "call_module":
            op = _Op("module", node.target, inputs, shape, gm.get_submodule(node.target))
        elif node.target is _stored:
            op = _Op("stored", node.args[1], inputs[:1], shape)
        else:
            name = _fn_name(node.target)
            dim = None
            if name in _CAT:
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            op = _Op("call", name, inputs, shape, dim=dim)
        index[node] = len(ops)
        ops.append(op)
    return ops


def _is_leaf(m: nn.Module) -> bool:  # fx's default leaf rule
    return (m.__module__.startswith("torch.nn") or m.__module__.startswith("torch.ao.nn")) \
        and not isinstance(m, nn.Sequential)


class _Recorder(TorchFunctionMode):
    """Records every torch op run outside a leaf module, with the ops that made its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[_Op] = []
        self.producer: dict[int, int] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while recording
        self.inside = 0  # depth of leaf modules being run
        self.pending: list[int] = []  # the ops a leaf module being run reads

    def produce(self, tensor: torch.Tensor, op: _Op) -> None:
        self.producer[id(tensor)] = len(self.ops)
        self.alive.append(tensor)
        self.ops.append(op)

    def reads(self, tree) -> list[int]:
        leaves, _ = tree_flatten(tree)
        return [self.producer[id(t)] for t in leaves
                if isinstance(t, torch.Tensor) and id(t) in self.producer]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.inside == 0:
            tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
            if tensors:
                name = _fn_name(func)
                dim = None
                if name in _CAT:
                    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
                inputs = self.reads((args, kwargs))
                for t in tensors:
                    self.produce(t, _Op("call", name, inputs, tuple(t.shape), dim=dim))
        return out


def _runtime_ops(model: nn.Module, wanted: set[str], example: tuple) -> list[_Op]:
    rec = _Recorder()
    counts: dict[str, int] = {}
    for i, x in enumerate(example):
        if isinstance(x, torch.Tensor):
            rec.produce(x, _Op("input", f"input{i}", [], tuple(x.shape)))

    def pre(name, leaf):
        def hook(module, inputs):
            if leaf:
                if rec.inside == 0:
                    rec.pending = rec.reads(inputs)
                rec.inside += 1
        return hook

    def post(name, leaf):
        def hook(module, inputs, output):
            if leaf:
                rec.inside -= 1
            out = output_tensor(output)
            if out is None or rec.inside:
                return
            if leaf:
                rec.produce(out, _Op("module", name, rec.pending, tuple(out.shape), module))
            index = counts.get(name, 0)
            counts[name] = index + 1
            for key in (f"{name}#{index}", name):
                if key in wanted:
                    rec.produce(out, _Op("stored", key, rec.reads(out), tuple(out.shape)))
                    break
        return hook

    with hook_group() as hooks:
        for name, m in model.named_modules():
            if not name:
                continue
            leaf = _is_leaf(m)
            if leaf or name in wanted or any(split_call(w)[0] == name for w in wanted):
                hooks.add(m.register_forward_pre_hook(pre(name, leaf)))
                hooks.add(m.register_forward_hook(post(name, leaf)))
        with torch.no_grad(), rec:
            model(*example)
    return rec.ops


# --- propagating channel maps along the op graph ---------------------------------------------

def _channels(shape: tuple[int, ...] | None) -> int | None:
    return None if shape is None or len(shape) < 2 else int(shape[1])


def _compose(path: _Path, m_abs: np.ndarray, m_signed: np.ndarray, via: str | None) -> _Path:
    strength = m_abs if path.strength is None else m_abs @ path.strength
    signed = m_signed if path.signed is None else m_signed @ path.signed
    return _Path(path.source, path.via + ((via,) if via else ()), strength, signed, m_abs.shape[0])


def _weight_maps(module: nn.Module, path: _Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(|W|, W) summed to (out channels, path channels), or None when they do not fit."""
    w = module.weight.detach().cpu().numpy().astype(np.float64)
    if isinstance(module, nn.Linear):
        if w.shape[1] != path.width * path.positions:
            return None
        w = w.reshape(w.shape[0], path.width, path.positions)
        return np.abs(w).sum(axis=2), w.sum(axis=2)
    if path.positions != 1 or module.in_channels != path.width:
        return None
    groups = module.groups
    out_g, in_g = module.out_channels // groups, module.in_channels // groups
    k = w.reshape(w.shape[0], in_g, -1)
    m_abs = np.zeros((module.out_channels, module.in_channels))
    m_signed = np.zeros_like(m_abs)
    for g in range(groups):  # a grouped conv connects only its own group's channels
        rows, cols = slice(g * out_g, (g + 1) * out_g), slice(g * in_g, (g + 1) * in_g)
        m_abs[rows, cols] = np.abs(k[rows]).sum(axis=2)
        m_signed[rows, cols] = k[rows].sum(axis=2)
    return m_abs, m_signed


def _bn_scale(module: nn.Module) -> np.ndarray | None:
    if module.running_var is None:
        return None
    scale = 1.0 / torch.sqrt(module.running_var.detach().double() + module.eps)
    if module.weight is not None:
        scale = scale * module.weight.detach().double()
    return scale.cpu().numpy()


def _reshape(path: _Path, before: tuple[int, ...] | None, after: tuple[int, ...] | None
             ) -> _Path | None:
    """A channel-preserving op (pool, activation, flatten, view); None when channels mix."""
    if before is None or after is None:
        return None
    if len(before) >= 3 and len(after) >= 3 and before[1] == after[1]:
        return path
    if len(before) == 2 and len(after) == 2 and before[1] == after[1]:
        return path
    if len(before) >= 3 and len(after) == 2:  # flatten: the map's positions become features
        spatial = math.prod(before[2:])
        if after[1] == before[1] * spatial and path.positions == 1:
            return _Path(path.source, path.via, path.strength, path.signed, path.width, spatial)
        if after[1] == before[1]:  # global pool then squeeze
            return path
    if len(before) == 2 and len(after) >= 3 and path.positions == math.prod(after[2:]) \
            and before[1] == after[1] * path.positions:  # unflatten back to a map
        return _Path(path.source, path.via, path.strength, path.signed, path.width)
    return None


def _dense(matrix: np.ndarray | None, width: int) -> np.ndarray:
    return np.eye(width) if matrix is None else matrix


def _merge(paths: list[_Path]) -> list[_Path]:
    """Paths of one source through the same modules add up (a diamond that rejoins)."""
    out: dict[tuple[str, tuple[str, ...]], _Path] = {}
    for p in paths:
        key = (p.source, p.via)
        if key not in out:
            out[key] = p
            continue
        q = out[key]
        out[key] = _Path(p.source, p.via, _dense(q.strength, q.width) + _dense(p.strength, p.width),
                         _dense(q.signed, q.width) + _dense(p.signed, p.width), p.width, p.positions)
    return list(out.values())


def _step(op: _Op, ops: list[_Op], state: list[list[_Path]], notes: list[str]) -> list[_Path]:
    ins = [(state[i], ops[i].shape) for i in op.inputs]
    if op.kind == "module" and isinstance(op.module, WEIGHTED_TYPES):
        out = []
        shape = ins[0][1] if ins else None
        if shape is not None and isinstance(op.module, nn.Linear) and len(shape) != 2:
            notes.append(f"{op.name}: a Linear over a {len(shape)}-d tensor (a sequence) is not "
                         "supported; paths through it stop there")
            return []
        for path in (ins[0][0] if ins else []):
            maps = _weight_maps(op.module, path)
            if maps is None:
                notes.append(f"{op.name}: the map from {path.source} does not fit its weights "
                             f"({path.width} channels x {path.positions} positions); path dropped")
                continue
            out.append(_compose(path, *maps, op.name))
        return out
    if op.kind == "module" and isinstance(op.module, nn.modules.batchnorm._BatchNorm):
        scale = _bn_scale(op.module)
        out = []
        for path in (ins[0][0] if ins else []):
            if scale is None or len(scale) != path.width or path.positions != 1:
                out.append(path)
            else:
                out.append(_compose(path, np.diag(np.abs(scale)), np.diag(scale), None))
        return out
    if op.kind == "call" and op.name in _CAT and len(ins) > 1:
        shapes = [s for _, s in ins]
        if all(s is not None for s in shapes) and op.dim is not None and \
                op.dim % len(shapes[0]) == 1:
            offset, total, out = 0, sum(s[1] for s in shapes), []
            for paths, shape in ins:
                for p in paths:
                    if p.positions != 1:
                        continue
                    base_s, base_v = _dense(p.strength, p.width), _dense(p.signed, p.width)
                    s, v = np.zeros((total, base_s.shape[1])), np.zeros((total, base_s.shape[1]))
                    s[offset:offset + p.width], v[offset:offset + p.width] = base_s, base_v
                    out.append(_Path(p.source, p.via, s, v, total))
                offset += shape[1]
            return _merge(out)
    out = []
    negate = op.kind == "call" and op.name in _SUB and len(ins) == 2
    for k, (paths, shape) in enumerate(ins):
        for p in paths:
            q = _reshape(p, shape, op.shape)
            if q is None:
                notes.append(f"{op.name}: changes channels ({shape} -> {op.shape}); the path from "
                             f"{p.source} stops there")
                continue
            if negate and k == 1:
                q = _Path(q.source, q.via, q.strength, -_dense(q.signed, q.width), q.width, q.positions)
            out.append(q)
    return _merge(out)


def _edges(ops: list[_Op], notes: list[str]) -> tuple[list[str], list[LayerEdge]]:
    state: list[list[_Path]] = []
    nodes: list[str] = []
    edges: list[LayerEdge] = []
    for op in ops:
        if op.kind in ("input", "const"):
            state.append([])
            continue
        if op.kind != "stored":
            state.append(_step(op, ops, state, notes))
            continue
        width = _channels(op.shape)
        if width is None:
            raise LayerNotFoundError(f"stored layer {op.name!r} has no channel axis (shape {op.shape})")
        if op.name in nodes:
            raise InvalidParameterError(
                f"{op.name!r} runs more than once per forward; name its calls {op.name}#0, "
                f"{op.name}#1, ... as a store does")
        for p in state[op.inputs[0]] if op.inputs else []:
            if p.positions != 1 or p.width != width:
                notes.append(f"{p.source} -> {op.name}: {p.width} x {p.positions} channels do not "
                             f"match {width} neurons; edge left out")
                continue
            edges.append(LayerEdge(p.source, op.name, " > ".join(p.via) or "identity",
                                   _dense(p.strength, width), _dense(p.signed, width)))
        nodes.append(op.name)
        state.append([_Path(op.name, (), None, None, width)])
    return nodes, edges


def layer_graph(model: nn.Module, layers: Sequence, example_input) -> LayerGraph:
    """The DAG of ``layers`` (stored layer names, or a store's LayerSpecs) in ``model``.

    Parameters
    ----------
    model : nn.Module
        The model whose store holds ``layers``.
    layers : sequence of str or LayerSpec
        ``store.layers`` or ``store.manifest.layers``; a module called more than
        once is named per call, ``name#0``, ``name#1``.
    example_input : Tensor or tuple of Tensors
        One small batch the model accepts (a single item is enough).

    Returns
    -------
    LayerGraph
        Nodes in execution (topological) order, each node's depth (longest path
        from a layer with no incoming edge), the edges with their strengths.

    Examples
    --------
    >>> import torch
    >>> from modeldx.zoo import LeNet5
    >>> g = layer_graph(LeNet5(), ["act1", "act2", "act3", "act4", "fc3"], torch.zeros(1, 1, 28, 28))
    >>> [(e.source, e.target, e.via, e.strength.shape) for e in g.edges][:2]
    [('act1', 'act2', 'conv2', (16, 6)), ('act2', 'act3', 'fc1', (120, 16))]
    """
    names = [getattr(layer, "name", layer) for layer in layers]
    if not names or not all(isinstance(n, str) for n in names):
        raise InvalidParameterError(f"layers must be a non-empty list of layer names. Got {layers!r}.")
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules and split_call(n)[0] not in modules]
    if missing:
        raise LayerNotFoundError(f"{type(model).__name__} has no module {', '.join(map(repr, missing))}")
    example = tuple(example_input) if isinstance(example_input, list | tuple) else (example_input,)
    wanted = set(names)
    notes: list[str] = []
    was_training = model.training
    model.eval()  # BatchNorm's running statistics, dropout off
    try:
        try:
            ops = _fx_ops(model, wanted, example)
            notes.append("dataflow from torch.fx.symbolic_trace")
        except Exception as exc:  # noqa: BLE001 - any trace failure means: record a run instead
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            notes.append(f"torch.fx could not trace {type(model).__name__} ({reason}); dataflow "
                         "recorded from one forward pass of example_input instead")
            try:
                ops = _runtime_ops(model, wanted, example)
            except Exception as run_exc:  # noqa: BLE001 - the model's own error, said as ours
                shapes = [tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                          for x in example]
                raise InputShapeError(
                    f"{type(model).__name__} could not run on example_input {shapes}: "
                    f"{type(run_exc).__name__}: {run_exc}") from run_exc
        nodes, edges = _edges(ops, notes)
    finally:
        model.train(was_training)
    absent = [n for n in names if n not in nodes]
    if absent:
        raise LayerNotFoundError(
            f"{', '.join(map(repr, absent))} did not run in a forward pass of {type(model).__name__} "
            "(a module called several times is named per call: name#0, name#1, ...)")
    depth = {n: 0 for n in nodes}
    for n in nodes:  # nodes are in execution order, so sources come first
        for e in edges:
            if e.target == n:
                depth[n] = max(depth[n], depth[e.source] + 1)
    return LayerGraph(nodes, depth, edges, list(dict.fromkeys(notes)))
