"""The store's ``manifest.json``: what was captured, from what, and whether it finished."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "modeldx-store"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

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


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Replace ``manifest.json`` atomically so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".manifest.", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(manifest.to_json(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, root / MANIFEST)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_manifest(root: Path) -> Manifest:
    with (root / MANIFEST).open() as fh:
        data = json.load(fh)
    if data.get("format") != FORMAT:
        raise ValueError(f"{root / MANIFEST} is not a modeldx manifest (format={data.get('format')!r})")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{root} was written by a newer modeldx (store format {data['format_version']}, "
            f"this one reads up to {FORMAT_VERSION})"
        )
    return Manifest.from_json(data)
