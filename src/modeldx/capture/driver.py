"""The capture driver: run a model over a data set and write what it computes to a store.

One pass per item chunk: every batch of the chunk goes through the model with
hooks on the chosen layers; the chunk's activations (and gradients, the latent
vector, class probabilities and item rows) are then handed to a writer thread
so that encoding and disk I/O overlap the next chunk's compute.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from modeldx import __version__
from modeldx._params import Interval, OneOf, check_params
from modeldx.capture.hooks import hook_group
from modeldx.capture.layers import LayerSelector, head_module, select_layers
from modeldx.capture.reduce import REDUCTIONS, layer_kind, neuron_count, reduce_output
from modeldx.data.arrays import as_dataset
from modeldx.device import resolve_device
from modeldx.errors import InputShapeError, InvalidParameterError, NonFiniteActivationError
from modeldx.fingerprint import model_fingerprint
from modeldx.store.encoding import ENCODINGS
from modeldx.store.manifest import LayerSpec, Manifest
from modeldx.store.store import Store, StoreWriter

_LIMITS = {
    "reduction": OneOf(*REDUCTIONS),
    "grad_reduction": OneOf(*REDUCTIONS),
    "encoding": OneOf(*ENCODINGS),
    "batch_size": Interval(int, 1, None),
    "chunk_items": [Interval(int, 1, None), OneOf("auto")],
    "gradients": bool,
    "overwrite": bool,
    "progress": bool,
}


class _Recorder:
    """Collects each hooked layer's reduced output (and gradient) for the current batch."""

    def __init__(self, names: list[str], reductions: dict[str, str], grad_reduction: str,
                 gradients: bool) -> None:
        self.names = names
        self.reductions = reductions
        self.grad_reduction = grad_reduction
        self.gradients = gradients
        self.acts: dict[str, torch.Tensor] = {}
        self.grads: dict[str, torch.Tensor] = {}
        self.raw_shapes: dict[str, tuple[int, ...]] = {}
        self.latent: torch.Tensor | None = None

    def forward_hook(self, name: str):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple | list) else output
            self.raw_shapes[name] = tuple(out.shape[1:])
            self.acts[name] = reduce_output(out.detach(), self.reductions[name]).float()
            if self.gradients and out.requires_grad:
                out.register_hook(self.grad_hook(name))

        return hook

    def grad_hook(self, name: str):
        def hook(grad):
            self.grads[name] = reduce_output(grad.detach(), self.grad_reduction).float()

        return hook

    def latent_input_hook(self, module, inputs):
        self.latent = inputs[0].detach().flatten(1).float()

    def latent_output_hook(self, module, inputs, output):
        out = output[0] if isinstance(output, tuple | list) else output
        self.latent = out.detach().flatten(1).float()


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


