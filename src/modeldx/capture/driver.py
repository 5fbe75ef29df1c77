"""The capture driver: run a model over a data set and write what it computes to a store.

One pass per item chunk: every batch of the chunk goes through the model with
hooks on the chosen layers; the chunk's activations (and gradients, the latent
vector, class probabilities and item rows) are then handed to a writer thread
so that encoding and disk I/O overlap the next chunk's compute. Batches are read
ahead of the model (:class:`modeldx.data.fetch.BatchFetcher`), whole where the
data set allows; on CUDA through pinned memory both ways.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cloudpickle
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.graph import GradientEdge, get_gradient_edge
from tqdm.auto import tqdm

from modeldx import __version__
from modeldx._params import Interval, OneOf, check_params
from modeldx.capture.hooks import hook_group
from modeldx.capture.layers import LayerSelector, head_module, select_layers, split_call
from modeldx.capture.output import OutputPicker, check_picker, pick_logits
from modeldx.capture.probe import Call, call_counts, check_kinds, output_tensor, probe_calls
from modeldx.capture.reduce import REDUCTIONS, neuron_count, reduce_output
from modeldx.data.arrays import as_dataset
from modeldx.data.fetch import BatchFetcher
from modeldx.device import resolve_device
from modeldx.errors import (
    EmptyDatasetError,
    InputShapeError,
    InvalidLabelError,
    InvalidParameterError,
    LayerNotFoundError,
    ModeldxError,
    ModelOutputError,
    NonFiniteActivationError,
    StoreError,
    WorkerLostError,
)
from modeldx.fingerprint import model_fingerprint
from modeldx.store.encoding import ENCODINGS
from modeldx.store.fs import StoreFS
from modeldx.store.manifest import LayerSpec, Manifest
from modeldx.store.store import ChunkWriter, Store, StoreWriter

_LIMITS = {
    "reduction": OneOf(*REDUCTIONS),
    "grad_reduction": OneOf(*REDUCTIONS),
    "encoding": OneOf(*ENCODINGS),
    "batch_size": Interval(int, 1, None),
    "chunk_items": [Interval(int, 1, None), OneOf("auto")],
    "loader_workers": [Interval(int, 0, None), None],
    "gradients": bool,
    "overwrite": bool,
    "progress": bool,
    "chunk_order": OneOf("ascending", "random"),
    "seed": Interval(int, 0, None),
    "engine": OneOf("local", "dask"),
}


def _engine(engine, scheduler, workers):
    """``(name, cluster)``: ``engine`` as ``"local"``/``"dask"``, and the ``DaskEngine`` to run on."""
    from modeldx.engine.base import _is_dask_client
    from modeldx.engine.dask_engine import DaskEngine

    if _is_dask_client(engine):
        engine = DaskEngine(engine, scheduler=scheduler, workers=workers)
    if isinstance(engine, DaskEngine):
        if scheduler is not None or workers is not None:
            raise InvalidParameterError(
                f"pass a DaskEngine, or scheduler/workers to connect with, not both. Got "
                f"engine={engine!r}, scheduler={scheduler!r}, workers={workers!r}.")
        return "dask", engine
    check_params("capture", {"engine": engine}, _LIMITS)
    if engine == "local":
        if scheduler is not None or workers is not None:
            raise InvalidParameterError(
                "scheduler and workers are settings of engine='dask' (chunks captured by the "
                "workers of a Dask cluster); pass engine='dask' with them. Got "
                f"scheduler={scheduler!r}, workers={workers!r}.")
        return "local", None
    return "dask", DaskEngine(scheduler=scheduler, workers=workers)


@dataclass(frozen=True)
class _Layer:
    """One captured layer: a module, or one call of a module that runs more than once."""

    name: str  # what the store calls it: the module name, or "<module>#<call>"
    module: str
    call: int  # which call of the module in one forward
    kind: str  # "dense", "conv" or "sequence"
    time_major: bool  # the module returns (time, batch, features)
    raw_shape: tuple[int, ...]  # one item's output, batch first
    reduction: str


class _Recorder:
    """Collects each hooked layer's reduced output (and gradient) for the current batch."""

    def __init__(self, layers: list[_Layer], grad_reduction: str, gradients: bool) -> None:
        self.layers = layers
        self.grad_reduction = grad_reduction
        self.gradients = gradients
        self.acts: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        # what gradients are taken with respect to: a graph edge or a leaf tensor
        self.outputs: dict[str, GradientEdge | torch.Tensor] = {}
        self.calls: dict[str, int] = {}
        self.latent: torch.Tensor | None = None

    def reset(self) -> None:
        for d in (self.acts, self.grads, self.outputs, self.calls):
            d.clear()
        self.latent = None

    def forward_hook(self, module_name: str, by_call: dict[int, _Layer]):
        def hook(module, inputs, output):
            index = self.calls.get(module_name, 0)
            self.calls[module_name] = index + 1
            layer = by_call.get(index)
            if layer is None:
                return None
            out = output_tensor(output)
            seq = out.transpose(0, 1) if layer.time_major else out
            act = reduce_output(seq.detach(), layer.reduction, layer.kind).float()
            if act.untyped_storage().data_ptr() == out.untyped_storage().data_ptr():
                act = act.clone()  # a dense output: an in-place op later must not change it
            self.acts[layer.name] = act
            if not self.gradients:
                return None
            if out.requires_grad:
                # the edge, not the tensor: an in-place op later in the forward (ReLU(inplace))
                # rebases the tensor's history, and its gradient would be the op's output's
                self.outputs[layer.name] = get_gradient_edge(out)
                return None
            # a frozen model (or one frozen up to here): differentiate with respect to a
            # leaf standing in for this output; the clone lets later in-place ops run
            leaf = out.detach().requires_grad_()
            self.outputs[layer.name] = leaf
            new = leaf.clone()
            if isinstance(output, torch.Tensor):
                return new
            return type(output)([new, *output[1:]])

        return hook

    def take_gradients(self, loss: torch.Tensor) -> None:
        """Gradients of ``loss`` w.r.t. the captured outputs only: no parameter's ``.grad`` changes."""
        if not self.outputs:
            return
        names = list(self.outputs)
        grads = torch.autograd.grad(loss, [self.outputs[n] for n in names], allow_unused=True)
        by_name = {layer.name: layer for layer in self.layers}
        for name, grad in zip(names, grads, strict=True):
            if grad is None:
                continue
            layer = by_name[name]
            grad = grad.transpose(0, 1) if layer.time_major else grad
            # a layer kept whole keeps its gradient whole: grads/<layer> matches acts/<layer>
            red = "none" if layer.reduction == "none" else self.grad_reduction
            self.grads[name] = reduce_output(grad, red, layer.kind).float()

    def latent_input_hook(self, module, inputs):
        self.latent = inputs[0].detach().flatten(1).float()

    def latent_output_hook(self, module_name: str, call: int | None):
        """Keep call ``call`` of the module's output as the latent vector (``None``: the last)."""
        key = f"latent:{module_name}"  # counted apart from the layer hooks on the same module

        def hook(module, inputs, output):
            index = self.calls.get(key, 0)
            self.calls[key] = index + 1
            if call is None or index == call:
                self.latent = output_tensor(output).detach().flatten(1).float()

        return hook


