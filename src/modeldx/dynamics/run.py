"""Reading a recorded run (see :mod:`modeldx.dynamics.recorder`), also while it is recorded.

Everything is read up to the committed count in ``run.json``; rows a recorder has written beyond
it (a snapshot being written, or one a crash interrupted) are never returned.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr
from torch import nn

from modeldx.dynamics._layout import (
    PROBE,
    SERIES,
    SNAPSHOTS_ARRAY,
    STATS,
    STATS_ARRAY,
    STEP_LOSS_ARRAY,
    load_meta,
    weights_file,
)
from modeldx.errors import InvalidParameterError, LayerNotFoundError, StoreCorruptError, StoreReplacedError


class Run:
    """A read-only view of a run folder; :meth:`refresh` sees snapshots committed since."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.path = path
        self._cache: dict[str, np.ndarray] = {}
        self._attach(meta)

    def _attach(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self._identity = self._series_identity()
        self._group = zarr.open_group(self.path / SERIES, mode="r")
        self._specs = {spec["name"]: spec for spec in meta["layers"]}
        self._cache.clear()

    def _series_identity(self) -> tuple[int, int] | None:
        """series.zarr's inode and change time: the same while a recorder appends (its chunks go to
        sub-folders), new when ``record(..., overwrite=True)`` replaced the run."""
        try:
            st = os.stat(self.path / SERIES)
        except OSError:
            return None
        return st.st_ino, st.st_ctime_ns

    @property
    def replaced(self) -> bool:
        """Whether the run folder was recorded again (``overwrite=True``) or removed since it was
        read; :meth:`refresh` reads the new run."""
        return self._series_identity() != self._identity

    # -- what the run holds ------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``"recording"`` (also a killed recorder's run) or ``"complete"``."""
        return self.meta["status"]

    @property
    def layers(self) -> list[str]:
        """Recorded layers in forward-execution order."""
        return [spec["name"] for spec in self.meta["layers"]]

    @property
    def n_snapshots(self) -> int:
        """Committed snapshots."""
        return int(self.meta["snapshots"])

    def _spec(self, layer: str) -> dict[str, Any]:
        if layer not in self._specs:
            raise LayerNotFoundError(
                f"the run at {self.path} has no layer {layer!r}; its layers are: "
                f"{', '.join(self.layers)}")
        return self._specs[layer]

    def neurons(self, layer: str) -> int:
        return int(self._spec(layer)["neurons"])

    def stats_of(self, layer: str) -> tuple[str, ...]:
        """Which of :data:`STATS` the layer has (weight statistics only for weighted layers)."""
        return tuple(self._spec(layer)["stats"])

    def _full(self, name: str) -> np.ndarray:
        """Rows ``0:n_snapshots`` of a snapshot array (cached until :meth:`refresh`)."""
        if name not in self._cache:
            self._cache[name] = self._rows(name, 0, self.n_snapshots)
        return self._cache[name]

    def _damaged(self, what: str) -> StoreCorruptError:
        return StoreCorruptError(
            f"the run at {self.path} is damaged: {what}; its other files are intact, but this part "
            "cannot be read (record the run again, or copy it back from a backup)")

    def _rows(self, name: str, start: int, stop: int, columns: slice = slice(None)) -> np.ndarray:
        """Committed rows ``start:stop`` of an array, every chunk touched checked.

        The recorder writes every chunk whole (``write_empty_chunks``), so an absent chunk file
        below the committed count is damage: zarr would read it as NaN, a run that "failed".
        """
        if self.replaced:  # its arrays through this run's column layout would be another run's numbers
            raise StoreReplacedError(
                f"the run at {self.path} was recorded again (overwrite=True) or removed since it was "
                "read; call refresh() (or open_run) to read the new run")
        arr = self._group[name]
        if stop <= start:
            return arr[start:stop, columns] if arr.ndim > 1 else arr[start:stop]
        per = arr.chunks[0]
        chunks = range(start // per, (stop - 1) // per + 1)
        for chunk in chunks:
            key = arr.metadata.encode_chunk_key((chunk,) + (0,) * (arr.ndim - 1))
            if not (self.path / SERIES / name / key).is_file():
                raise self._damaged(f"chunk {chunk} (snapshots or steps {chunk * per}-"
                                    f"{(chunk + 1) * per - 1}) of array {name!r} is missing")
        try:
            return arr[start:stop, columns] if arr.ndim > 1 else arr[start:stop]
        except (ValueError, RuntimeError, TypeError) as exc:  # a chunk that does not decode
            for chunk in chunks:  # name the chunk that fails
                try:
                    arr[chunk * per:(chunk + 1) * per]
                except (ValueError, RuntimeError, TypeError) as one:
                    raise self._damaged(f"chunk {chunk} of array {name!r} does not decode ({one})") \
                        from None
            raise self._damaged(f"rows {start}-{stop - 1} of array {name!r} do not decode ({exc})") \
                from None

    @property
    def steps(self) -> np.ndarray:
        """(S,) int64: the training step of each snapshot."""
        return self._full(SNAPSHOTS_ARRAY)[:, 0].astype(np.int64)

    @property
    def loss(self) -> np.ndarray:
        """(S,) float64: the loss at each snapshot's step (non-finite values kept)."""
        return self._full(SNAPSHOTS_ARRAY)[:, 1].astype(np.float64)

    def losses(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, loss) of every recorded step, up to the last commit."""
        n = int(self.meta["steps_recorded"])
        return np.arange(n, dtype=np.int64), self._rows(STEP_LOSS_ARRAY, 0, n).astype(np.float64)

    def series(self, layer: str, stat: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(snapshots ``start:stop``, neurons) float32: one statistic of a layer's neurons."""
        self._check_stat(layer, stat)
        lo, hi = self.meta["columns"][stat][layer]
        rows = range(self.n_snapshots)[slice(start, stop)]
        if len(rows) == 0:
            return np.zeros((0, hi - lo), dtype=np.float32)
        if STATS_ARRAY in self._cache or rows.step != 1:
            return self._full(STATS_ARRAY)[rows.start:rows.stop:rows.step, lo:hi].astype(np.float32)
        return np.asarray(self._rows(STATS_ARRAY, rows.start, rows.stop, slice(lo, hi)), dtype=np.float32)

    def _check_stat(self, layer: str, stat: str) -> None:
        have = self.stats_of(layer)
        if stat not in have:
            what = "not a statistic" if stat not in STATS else f"not recorded for layer {layer!r}"
            raise InvalidParameterError(
                f"stat {stat!r} is {what}; layer {layer!r} has: {', '.join(have)}")

    def summary(self, layer: str, stat: str) -> dict[str, np.ndarray]:
        """Per snapshot over the layer's neurons: ``mean``, ``min``, ``max`` (of the finite
        values; NaN when none is finite) and ``nonfinite`` (how many neurons are not finite)."""
        values = self.series(layer, stat)
        finite = np.isfinite(values)
        count = finite.sum(axis=1)
        masked = np.where(finite, values, 0.0).astype(np.float64)  # a float32 sum of 1e36s overflows
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, masked.sum(axis=1) / np.maximum(count, 1), np.nan)
        low = np.where(count > 0, np.where(finite, values, np.inf).min(axis=1, initial=np.inf), np.nan)
        high = np.where(count > 0, np.where(finite, values, -np.inf).max(axis=1, initial=-np.inf), np.nan)
        return {"mean": mean.astype(np.float64), "min": low.astype(np.float64),
                "max": high.astype(np.float64),
                "nonfinite": (values.shape[1] - count).astype(np.int64)}

    def first_nonfinite(self) -> int | None:
        """The first snapshot whose loss or any statistic is non-finite, or where some neuron's
        activations were partly non-finite; None if the run stayed finite."""
        bad = ~np.isfinite(self.loss)
        everything = self._full(STATS_ARRAY)
        bad |= ~np.isfinite(everything).all(axis=1)
        for lo, hi in self.meta["columns"].get("nonfinite_share", {}).values():
            bad |= (np.nan_to_num(everything[:, lo:hi], nan=1.0) > 0).any(axis=1)
        hits = np.flatnonzero(bad)
        return int(hits[0]) if hits.size else None

    def probe(self) -> torch.Tensor:
        """The probe batch the run was recorded with."""
        return torch.load(self.path / PROBE, weights_only=True)

    def state_dict(self, snapshot: int) -> dict[str, torch.Tensor]:
        """The model's state dict at ``snapshot`` (when the run kept weights)."""
        if not self.meta.get("weights"):
            raise InvalidParameterError(
                f"the run at {self.path} was recorded with weights=False; it holds no state dicts")
        if isinstance(snapshot, bool) or not isinstance(snapshot, int | np.integer):
            raise InvalidParameterError(f"snapshot must be an int. Got {snapshot!r}.")
        index = int(snapshot) + (self.n_snapshots if snapshot < 0 else 0)
        if not 0 <= index < self.n_snapshots:
            raise InvalidParameterError(
                f"snapshot {snapshot} is out of range; the run has {self.n_snapshots} snapshots")
        file = weights_file(self.path, index)
        if not file.is_file():
            raise self._damaged(f"the weights of snapshot {index}, {file.relative_to(self.path)}, are "
                                "missing")
        return torch.load(file, weights_only=True, map_location="cpu")

    def build_model(self) -> nn.Module | None:
        """``MODELS[arch](**model_args)`` in eval mode, or None if the run names no architecture."""
        arch = self.meta.get("arch")
        if arch is None:
            return None
        from modeldx.zoo import MODELS

        return MODELS[arch](**(self.meta.get("model_args") or {})).eval()

    def refresh(self) -> Run:
        """Re-read run.json: snapshots committed since become visible (or, if the run was
        recorded again with ``overwrite=True``, the new run). Returns self."""
        meta = load_meta(self.path)
        if self.replaced:
            self._attach(meta)
        else:
            self.meta = meta
            self._cache.clear()
        return self

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, status={self.status!r}, snapshots={self.n_snapshots}, "
                f"layers={len(self.layers)})")


def open_run(path: str | os.PathLike) -> Run:
    """Open a recorded run read-only; works while a recorder still appends (see
    :meth:`Run.refresh`).

    Raises
    ------
    RunNotFoundError
        ``path`` holds no run.
    """
    path = Path(path)
    return Run(path, load_meta(path))
