"""A store on disk: ``manifest.json``, ``items.parquet``, ``arrays.zarr/`` and ``samples/``.

Writes are crash-safe: a capture writes one item chunk at a time — every array's
chunk, then the chunk's rows of the items table, then an empty marker file — and
turns the manifest's status to ``complete`` last. A capture that is killed
resumes from the chunks whose markers exist; a half-written chunk has no marker
and is simply written again.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from modeldx.errors import (
    ArrayNotFoundError,
    EncodingOverflowError,
    InvalidParameterError,
    LayerNotFoundError,
    SampleNotFoundError,
    StoreCorruptError,
    StoreExistsError,
    StoreIncompleteError,
    StoreMismatchError,
    StoreNotFoundError,
    StoreReadOnlyError,
    StoreReplacedError,
    StoreWriteError,
)
from modeldx.store.encoding import ENCODINGS, decode, encode, latent_encoding, storage_dtype
from modeldx.store.fs import StoreFS, unseen
from modeldx.store.lock import LOCK, WriterLock
from modeldx.store.manifest import (
    MANIFEST,
    RECOVER,
    STATUS_COMPLETE,
    LayerSpec,
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
# The CRC32C after zstd makes a changed or truncated chunk fail on read instead of decoding to
# garbage (docs/benchmarks.md measures its cost).
COMPRESSORS = (ZstdCodec(level=1), Crc32cCodec())
# zarr skips chunks equal to the fill value by default; writing every chunk makes a missing
# chunk file always damage, never "all zeros"
WRITE_CONFIG = {"write_empty_chunks": True}
# zarr raises these when a chunk does not decode (checksum mismatch, truncated zstd frame)
_DECODE_ERRORS = (ValueError, RuntimeError, TypeError)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_parquet_atomic(table: pa.Table, fs: StoreFS, rel: str, row_group_size: int | None = None) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size)
    fs.write_bytes_atomic(rel, buf.getvalue())


def _store_path(fs: StoreFS) -> Path | str:
    """What ``Store.path`` is: a ``Path`` for a local store, the URL for any other."""
    return fs.location if "://" in fs.location else Path(fs.location)


def check_sample_name(name: Any) -> str:
    """A sample name is a plain file name: not empty, no path separator, no leading dot."""
    if not isinstance(name, str) or not name or any(ch in name for ch in "/\\\0") \
            or name.startswith("."):
        raise InvalidParameterError(
            f"The sample name must be a plain file name (no '/', '\\', leading '.' or '..'). "
            f"Got {name!r} instead."
        )
    return name


@dataclass(frozen=True)
class Problem:
    """One damaged part of a store, as :meth:`Store.verify` reports it."""

    array: str  # array name, or the file ("items.parquet")
    chunk: int | None
    items: tuple[int, int] | None  # first and last item row of the chunk
    what: str

    def __str__(self) -> str:
        where = self.array if self.chunk is None else (
            f"{self.array} chunk {self.chunk} (items {self.items[0]}-{self.items[1]})")
        return f"{where}: {self.what}"


class Store:
    """Read access to a store; use :func:`open_store` to get one.

    Opening checks that the manifest, the items table and the arrays agree; every
    read checks the chunks it touches (a missing chunk or one that fails its
    checksum raises :class:`~modeldx.errors.StoreCorruptError`) and that the store
    was not replaced since it was opened (:class:`~modeldx.errors.StoreReplacedError`).

    Attributes
    ----------
    path : Path or str
        A ``Path`` for a local store, the URL for a store opened by URL.
    fs : StoreFS
        The filesystem and root every read goes through.
    manifest : Manifest
    read_only : bool
    """

    def __init__(self, path: Path | str | StoreFS, manifest: Manifest, *,
                 read_only: bool = True) -> None:
        self.fs = path if isinstance(path, StoreFS) else StoreFS(path)
        self.path = _store_path(self.fs)
        self.manifest = manifest
        self.read_only = read_only
        self._items: pd.DataFrame | None = None
        self._per_chunk_groups: bool | None = None  # items.parquet has one row group per item chunk
        self._arrays: dict[str, zarr.Array] = {}
        # the manifest read before this object existed may be older than the file now: the
        # first check parses it again and records the stat later checks compare with
        self._manifest_stat: tuple[int, int, int] | None = None
        self.check_current()
        try:
            self._group = zarr.open_group(self.fs.zarr_store(ARRAYS, read_only=read_only),
                                          mode="r" if read_only else "r+")
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise self._corrupt(f"its arrays ({ARRAYS}) cannot be opened: {exc}") from None
        self._check_layout()

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

    @property
    def store_id(self) -> str:
        return self.manifest.store_id

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

    def stored_arrays(self) -> dict[str, tuple[int, ...]]:
        """Every array on disk with the shape the manifest implies."""
        m = self.manifest
        dims = array_dims(m)
        shapes: dict[str, tuple[int, ...]] = {name: (m.n_items, d) for name, d in dims.items()}
        if m.encoding == "uint8":
            shapes.update({f"quant/{name}": (m.n_chunks, 2, d) for name, d in dims.items()
                           if name.startswith(("acts/", "grads/"))})
        if m.format_version >= 2:
            shapes["item_id"] = (m.n_items,)
        return shapes

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

    # --- integrity -----------------------------------------------------------------
    def _corrupt(self, what: str) -> StoreCorruptError:
        return StoreCorruptError(f"the store {self.path} is damaged: {what}; {RECOVER}")

    def _items_rows(self) -> int:
        if not self.fs.isfile(ITEMS):
            raise self._corrupt(f"its items table {ITEMS} is missing")
        try:
            with self.fs.open(ITEMS) as fh:
                return pq.read_metadata(fh).num_rows
        except (OSError, pa.ArrowException) as exc:
            raise self._corrupt(f"its items table {ITEMS} cannot be read ({exc})") from None

    def _check_layout(self) -> None:
        """Cheap checks on open: the manifest agrees with the items table's row count (its
        footer only) and with every array's shape (their metadata only)."""
        m = self.manifest
        if m.encoding not in ENCODINGS:
            raise self._corrupt(f"the manifest names the encoding {m.encoding!r}; expected one of "
                                f"{ENCODINGS}")
        if self.complete and (rows := self._items_rows()) != m.n_items:
            raise self._corrupt(f"the manifest says {m.n_items} items, {ITEMS} has {rows} rows")
        for name, shape in self.stored_arrays().items():
            arr = self._array(name, corrupt_if_missing=True)
            # activations decode by the manifest's encoding: it must be the one they were stored in
            if name.startswith(("acts/", "grads/")) and arr.dtype != np.dtype(storage_dtype(m.encoding)):
                raise self._corrupt(
                    f"the manifest says encoding {m.encoding!r}, but array {name!r} holds "
                    f"{arr.dtype} values")
            got = tuple(arr.shape)
            if got != shape:
                what = ("items" if got[0] != shape[0] else
                        "neurons" if name.startswith(("acts/", "grads/")) else "columns")
                raise self._corrupt(
                    f"array {name!r} has shape {got}, the manifest implies {shape} "
                    f"(its {what} disagree)")

    def _stat_manifest(self) -> tuple | None:
        return self.fs.stamp(MANIFEST)

    def check_current(self) -> None:
        """Raise :class:`~modeldx.errors.StoreReplacedError` if another capture replaced (or
        deleted) the store since it was opened. A ``stat`` when nothing changed."""
        stat = self._stat_manifest()
        if stat is not None and stat == self._manifest_stat:
            return
        try:
            current = read_manifest(self.fs).store_id if stat is not None else None
        except (OSError, StoreCorruptError):
            current = None
        if current is None or current != self.manifest.store_id:
            raise StoreReplacedError(
                f"the store at {self.path} was replaced by another capture (or deleted) since it "
                "was opened; open it again"
            )
        self._manifest_stat = stat  # the same store: its status changed (a capture finished)

    def _chunk_items_of(self, name: str, chunk: int) -> tuple[int, int]:
        c = self.manifest.chunk_items
        return chunk * c, min((chunk + 1) * c, self.manifest.n_items) - 1

    def _chunk_file(self, name: str, arr: zarr.Array, chunk: int) -> str:
        """The chunk's file, relative to the store's root."""
        return f"{ARRAYS}/{name}/" + arr.metadata.encode_chunk_key((chunk,) + (0,) * (arr.ndim - 1))

    def _bad_chunk(self, name: str, chunk: int, what: str) -> StoreCorruptError:
        lo, hi = self._chunk_items_of(name, chunk)
        return self._corrupt(f"chunk {chunk} (items {lo}-{hi}) of array {name!r} {what}")

    def _read_rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of an array as stored, each chunk touched checked."""
        arr = self._array(name)
        if stop <= start:
            return arr[start:stop]
        per = arr.chunks[0]
        chunks = range(start // per, (stop - 1) // per + 1)
        if self.manifest.format_version >= 2:  # every chunk is written: an absent file is damage
            for chunk in chunks:
                if not self.fs.isfile(self._chunk_file(name, arr, chunk)):
                    raise self._bad_chunk(name, chunk, "is missing")
        try:
            return arr[start:stop]
        except _DECODE_ERRORS as exc:
            for chunk in chunks:  # name the chunk that fails
                try:
                    arr[chunk * per:(chunk + 1) * per]
                except _DECODE_ERRORS as one:
                    raise self._bad_chunk(name, chunk, f"does not decode ({one})") from None
            raise self._corrupt(f"array {name!r} rows {start}-{stop - 1} do not decode ({exc})") \
                from None

    # --- reading -------------------------------------------------------------------
    def items(self) -> pd.DataFrame:
        """The items table: one row per stored item, in store order."""
        if self._items is None:
            self.require_complete()
            self.check_current()
            if (rows := self._items_rows()) != self.manifest.n_items:
                raise self._corrupt(f"the manifest says {self.manifest.n_items} items, {ITEMS} has "
                                    f"{rows} rows")
            try:
                with self.fs.open(ITEMS) as fh:
                    items = pq.read_table(fh).to_pandas()
            except (OSError, pa.ArrowException) as exc:
                self.check_current()
                raise self._corrupt(f"its items table {ITEMS} cannot be read ({exc})") from None
            self.check_current()
            self._items = items
        return self._items

    def chunk_items_table(self, index: int) -> pd.DataFrame:
        """The items table's rows of item chunk ``index``, indexed by store row like :meth:`items`.

        Reads that chunk's row group alone when ``items.parquet`` has one per chunk (stores
        written since the Dask engine); an older store's single row group is read whole and
        sliced. A worker of the Dask engine builds its chunk from this and the arrays.
        """
        self.require_complete()
        bounds = self.chunk_bounds()
        if not 0 <= index < len(bounds):
            raise InvalidParameterError(
                f"chunk index must be in [0, {len(bounds)}) for the store {self.path}. Got {index!r}.")
        start, stop = bounds[index]
        if self._items is not None:
            return self._items.iloc[start:stop]
        self.check_current()
        try:
            if self._per_chunk_groups is None:  # the footer's layout, looked at once per store object
                with self.fs.open(ITEMS) as fh:
                    meta = pq.read_metadata(fh)
                self._per_chunk_groups = meta.num_row_groups == len(bounds) and all(
                    meta.row_group(i).num_rows == b - a for i, (a, b) in enumerate(bounds))
            if self._per_chunk_groups:
                with self.fs.open(ITEMS) as fh:
                    frame = pq.ParquetFile(fh).read_row_group(index).to_pandas()
                frame.index = pd.RangeIndex(start, stop)
            else:
                frame = self.items().iloc[start:stop]
        except (OSError, pa.ArrowException) as exc:
            self.check_current()
            raise self._corrupt(f"its items table {ITEMS} cannot be read ({exc})") from None
        self.check_current()
        return frame

    @property
    def location(self) -> str:
        """Where any process finds this store: an absolute path, or the URL of fsspec storage."""
        return str(self.path.absolute()) if isinstance(self.path, Path) else str(self.path)

    def __reduce__(self):
        # a store travels to a Dask worker as its path and identity; the worker opens it there
        # (once per process, read-only) and refuses one replaced since
        from modeldx.store.cache import open_cached

        return open_cached, (self.location, self.store_id)

    def _array(self, name: str, *, corrupt_if_missing: bool = False) -> zarr.Array:
        if name not in self._arrays:  # opening reads the array's metadata from disk
            try:
                self._arrays[name] = self._group[name]
            except KeyError:
                if corrupt_if_missing:
                    raise self._corrupt(f"its array {name!r} is missing") from None
                raise ArrayNotFoundError(
                    f"array {name!r} is not in the store {self.path}; it holds {self.array_names()}"
                ) from None
            except (ValueError, TypeError) as exc:  # unreadable zarr.json
                raise self._corrupt(f"the metadata of array {name!r} cannot be read ({exc})") from None
        return self._arrays[name]

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of an array, decoded to float32.

        ``name`` is ``"latent"``, ``"probs"``, ``"acts/<layer>"`` or ``"grads/<layer>"``.
        """
        stop = self.manifest.n_items if stop is None else stop
        if name.startswith(("acts/", "grads/")):
            self._layer_spec(name.split("/", 1)[1])
        self._array(name)
        quantized = self.manifest.encoding == "uint8" and name.startswith(("acts/", "grads/"))
        c = self.manifest.chunk_items
        first, last = start // c, ((stop - 1) // c if stop > start else start // c - 1)
        try:
            values = self._read_rows(name, start, stop)
            params = self._read_rows(f"quant/{name}", first, last + 1) if quantized else None
        except StoreCorruptError:
            self.check_current()  # a store being replaced looks damaged: say what happened
            raise
        # checked after the read: a replacing capture writes its manifest before any chunk, so
        # rows read from its chunks are always caught here
        self.check_current()
        if not quantized:
            return decode(values, "float32")
        out = np.empty(values.shape, np.float32)
        for chunk in range(first, last + 1):
            lo, hi = max(start, chunk * c), min(stop, (chunk + 1) * c)
            out[lo - start:hi - start] = decode(values[lo - start:hi - start], "uint8",
                                                params[chunk - first])
        return out

    def verify(self, progress: Callable[[int, int], None] | None = None, *,
               read: bool = True) -> list[Problem]:
        """Read every chunk of every array and the items table; return what is damaged.

        ``progress(done, total)`` is called after each chunk. An empty list means the store
        is whole. ``read=False`` only checks that every chunk file exists (a quick look,
        ``modeldx info --quick``); reading finds changed and truncated chunks too.

        Examples
        --------
        >>> for problem in open_store("runs/mnist").verify():  # doctest: +SKIP
        ...     print(problem)
        """
        problems: list[Problem] = []
        m = self.manifest
        if self.complete and read:
            try:
                self.items()
            except StoreCorruptError as exc:
                problems.append(Problem(ITEMS, None, None, str(exc)))
        shapes = self.stored_arrays()
        total = sum(-(-shape[0] // self._array(name).chunks[0]) for name, shape in shapes.items())
        done_chunks = self.done_chunks()
        done = 0
        for name, shape in shapes.items():
            per = self._array(name).chunks[0]
            for chunk in range(-(-shape[0] // per)):
                item_chunk = chunk if name.startswith("quant/") else chunk * per // m.chunk_items
                if item_chunk in done_chunks:
                    try:
                        if read:
                            self._read_rows(name, chunk * per, min((chunk + 1) * per, shape[0]))
                        elif m.format_version >= 2 and \
                                not self.fs.isfile(self._chunk_file(name, self._array(name), chunk)):
                            raise self._bad_chunk(name, item_chunk, "is missing")
                    except StoreCorruptError as exc:
                        problems.append(Problem(name, item_chunk, self._chunk_items_of(name, item_chunk),
                                                _problem_text(str(exc))))
                done += 1
                if progress is not None:
                    progress(done, total)
        return problems

    def stored_bytes(self, name: str | None = None) -> int:
        """Bytes on disk of one array (with its quantization parameters), or of the whole store."""
        total = self.fs.size("" if name is None else f"{ARRAYS}/{name}")
        if name is not None and self.fs.exists(f"{ARRAYS}/quant/{name}"):
            total += self.stored_bytes(f"quant/{name}")
        return total

    # --- progress ------------------------------------------------------------------
    def done_chunks(self) -> set[int]:
        """Chunks a capture has finished (all of them once the store is complete)."""
        if self.complete:
            return set(range(self.manifest.n_chunks))
        return _done_chunks(self.fs)

    # --- samples -------------------------------------------------------------------
    def samples(self) -> list[str]:
        return sorted(n.removesuffix(".parquet") for n in self.fs.list(SAMPLES)
                      if n.endswith(".parquet") and not n.startswith("."))

    def save_sample(self, name: str, item_ids: np.ndarray, weights: np.ndarray,
                    info: dict[str, Any], *, overwrite: bool = False) -> Path | str:
        """Store a named sample: its item ids, inclusion weights and how it was made."""
        self._check_writable()
        check_sample_name(name)
        item_ids = np.asarray(item_ids, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        if item_ids.shape != weights.shape:
            raise InvalidParameterError(
                f"item_ids and weights must have one shape; got {item_ids.shape} and {weights.shape}"
            )
        rel = f"{SAMPLES}/{name}.parquet"
        if self.fs.exists(rel) and not overwrite:
            raise StoreExistsError(f"sample {name!r} already exists in {self.path}; pass overwrite=True")
        self.fs.makedirs(SAMPLES)
        table = pa.table({"item_id": item_ids, "weight": weights})
        table = table.replace_schema_metadata({"modeldx": json.dumps(info)})
        _write_parquet_atomic(table, self.fs, rel)
        return self.path / rel if isinstance(self.path, Path) else f"{self.path}/{rel}"

    def load_sample(self, name: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        rel = f"{SAMPLES}/{check_sample_name(name)}.parquet"
        path = self.fs.full(rel)
        if not self.fs.isfile(rel):
            raise SampleNotFoundError(f"no sample {name!r} in {self.path}; it has {self.samples()}")
        try:
            with self.fs.open(rel) as fh:
                table = pq.read_table(fh)
            meta = table.schema.metadata or {}
            info = json.loads(meta.get(b"modeldx", b"{}"))
            return (table.column("item_id").to_numpy(), table.column("weight").to_numpy(), info)
        except (OSError, pa.ArrowException, KeyError, json.JSONDecodeError) as exc:
            raise StoreCorruptError(
                f"the sample {name!r} of {self.path} is damaged ({exc}); delete {path} and make "
                "the sample again") from None

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


def _problem_text(message: str) -> str:
    # the per-chunk line names array and items itself; keep what is wrong, drop the advice
    what = message.split(" is damaged: ", 1)[-1].split(f"; {RECOVER}")[0]
    return what.split("' ", 1)[-1] if what.startswith("chunk ") else what


def _is_store(fs: StoreFS) -> bool:
    return fs.isfile(MANIFEST)


def _done_chunks(fs: StoreFS) -> set[int]:
    """The chunks whose done markers exist (a capture in progress)."""
    return {int(n[len("chunk-"):-len(".done")]) for n in fs.list(PROGRESS)
            if n.startswith("chunk-") and n.endswith(".done")}


def open_store(path: str | os.PathLike, *, mode: str = "r", model=None, dataset=None) -> Store:
    """Open a store; with ``model`` or ``dataset``, check they are the ones it was captured from.

    Opening checks the manifest, the items table's row count and every array's
    shape; a damaged store raises :class:`~modeldx.errors.StoreCorruptError`.

    Parameters
    ----------
    path
        The store's folder, or an fsspec URL (``file://``, ``memory://``,
        ``s3://...`` with its package installed).
    mode
        ``"r"`` (read-only, the default) or ``"r+"`` (to save samples).
    model, dataset
        A ``torch.nn.Module`` and a data set (anything :func:`modeldx.data.as_dataset`
        takes); a fingerprint that differs from the manifest's raises
        :class:`~modeldx.errors.StoreMismatchError` naming the mismatch.

    Examples
    --------
    >>> store = open_store("modeldx-demo/mnist-lenet5", model=model)  # doctest: +SKIP
    >>> store.layers
    ['act1', 'act2', 'act3', 'act4', 'fc3']
    """
    if mode not in ("r", "r+"):
        raise InvalidParameterError(
            f"The 'mode' parameter of open_store must be 'r' or 'r+'. Got {mode!r} instead.")
    fs = path if isinstance(path, StoreFS) else StoreFS(path)
    path = _store_path(fs)
    if not fs.exists():
        raise StoreNotFoundError(f"no store at {path}")
    if not _is_store(fs):
        raise StoreNotFoundError(f"{path} is not a modeldx store (it has no {MANIFEST})")
    manifest = read_manifest(fs)
    # the fingerprints need torch and the data loaders: imported only when asked for, so that
    # the store itself stays free of them
    expect = {}
    if model is not None:
        from modeldx.fingerprint import model_fingerprint

        expect["model"] = model_fingerprint(model)
    if dataset is not None:
        from modeldx.data.arrays import as_dataset

        expect["dataset"] = as_dataset(dataset).fingerprint()
    stored = {"model": manifest.model_fingerprint, "dataset": manifest.dataset_fingerprint}
    for what, got in expect.items():
        if got != stored[what]:
            raise StoreMismatchError(
                f"the store {path} was captured from another {what}: its {what} fingerprint is "
                f"{stored[what]}, the given {what}'s is {got}"
            )
    return Store(fs, manifest, read_only=(mode == "r"))


def _array_attributes(name: str, spec: LayerSpec | None, m: Manifest, encoding: str) -> dict:
    """What an array holds, for readers that are not modeldx (xarray, zarr, DuckDB users)."""
    attrs: dict[str, Any] = {"encoding": encoding}
    if name == "latent":
        attrs.update(what="latent vector (input of the model's head)", layer=m.latent_layer)
    elif name == "probs":
        attrs.update(what="class probabilities (softmax of the model's output)", classes=m.classes)
    elif spec is not None:
        attrs.update(
            what="activation" if name.startswith("acts/") else
            f"gradient of the loss w.r.t. the layer's output, reduced by {m.extra.get('grad_reduction')}",
            layer=spec.name, module=spec.module, module_type=spec.module_type, kind=spec.kind,
            reduction=spec.reduction, raw_shape=spec.raw_shape)
        if spec.kind == "conv" and spec.reduction == "none":
            attrs["neuron_layout"] = {"dims": ["channel", "y", "x"], "shape": spec.raw_shape,
                                      "order": "C (neuron = (channel * y_size + y) * x_size + x)"}
        elif spec.kind == "conv":
            attrs["neuron_layout"] = f"one neuron per channel: the {spec.reduction} over its map"
        if encoding == "uint8":
            attrs["decode"] = (
                f"value[item, neuron] = quant/{name}[chunk, 0, neuron] + code[item, neuron] * "
                f"quant/{name}[chunk, 1, neuron], with chunk = item // {m.chunk_items}")
    return attrs


def _dimension_names(name: str) -> tuple[str, ...]:
    # a neuron axis is named per layer: layers differ in width, and xarray needs one size per name
    if name == "latent":
        return ("item", "latent")
    if name == "probs":
        return ("item", "class")
    return ("item", f"neuron:{name.split('/', 1)[1]}")


def array_dims(m: Manifest) -> dict[str, int]:
    """Columns of every items x columns array the manifest implies (``quant/`` and ``item_id``
    aside)."""
    dims = {"latent": m.latent_dim, "probs": m.num_classes}
    for spec in m.layers:
        dims[f"acts/{spec.name}"] = spec.neurons
        if m.gradients:
            dims[f"grads/{spec.name}"] = spec.neurons
    return dims


class ChunkWriter:
    """Writes item chunks into a store that a :class:`StoreWriter` created; takes no lock.

    This is what a capture worker uses: many chunk writers (processes, machines) may
    write disjoint chunks of one store at once while one coordinator holds the
    store's :class:`StoreWriter`. A chunk is written whole — every array's block,
    then its item rows, then its done marker — so a chunk cut off midway has no
    marker and is simply written again, over what it left.

    Parameters
    ----------
    path
        The store's folder or URL (or its :class:`~modeldx.store.fs.StoreFS`).
    store_id
        The id of the store the coordinator created; a store at ``path`` with another
        id (replaced since) raises :class:`~modeldx.errors.StoreReplacedError`.

    Examples
    --------
    >>> w = ChunkWriter("runs/mnist", store_id=plan.store_id)  # doctest: +SKIP
    >>> w.write_chunk(3, arrays, items)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike | StoreFS, store_id: str | None = None, *,
                 manifest: Manifest | None = None, group: zarr.Group | None = None) -> None:
        self.fs = path if isinstance(path, StoreFS) else StoreFS(path)
        self.path = _store_path(self.fs)
        if manifest is None:
            if not _is_store(self.fs):
                raise StoreNotFoundError(
                    f"no store at {self.path} to write chunks into: if the capture that planned it "
                    f"is running, {unseen(self.fs.location)}")
            manifest = self._current(store_id)
        self.manifest = manifest
        self.array_dims = array_dims(manifest)
        self.group = group if group is not None else zarr.open_group(
            self.fs.zarr_store(ARRAYS), mode="r+")

    def _current(self, store_id: str | None) -> Manifest:
        """The manifest at the path, refused if it is not store ``store_id`` or is complete."""
        manifest = read_manifest(self.fs)
        if store_id is not None and manifest.store_id != store_id:
            raise StoreReplacedError(
                f"the store at {self.path} is not the one planned (store id {manifest.store_id}, "
                f"expected {store_id}): another capture replaced it; nothing was written")
        if manifest.status == STATUS_COMPLETE:
            raise StoreExistsError(f"the store at {self.path} is complete; no chunk is written "
                                   "into a finished store")
        return manifest

    def _encoding_of(self, name: str) -> str:
        if name.startswith(("acts/", "grads/")):
            return self.manifest.encoding
        return latent_encoding(self.manifest.encoding) if name == "latent" else "float32"

    def _target(self, name: str) -> zarr.Array:
        # write_empty_chunks is a runtime setting, not stored with the array: set it per write
        return self.group[name].with_config(WRITE_CONFIG)

    def done_chunks(self) -> set[int]:
        return _done_chunks(self.fs)

    def write_chunk(self, index: int, arrays: dict[str, np.ndarray], items: dict[str, np.ndarray]) -> None:
        """Write chunk ``index`` of every array and its item rows, then mark it done.

        The manifest is read again before the first byte and before the done marker: a worker
        that outlived its coordinator must not write into a store captured again at the path.
        """
        m = self.manifest
        start = index * m.chunk_items
        stop = min(start + m.chunk_items, m.n_items)
        try:
            self._current(m.store_id)
            for name, block in arrays.items():
                if block.shape != (stop - start, self.array_dims[name]):
                    raise InvalidParameterError(
                        f"chunk {index} of {name} has shape {block.shape}, expected "
                        f"{(stop - start, self.array_dims[name])}")
                try:
                    enc = encode(block, self._encoding_of(name))
                except OverflowError as exc:
                    raise EncodingOverflowError(
                        f"{name}, items {start}-{stop - 1}: {exc}. Nothing of this chunk was "
                        "written; capture again with encoding='float32'") from None
                self._target(name)[start:stop] = enc.values
                if enc.params is not None:
                    self._target(f"quant/{name}")[index] = enc.params
            if m.format_version >= 2:
                self._target("item_id")[start:stop] = np.asarray(items["item_id"], dtype=np.int64)
            _write_parquet_atomic(pa.table(items), self.fs, f"{PROGRESS}/items-{index:06d}.parquet")
            self._current(m.store_id)
            self.fs.touch(f"{PROGRESS}/chunk-{index:06d}.done")
        except OSError as exc:
            raise _write_error(exc, self.path, f"writing chunk {index}") from exc


class StoreWriter:
    """Creates or resumes a store, writes it chunk by chunk and finishes it; used by capture.

    On a local filesystem (a path or a ``file://`` URL) the writer holds the store's
    lock (:class:`~modeldx.store.lock.WriterLock`) from construction until
    :meth:`finalize` or :meth:`close`; use it as a context manager so that an error
    or a KeyboardInterrupt releases it. Object stores and other fsspec filesystems
    have no ``flock``: there no lock is taken, and one coordinator must own a store
    (two captures into one URL at once would mix their chunks).

    Chunks may also be written by :class:`ChunkWriter` s elsewhere (capture workers);
    :meth:`finalize` then joins what they wrote.

    Parameters
    ----------
    path
        The store's folder, or an fsspec URL.
    manifest
        What will be written. If a store with the same settings but unfinished
        is at ``path``, writing resumes there.
    overwrite
        Replace a complete store, or one with other settings, at ``path``.
    """

    def __init__(self, path: str | os.PathLike | StoreFS, manifest: Manifest, *,
                 overwrite: bool = False, array_dims: dict[str, int]) -> None:
        self.fs = path if isinstance(path, StoreFS) else StoreFS(path)
        self.path = _store_path(self.fs)
        self.manifest = manifest
        self.array_dims = array_dims  # array name -> columns
        if self.fs.exists() and not self.fs.isdir():
            raise StoreExistsError(f"{self.path} exists and is not a folder; choose a new path")
        try:
            self.fs.makedirs()
        except OSError as exc:
            raise _write_error(exc, self.path, "creating the store") from exc
        self._lock = WriterLock(Path(self.fs.root)).acquire() if self.fs.local else None
        try:
            self._prepare(overwrite, empty=not any(n != LOCK for n in self.fs.list()))
            self._chunks = ChunkWriter(self.fs, manifest=self.manifest, group=self.group)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def store_id(self) -> str:
        return self.manifest.store_id

    def close(self) -> None:
        """Release the lock (idempotent); an unfinished store stays resumable."""
        if self._lock is not None:
            self._lock.release()

    def _clear(self) -> None:
        """Remove the folder's contents but the lock we hold."""
        for name in self.fs.list():
            if name != LOCK:
                self.fs.remove(name, recursive=self.fs.isdir(name))

    def _prepare(self, overwrite: bool, empty: bool) -> None:
        path = self.path
        if not empty:
            if not _is_store(self.fs):
                raise StoreExistsError(
                    f"{path} exists and is not a modeldx store; refusing to write there "
                    "(choose an empty or new folder)"
                )
            try:
                old = read_manifest(self.fs)
            except StoreCorruptError:
                if not overwrite:
                    raise
                old = None
            if old is not None and old.status == STATUS_COMPLETE and not overwrite:
                raise StoreExistsError(
                    f"a complete store is already at {path}; pass overwrite=True to replace it"
                )
            diff = _settings_diff(old.settings(), self.manifest.settings()) if old else "damaged"
            if diff and not overwrite:
                raise StoreMismatchError(
                    f"an unfinished store at {path} was started with other settings "
                    f"({diff}); pass overwrite=True to discard it and start again"
                )
            if old is None or (overwrite and (diff or old.status == STATUS_COMPLETE)):
                self._clear()
            else:  # resume: the store keeps its identity and the format it was started in
                self.manifest.created = old.created
                self.manifest.store_id = old.store_id
                self.manifest.format_version = old.format_version
                # and the chunk order it was started with: the chunks written so far are a random
                # sample only if the rest follow the same order (the capture reads it back from here)
                for key in ("chunk_order", "chunk_seed"):
                    if key in old.extra:
                        self.manifest.extra[key] = old.extra[key]
                self.group = zarr.open_group(self.fs.zarr_store(ARRAYS), mode="r+")
                return
        self._create()

    def _create(self) -> None:
        m = self.manifest
        try:
            self.fs.makedirs(PROGRESS)
            m.created = _now()
            m.store_id = uuid.uuid4().hex
            self.group = zarr.open_group(self.fs.zarr_store(ARRAYS), mode="w")
            for name, dim in self.array_dims.items():
                layered = name.startswith(("acts/", "grads/"))
                encoding = self._encoding_of(name)
                spec = m.layer(name.split("/", 1)[1]) if layered else None
                dims = _dimension_names(name)
                self.group.create_array(
                    name, shape=(m.n_items, dim), chunks=(m.chunk_items, dim),
                    dtype=storage_dtype(encoding), fill_value=0, compressors=COMPRESSORS,
                    config=WRITE_CONFIG, dimension_names=dims,
                    attributes=_array_attributes(name, spec, m, encoding))
                if layered and m.encoding == "uint8":
                    self.group.create_array(
                        f"quant/{name}", shape=(m.n_chunks, 2, dim), chunks=(1, 2, dim),
                        dtype="float32", fill_value=0, compressors=COMPRESSORS, config=WRITE_CONFIG,
                        dimension_names=("chunk", "param", dims[1]),
                        attributes={"what": f"per-chunk uint8 decoding of {name}: param 0 is the "
                                            "offset, param 1 the scale", "chunk_items": m.chunk_items})
            self.group.create_array(
                "item_id", shape=(m.n_items,), chunks=(m.chunk_items,), dtype="int64", fill_value=-1,
                compressors=COMPRESSORS, config=WRITE_CONFIG, dimension_names=("item",),
                attributes={"what": "the data set's item id of each row (also items.parquet's "
                                    "item_id column, in the same order)"})
            write_manifest(self.fs, m)
        except OSError as exc:
            raise _write_error(exc, self.path, "creating the store") from exc

    def _encoding_of(self, name: str) -> str:
        if name.startswith(("acts/", "grads/")):
            return self.manifest.encoding
        return latent_encoding(self.manifest.encoding) if name == "latent" else "float32"

    def done_chunks(self) -> set[int]:
        return _done_chunks(self.fs)

    def todo_chunks(self) -> list[int]:
        """The chunks not written yet, ascending."""
        return sorted(set(range(self.manifest.n_chunks)) - self.done_chunks())

    def write_chunk(self, index: int, arrays: dict[str, np.ndarray], items: dict[str, np.ndarray]) -> None:
        """Write chunk ``index`` of every array and its item rows, then mark it done."""
        self._chunks.write_chunk(index, arrays, items)

    def finalize(self) -> Store:
        """Join the item rows, then mark the store complete (the last write); releases the lock."""
        m = self.manifest
        missing = sorted(set(range(m.n_chunks)) - self.done_chunks())
        if missing:
            raise StoreIncompleteError(f"cannot finish {self.path}: chunks {missing[:10]} are not written")
        try:
            parts = []
            for i in range(m.n_chunks):
                with self.fs.open(f"{PROGRESS}/items-{i:06d}.parquet") as fh:
                    parts.append(pq.read_table(fh))
            # one row group per item chunk: a worker reads its chunk's rows alone
            _write_parquet_atomic(pa.concat_tables(parts), self.fs, ITEMS, row_group_size=m.chunk_items)
            m.status = STATUS_COMPLETE
            m.completed = _now()
            write_manifest(self.fs, m)
        except OSError as exc:
            raise _write_error(exc, self.path, "finishing the store") from exc
        # leftovers of a finished store are harmless: readers ignore them
        with contextlib.suppress(OSError):
            self.fs.remove(PROGRESS, recursive=True)
        self.close()
        return open_store(self.fs)


def _settings_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {old.get(k)!r} != {new.get(k)!r}" if k != "layers" else "layers differ"
                     for k in new if old.get(k) != new.get(k))


def _write_error(exc: OSError, path: Path | str, doing: str) -> StoreWriteError:
    reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return StoreWriteError(
        exc.errno or 0,
        f"{doing} in {path} failed: {reason}. Chunks written before stay valid; free the "
        "problem and run the same capture again to resume",
    )