def _item_ids(items, n_total: int) -> np.ndarray:
    if items is None:
        return np.arange(n_total, dtype=np.int64)
    ids = np.asarray(items)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise InvalidParameterError(f"items must be a 1-d array of integer item ids. Got {ids!r:.80}.")
    if ids.size == 0:
        raise InvalidParameterError("items must hold at least one item id. Got an empty array.")
    bad = ids[(ids < 0) | (ids >= n_total)]
    if bad.size:
        raise InvalidParameterError(
            f"items must be ids in [0, {n_total}) of the data set. Got {bad[:5].tolist()}."
        )
    if np.unique(ids).size != ids.size:
        raise InvalidParameterError("items must not repeat an id.")
    return np.sort(ids).astype(np.int64)


def _check_finite(name: str, block: np.ndarray, item_ids: np.ndarray, chunk: int) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise NonFiniteActivationError(
            f"{name} holds {int(bad.sum())} NaN or infinite values for {rows.size} items "
            f"(first item ids: {item_ids[rows[:5]].tolist()}) in chunk {chunk}; nothing of this "
            "chunk was written, and the chunks before it stay readable"
        )


def _check_labels(labels: np.ndarray, num_classes: int, item_ids: np.ndarray) -> None:
    """Labels must index the model's logits; -100 (``ignore_index``) is refused too."""
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        values, ids = labels[bad], item_ids[bad]
        what = f"label {values[0]}" if values.size == 1 else f"labels {values[:5].tolist()}"
        raise InvalidLabelError(
            f"{what} for item ids {ids[:5].tolist()}{' ...' if ids.size > 5 else ''} "
            f"({values.size} items) is not a class index in [0, {num_classes}): the model returns "
            f"{num_classes} logits; fix the labels (or the model's output size) and capture again"
        )


def _runs(name: str, counts: Mapping[str, int]) -> bool:
    """Whether ``name`` (a module, or ``module#k``) ran in the probe forward pass."""
    if counts.get(name, 0) > 0:
        return True
    module, index = split_call(name)
    return index is not None and index < counts.get(module, 0)


