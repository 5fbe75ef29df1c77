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


class _PlainKeyMessage:
    """KeyError quotes its message; errors that are also KeyErrors show it plain."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StoreCorruptError(StoreError, ValueError):
    """A store's files are damaged: a chunk is missing or fails its checksum, or the manifest
    disagrees with the items table or the arrays."""


class StoreLockedError(StoreError, BlockingIOError):
    """Another process is writing to the store."""


class StoreReplacedError(StoreError, RuntimeError):
    """The store was replaced (or deleted) by another capture after it was opened."""


class ArrayNotFoundError(_PlainKeyMessage, StoreError, KeyError):
    """An array name that the store does not hold."""


class SampleNotFoundError(_PlainKeyMessage, StoreError, KeyError):
    """A sample name that the store does not hold."""


class EncodingOverflowError(ModeldxError, OverflowError):
    """A value does not fit the store's encoding (float16 holds magnitudes up to 65504)."""


class InvalidLabelError(InvalidParameterError):
    """A label is not an integer class index in ``[0, number of logits)``."""


class EmptyDatasetError(ModeldxError, ValueError):
    """The data set (or the selection of items) holds no item."""


class ModelOutputError(ModeldxError, ValueError):
    """The model's output is not one ``(batch, classes)`` tensor of logits modeldx can read."""


class IDXFormatError(ModeldxError, ValueError):
    """A file is not a well-formed IDX file."""


class UnknownNameError(_PlainKeyMessage, ModeldxError, KeyError):
    """No query, sampler or other registered thing goes by the given name."""


class DuplicateNameError(ModeldxError, ValueError):
    """A registry already holds an entry under the name being registered."""


class DeviceUnavailableError(ModeldxError, RuntimeError):
    """The requested torch device (e.g. ``cuda``) does not exist on this machine."""


class OutputError(ModeldxError, OSError):
    """An answer could not be written where the user asked (a bad path, a permission, a full disk)."""


class PortInUseError(ModeldxError, OSError):
    """The live server cannot listen on the port asked for (another server holds it)."""


class RunNotFoundError(ModeldxError, FileNotFoundError):
    """No recorded training run (``run.json``) at the given path."""


class RunExistsError(ModeldxError, FileExistsError):
    """A run is already at the path and neither ``overwrite`` nor ``resume`` was asked for."""


class RunMismatchError(ModeldxError, ValueError):
    """``resume=True`` on a run recorded for another model, probe or layer selection."""


class BiasedAnswerWarning(UserWarning):
    """An approximate answer comes from items that are not a random sample (a capture in data set order)."""


class SchedulerUnreachableError(ModeldxError, ConnectionError):
    """No Dask scheduler answers at the address given (or in ``$MODELDX_SCHEDULER``)."""


class WorkerLostError(ModeldxError, RuntimeError):
    """A Dask worker died on the same task more often than the scheduler allows."""
