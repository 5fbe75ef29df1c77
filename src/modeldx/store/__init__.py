"""The on-disk store (uses nothing else of modeldx but its errors and ``_atomic``; the model and
data set fingerprints that :func:`open_store` can check are imported only when asked for)."""

from modeldx.store.encoding import ENCODINGS
from modeldx.store.fs import StoreFS
from modeldx.store.manifest import LayerSpec, Manifest
from modeldx.store.store import ITEM_COLUMNS, ChunkWriter, Problem, Store, StoreWriter, open_store

__all__ = ["ENCODINGS", "LayerSpec", "Manifest", "ITEM_COLUMNS", "Problem", "Store", "StoreWriter",
           "ChunkWriter", "StoreFS", "open_store"]