@contextlib.contextmanager
def _module_attention() -> Iterator[None]:
    """Turn off PyTorch's fused attention fast path, which skips the submodules' forward
    (and so their hooks) in eval mode; restored on exit."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    was = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(was)


class _ToHost:
    """Device-to-host copies of a chunk's blocks.

    On CUDA each batch's tensors are copied on a side stream into pinned host
    memory as soon as the batch's compute is queued, so the copies run while the
    next batch computes; :meth:`wait` synchronises once per chunk. On CPU the
    tensors are kept as they are (what ``.cpu()`` returns there).
    """

    def __init__(self, device: torch.device) -> None:
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    def __call__(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.stream is None:
            return {k: t.cpu() for k, t in tensors.items()}
        self.stream.wait_stream(torch.cuda.current_stream(self.stream.device))
        out = {}
        with torch.cuda.stream(self.stream):
            for k, t in tensors.items():
                out[k] = t.to("cpu", non_blocking=True)  # a pinned destination, asynchronous
                t.record_stream(self.stream)  # its memory is not reused before the copy is done
        return out

    def wait(self) -> None:
        if self.stream is not None:
            self.stream.synchronize()


class _Capture:
    """One capture run; see :func:`capture` for the parameters."""

    def __init__(self, model: nn.Module, data, path, *, layers: LayerSelector, reduction,
                 gradients: bool, grad_reduction: str, items, encoding: str, batch_size: int,
                 chunk_items: int, device, overwrite: bool, progress: bool,
                 latent_layer: str | None, output: OutputPicker, kinds,
                 chunk_order: str = "ascending", seed: int = 0, engine: str = "local",
                 scheduler: str | None = None, workers: int | None = None,
                 loader_workers: int | None = None, cluster=None) -> None:
        # what a worker needs to build its own copy of this capture (see _WorkerJob)
        self.settings = dict(layers=layers, reduction=reduction, gradients=gradients,
                             grad_reduction=grad_reduction, items=items, encoding=encoding,
                             batch_size=batch_size, chunk_items=chunk_items, device=device,
                             overwrite=overwrite, progress=False, latent_layer=latent_layer,
                             output=output, kinds=kinds, loader_workers=0)
        self.model = model
        self.ds = as_dataset(data)
        # a DataLoader passed as data lends its num_workers; the argument overrides it
        self.loader_workers = (getattr(self.ds, "workers", 0) if loader_workers is None
                               else loader_workers)
        self._fetcher: BatchFetcher | None = None
        if len(self.ds) == 0:
            raise EmptyDatasetError(
                f"the data set {getattr(self.ds, 'name', type(self.ds).__name__)!r} has no items; "
                "there is nothing to capture"
            )
        self.path = path
        self.selector = layers
        # a bad name fails here, before the model runs ("relu#1" names a call of relu)
        if isinstance(layers, str) and layers != "auto":
            select_layers(model, split_call(layers)[0])
        elif isinstance(layers, list | tuple) and all(isinstance(n, str) for n in layers):
            select_layers(model, list(dict.fromkeys(split_call(n)[0] for n in layers)))
        else:
            select_layers(model, layers)
        self.reduction = reduction
        if not isinstance(reduction, Mapping):
            check_params("capture", {"reduction": reduction}, _LIMITS)
        else:
            for r in reduction.values():
                check_params("capture", {"reduction": r}, _LIMITS)
        self.kinds = check_kinds(kinds)
        self.output = check_picker(output)
        self.gradients = gradients
        self.grad_reduction = grad_reduction
        self.item_ids = _item_ids(items, len(self.ds))
        self.encoding = encoding
        self.batch_size = batch_size
        self.chunk_items = chunk_items
        # on a cluster the coordinator only probes the model (on its CPU); each worker
        # resolves ``device`` on its own machine
        self.device = resolve_device(device) if engine == "local" else torch.device("cpu")
        self.chunk_order = chunk_order
        self.seed = seed
        self.engine = engine
        self.scheduler = scheduler
        self.workers = workers
        self.cluster = cluster  # the DaskEngine that engine="dask" runs on
        self.overwrite = overwrite
        self.progress = progress
        self.chunk_order = chunk_order
        self.seed = seed
        self.latent_layer = latent_layer
        if latent_layer not in (None, "auto"):
            select_layers(model, [split_call(latent_layer)[0]])  # validates the name
        self.modules = dict(model.named_modules())
        floats = [p.dtype for p in model.parameters() if p.is_floating_point()]
        self.float_dtype = floats[0] if floats else torch.float32
        self.layers: list[_Layer] = []
        self._discovered = False

    # --- model execution -------------------------------------------------------
    def _inputs(self, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return self._to_device(*self.ds.get_batch(ids))

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # integers (token ids) keep their dtype; floats take the model's. From pinned memory
        # (a CUDA device) the copies are asynchronous and overlap the compute queued before them
        dtype = self.float_dtype if x.is_floating_point() else None
        return (x.to(self.device, dtype=dtype, non_blocking=True),
                y.to(self.device, non_blocking=True))

    def _batches(self, ids: np.ndarray):
        """The chunk's batches as ``(ids, inputs, labels)``, each fetched while the one
        before it runs; inputs and labels still on the host."""
        if self._fetcher is None:
            self._fetcher = BatchFetcher(self.ds, workers=self.loader_workers,
                                         pin=self.device.type == "cuda")
        plan = [ids[b:b + self.batch_size] for b in range(0, ids.size, self.batch_size)]
        for batch, (x, y) in zip(plan, self._fetcher.batches(plan), strict=True):
            yield batch, x, y

    def _close_fetcher(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()
            self._fetcher = None

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        logits = pick_logits(self.model(x), self.output)
        if logits.dim() != 2:
            raise InputShapeError(
                f"the model must return class scores of shape (batch, classes); it returned "
                f"{tuple(logits.shape)} for inputs of shape {tuple(x.shape)}"
            )
        if logits.shape[1] < 2:
            raise ModelOutputError(
                f"the model returns {logits.shape[1]} logit per item; modeldx needs one logit per "
                "class (predictions, confidences and losses are a softmax over them). For a "
                "binary model with one output z, return torch.cat([-z, z], 1) / 2 or pass "
                "output=lambda z: torch.cat([torch.zeros_like(z), z], 1)"
            )
        return logits

    def _run_batch(self, rec: _Recorder, ids: np.ndarray,
                   fetched: tuple[torch.Tensor, torch.Tensor] | None = None):
        """Run one batch (``fetched``: its host inputs and labels, else read here)."""
        x_host, y_host = fetched if fetched is not None else self.ds.get_batch(ids)
        x, y = self._to_device(x_host, y_host)
        rec.reset()
        with torch.set_grad_enabled(self.gradients):
            logits = self._logits(x)
            # checked before the loss: an out-of-range label is a device-side assert on CUDA;
            # on the host copy, so that the check does not wait for the device
            _check_labels(y_host.cpu().numpy(), logits.shape[1], ids)
            changed = {m: rec.calls.get(m, 0) for m, n in self._expected_calls.items()
                       if rec.calls.get(m, 0) != n}
            if changed:
                raise InvalidParameterError(
                    f"modules ran another number of times for items {ids[:5].tolist()} than in the "
                    f"probe forward pass on the first items: "
                    + ", ".join(f"{m!r} {rec.calls.get(m, 0)} instead of {self._expected_calls[m]}"
                                for m in changed)
                    + " (the model's control flow depends on its input, so a call's number does not "
                    "name one computation); capture other layers"
                )
            missing = [layer.name for layer in self.layers if layer.name not in rec.acts]
            if missing:
                raise InvalidParameterError(
                    f"layers {missing} produced no output for items {ids[:5].tolist()} (they ran "
                    "in the probe forward pass on the first items: the model's control flow "
                    "depends on its input); capture other layers"
                )
            losses = F.cross_entropy(logits, y, reduction="none")
            if self.gradients:
                rec.take_gradients(losses.sum())
        probs = torch.softmax(logits.detach().float(), dim=1)
        conf, pred = probs.max(dim=1)
        return y_host, probs, conf, pred, losses.detach()

    def _probe_ids(self) -> np.ndarray:
        return self.item_ids[: min(2, self.item_ids.size)]

    def _model_error(self, exc: RuntimeError) -> InputShapeError:
        x, _ = self.ds.get_batch(self._probe_ids())
        hint = ("; integer inputs are passed as they are (token ids): give the model float "
                "inputs if it expects them") if not x.is_floating_point() else ""
        return InputShapeError(
            f"the model could not run on a batch of inputs of shape {tuple(x.shape)} "
            f"(dtype {x.dtype}): {exc}{hint}"
        )

    def _discover(self) -> list[_Layer]:
        """One forward pass with every module hooked: choose layers among the calls that ran."""
        def forward():
            x, _ = self._inputs(self._probe_ids())
            with torch.set_grad_enabled(self.gradients):
                self._logits(x)

        try:
            calls = probe_calls(self.model, forward, self.kinds)
        except RuntimeError as exc:
            raise self._model_error(exc) from exc
        counts = call_counts(calls)
        unknown = [k for k in self.kinds if not _runs(k, counts)]
        if unknown:
            raise LayerNotFoundError(
                f"kinds names modules that do not run in {type(self.model).__name__}: {unknown}")
        names = select_layers(self.model, self.selector, counts)
        by_key = {(c.module, c.index): c for c in calls}
        self.head = None
        if self.latent_layer in (None, "auto"):
            self.head = head_module(self.model, counts)[0]
        else:
            select_layers(self.model, [self.latent_layer], counts)  # it must run
        layers = []
        for name in names:
            module, index = split_call(name)
            if module not in self.modules or (name in self.modules and index is not None):
                module, index = name, None
            call: Call = by_key[(module, index or 0)]
            if call.shape is None:
                raise InvalidParameterError(
                    f"layer {name!r} returns no tensor (nor a tuple starting with one); choose "
                    "a module whose output is a tensor"
                )
            layers.append(_Layer(name, module, index or 0, call.kind, call.time_major,
                                 tuple(call.shape[1:]), self._reduction(name, module, call.kind)))
        # a module must run as often in every batch as in the probe: otherwise "call #k" would
        # mean another computation for some items, or a call would be dropped in silence
        self._expected_calls = {layer.module: counts[layer.module] for layer in layers}
        if isinstance(self.reduction, Mapping):
            known = {n for layer in layers for n in (layer.name, layer.module)}
            unknown = set(self.reduction) - known
            if unknown:
                raise InvalidParameterError(
                    f"reduction names layers not captured: {sorted(unknown)}; the layers are "
                    f"{[layer.name for layer in layers]}")
        return layers

    def _reduction(self, name: str, module: str, kind: str) -> str:
        r = self.reduction
        red = r.get(name, r.get(module, "max")) if isinstance(r, Mapping) else r
        if kind == "dense":
            return "none"
        for what, value in (("reduction", red), ("grad_reduction", self.grad_reduction)):
            if value == "last" and kind != "sequence" and (what == "reduction" or self.gradients):
                raise InvalidParameterError(
                    f"{what}='last' is for sequence outputs (batch, time, features); layer "
                    f"{name!r} is a {kind} map. Use 'max' or 'mean', or a dict per layer"
                )
        return red

    def _hooked(self, rec: _Recorder):
        group = contextlib.ExitStack()
        hooks = group.enter_context(hook_group())
        # the batch fetcher's thread or worker processes live as long as the hooks: one run
        group.callback(self._close_fetcher)
        by_module: dict[str, dict[int, _Layer]] = {}
        for layer in self.layers:
            by_module.setdefault(layer.module, {})[layer.call] = layer
        for module, by_call in by_module.items():
            hooks.add(self.modules[module].register_forward_hook(rec.forward_hook(module, by_call)))
        if self.head is not None:
            hooks.add(self.modules[self.head].register_forward_pre_hook(rec.latent_input_hook))
        else:
            module, call = split_call(self.latent_layer)
            if self.latent_layer in self.modules:
                module, call = self.latent_layer, None
            hooks.add(self.modules[module].register_forward_hook(rec.latent_output_hook(module, call)))
        return group

    def _probe(self, rec: _Recorder) -> dict:
        """Run the first items with the capture's hooks: check what comes out and learn sizes."""
        ids = self._probe_ids()
        try:
            _, probs, *_ = self._run_batch(rec, ids)
        except RuntimeError as exc:
            raise self._model_error(exc) from exc
        names = [layer.name for layer in self.layers]
        if self.gradients:
            no_grad = [n for n in names if n not in rec.grads]
            if no_grad:
                raise InvalidParameterError(
                    f"no gradient reaches layers {no_grad}; capture them with gradients=False"
                )
        labels = getattr(self.ds, "labels_of", lambda ids: None)(self.item_ids)
        if labels is not None:  # every label, before anything is written
            _check_labels(np.asarray(labels), probs.shape[1], self.item_ids)
        return {"num_classes": probs.shape[1], "latent_dim": rec.latent.shape[1]}

    def _chunk_items(self, columns: int) -> int:
        if self.chunk_items != "auto":
            return self.chunk_items
        fit = (16 << 20) // (4 * max(columns, 1))
        return int(min(10_000, max(self.batch_size, fit // self.batch_size * self.batch_size)))

    def _manifest(self, probe: dict) -> tuple[Manifest, dict[str, int]]:
        specs = []
        for layer in self.layers:
            specs.append(LayerSpec(name=layer.name, module=layer.module, kind=layer.kind,
                                   raw_shape=list(layer.raw_shape),
                                   neurons=neuron_count(layer.raw_shape, layer.reduction, layer.kind),
                                   reduction=layer.reduction,
                                   module_type=type(self.modules[layer.module]).__name__))
        ids_hash = hashlib.blake2b(self.item_ids.tobytes(), digest_size=16).hexdigest()
        columns = sum(s.neurons for s in specs) * (2 if self.gradients else 1)
        self.chunk_items = self._chunk_items(columns + probe["latent_dim"] + probe["num_classes"])
        latent_name = f"input:{self.head}" if self.head is not None else self.latent_layer
        m = Manifest(
            n_items=int(self.item_ids.size), chunk_items=self.chunk_items, encoding=self.encoding,
            layers=specs, latent_layer=latent_name, latent_dim=int(probe["latent_dim"]),
            num_classes=int(probe["num_classes"]), gradients=self.gradients,
            model_fingerprint=model_fingerprint(self.model),
            dataset_fingerprint=self.ds.fingerprint(), dataset_name=getattr(self.ds, "name", ""),
            model_name=type(self.model).__name__, classes=getattr(self.ds, "classes", None),
            modeldx_version=__version__,
            extra={"item_ids_hash": ids_hash, "subset": bool(self.item_ids.size < len(self.ds)),
                   "dataset_items": len(self.ds), "grad_reduction": self.grad_reduction,
                   "chunk_order": self.chunk_order, "chunk_seed": self.seed},
        )
        dims = {"latent": m.latent_dim, "probs": m.num_classes}
        for spec in specs:
            dims[f"acts/{spec.name}"] = spec.neurons
            if self.gradients:
                dims[f"grads/{spec.name}"] = spec.neurons
        return m, dims

    def _chunk(self, rec: _Recorder, index: int, bar) -> tuple[dict, dict]:
        start = index * self.chunk_items
        ids = self.item_ids[start:start + self.chunk_items]
        parts: dict[str, list[torch.Tensor]] = {}
        cols: dict[str, list] = {k: [] for k in ("label", "pred", "confidence", "loss")}
        to_host = _ToHost(self.device)
        for batch, x, y in self._batches(ids):
            y, probs, conf, pred, loss = self._run_batch(rec, batch, (x, y))
            blocks = {f"acts/{layer.name}": rec.acts[layer.name] for layer in self.layers}
            if self.gradients:
                blocks.update({f"grads/{layer.name}": rec.grads[layer.name] for layer in self.layers})
            blocks.update(latent=rec.latent, probs=probs, pred=pred, confidence=conf,
                          loss=loss.float())
            for key, block in to_host(blocks).items():
                (cols[key] if key in cols else parts.setdefault(key, [])).append(block)
            cols["label"].append(y)
            bar.update(batch.size)
        to_host.wait()  # the chunk's copies have landed
        arrays = {k: torch.cat(v).numpy() for k, v in parts.items()}
        for name, block in arrays.items():
            _check_finite(name, block, ids, index)
        label, pred = torch.cat(cols["label"]).numpy(), torch.cat(cols["pred"]).numpy()
        items = {
            "item_id": ids,
            "split": np.asarray(self.ds.split_of(ids)).astype(str),
            "label": label.astype(np.int64),
            "pred": pred.astype(np.int64),
            "correct": label == pred,
            "confidence": torch.cat(cols["confidence"]).numpy(),
            "loss": torch.cat(cols["loss"]).numpy(),
        }
        return arrays, items

    # --- plan -> run chunks -> finalize ---------------------------------------------
    @contextlib.contextmanager
    def prepared(self) -> Iterator[_Recorder]:
        """The model in eval mode on the device with the capture's hooks on (layers found
        by a probe pass the first time); the model's device and mode are restored on exit."""
        model = self.model
        was_training = model.training
        old_device = next(iter(model.parameters()), torch.empty(0)).device
        try:
            model.eval().to(self.device)
            with _module_attention():
                if not self._discovered:
                    self.layers = self._discover()
                    self._discovered = True
                rec = _Recorder(self.layers, self.grad_reduction, self.gradients)
                with self._hooked(rec):
                    yield rec
        finally:
            model.to(old_device)
            model.train(was_training)

    def plan(self, rec: _Recorder, held: contextlib.ExitStack) -> tuple[StoreWriter, list[int]]:
        """Probe the model, build the manifest, create (or reopen, to resume) the store.

        The store's writer (and its lock) is entered into ``held``. Returns it with the
        chunks still to capture, in the order of ``chunk_order``.
        """
        manifest, dims = self._manifest(self._probe(rec))
        # the writer holds the store's lock until it finishes or ``held`` is left
        writer = held.enter_context(
            StoreWriter(self.path, manifest, overwrite=self.overwrite, array_dims=dims))
        # a resumed capture keeps the order its manifest records: a random-order capture finished in
        # ascending order would no longer be a random sample of chunks at any moment, yet say it is
        recorded = writer.manifest.extra
        order = recorded.get("chunk_order", self.chunk_order)
        seed = int(recorded.get("chunk_seed", self.seed))
        return writer, chunk_order(writer.todo_chunks(), order, seed)

    def run_chunks(self, rec: _Recorder, indices, write, bar) -> None:
        """Capture chunks ``indices`` in that order and hand each to ``write(index, arrays,
        items)``; a writer thread writes one chunk while the next is computed."""
        pending: Future | None = None
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                for index in indices:
                    arrays, items = self._chunk(rec, int(index), bar)
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(write, int(index), arrays, items)
            finally:
                # let the chunk in flight land (or report its error) before leaving
                if pending is not None:
                    pending.result()

    def _chunk_sizes(self, n_items: int, indices) -> int:
        return sum(min(self.chunk_items, n_items - i * self.chunk_items) for i in indices)

    def run(self) -> Store:
        writer: StoreWriter | None = None
        fs = StoreFS(self.path)
        fresh = not fs.exists()
        shipped = _ship_model(self.model) if self.engine == "dask" else None
        try:
            with self.prepared() as rec, contextlib.ExitStack() as held:
                writer, todo = self.plan(rec, held)
                n = writer.manifest.n_items
                with tqdm(total=n, initial=n - self._chunk_sizes(n, todo), unit="item",
                          desc=f"capture {os.path.basename(str(self.path).rstrip('/'))}",
                          disable=not self.progress) as bar:
                    if self.engine == "dask":
                        self._run_on_cluster(shipped, writer, todo, bar)
                    else:
                        self.run_chunks(rec, todo, writer.write_chunk, bar)
                return writer.finalize()
        except ModeldxError as exc:
            # bad data found in the first chunk: a store this run created and never wrote a
            # chunk of would only block the path (a failed write keeps it, to resume)
            if (fresh and writer is not None and not isinstance(exc, StoreError)
                    and not writer.done_chunks()):
                with contextlib.suppress(OSError):
                    fs.remove("", recursive=True)
            elif isinstance(exc, InvalidLabelError) and writer is not None and writer.done_chunks():
                kept = len(writer.done_chunks())
                raise InvalidLabelError(
                    f"{exc}. The {kept} chunks written before it are kept in {self.path} (status "
                    "capturing): after fixing the labels run the same capture again to resume; if it "
                    "then says the data set differs, pass overwrite=True to start afresh") from exc
            raise

    def _run_on_cluster(self, shipped: bytes, writer: StoreWriter, todo: list[int], bar) -> None:
        """Each chunk a task on a Dask cluster; the workers write into the store by path."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        from modeldx.engine.dask_engine import DaskEngine

        if not todo:
            return
        try:
            ds = cloudpickle.dumps(self.ds)
        except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
            name = getattr(self.ds, "name", None) or type(self.ds).__name__
            raise InvalidParameterError(
                f"the data set {name} cannot be sent to Dask workers ({exc}); "
                "give capture a data set that pickles (arrays, a TensorDataset, a class of an "
                "importable module), or use engine='local'") from exc
        # workers may run in another folder, or on another machine: the absolute path (or URL)
        job = _WorkerJob(token=uuid.uuid4().hex, model=shipped, data=ds, path=writer.fs.location
                         if "://" in writer.fs.location else writer.fs.root,
                         store_id=writer.store_id, settings=self.settings, layers=self.layers,
                         head=self.head, expected_calls=self._expected_calls,
                         chunk_items=writer.manifest.chunk_items)
        cluster = self.cluster if self.cluster is not None else DaskEngine(
            scheduler=self.scheduler, workers=self.workers)
        with cluster._connection() as client:
            # a task, not scattered data: the scheduler keeps what rebuilds it, so a worker that
            # dies holding the only copy (a cluster of one worker, or every worker at once) does not
            # lose the job; each worker fetches it once, from a peer, for all its chunks
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "large graph": the model and data
                job_future = client.submit(_the_job, job, pure=False,
                                           key=f"modeldx-capture-job-{job.token}")
            futures = [client.submit(_capture_chunks, job_future, [i], pure=False,
                                     key=f"modeldx-capture-{job.token}-{i}") for i in todo]
            chunk_of = {f.key: i for f, i in zip(futures, todo, strict=True)}
            try:
                for future in as_completed(futures, loop=client.loop):
                    try:
                        bar.update(future.result())
                    except KilledWorker as exc:
                        raise WorkerLostError(
                            f"Dask workers kept dying while capturing chunk {chunk_of[future.key]} "
                            f"of {self.path} ({exc}); the chunks already written are kept: run the "
                            "same capture again to resume") from None
            except Exception:
                # a task that runs cannot be stopped: let every task finish (or fail) before the
                # lock is released, so that no worker writes into the store after capture
                # returned; the chunks they finish are kept for a resume
                with contextlib.suppress(Exception):
                    client.gather(futures, errors="skip")
                raise
            except BaseException:
                # Ctrl-C: the chunks not started are dropped, and the ones running (a thread on
                # a worker cannot be stopped) are waited for, so that none lands after the lock
                # is released; a second Ctrl-C stops waiting
                client.cancel([*futures, job_future])
                _wait_until_idle(client, f"modeldx-capture-{job.token}-")
                raise
            finally:
                client.cancel([*futures, job_future])


def _running_tasks(prefix: str, dask_worker=None) -> list[str]:
    """Keys starting with ``prefix`` that a worker still executes (cancelled ones included)."""
    busy = ("executing", "long-running", "cancelled", "resumed")
    return [str(key) for key, ts in dask_worker.state.tasks.items()
            if str(key).startswith(prefix) and ts.state in busy]


def _wait_until_idle(client, prefix: str) -> None:
    """Return once no worker executes a task whose key starts with ``prefix``."""
    import time

    while True:
        try:
            running = client.run(_running_tasks, prefix, on_error="ignore")
        except Exception:  # noqa: BLE001 - the cluster is going away: nothing runs there then
            return
        if not any(isinstance(keys, list) and keys for keys in running.values()):
            return
        time.sleep(0.05)  # polling the workers: a cancelled task sends no message when it ends


def chunk_order(todo, order: str = "ascending", seed: int = 0) -> list[int]:
    """The chunks to capture in the order to capture them.

    ``"random"`` is a permutation seeded by ``seed``: whatever part of the chunks is
    written at any moment is then a random sample of chunks (for queries over a capture
    still running).

    Examples
    --------
    >>> chunk_order([0, 1, 2, 3], "random", seed=0)
    [2, 0, 1, 3]
    """
    todo = sorted(int(i) for i in todo)
    if order == "ascending":
        return todo
    return [todo[i] for i in np.random.default_rng(seed).permutation(len(todo))]


def _ship_model(model: nn.Module) -> bytes:
    """The module with its weights (state dict) on the CPU, cloudpickled; each worker puts
    its copy on its own device. Taken before capture's hooks go on."""
    device = next(iter(model.parameters()), torch.empty(0)).device
    try:
        model.to("cpu")
        return cloudpickle.dumps(model)
    except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
        raise InvalidParameterError(
            f"the model {type(model).__name__} cannot be sent to Dask workers ({exc}); define it "
            "in an importable module, or use engine='local'") from exc
    finally:
        model.to(device)


@dataclass
class _WorkerJob:
    """What a worker needs to capture chunks of a planned store: sent once to each worker."""

    token: str
    model: bytes  # cloudpickled module, weights on the CPU
    data: bytes  # cloudpickled data set
    path: str
    store_id: str
    settings: dict
    layers: list[_Layer]
    head: str | None
    expected_calls: dict[str, int]
    chunk_items: int


# a worker process builds each job's capture (model copy, data set) once, for all its chunks
_WORKER_CAPTURES: dict[str, _Capture] = {}


def _capture_chunks(job: _WorkerJob, indices: list[int]) -> int:
    """A Dask task: capture chunks ``indices`` and write them into the store; returns the items.

    Takes no lock: the coordinator holds it. A task redone after its worker died writes
    its chunk again, over whatever half of it the dead worker left.
    """
    cap = _WORKER_CAPTURES.get(job.token)
    if cap is None:
        _WORKER_CAPTURES.clear()  # one job at a time: drop an earlier capture's model
        _roomy_malloc()
        cap = _Capture(cloudpickle.loads(job.model), cloudpickle.loads(job.data), job.path,
                       **job.settings)
        cap.layers, cap.head, cap._expected_calls = job.layers, job.head, job.expected_calls
        cap.chunk_items, cap._discovered = job.chunk_items, True
        _WORKER_CAPTURES[job.token] = cap
    writer = ChunkWriter(job.path, job.store_id)
    with cap.prepared() as rec:
        cap.run_chunks(rec, indices, writer.write_chunk, _NoBar())
    return cap._chunk_sizes(len(cap.item_ids), indices)


def _the_job(job: _WorkerJob) -> _WorkerJob:
    """A Dask task whose result is the job (see ``_Capture._run_on_cluster``)."""
    return job


def _roomy_malloc() -> None:
    """Undo what Dask's nanny does to glibc's allocator in a worker, for this process.

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (to hand freed memory back
    to the OS); setting it also fixes glibc's mmap threshold at 128 KiB, so every batch-sized
    tensor is a fresh ``mmap`` whose pages fault in again: capture ran 2.3x slower in such a
    worker than in a plain process (docs/scale-out.md). The thresholds set here (32 MiB, glibc's
    largest mmap threshold; 128 MiB trim) let tensors reuse the heap. Linux/glibc only;
    elsewhere nothing is done.
    """
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    libc.mallopt(m_mmap_threshold, 32 << 20)
    libc.mallopt(m_trim_threshold, 128 << 20)


class _NoBar:
    """A worker shows no progress of its own: the coordinator counts finished chunks."""

    def update(self, n: int) -> None:
        return None


def capture(
    model: nn.Module,
    data,
    path: str | os.PathLike,
    *,
    layers: LayerSelector = "auto",
    reduction: str | Mapping[str, str] = "max",
    gradients: bool = False,
    grad_reduction: str = "mean",
    items=None,
    encoding: str = "float16",
    batch_size: int = 500,
    chunk_items: int | str = "auto",
    device: str | torch.device = "auto",
    overwrite: bool = False,
    progress: bool = True,
    latent_layer: str | None = "auto",
    output: OutputPicker = None,
    kinds: Mapping[str, str] | None = None,
    chunk_order: str = "ascending",
    seed: int = 0,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int | None = None,
    loader_workers: int | None = None,
) -> Store:
    """Capture a model's activations over a data set into a store at ``path``.

    Parameters
    ----------
    model
        Any ``nn.Module`` that maps a batch of inputs to class scores.
    data
        A data set (see :func:`modeldx.data.as_dataset`: torch data sets, a
        ``DataLoader``'s data set, lists of ``(input, label)`` pairs, arrays); a
        mapping ``{"train": ds1, "test": ds2}`` stores both with a ``split``
        column. Labels must be class indices in ``[0, number of logits)``.
    path
        The store's folder, or an fsspec URL (``file://``, ``memory://``,
        ``s3://...``). An unfinished capture with the same settings there is
        resumed; a finished one is only replaced with ``overwrite=True``.
    layers
        Which layers: ``"auto"`` (every nonlinearity and the output layer), a
        name, names, a module type, or ``callable(name, module)``. ``None``
        captures no layer: a latent pass. A probe forward pass on the first
        items finds the modules that run: others are left out (or, named, are
        an error), and a module called *k* > 1 times in one forward is stored
        as *k* layers ``name#0`` ... ``name#{k-1}`` (``"name#1"`` picks one).
    reduction
        How a conv map becomes one value per channel (``"max"``, ``"mean"``),
        and a sequence (batch, time, features) one value per feature, over time
        (``"max"``, ``"mean"``, ``"last"``); ``"none"`` keeps the whole map or
        sequence. A dict sets it per layer.
    gradients
        Also store the gradient of each item's cross-entropy loss (w.r.t. its
        label) with respect to each layer's output, reduced by
        ``grad_reduction`` (a layer kept whole, ``reduction="none"``, keeps its
        gradient whole: ``grads/<layer>`` has the columns of ``acts/<layer>``).
        Taken with ``torch.autograd.grad``: no parameter's ``.grad`` changes,
        and frozen models work.
    items
        Item ids (positions in ``data``) to capture; default all.
    encoding
        ``"float16"``, ``"float32"`` or ``"uint8"`` (per-neuron, per-chunk affine).
    batch_size, chunk_items
        Items per forward pass, and items per stored chunk (the unit of crash
        safety and of query memory). ``"auto"`` sizes chunks to about 16 MB of
        float32 across all stored arrays, at most 10,000 items: zarr's cost per
        write call makes small chunks slow, and a query holds one chunk in memory.
    device
        ``"auto"`` uses CUDA when available. The model is moved back afterwards.
        Float inputs are cast to the model's dtype; integer inputs (token ids)
        keep theirs. With ``engine="dask"`` each worker resolves it on its own
        machine (``"auto"``: its GPU if it has one) and the coordinator probes
        the model on its CPU.
    output
        How to find the logits in what the model returns: ``None`` (it returns
        the tensor), a key of a dict, an index of a tuple, or a callable.
    kinds
        Overrides how a 3-d output is read, per layer or module name:
        ``"sequence"`` (batch, time, features) or ``"conv"`` (batch, channels,
        length). The rule is in :mod:`modeldx.capture.probe`.
    chunk_order, seed
        The order chunks are captured in: ``"ascending"``, or ``"random"`` (a
        permutation seeded by ``seed``, so that the chunks written at any moment
        are a random sample of chunks, and a query over the capture while it runs,
        :func:`modeldx.progressive`, is an unbiased estimate). The store is the same either way.
        A resumed capture keeps the order and seed its store's manifest records.
    engine
        ``"local"`` (this process) or ``"dask"`` (or a ``distributed.Client`` of your
        own, or a :class:`~modeldx.engine.dask_engine.DaskEngine`): this process plans the store
        (holding its lock) and finishes it, and each chunk is captured by a worker
        of a Dask cluster with its own copy of the model, written straight into the
        store at ``path`` (which every worker must reach: shared storage or an
        object store). A worker that dies has its chunks redone; the store is the
        one a local capture with the same ``batch_size`` writes.
    scheduler, workers
        For ``engine="dask"`` only: the scheduler's address (default
        ``$MODELDX_SCHEDULER``; else the ``distributed.Client`` made in this
        process, if any; else a local cluster of ``workers`` processes), see
        :func:`modeldx.engine.cluster.connect`.
    loader_workers
        Worker processes that read batches ahead of the model (a
        ``DataLoader``'s workers), for data sets whose items cost Python work
        to make; ``None`` takes a ``DataLoader``'s ``num_workers`` when
        ``data`` is one, else 0: one background thread reads the next batch
        while the model runs. Batches are read whole where the data set allows
        (arrays, a ``TensorDataset``, ``__getitems__``), else item by item;
        the store is the same either way.

    Returns
    -------
    Store
        The finished store, open read-only.

    Examples
    --------
    >>> from modeldx.data import load_mnist
    >>> store = capture(model, load_mnist("test"), "runs/mnist-test")  # doctest: +SKIP
    >>> store.layers
    ['act1', 'act2', 'act3', 'act4', 'fc3']
    """
    check_params("capture", {
        "grad_reduction": grad_reduction, "encoding": encoding, "batch_size": batch_size,
        "chunk_items": chunk_items, "gradients": gradients, "overwrite": overwrite,
        "progress": progress, "chunk_order": chunk_order, "seed": seed,
        "loader_workers": loader_workers}, _LIMITS)
    engine, cluster = _engine(engine, scheduler, workers)
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch nn.Module. Got {type(model).__name__}.")
    return _Capture(model, data, path, layers=layers, reduction=reduction, gradients=gradients,
                    grad_reduction=grad_reduction, items=items, encoding=encoding,
                    batch_size=batch_size, chunk_items=chunk_items, device=device,
                    overwrite=overwrite, progress=progress, latent_layer=latent_layer,
                    output=output, kinds=kinds, chunk_order=chunk_order, seed=seed, engine=engine,
                    scheduler=scheduler, workers=workers, loader_workers=loader_workers,
                    cluster=cluster).run()


def latent_pass(model: nn.Module, data, path: str | os.PathLike, **kwargs) -> Store:
    """The cheap first step: predictions, confidences, losses and latent vectors only.

    Same parameters as :func:`capture`, with no layers captured (``output=``
    picks the logits of a model that returns a tuple or dict).

    Examples
    --------
    >>> store = latent_pass(model, load_mnist("test"), "runs/mnist-latent")  # doctest: +SKIP
    >>> store.read("latent").shape
    (10000, 84)
    """
    if "layers" in kwargs:
        raise InvalidParameterError("latent_pass captures no layers; use capture() for layers")
    return capture(model, data, path, layers=None, **kwargs)