class _Capture:
    """One capture run; see :func:`capture` for the parameters."""

    def __init__(self, model: nn.Module, data, path, *, layers: LayerSelector, reduction,
                 gradients: bool, grad_reduction: str, items, encoding: str, batch_size: int,
                 chunk_items: int, device, overwrite: bool, progress: bool,
                 latent_layer: str | None) -> None:
        self.model = model
        self.ds = as_dataset(data)
        self.path = path
        self.names = select_layers(model, layers)
        if isinstance(reduction, Mapping):
            unknown = set(reduction) - set(self.names)
            if unknown:
                raise InvalidParameterError(f"reduction names layers not captured: {sorted(unknown)}")
            self.reductions = {n: reduction.get(n, "max") for n in self.names}
        else:
            self.reductions = dict.fromkeys(self.names, reduction)
        for n, r in self.reductions.items():
            check_params("capture", {"reduction": r}, _LIMITS)
            del n
        self.gradients = gradients
        self.grad_reduction = grad_reduction
        self.item_ids = _item_ids(items, len(self.ds))
        self.encoding = encoding
        self.batch_size = batch_size
        self.chunk_items = chunk_items
        self.device = resolve_device(device)
        self.overwrite = overwrite
        self.progress = progress
        if latent_layer in (None, "auto"):
            head, _ = head_module(model)
            self.latent_module, self.latent_name, self.latent_is_input = head, f"input:{head}", True
        else:
            select_layers(model, [latent_layer])  # validates the name
            self.latent_module, self.latent_name, self.latent_is_input = latent_layer, latent_layer, False
        self.modules = dict(model.named_modules())

    # --- model execution -------------------------------------------------------
    def _run_batch(self, rec: _Recorder, ids: np.ndarray):
        x, y = self.ds.get_batch(ids)
        x, y = x.to(self.device, non_blocking=True), y.to(self.device)
        rec.acts.clear()
        rec.grads.clear()
        with torch.set_grad_enabled(self.gradients):
            logits = self.model(x)
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
                raise InputShapeError(
                    f"the model must return class scores of shape (batch, classes); it returned "
                    f"{shape} for inputs of shape {tuple(x.shape)}"
                )
            losses = F.cross_entropy(logits, y, reduction="none")
            if self.gradients:
                losses.sum().backward()
        probs = torch.softmax(logits.detach().float(), dim=1)
        conf, pred = probs.max(dim=1)
        return y, probs, conf, pred, losses.detach()

    def _hooked(self, rec: _Recorder):
        group = contextlib.ExitStack()
        hooks = group.enter_context(hook_group())
        for name in self.names:
            hooks.add(self.modules[name].register_forward_hook(rec.forward_hook(name)))
        latent = self.modules[self.latent_module]
        if self.latent_is_input:
            hooks.add(latent.register_forward_pre_hook(rec.latent_input_hook))
        else:
            hooks.add(latent.register_forward_hook(rec.latent_output_hook))
        return group

    def _probe(self, rec: _Recorder) -> dict:
        """Run two items to learn output shapes and check the model accepts the inputs."""
        ids = self.item_ids[: min(2, self.item_ids.size)]
        try:
            _, probs, *_ = self._run_batch(rec, ids)
        except RuntimeError as exc:
            x, _ = self.ds.get_batch(ids)
            raise InputShapeError(
                f"the model could not run on a batch of inputs of shape {tuple(x.shape)} "
                f"(dtype {x.dtype}): {exc}"
            ) from exc
        missing = [n for n in self.names if n not in rec.acts]
        if missing:
            raise InvalidParameterError(
                f"layers {missing} produced no output during the forward pass (are they used?)"
            )
        if self.gradients:
            no_grad = [n for n in self.names if n not in rec.grads]
            if no_grad:
                raise InvalidParameterError(
                    f"no gradient reaches layers {no_grad}; capture them with gradients=False"
                )
        return {"num_classes": probs.shape[1], "latent_dim": rec.latent.shape[1]}

    def _chunk_items(self, columns: int) -> int:
        if self.chunk_items != "auto":
            return self.chunk_items
        fit = (16 << 20) // (4 * max(columns, 1))
        return int(min(10_000, max(self.batch_size, fit // self.batch_size * self.batch_size)))

    def _manifest(self, rec: _Recorder, probe: dict) -> tuple[Manifest, dict[str, int]]:
        specs = []
        for name in self.names:
            raw = rec.raw_shapes[name]
            kind = layer_kind((0, *raw))
            red = self.reductions[name] if kind == "conv" else "none"
            specs.append(LayerSpec(name=name, module=name, kind=kind, raw_shape=list(raw),
                                   neurons=neuron_count(raw, red), reduction=red,
                                   module_type=type(self.modules[name]).__name__))
        ids_hash = hashlib.blake2b(self.item_ids.tobytes(), digest_size=16).hexdigest()
        columns = sum(s.neurons for s in specs) * (2 if self.gradients else 1)
        self.chunk_items = self._chunk_items(columns + probe["latent_dim"] + probe["num_classes"])
        m = Manifest(
            n_items=int(self.item_ids.size), chunk_items=self.chunk_items, encoding=self.encoding,
            layers=specs, latent_layer=self.latent_name, latent_dim=int(probe["latent_dim"]),
            num_classes=int(probe["num_classes"]), gradients=self.gradients,
            model_fingerprint=model_fingerprint(self.model),
            dataset_fingerprint=self.ds.fingerprint(), dataset_name=getattr(self.ds, "name", ""),
            model_name=type(self.model).__name__, classes=getattr(self.ds, "classes", None),
            modeldx_version=__version__,
            extra={"item_ids_hash": ids_hash, "subset": bool(self.item_ids.size < len(self.ds)),
                   "dataset_items": len(self.ds), "grad_reduction": self.grad_reduction},
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
        for b in range(0, ids.size, self.batch_size):
            batch = ids[b:b + self.batch_size]
            y, probs, conf, pred, loss = self._run_batch(rec, batch)
            for name in self.names:
                parts.setdefault(f"acts/{name}", []).append(rec.acts[name].cpu())
                if self.gradients:
                    parts.setdefault(f"grads/{name}", []).append(rec.grads[name].cpu())
            parts.setdefault("latent", []).append(rec.latent.cpu())
            parts.setdefault("probs", []).append(probs.cpu())
            cols["label"].append(y.cpu())
            cols["pred"].append(pred.cpu())
            cols["confidence"].append(conf.cpu())
            cols["loss"].append(loss.float().cpu())
            bar.update(batch.size)
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

    def run(self) -> Store:
        model = self.model
        was_training = model.training
        old_device = next(iter(model.parameters()), torch.empty(0)).device
        rec = _Recorder(self.names, self.reductions, self.grad_reduction, self.gradients)
        pending: Future | None = None
        try:
            model.eval().to(self.device)
            with self._hooked(rec), ThreadPoolExecutor(max_workers=1) as pool:
                manifest, dims = self._manifest(rec, self._probe(rec))
                writer = StoreWriter(self.path, manifest, overwrite=self.overwrite, array_dims=dims)
                todo = sorted(set(range(manifest.n_chunks)) - writer.done_chunks())
                done_items = manifest.n_items - sum(
                    min(self.chunk_items, manifest.n_items - i * self.chunk_items) for i in todo)
                with tqdm(total=manifest.n_items, initial=done_items, unit="item",
                          desc=f"capture {os.path.basename(str(self.path))}",
                          disable=not self.progress) as bar:
                    try:
                        for index in todo:
                            arrays, items = self._chunk(rec, index, bar)
                            if pending is not None:
                                pending.result()
                            pending = pool.submit(writer.write_chunk, index, arrays, items)
                    finally:
                        # let the chunk in flight land (or report its error) before leaving
                        if pending is not None:
                            pending.result()
                return writer.finalize()
        finally:
            model.to(old_device)
            model.train(was_training)


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
) -> Store:
    """Capture a model's activations over a data set into a store at ``path``.

    Parameters
    ----------
    model
        Any ``nn.Module`` that maps a batch of inputs to class scores.
    data
        A data set (see :func:`modeldx.data.as_dataset`); a mapping
        ``{"train": ds1, "test": ds2}`` stores both with a ``split`` column.
    path
        The store's folder. An unfinished capture with the same settings there is
        resumed; a finished one is only replaced with ``overwrite=True``.
    layers
        Which layers: ``"auto"`` (every nonlinearity and the output layer), a
        name, names, a module type, or ``callable(name, module)``. ``None``
        captures no layer: a latent pass.
    reduction
        How a conv map becomes one value per channel: ``"max"``, ``"mean"``, or
        ``"none"`` to keep the whole map; a dict sets it per layer.
    gradients
        Also store the gradient of the loss with respect to each layer's output,
        reduced by ``grad_reduction``.
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
        "progress": progress}, _LIMITS)
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch nn.Module. Got {type(model).__name__}.")
    return _Capture(model, data, path, layers=layers, reduction=reduction, gradients=gradients,
                    grad_reduction=grad_reduction, items=items, encoding=encoding,
                    batch_size=batch_size, chunk_items=chunk_items, device=device,
                    overwrite=overwrite, progress=progress, latent_layer=latent_layer).run()


def latent_pass(model: nn.Module, data, path: str | os.PathLike, **kwargs) -> Store:
    """The cheap first step: predictions, confidences, losses and latent vectors only.

    Same parameters as :func:`capture`, with no layers captured.

    Examples
    --------
    >>> store = latent_pass(model, load_mnist("test"), "runs/mnist-latent")  # doctest: +SKIP
    >>> store.read("latent").shape
    (10000, 84)
    """
    if "layers" in kwargs:
        raise InvalidParameterError("latent_pass captures no layers; use capture() for layers")
    return capture(model, data, path, layers=None, **kwargs)
