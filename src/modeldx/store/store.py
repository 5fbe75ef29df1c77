"""A store on disk: ``manifest.json``, ``items.parquet``, ``arrays.zarr/`` and ``samples/``.

Writes are crash-safe: a capture writes one item chunk at a time — every array's
chunk, then the chunk's rows of the items table, then an empty marker file — and
turns the manifest's status to ``complete`` last. A capture that is killed
resumes from the chunks whose markers exist; a half-written chunk has no marker
and is simply written again.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import zarr
from zarr.codecs import ZstdCodec

from modeldx.errors import (
    LayerNotFoundError,
    StoreError,
    StoreExistsError,
    StoreIncompleteError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreWriteError,
)
from modeldx.store.encoding import decode, encode, latent_encoding, storage_dtype
from modeldx.store.manifest import (
    MANIFEST,
    STATUS_COMPLETE,
    Manifest,
    read_manifest,
    write_manifest,
)

ARRAYS = "arrays.zarr"
ITEMS = "items.parquet"
SAMPLES = "samples"
PROGRESS = "_progress"

ITEM_COLUMNS = ("item_id", "split", "label", "pred", "correct", "confidence", "loss")

# zstd at level 1 compresses activations within 2% of the default level at ~70% of its CPU time;
# capture's writer shares the cores with the model, so its CPU time is capture overhead.
COMPRESSORS = (ZstdCodec(level=1),)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_parquet_atomic(table: pa.Table, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".part")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class Store:
    """Read access to a store; use :func:`open_store` to get one.

    Attributes
    ----------
    path : Path
    manifest : Manifest
    read_only : bool
    """

    def __init__(self, path: Path, manifest: Manifest, *, read_only: bool = True) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.read_only = read_only
        self._group = zarr.open_group(self.path / ARRAYS, mode="r" if read_only else "r+")
        self._items: pd.DataFrame | None = None
        self._arrays: dict[str, zarr.Array] = {}

    # --- what is in it -------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.manifest.status

    @property
    def complete(self) -> bool:
        return self.manifest.status == STATUS_COMPLETE

    @property
    def n_items(self) -> int:
        return self.manifest.n_items

    @property
    def layers(self) -> list[str]:
        return [spec.name for spec in self.manifest.layers]

    @property
    def chunk_items(self) -> int:
        return self.manifest.chunk_items

    def chunk_bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` row ranges of the item chunks."""
        c, n = self.manifest.chunk_items, self.manifest.n_items
        return [(s, min(s + c, n)) for s in range(0, n, c)]

    def array_names(self) -> list[str]:
        names = ["latent", "probs"]
        names += [f"acts/{name}" for name in self.layers]
        if self.manifest.gradients:
            names += [f"grads/{name}" for name in self.layers]
        return names

    def neurons(self, layer: str) -> int:
        return self._layer_spec(layer).neurons

    def _layer_spec(self, layer: str):
        spec = self.manifest.layer(layer)
        if spec is None:
            raise LayerNotFoundError(
                f"layer {layer!r} is not in the store {self.path}; it holds "
                f"{', '.join(self.layers) or 'no layers'}"
            )
        return spec

    def require_complete(self) -> None:
        if not self.complete:
            raise StoreIncompleteError(
                f"the capture into {self.path} has not finished ({len(self.done_chunks())} of "
                f"{self.manifest.n_chunks} chunks written); run the same capture again to resume it"
            )

    # --- reading -------------------------------------------------------------------
    def items(self) -> pd.DataFrame:
        """The items table: one row per stored item, in store order."""
        if self._items is None:
            self.require_complete()
            self._items = pq.read_table(self.path / ITEMS).to_pandas()
        return self._items

    def _array(self, name: str) -> zarr.Array:
        if name not in self._arrays:  # opening reads the array's metadata from disk
            try:
                self._arrays[name] = self._group[name]
            except KeyError:
                raise KeyError(
                    f"array {name!r} is not in the store {self.path}; it holds {self.array_names()}"
                ) from None
        return self._arrays[name]

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of an array, decoded to float32.

        ``name`` is ``"latent"``, ``"probs"``, ``"acts/<layer>"`` or ``"grads/<layer>"``.
        """
        stop = self.manifest.n_items if stop is None else stop
        if name.startswith(("acts/", "grads/")):
            self._layer_spec(name.split("/", 1)[1])
        values = self._array(name)[start:stop]
        if self.manifest.encoding == "uint8" and name.startswith(("acts/", "grads/")):
            c = self.manifest.chunk_items
            params = self._array(f"quant/{name}")
            out = np.empty(values.shape, np.float32)
            for chunk in range(start // c, (stop - 1) // c + 1 if stop > start else start // c):
                lo, hi = max(start, chunk * c), min(stop, (chunk + 1) * c)
                out[lo - start:hi - start] = decode(values[lo - start:hi - start], "uint8",
                                                    params[chunk])
            return out
        return decode(values, "float32")

    def stored_bytes(self, name: str | None = None) -> int:
        """Bytes on disk of one array (with its quantization parameters), or of the whole store."""
        root = self.path if name is None else self.path / ARRAYS / name
        total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        if name is not None and (self.path / ARRAYS / "quant" / name).exists():
            total += self.stored_bytes(f"quant/{name}")
        return total

    # --- progress ------------------------------------------------------------------
    def done_chunks(self) -> set[int]:
        """Chunks a capture has finished (all of them once the store is complete)."""
        if self.complete:
            return set(range(self.manifest.n_chunks))
        folder = self.path / PROGRESS
        if not folder.is_dir():
            return set()
        return {int(p.stem.split("-")[1]) for p in folder.glob("chunk-*.done")}

    # --- samples -------------------------------------------------------------------
    def samples(self) -> list[str]:
        folder = self.path / SAMPLES
        return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []

    def save_sample(self, name: str, item_ids: np.ndarray, weights: np.ndarray,
                    info: dict[str, Any], *, overwrite: bool = False) -> Path:
        """Store a named sample: its item ids, inclusion weights and how it was made."""
        self._check_writable()
        if not name or any(ch in name for ch in "/\\") or name.startswith("."):
            raise ValueError(f"sample name must be a plain file name. Got {name!r}.")
        item_ids = np.asarray(item_ids, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        if item_ids.shape != weights.shape:
            raise ValueError(
                f"item_ids and weights must have one shape; got {item_ids.shape} and {weights.shape}"
            )
        path = self.path / SAMPLES / f"{name}.parquet"
        if path.exists() and not overwrite:
            raise StoreExistsError(f"sample {name!r} already exists in {self.path}; pass overwrite=True")
        path.parent.mkdir(exist_ok=True)
        table = pa.table({"item_id": item_ids, "weight": weights})
        table = table.replace_schema_metadata({"modeldx": json.dumps(info)})
        _write_parquet_atomic(table, path)
        return path

    def load_sample(self, name: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        path = self.path / SAMPLES / f"{name}.parquet"
        if not path.is_file():
            raise KeyError(f"no sample {name!r} in {self.path}; it has {self.samples()}")
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        info = json.loads(meta.get(b"modeldx", b"{}"))
        return (table.column("item_id").to_numpy(), table.column("weight").to_numpy(), info)

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreReadOnlyError(f"{self.path} is open read-only; open it with mode='r+' to write")

    def summary(self) -> dict[str, Any]:
        """What the store holds, as plain data (the ``modeldx info`` view)."""
        m = self.manifest
        return {
            "path": str(self.path),
            "status": m.status,
            "items": m.n_items,
            "chunks": f"{len(self.done_chunks())}/{m.n_chunks} of {m.chunk_items} items",
            "encoding": m.encoding,
            "dataset": m.dataset_name,
            "model": m.model_name,
            "latent": f"{m.latent_layer} ({m.latent_dim}-d)",
            "gradients": m.gradients,
            "layers": [
                {"name": s.name, "kind": s.kind, "raw_shape": s.raw_shape, "neurons": s.neurons,
                 "reduction": s.reduction}
                for s in m.layers
            ],
            "samples": self.samples(),
            "bytes": self.stored_bytes(),
        }

    def __repr__(self) -> str:
        return (f"Store({str(self.path)!r}, status={self.status!r}, items={self.n_items}, "
                f"layers={self.layers})")


def _is_store(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def open_store(path: str | os.PathLike, *, mode: str = "r",
               expect: dict[str, str] | None = None) -> Store:
    """Open a store, optionally checking the fingerprints it was captured from.

    Parameters
    ----------
    path
        The store's folder.
    mode
        ``"r"`` (read-only, the default) or ``"r+"`` (to save samples).
    expect
        ``{"model": fingerprint, "dataset": fingerprint}``; a value that differs
        from the manifest's raises :class:`~modeldx.errors.StoreMismatchError`.
        :func:`modeldx.open_store` computes these from a model and data set.

    Examples
    --------
    >>> store = open_store("modeldx-demo/mnist-lenet5")  # doctest: +SKIP
    >>> store.layers
    ['act1', 'act2', 'act3', 'act4', 'fc3']
    """
    path = Path(path)
    if mode not in ("r", "r+"):
        raise ValueError(f"The 'mode' parameter of open_store must be 'r' or 'r+'. Got {mode!r} instead.")
    if not path.exists():
        raise StoreNotFoundError(f"no store at {path}")
    if not _is_store(path):
        raise StoreNotFoundError(f"{path} is not a modeldx store (it has no {MANIFEST})")
    try:
        manifest = read_manifest(path)
    except (ValueError, json.JSONDecodeError) as exc:
        raise StoreError(f"cannot read the manifest of {path}: {exc}") from exc
    stored = {"model": manifest.model_fingerprint, "dataset": manifest.dataset_fingerprint}
    for what, got in (expect or {}).items():
        if got != stored[what]:
            raise StoreMismatchError(
                f"the store {path} was captured from another {what}: its {what} fingerprint is "
                f"{stored[what]}, the given {what}'s is {got}"
            )
    return Store(path, manifest, read_only=(mode == "r"))


class StoreWriter:
    """Creates or resumes a store and writes it chunk by chunk; used by capture.

    Parameters
    ----------
    path
        The store's folder.
    manifest
        What will be written. If a store with the same settings but unfinished
        is at ``path``, writing resumes there.
    overwrite
        Replace a complete store, or one with other settings, at ``path``.
    """

    def __init__(self, path: str | os.PathLike, manifest: Manifest, *, overwrite: bool = False,
                 array_dims: dict[str, int]) -> None:
        self.path = Path(path)
        self.manifest = manifest
        self.array_dims = array_dims  # array name -> columns
        self._prepare(overwrite)

    def _prepare(self, overwrite: bool) -> None:
        path = self.path
        if path.exists():
            if not _is_store(path):
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
                else:
                    raise StoreExistsError(
                        f"{path} exists and is not a modeldx store; refusing to write there "
                        "(choose an empty or new folder)"
                    )
            else:
                old = read_manifest(path)
                if old.status == STATUS_COMPLETE and not overwrite:
                    raise StoreExistsError(
                        f"a complete store is already at {path}; pass overwrite=True to replace it"
                    )
                diff = _settings_diff(old.settings(), self.manifest.settings())
                if diff and not overwrite:
                    raise StoreMismatchError(
                        f"an unfinished store at {path} was started with other settings "
                        f"({diff}); pass overwrite=True to discard it and start again"
                    )
                if overwrite and (diff or old.status == STATUS_COMPLETE):
                    shutil.rmtree(path)
                else:
                    self.manifest.created = old.created
                    self.group = zarr.open_group(path / ARRAYS, mode="r+")
                    return
        self._create()

    def _create(self) -> None:
        m = self.manifest
        try:
            self.path.mkdir(parents=True)
            (self.path / PROGRESS).mkdir()
            m.created = _now()
            self.group = zarr.open_group(self.path / ARRAYS, mode="w")
            for name, dim in self.array_dims.items():
                layered = name.startswith(("acts/", "grads/"))
                dtype = storage_dtype(self._encoding_of(name))
                self.group.create_array(name, shape=(m.n_items, dim), chunks=(m.chunk_items, dim),
                                        dtype=dtype, fill_value=0, compressors=COMPRESSORS)
                if layered and m.encoding == "uint8":
                    self.group.create_array(f"quant/{name}", shape=(m.n_chunks, 2, dim),
                                            chunks=(1, 2, dim), dtype="float32", fill_value=0)
            write_manifest(self.path, m)
        except OSError as exc:
            raise _write_error(exc, self.path, "creating the store") from exc

    def _encoding_of(self, name: str) -> str:
        if name.startswith(("acts/", "grads/")):
            return self.manifest.encoding
        return latent_encoding(self.manifest.encoding) if name == "latent" else "float32"

    def done_chunks(self) -> set[int]:
        folder = self.path / PROGRESS
        return {int(p.stem.split("-")[1]) for p in folder.glob("chunk-*.done")}

    def write_chunk(self, index: int, arrays: dict[str, np.ndarray], items: dict[str, np.ndarray]) -> None:
        """Write chunk ``index`` of every array and its item rows, then mark it done."""
        m = self.manifest
        start = index * m.chunk_items
        stop = min(start + m.chunk_items, m.n_items)
        try:
            for name, block in arrays.items():
                if block.shape != (stop - start, self.array_dims[name]):
                    raise ValueError(f"chunk {index} of {name} has shape {block.shape}, expected "
                                     f"{(stop - start, self.array_dims[name])}")
                try:
                    enc = encode(block, self._encoding_of(name))
                except OverflowError as exc:
                    raise OverflowError(f"{name}, items {start}-{stop - 1}: {exc}") from None
                self.group[name][start:stop] = enc.values
                if enc.params is not None:
                    self.group[f"quant/{name}"][index] = enc.params
            _write_parquet_atomic(pa.table(items), self.path / PROGRESS / f"items-{index:06d}.parquet")
            (self.path / PROGRESS / f"chunk-{index:06d}.done").touch()
        except OSError as exc:
            raise _write_error(exc, self.path, f"writing chunk {index}") from exc

    def finalize(self) -> Store:
        """Join the item rows, then mark the store complete (the last write)."""
        m = self.manifest
        missing = sorted(set(range(m.n_chunks)) - self.done_chunks())
        if missing:
            raise StoreIncompleteError(f"cannot finish {self.path}: chunks {missing[:10]} are not written")
        try:
            parts = [pq.read_table(self.path / PROGRESS / f"items-{i:06d}.parquet")
                     for i in range(m.n_chunks)]
            _write_parquet_atomic(pa.concat_tables(parts), self.path / ITEMS)
            m.status = STATUS_COMPLETE
            m.completed = _now()
            write_manifest(self.path, m)
        except OSError as exc:
            raise _write_error(exc, self.path, "finishing the store") from exc
        shutil.rmtree(self.path / PROGRESS, ignore_errors=True)
        return open_store(self.path)


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {old.get(k)!r} != {new.get(k)!r}" if k != "layers" else "layers differ"
                     for k in new if old.get(k) != new.get(k))


def _write_error(exc: OSError, path: Path, doing: str) -> StoreWriteError:
    reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return StoreWriteError(
        exc.errno or 0,
        f"{doing} in {path} failed: {reason}. Chunks written before stay valid; free the "
        "problem and run the same capture again to resume",
    )
