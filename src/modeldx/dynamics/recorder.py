"""Recording a training run's dynamics: per snapshot, per layer and per neuron statistics.

``rec = record(model, probe, path, every=10)`` then ``rec.step(loss=...)`` after each optimizer
step. Every ``every`` steps (and at the first step whose loss is not finite) the recorder runs the
fixed probe batch through the model in eval mode under ``torch.no_grad()`` and appends one row per
statistic to the run's Zarr arrays (snapshot x neuron).

Crash safety: the rows of a snapshot (and its state dict) are written first, then ``run.json`` is
replaced atomically with the new ``snapshots`` count. Readers never look past that count, so a
snapshot is visible whole or not at all, and a killed recorder leaves every finished snapshot
readable; ``resume=True`` overwrites whatever lies beyond the count and appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import os
import queue
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch import nn
from zarr.core.sync import sync

from modeldx._params import Interval, check_params
from modeldx.capture.hooks import hook_group
from modeldx.capture.layers import WEIGHTED, leaf_modules, select_layers, split_call
from modeldx.capture.probe import Call, call_counts, output_tensor, probe_calls
from modeldx.dynamics._layout import (
    ACTIVATION_STATS,
    CHUNK_STEPS,
    FORMAT,
    FORMAT_VERSION,
    MAX_ROWS,
    PROBE,
    RUN_JSON,
    SERIES,
    SNAPSHOTS_ARRAY,
    STATS_ARRAY,
    STATUS_COMPLETE,
    STATUS_RECORDING,
    STEP_LOSS_ARRAY,
    WEIGHT_STATS,
    WEIGHTS,
    architecture,
    architecture_fingerprint,
    chunk_snapshots,
    load_meta,
    weights_file,
    write_meta,
)
from modeldx.dynamics._live import check_session, publish, stream_step
from modeldx.errors import (
    InputShapeError,
    InvalidParameterError,
    LayerNotFoundError,
    RunExistsError,
    RunMismatchError,
    StoreLockedError,
)
from modeldx.store.lock import LOCK, WriterLock
from modeldx.store.store import COMPRESSORS, WRITE_CONFIG

# recorded by layers="auto" besides Linear/Conv and activation modules (activation statistics only:
# their weights are not one row per output unit)
SEQUENCE_LAYERS: tuple[type[nn.Module], ...] = (nn.RNNBase, nn.Embedding)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _Appender:
    """Appends rows to a Zarr array whose first axis is chunked by ``chunk``.

    The chunk being filled is kept in memory and written whole on :meth:`flush`, so zarr never
    reads a chunk back to update part of it; rows beyond the committed count are garbage that a
    later flush overwrites.
    """

    def __init__(self, array: zarr.Array, chunk: int, count: int) -> None:
        self.array = array.with_config(WRITE_CONFIG)
        self.chunk = chunk
        self.count = count
        self.fill = np.nan if array.dtype.kind == "f" else 0
        self.buffer = np.full((chunk, *array.shape[1:]), self.fill, dtype=array.dtype)
        self.start = count - count % chunk  # first row of the chunk the buffer holds
        if count > self.start:  # resuming inside a chunk: its committed rows come back
            self.buffer[: count - self.start] = self.array[self.start:count]

    def append(self, row) -> None:
        start = self.count - self.count % self.chunk
        if start != self.start:  # the buffered chunk is full: write it, start the next one
            self.flush()
            self.buffer[:] = self.fill
            self.start = start
        self.buffer[self.count - start] = row
        self.count += 1

    def flush(self) -> None:
        """Write the buffered chunk."""
        sync(self.write())

    async def write(self) -> None:
        if self.count > self.start:  # no rows yet (resumed at a chunk's end): nothing to write
            await self.array._async_array.setitem(slice(self.start, self.start + self.chunk),
                                                  self.buffer)


def write_all(appenders: list[_Appender]) -> None:
    """Write every appender's current chunk in one round trip to zarr's event loop: a snapshot
    costs one wait instead of one per array (about 1.5 ms each on this machine)."""

    async def gather() -> None:
        await asyncio.gather(*(a.write() for a in appenders))

    sync(gather())


class _Layer:
    """One recorded layer: a call of a module, how its output becomes neurons, its columns."""

    def __init__(self, name: str, call: Call, module: nn.Module) -> None:
        self.name = name
        self.call = call
        self.module = module
        shape = call.shape
        if shape is None:
            raise LayerNotFoundError(f"layer {name!r} does not return a tensor; record another layer")
        if len(shape) <= 1:
            self.neurons = 1
        elif call.kind == "sequence":
            self.neurons = shape[-1]
        else:
            self.neurons = shape[1]
        weight = getattr(module, "weight", None)
        self.weighted = (isinstance(module, WEIGHTED) and isinstance(weight, torch.Tensor)
                         and weight.shape[0] == self.neurons)
        self.stats = ACTIVATION_STATS + (WEIGHT_STATS if self.weighted else ())

    def units(self, grad: bool = False) -> torch.Tensor:
        """(output units, fan-in [+ 1]) rows of the weight (and bias), or of their gradients."""
        weight, bias = self.module.weight, getattr(self.module, "bias", None)
        if grad:
            weight = weight.grad if weight.grad is not None else torch.zeros_like(weight)
            if isinstance(bias, torch.Tensor):
                bias = bias.grad if bias.grad is not None else torch.zeros_like(bias)
        rows = weight.detach().reshape(self.neurons, -1).float()
        if isinstance(bias, torch.Tensor):
            rows = torch.cat([rows, bias.detach().reshape(self.neurons, 1).float()], dim=1)
        return rows


def neuron_view(out: torch.Tensor, call: Call) -> tuple[torch.Tensor, tuple[int, ...]]:
    """A layer's output as a view and the dimensions to reduce to get one value per neuron:
    conv channels over batch and space, sequence features over batch and time (either order of
    batch and time), dense features over the batch. No copy is made."""
    if out.dim() <= 1:
        return out.reshape(-1, 1), (0,)
    if out.dim() == 2:
        return out, (0,)
    if call.kind == "sequence":
        return out.reshape(-1, out.shape[-1]), (0,)
    return out.reshape(out.shape[0], out.shape[1], -1), (0, 2)


def _reduce(values: torch.Tensor, op: str, dims: tuple[int, ...], **kw) -> torch.Tensor:
    # one dimension at a time, innermost first: torch's fast paths reduce contiguous rows, and
    # amax over (batch, space) at once is an order of magnitude slower on a conv map
    for dim in sorted(dims, reverse=True):
        values = getattr(values, op)(dim, **kw)
    return values


def activation_stats(values: torch.Tensor, dims: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """mean, max |a|, share of zeros and share of non-finite values per neuron.

    Written for speed: it runs at every snapshot on a probe batch whose outputs are far larger
    than the statistics (docs/benchmarks.md, "Training-dynamics recorder").
    """
    if not values.is_floating_point():
        values = values.float()
    count = values.numel() // math.prod(values.shape[d] for d in range(values.dim()) if d not in dims)
    mean = values.mean(dim=dims, dtype=torch.float32)
    max_abs = _reduce(values.abs(), "amax", dims).float()  # amax keeps NaN
    # bool() then a uint8 sum is several times faster than count_nonzero or (values == 0).sum()
    nonzero = _reduce(values.bool().view(torch.uint8), "sum", dims, dtype=torch.int32)
    zero_share = 1.0 - nonzero.float() / count
    nonfinite_share = torch.zeros_like(mean)
    bad = ~torch.isfinite(mean)
    # a neuron with a finite mean has only finite values (a sum with NaN or inf is not finite);
    # only the rare others are counted, so a healthy run pays nothing for this statistic
    if bool(bad.any()):
        finite = _reduce(torch.isfinite(values).view(torch.uint8), "sum", dims, dtype=torch.int32)
        nonfinite_share = torch.where(bad, 1.0 - finite.float() / count, nonfinite_share)
    return {"mean": mean, "max_abs": max_abs, "zero_share": zero_share,
            "nonfinite_share": nonfinite_share}


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


class _EvalPass:
    """Eval mode for one probe pass; every module's train flag is restored after."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc) -> None:
        for m, flag in self.flags:
            m.training = flag


