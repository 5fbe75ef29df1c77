"""The exceptions modeldx raises.

Every error is rooted in :class:`ModeldxError` and also subclasses the built-in
exception a caller would naturally catch (``ValueError``, ``FileNotFoundError``,
...), so ``except ValueError`` keeps working for code that does not know modeldx.
"""

from __future__ import annotations


class ModeldxError(Exception):
    """Base class of every error modeldx raises on purpose."""


class InvalidParameterError(ModeldxError, ValueError):
    """A parameter is outside the values the function accepts."""


class DataNotFoundError(ModeldxError, FileNotFoundError):
    """A data set's files are not where modeldx looked for them."""


class ChecksumError(ModeldxError, ValueError):
    """A downloaded or local file does not match its published checksum."""


class LayerNotFoundError(ModeldxError, KeyError):
    """A requested layer does not exist in the model or the store."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class InputShapeError(ModeldxError, ValueError):
    """The model could not run on the inputs it was given."""


class NonFiniteActivationError(ModeldxError, ValueError):
    """A captured activation or gradient is NaN or infinite."""


class StoreError(ModeldxError):
    """Base class of store errors."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No store at the given path."""


class StoreExistsError(StoreError, FileExistsError):
    """A complete store is already at the path and overwriting was not asked for."""


class StoreMismatchError(StoreError, ValueError):
    """The store was written for another model, data set or capture settings."""


class StoreIncompleteError(StoreError, RuntimeError):
    """The store's capture has not finished; resume it before querying."""


class StoreWriteError(StoreError, OSError):
    """Writing to the store failed (a full disk, a permission, ...)."""


class StoreReadOnlyError(StoreError, PermissionError):
    """A write was attempted on a store opened read-only."""


class CheckpointError(ModeldxError, ValueError):
    """A checkpoint file is missing, corrupt or for another architecture."""


class PortInUseError(ModeldxError, OSError):
    """The live server cannot listen on the port asked for (another server holds it)."""
