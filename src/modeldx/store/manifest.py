"""The store's ``manifest.json``: what was captured, from what, and whether it finished."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modeldx.errors import StoreCorruptError, StoreError
from modeldx.store.fs import StoreFS

FORMAT = "modeldx-store"
# 2: every chunk is written (a missing chunk file is damage) with a CRC32C after zstd, arrays
# carry dimension names and attributes, the group holds ``item_id``, the manifest a store id.
# Version 1 stores are still read (without the missing-chunk check: they skip all-zero chunks).
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
RECOVER = ("delete the store and run the same capture again (`modeldx capture` resumes an "
           "interrupted capture from the chunks it has)")

STATUS_CAPTURING = "capturing"
STATUS_COMPLETE = "complete"


@dataclass
class LayerSpec:
    """One captured layer."""

    name: str  # the name queries use (the module path)
    module: str  # module path in the model
    kind: str  # "dense" or "conv"
    raw_shape: list[int]  # output shape of one item, before reduction
    neurons: int  # columns stored per item
    reduction: str  # "none" for dense layers and full maps; "max" or "mean" over space
    module_type: str = ""  # class name of the module, e.g. "ReLU" (decides what "saturated" means)


@dataclass
class Manifest:
    """Everything a reader needs to trust and decode a store."""

    n_items: int
    chunk_items: int
    encoding: str
    layers: list[LayerSpec]
    latent_layer: str | None
    latent_dim: int
    num_classes: int
    gradients: bool
    model_fingerprint: str
    dataset_fingerprint: str
    dataset_name: str = ""
    model_name: str = ""
    classes: list[str] | None = None
    status: str = STATUS_CAPTURING
    created: str = ""
    completed: str | None = None
    modeldx_version: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    store_id: str = ""  # a random id, new for every store created at a path ("" before format 2)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_chunks(self) -> int:
        return (self.n_items + self.chunk_items - 1) // self.chunk_items

    def layer(self, name: str) -> LayerSpec | None:
        return next((spec for spec in self.layers if spec.name == name), None)

    def settings(self) -> dict[str, Any]:
        """The fields that must agree for a capture to resume into this store."""
        return {
            "n_items": self.n_items,
            "chunk_items": self.chunk_items,
            "encoding": self.encoding,
            "layers": [asdict(spec) for spec in self.layers],
            "latent_layer": self.latent_layer,
            "gradients": self.gradients,
            "model_fingerprint": self.model_fingerprint,
            "dataset_fingerprint": self.dataset_fingerprint,
            "item_ids": self.extra.get("item_ids_hash"),
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["layers"] = [LayerSpec(**spec) for spec in data.get("layers", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def _store_fs(root: Path | str | StoreFS) -> StoreFS:
    return root if isinstance(root, StoreFS) else StoreFS(root)


def write_manifest(root: Path | str | StoreFS, manifest: Manifest) -> None:
    """Replace ``manifest.json`` atomically so a reader never sees half a file
    (see :meth:`~modeldx.store.fs.StoreFS.write_bytes_atomic` for object stores)."""
    _store_fs(root).write_bytes_atomic(MANIFEST, json.dumps(manifest.to_json(), indent=2).encode())


# field -> (accepted types, what is expected); bool is an int in Python, so ints exclude it below
_REQUIRED: dict[str, tuple[tuple[type, ...], str]] = {
    "n_items": ((int,), "an integer >= 0"),
    "chunk_items": ((int,), "an integer >= 1"),
    "encoding": ((str,), "an encoding name"),
    "layers": ((list,), "a list of layer specs"),
    "latent_layer": ((str, type(None)), "a layer name or null"),
    "latent_dim": ((int,), "an integer >= 0"),
    "num_classes": ((int,), "an integer >= 0"),
    "gradients": ((bool,), "true or false"),
    "model_fingerprint": ((str,), "a string"),
    "dataset_fingerprint": ((str,), "a string"),
    "status": ((str,), "a string"),
}
_LAYER_REQUIRED: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "module": ((str,), "a string"),
    "kind": ((str,), "a string"),
    "raw_shape": ((list,), "a list of integers"),
    "neurons": ((int,), "an integer >= 0"),
    "reduction": ((str,), "a string"),
}


def _check_fields(data: dict, required: dict, where: str) -> str | None:
    for key, (types, expected) in required.items():
        if key not in data:
            return f"{where} has no {key!r}"
        value = data[key]
        bad_int = int in types and (isinstance(value, bool) or (isinstance(value, int) and value < 0))
        if not isinstance(value, types) or (bad_int and bool not in types):
            return f"{where}'s {key!r} is {value!r}, expected {expected}"
    return None


def parse_manifest(data: Any, path: Path | str) -> Manifest:
    """Check a decoded ``manifest.json`` and build the :class:`Manifest`.

    Raises :class:`~modeldx.errors.StoreCorruptError` naming the first bad field.
    """
    def corrupt(what: str) -> StoreCorruptError:
        return StoreCorruptError(f"the manifest {path} is damaged: {what}; {RECOVER}")

    if not isinstance(data, dict):
        raise corrupt(f"it holds a JSON {type(data).__name__}, expected an object")
    if data.get("format") != FORMAT:
        raise corrupt(f"format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise corrupt(f"format_version is {version!r}, expected an integer >= 1")
    if version > FORMAT_VERSION:
        where = str(path).removesuffix("/" + MANIFEST)
        raise StoreError(
            f"{where} was written by a newer modeldx (store format {version}, "
            f"this one reads up to {FORMAT_VERSION}); upgrade modeldx to read it"
        )
    problem = _check_fields(data, _REQUIRED, "it")
    if problem is None and data["chunk_items"] < 1:
        problem = f"its 'chunk_items' is {data['chunk_items']}, expected an integer >= 1"
    for i, spec in enumerate(data.get("layers") or []):
        if problem is not None:
            break
        problem = (f"its layer {i} is {spec!r:.60}, expected an object" if not isinstance(spec, dict)
                   else _check_fields(spec, _LAYER_REQUIRED, f"its layer {i}"))
    if problem is not None:
        raise corrupt(problem)
    data = dict(data, format_version=version)
    data["layers"] = [{k: v for k, v in spec.items() if k in LayerSpec.__dataclass_fields__}
                      for spec in data["layers"]]
    return Manifest.from_json(data)


def read_manifest(root: Path | str | StoreFS) -> Manifest:
    """Read and check ``root/manifest.json`` (see :func:`parse_manifest`)."""
    fs = _store_fs(root)
    path = Path(fs.full(MANIFEST)) if fs.local else f"{fs.location.rstrip('/')}/{MANIFEST}"
    try:
        data = json.loads(fs.read_bytes(MANIFEST))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreCorruptError(f"the manifest {path} is damaged: not valid JSON ({exc}); {RECOVER}") \
            from None
    return parse_manifest(data, path)