class Recorder:
    """Appends snapshots of a model's training dynamics to a run folder; see :func:`record`."""

    def __init__(self, model: nn.Module, probe: torch.Tensor, path: str | os.PathLike, *,
                 every: int = 10, layers: Any = "auto", weights: bool = True,
                 overwrite: bool = False, resume: bool = False, session=None,
                 arch: str | None = None, model_args: dict | None = None,
                 background: bool = False) -> None:
        check_params("record", {"every": every, "weights": weights, "overwrite": overwrite,
                                "resume": resume, "arch": arch, "model_args": model_args,
                                "background": background},
                     {"every": Interval(int, 1, None), "weights": bool, "overwrite": bool,
                      "resume": bool, "arch": [str, None], "model_args": [dict, None],
                      "background": bool})
        if not isinstance(model, nn.Module):
            raise InvalidParameterError(f"record needs a torch nn.Module. Got {type(model).__name__}.")
        if not isinstance(probe, torch.Tensor) or probe.dim() == 0:
            raise InvalidParameterError(
                f"The probe must be a batch of inputs as a tensor (batch, ...). Got {probe!r}.")
        if overwrite and resume:
            raise InvalidParameterError("record: pass overwrite=True or resume=True, not both")
        if arch is not None:
            from modeldx.zoo import MODELS

            if arch not in MODELS:
                raise InvalidParameterError(
                    f"arch={arch!r} is not a modeldx.zoo.MODELS name; expected one of {sorted(MODELS)}")
        # torch.compile's wrapper: record the module it wraps, which shares its parameters. Its
        # names and state dict are the model's own (no "_orig_mod." prefix, so resume and arch=
        # work), and the probe pass runs eagerly instead of having dynamo trace the hooks.
        while isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        self.model = model
        self.path = Path(path)
        self.every = every
        self.session = check_session(session)
        self.keep_weights = weights
        self._closed = False
        self._failed: BaseException | None = None
        self._failure_seen = False
        self._device = _model_device(model)
        self._probe = probe.detach().to(self._device)
        self.layers = self._choose_layers(layers)
        self._weighted = [layer for layer in self.layers if layer.weighted]
        self._lock: WriterLock | None = None
        self._shadow: nn.Module | None = None
        self._worker: threading.Thread | None = None
        try:
            if (self.path / RUN_JSON).is_file() and resume:
                self._take_lock()
                self._open_existing(probe)
            else:
                self._create(probe, overwrite, arch, model_args)
            self._open_arrays()
            if background:
                self._start_worker()
        except BaseException:
            self._release_lock()
            raise

    def _start_worker(self) -> None:
        """The probe pass runs on a copy of the model in a writer thread, with the writes: the
        training thread only copies the state (and computes weight norms) at a snapshot."""
        try:
            shadow = copy.deepcopy(self.model)
        except Exception as exc:  # a model holding a lock, a file, a generator ...
            raise InvalidParameterError(
                f"background=True needs a copy of the model (copy.deepcopy failed: {exc}); "
                "record with background=False") from exc
        for p in shadow.parameters():
            p.requires_grad_(False)
            p.grad = None
        self._shadow = shadow.eval()
        self._jobs: queue.Queue = queue.Queue(maxsize=2)
        self._worker = threading.Thread(target=self._work, name=f"modeldx-recorder {self.path}",
                                        daemon=True)
        self._worker.start()

    # -- setting up --------------------------------------------------------------------------

    def _forward(self, model: nn.Module | None = None) -> None:
        try:
            (self.model if model is None else model)(self._probe)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise InputShapeError(
                f"the model could not run on the probe of shape {tuple(self._probe.shape)} "
                f"({self._probe.dtype}): {exc}") from exc

    def _choose_layers(self, layers) -> list[_Layer]:
        with torch.no_grad(), _EvalPass(self.model):
            calls = probe_calls(self.model, lambda: self._forward())
        counts = call_counts(calls)
        if isinstance(layers, str) and layers == "auto":
            # recurrent layers and embeddings too: where a language model's run usually blows up
            weighted = [n for n, m in leaf_modules(self.model).items()
                        if isinstance(m, (*WEIGHTED, *SEQUENCE_LAYERS)) and counts.get(n, 0) > 0]
            picked = set(weighted) | set(select_layers(self.model, "auto", counts))
            # back to module names: select_layers names every call of a module run k > 1 times
            layers = sorted({split_call(n)[0] if split_call(n)[0] in counts else n for n in picked})
        if layers is None or (isinstance(layers, list | tuple) and not layers):
            raise InvalidParameterError("record needs at least one layer; got none")
        names = select_layers(self.model, layers, counts)
        modules = dict(self.model.named_modules())
        by_call = {(c.module, c.index): c for c in calls}
        order = {(c.module, c.index): i for i, c in enumerate(calls)}
        chosen = []
        for name in names:
            base, index = split_call(name)
            if name in modules:
                base, index = name, 0
            chosen.append((order[(base, index)], _Layer(name, by_call[(base, index)], modules[base])))
        return [layer for _, layer in sorted(chosen, key=lambda pair: pair[0])]

    def _layout(self) -> tuple[list[dict], dict[str, dict[str, list[int]]]]:
        columns: dict[str, dict[str, list[int]]] = {}
        for layer in self.layers:
            for stat in layer.stats:
                columns.setdefault(stat, {})[layer.name] = layer.neurons
        width = 0  # columns of the one statistics array: statistic by statistic, layers in order
        for cols in columns.values():
            for name, neurons in cols.items():
                cols[name] = [width, width + neurons]
                width += neurons
        specs = [{"name": layer.name, "module": layer.call.module, "call": layer.call.index,
                  "kind": layer.call.kind, "neurons": layer.neurons, "stats": list(layer.stats)}
                 for layer in self.layers]
        return specs, columns

    def _create(self, probe: torch.Tensor, overwrite: bool, arch, model_args) -> None:
        path = self.path
        if (path / RUN_JSON).is_file():
            if not overwrite:
                raise RunExistsError(
                    f"a run is already at {path}; pass overwrite=True to replace it or resume=True "
                    "to append to it")
        elif path.exists() and (not path.is_dir() or any(p.name != LOCK for p in path.iterdir())):
            raise RunExistsError(
                f"{path} exists and is not a run; record into a new or empty folder")
        path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        for entry in path.iterdir():  # the old run, once no recorder is writing it
            if entry.name != LOCK:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        (path / WEIGHTS).mkdir(exist_ok=True)
        torch.save(probe.detach().cpu(), path / PROBE)
        specs, columns = self._layout()
        group = zarr.open_group(path / SERIES, mode="w")
        width = max(stop for cols in columns.values() for _, stop in cols.values())
        group.create_array(STATS_ARRAY, shape=(MAX_ROWS, width), chunks=(chunk_snapshots(width), width),
                           dtype="float32", fill_value=np.nan, compressors=COMPRESSORS,
                           dimension_names=("snapshot", "column"),
                           attributes={"what": "per snapshot, every statistic of every layer's "
                                               "neurons; run.json 'columns' maps statistic -> "
                                               "layer -> [start, stop)"})
        group.create_array(SNAPSHOTS_ARRAY, shape=(MAX_ROWS, 2), chunks=(CHUNK_STEPS, 2),
                           dtype="float64", fill_value=np.nan, compressors=COMPRESSORS,
                           dimension_names=("snapshot", "field"),
                           attributes={"fields": ["step", "loss"]})
        group.create_array(STEP_LOSS_ARRAY, shape=(MAX_ROWS,), chunks=(CHUNK_STEPS,),
                           dtype="float64", fill_value=np.nan, compressors=COMPRESSORS,
                           dimension_names=("step",))
        arch_shapes = architecture(self.model)
        self.meta: dict[str, Any] = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "status": STATUS_RECORDING,
            "snapshots": 0, "steps_recorded": 0, "every": self.every,
            "model_class": type(self.model).__name__,
            "model_fingerprint": architecture_fingerprint(arch_shapes),
            "architecture": arch_shapes,
            "probe_shape": list(probe.shape), "probe_dtype": str(probe.dtype).removeprefix("torch."),
            "weights": self.keep_weights, "arch": arch, "model_args": model_args or {},
            "layers": specs, "columns": columns,
            "chunk_steps": CHUNK_STEPS, "first_nonfinite_step": None,
            "created": _now(), "updated": _now(),
        }
        write_meta(path, self.meta)
        self._previous = {layer.name: layer.units() for layer in self._weighted}

    def _take_lock(self) -> None:
        """One recorder per run: a second one (another process, or a forgotten recorder of a
        notebook cell run again) would interleave its snapshots with the first's."""
        try:
            self._lock = WriterLock(self.path).acquire()
        except StoreLockedError as exc:
            holder = str(exc).split(" is being written by ", 1)[-1].split(" (lock file", 1)[0]
            raise StoreLockedError(
                f"the run at {self.path} is being recorded by {holder}; close that recorder "
                "(rec.close()) or wait for it to end, then record again") from None

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _open_existing(self, probe: torch.Tensor) -> None:
        meta = load_meta(self.path)
        theirs, ours = meta["architecture"], architecture(self.model)
        if theirs != ours:
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            shown = "; ".join(f"{k}: run {theirs.get(k)}, model {ours.get(k)}" for k in diff[:5])
            raise RunMismatchError(
                f"cannot resume the run at {self.path} with this model: its architecture differs "
                f"({shown})")
        stored = torch.load(self.path / PROBE, weights_only=True)
        if stored.shape != probe.shape or not torch.equal(stored, probe.detach().cpu()):
            raise RunMismatchError(
                f"cannot resume the run at {self.path} with another probe (run: "
                f"{tuple(stored.shape)}, given: {tuple(probe.shape)}); pass the run's probe, "
                "open_run(path).probe()")
        specs, columns = self._layout()
        if [s["name"] for s in specs] != [s["name"] for s in meta["layers"]] or columns != meta["columns"]:
            raise RunMismatchError(
                f"cannot resume the run at {self.path}: it recorded layers "
                f"{[s['name'] for s in meta['layers']]}, this recorder chose {[s['name'] for s in specs]}")
        if meta["every"] != self.every:
            meta["every"] = self.every
        # whatever lies beyond the committed count is a snapshot that was not finished
        for f in (self.path / WEIGHTS).glob("*.pt"):
            if f.stem.isdigit() and int(f.stem) >= meta["snapshots"]:
                f.unlink()
        meta["status"] = STATUS_RECORDING
        meta["updated"] = _now()
        self.keep_weights = meta["weights"]
        self.meta = meta
        write_meta(self.path, meta)
        last = weights_file(self.path, meta["snapshots"] - 1)
        if self.keep_weights and meta["snapshots"] and last.is_file():
            # weight_change of the first resumed snapshot is against the last committed one
            state = torch.load(last, weights_only=True, map_location=self._device)
            self._previous = {}
            for layer in self._weighted:
                prefix = layer.call.module + "."
                w = state[prefix + "weight"].reshape(layer.neurons, -1).float()
                if prefix + "bias" in state:
                    w = torch.cat([w, state[prefix + "bias"].reshape(layer.neurons, 1).float()], 1)
                self._previous[layer.name] = w
        else:
            self._previous = {layer.name: layer.units() for layer in self._weighted}

    def _open_arrays(self) -> None:
        group = zarr.open_group(self.path / SERIES, mode="r+")
        n, t = self.meta["snapshots"], self.meta["steps_recorded"]
        stats = group[STATS_ARRAY]
        self._stats_out = _Appender(stats, stats.chunks[0], n)
        self._snapshots_out = _Appender(group[SNAPSHOTS_ARRAY], CHUNK_STEPS, n)
        self._step_loss_out = _Appender(group[STEP_LOSS_ARRAY], CHUNK_STEPS, t)
        self._step = t
        self._pending_losses: list[float] = []  # steps since the last snapshot, not yet written
        self._seen_nonfinite = self.meta.get("first_nonfinite_step") is not None

    # -- recording ---------------------------------------------------------------------------

    @property
    def n_snapshots(self) -> int:
        """Snapshots committed so far."""
        return self.meta["snapshots"]

    @property
    def steps(self) -> int:
        """Steps counted so far (calls of :meth:`step`, across resumes)."""
        return self._step

    def step(self, loss: float) -> bool:
        """Count one training step with its loss; take a snapshot if one is due.

        A snapshot is due every ``every`` steps (step 0 included) and at the first step whose
        loss is not finite. Returns whether a snapshot was taken. With ``background=True`` the
        snapshot is committed by the writer thread shortly after (see :meth:`flush`); a
        non-finite loss's snapshot is always committed before this returns.
        """
        self._check_usable()
        if isinstance(loss, torch.Tensor):  # the loss tensor itself: no "requires_grad" warning
            if loss.numel() != 1:
                raise InvalidParameterError(
                    f"rec.step needs the loss as one number; got a tensor of shape "
                    f"{tuple(loss.shape)} (reduce it first, e.g. loss.mean())")
            loss = loss.detach().item()
        try:
            value = float(loss)
        except (TypeError, ValueError):
            raise InvalidParameterError(f"rec.step needs the loss as a number. Got {loss!r}.") from None
        step = self._step
        self._pending_losses.append(value)
        self._step += 1
        due = step % self.every == 0
        forced = not math.isfinite(value) and not self._seen_nonfinite
        if forced:
            self._seen_nonfinite = True
            self.meta["first_nonfinite_step"] = step
            due = True
        if due:
            self._submit(self._snapshot_job(step, value))
            if forced:  # the run may die right after: have the failure on disk first
                self.flush()
        return due

    def _check_usable(self) -> None:
        if self._failed is not None:
            self._failure_seen = True
            raise InvalidParameterError(
                f"writing a snapshot to {self.path} failed ({self._failed!r}); its finished "
                "snapshots are kept: record again with resume=True to go on") from self._failed
        if self._closed:
            raise InvalidParameterError(f"the recorder of {self.path} is closed")

    def _snapshot_job(self, step: int, loss: float) -> dict[str, Any]:
        """What must be taken from the model now, at ``rec.step``: weight and gradient norms
        (and, writing in the background, a copy of the state the probe pass will use)."""
        weight_stats: dict[str, dict[str, torch.Tensor]] = {}
        with torch.no_grad():
            for layer in self._weighted:
                now = layer.units()
                weight_stats[layer.name] = {
                    "weight_change": torch.linalg.vector_norm(now - self._previous[layer.name], dim=1),
                    "grad_norm": torch.linalg.vector_norm(layer.units(grad=True), dim=1)}
                self._previous[layer.name] = now
        state = None
        if self._worker is not None or self.keep_weights:
            state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        losses, self._pending_losses = self._pending_losses, []
        shown = None if self.session is None else stream_step(self.session, step)
        return {"step": step, "loss": loss, "weight_stats": weight_stats, "state": state,
                "losses": losses, "stream_step": shown}

    def _submit(self, job: dict[str, Any]) -> None:
        if self._worker is None:
            self._run_job(job)
        else:
            self._jobs.put(job)  # blocks while two snapshots wait: memory stays bounded

    def _run_job(self, job: dict[str, Any]) -> None:
        try:
            for value in job["losses"]:
                self._step_loss_out.append(value)
            if job.get("close"):
                self._step_loss_out.flush()
                self._commit(self.meta["snapshots"], STATUS_COMPLETE)
            else:
                self._write_snapshot(job)
        except BaseException as exc:  # the arrays are ahead of run.json: stop here
            self._failed = exc
            self._failure_seen = self._worker is None or threading.current_thread() is not self._worker
            self._release_lock()  # this recorder writes no more: resume=True may take the run
            raise

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._failed is None:
                    with contextlib.suppress(BaseException):  # kept in self._failed
                        self._run_job(job)
            finally:
                self._jobs.task_done()

    def flush(self) -> None:
        """Wait until every snapshot taken so far is committed (at once without background)."""
        if self._worker is not None:
            self._jobs.join()
        self._raise_failure()

    def _probe_stats(self, model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
        wanted: dict[tuple[str, int], _Layer] = {(lay.call.module, lay.call.index): lay
                                                 for lay in self.layers}
        found: dict[str, dict[str, torch.Tensor]] = {}
        counts: dict[str, int] = {}

        def hook_for(module_name: str):
            def hook(module, inputs, output):
                index = counts.get(module_name, 0)
                counts[module_name] = index + 1
                layer = wanted.get((module_name, index))
                out = output_tensor(output)
                if layer is not None and out is not None:
                    found[layer.name] = activation_stats(*neuron_view(out.detach(), layer.call))
            return hook

        modules = dict(model.named_modules())
        with torch.no_grad(), _EvalPass(model), hook_group() as hooks:
            for name in {lay.call.module for lay in self.layers}:
                hooks.add(modules[name].register_forward_hook(hook_for(name)))
            self._forward(model)
        missing = [lay.name for lay in self.layers if lay.name not in found]
        if missing:
            raise LayerNotFoundError(f"layers {missing} did not run in the probe forward pass")
        return found

    def _write_snapshot(self, job: dict[str, Any]) -> None:
        if self._shadow is not None:
            self._shadow.load_state_dict(job["state"])
            acts = self._probe_stats(self._shadow)
        else:
            acts = self._probe_stats(self.model)
        for name, stats in job["weight_stats"].items():
            acts[name].update(stats)
        row = torch.cat([acts[name][stat].float() for stat, cols in self.meta["columns"].items()
                         for name in cols]).cpu().numpy()
        index = self.meta["snapshots"]
        if self.keep_weights:
            torch.save({k: v.cpu() for k, v in job["state"].items()}, weights_file(self.path, index))
        self._stats_out.append(row)
        self._snapshots_out.append((job["step"], job["loss"]))
        write_all([self._stats_out, self._snapshots_out, self._step_loss_out])
        self._commit(index + 1)
        if self.session is not None:
            publish(self.session, job["stream_step"], job["loss"], acts)

    def _commit(self, snapshots: int, status: str = STATUS_RECORDING) -> None:
        meta = dict(self.meta, snapshots=snapshots, steps_recorded=self._step_loss_out.count,
                    status=status, updated=_now())
        write_meta(self.path, meta, sync=status != STATUS_RECORDING)
        self.meta = meta

    def close(self) -> None:
        """Commit the per-step losses recorded since the last snapshot; status "complete"."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._failed is None:
                job = {"close": True, "losses": self._pending_losses}
                self._pending_losses = []
                self._submit(job)
        finally:
            self._stop_worker()
            self._release_lock()
        self._raise_failure()

    def _raise_failure(self) -> None:
        """Raise a writer-thread failure the caller has not seen yet."""
        if self._failed is not None and not self._failure_seen:
            self._failure_seen = True
            raise self._failed

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join()
            self._worker = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()  # a write that failed in the background is raised here
        else:  # keep what was committed (waiting for the writer); the run stays "recording"
            self._closed = True
            self._stop_worker()
            self._release_lock()

    def __repr__(self) -> str:
        return (f"Recorder({str(self.path)!r}, every={self.every}, layers={len(self.layers)}, "
                f"snapshots={self.n_snapshots}, steps={self._step})")


def record(model: nn.Module, probe: torch.Tensor, path: str | os.PathLike, *, every: int = 10,
           layers: Any = "auto", weights: bool = True, overwrite: bool = False,
           resume: bool = False, session=None, arch: str | None = None,
           model_args: dict | None = None, background: bool = False) -> Recorder:
    """Record a training run's dynamics into the run folder ``path``.

    Parameters
    ----------
    model : nn.Module
        The model being trained.
    probe : Tensor
        A fixed batch of inputs, run through the model at every snapshot (saved as probe.pt).
    path : path-like
        The run folder (new, empty, or an existing run with ``overwrite`` or ``resume``).
    every : int
        Steps between snapshots; step 0 is always one, and so is the first non-finite loss.
    layers : "auto" or list of str
        "auto": every Linear/Conv, recurrent (RNN/LSTM/GRU), Embedding and activation module
        that runs; or module
        names (``"relu#1"`` picks one call of a module that runs more than once).
    weights : bool
        Keep each snapshot's state dict under ``<path>/weights/<snapshot>.pt``.
    overwrite, resume : bool
        Replace an existing run, or append to it (the step count continues).
    session : LiveSession, optional
        Each snapshot also publishes its loss and per-layer summaries as scalar streams.
    arch, model_args : str, dict
        A ``modeldx.zoo.MODELS`` name and its arguments, so a viewer can rebuild the model.
    background : bool
        Run the probe pass (on a copy of the model) and the writes in a thread, so training
        goes on meanwhile: on a machine with a spare core the overhead drops to the copy of the
        state at each snapshot (docs/benchmarks.md). Snapshots are committed shortly after
        ``rec.step`` (``rec.flush()`` waits for them; a non-finite loss's snapshot is committed
        before ``rec.step`` returns); a killed process loses at most the two in flight.

    Returns
    -------
    Recorder
        Call ``rec.step(loss=...)`` after each optimizer step and ``rec.close()`` at the end (or
        use it as a context manager).

    Examples
    --------
    >>> with record(model, probe, "runs/lenet", every=10) as rec:  # doctest: +SKIP
    ...     for x, y in loader:
    ...         opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
    ...         rec.step(loss=loss.item())
    """
    return Recorder(model, probe, path, every=every, layers=layers, weights=weights,
                    overwrite=overwrite, resume=resume, session=session, arch=arch,
                    model_args=model_args, background=background)
