"""In-memory data sets and adapters that turn user data into one interface.

Capture reads a data set in batches. :class:`ArrayDataset` serves a whole batch
with one slice instead of collating items one by one, which is what keeps the
capture overhead small; any torch ``Dataset`` still works through
:func:`as_dataset`.
"""

from __future__ import annotations

import hashlib
import operator
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from modeldx.errors import InvalidLabelError, InvalidParameterError


class ArrayDataset(Dataset):
    """Inputs and integer labels held as arrays.

    Parameters
    ----------
    inputs
        Array of shape ``(n, ...)``: images as ``(n, H, W)`` or ``(n, C, H, W)``,
        or feature vectors ``(n, d)``.
    labels
        Integer labels, shape ``(n,)``.
    scale, mean, std
        Batches are returned as ``float32((inputs * scale - mean) / std)``.
        Integer inputs with none of these set (token ids) stay integers (int64).
    add_channel
        Insert a channel axis after the item axis (``(n, H, W) -> (n, 1, H, W)``).
    classes
        Optional class names.

    Examples
    --------
    >>> ds = ArrayDataset(np.zeros((4, 3)), np.array([0, 1, 0, 1]))
    >>> ds.get_batch(np.arange(2))[0].shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        *,
        scale: float = 1.0,
        mean: float = 0.0,
        std: float = 1.0,
        add_channel: bool = False,
        classes: Sequence[str] | None = None,
        name: str = "arrays",
        split: str = "all",
    ) -> None:
        inputs = np.asarray(inputs)
        labels = np.asarray(labels)
        if inputs.ndim < 2:
            raise InvalidParameterError(
                f"inputs must have shape (n_items, ...) with at least 2 axes. Got shape {inputs.shape}."
            )
        if labels.shape != (inputs.shape[0],):
            raise InvalidParameterError(
                f"labels must have shape ({inputs.shape[0]},) to match inputs. Got shape {labels.shape}."
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise InvalidLabelError(f"labels must be integers (class indices). Got dtype {labels.dtype}.")
        if std == 0:
            raise InvalidParameterError("std must be non-zero. Got 0.")
        self.inputs = inputs
        self.labels = labels.astype(np.int64, copy=False)
        self.scale, self.mean, self.std = float(scale), float(mean), float(std)
        self.add_channel = add_channel
        # token ids must reach an Embedding as integers; anything normalised is float
        self.integer = (np.issubdtype(inputs.dtype, np.integer)
                        and (self.scale, self.mean, self.std) == (1.0, 0.0, 1.0))
        self.classes = list(classes) if classes is not None else None
        self.name = name
        self.split = split

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def split_of(self, indices: np.ndarray) -> np.ndarray:
        return np.full(len(indices), self.split, dtype=object)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, y = self.get_batch(np.array([index]))
        return x[0], int(y[0])

    def get_batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of ``indices`` as tensors, in one slice."""
        x = torch.from_numpy(np.ascontiguousarray(self.inputs[indices]))
        x = x.long() if self.integer else x.float()
        if self.scale != 1.0:
            x.mul_(self.scale)
        if self.mean != 0.0 or self.std != 1.0:
            x.sub_(self.mean).div_(self.std)
        if self.add_channel:
            x = x.unsqueeze(1)
        return x, torch.from_numpy(self.labels[indices])

    def labels_of(self, indices: np.ndarray) -> np.ndarray:
        """Labels of ``indices`` without reading the inputs."""
        return self.labels[indices]

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else int(self.labels.max()) + 1

    def fingerprint(self) -> str:
        """A hash of the full inputs, labels and normalisation."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.inputs.shape, str(self.inputs.dtype), self.scale, self.mean,
                       self.std, self.add_channel)).encode())
        h.update(np.ascontiguousarray(self.inputs).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()

    def subset(self, indices: np.ndarray, name: str | None = None) -> ArrayDataset:
        """A new data set holding the items at ``indices``."""
        return ArrayDataset(
            self.inputs[indices], self.labels[indices], scale=self.scale, mean=self.mean,
            std=self.std, add_channel=self.add_channel, classes=self.classes,
            name=name or self.name, split=self.split,
        )


class TorchDatasetAdapter(Dataset):
    """Wraps any map-style torch ``Dataset`` (or a list) whose items are ``(input, label)``.

    Inputs keep their dtype (token ids stay integers); labels must be integers.
    A batch is read in one step where the data set allows it: a plain
    ``TensorDataset`` is indexed directly, a data set with ``__getitems__``
    (torch's batched protocol) gets the whole list of ids; any other is read
    one ``__getitem__`` at a time. All three give the same tensors.

    Parameters
    ----------
    dataset
        The data set.
    name
        What errors and the store call it; default its class name.
    workers
        Worker processes capture may fetch batches with (see
        :class:`modeldx.data.fetch.BatchFetcher`); a ``DataLoader`` passed to
        :func:`as_dataset` lends its ``num_workers``.
    """

    def __init__(self, dataset: Dataset, name: str | None = None, workers: int = 0) -> None:
        try:
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError as exc:
            raise InvalidParameterError(
                f"dataset must be a map-style torch Dataset with a length. Got {type(dataset).__name__}."
            ) from exc
        self.dataset = dataset
        self._len = n
        self.workers = workers
        self.name = name or type(dataset).__name__
        self.classes = getattr(dataset, "classes", None)

    def split_of(self, indices: np.ndarray) -> np.ndarray:
        return np.full(len(indices), "all", dtype=object)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int):
        return self.dataset[index]

    def get_batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and labels of ``indices``, read in one step where the data set allows."""
        tensors = self._tensors()
        if tensors is not None:
            at = torch.as_tensor(np.asarray(indices, dtype=np.int64))
            return tensors[0][at], tensors[1][at].long()
        ids = [int(i) for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            items = self.dataset.__getitems__(ids)
            if (isinstance(items, tuple | list) and len(items) == 2
                    and all(getattr(t, "shape", ())[:1] == (len(ids),) for t in items)):
                raise InvalidParameterError(
                    f"{self.name}.__getitems__ returned a collated batch (inputs, labels) for "
                    f"{len(ids)} ids; it must return a list of {len(ids)} (input, label) items "
                    "(torch's batched protocol; modeldx stacks them): return "
                    "list(zip(inputs, labels)), or drop __getitems__")
            if not isinstance(items, Sequence) or isinstance(items, str) or len(items) != len(ids):
                size = f" of length {len(items)}" if hasattr(items, "__len__") else ""
                raise InvalidParameterError(
                    f"{self.name}.__getitems__ must return a list of {len(ids)} (input, label) "
                    f"items for {len(ids)} ids (torch's batched protocol). Got "
                    f"{type(items).__name__}{size}."
                )
        else:
            items = [self.dataset[i] for i in ids]
        return self._collate(items, ids)

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The inputs and labels of a plain ``TensorDataset``, when indexing them directly gives
        what its items would: not a subclass with its own ``__getitem__``, labels integers."""
        ds = self.dataset
        if not isinstance(ds, TensorDataset) or type(ds).__getitem__ is not TensorDataset.__getitem__:
            return None
        if len(ds.tensors) < 2:
            return None
        x, y = ds.tensors[:2]
        if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            return None  # read item by item, where a bad label gets its own error
        return x, y

    def _collate(self, items: Sequence, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for i, item in zip(ids, items, strict=True):
            if not isinstance(item, tuple | list) or len(item) < 2:
                raise InvalidParameterError(
                    f"items of {self.name} must be (input, label) pairs. Item {i} is a "
                    f"{type(item).__name__}."
                )
            try:
                xs.append(torch.as_tensor(item[0]))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise InvalidParameterError(
                    f"the input of item {i} of {self.name} is a {type(item[0]).__name__}, "
                    f"not an array or tensor ({exc}); modeldx passes one tensor per batch to the "
                    "model: wrap a model that takes a dict or several inputs so it takes one tensor"
                ) from None
            ys.append(_label(item[1], self.name, i))
        return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)

    def labels_of(self, indices: np.ndarray) -> None:
        """Labels are only known by reading items: ``None``."""
        return None

    def fingerprint(self, probe: int = 64) -> str:
        """A hash of the length and of ``probe`` evenly spaced items.

        Hashing every item would cost a full pass over a data set we cannot
        slice; the probe catches a different data set, order or transform.
        """
        h = hashlib.blake2b(digest_size=16)
        h.update(str(self._len).encode())
        idx = np.unique(np.linspace(0, self._len - 1, num=min(probe, self._len)).astype(int))
        x, y = self.get_batch(idx)
        h.update(x.numpy().tobytes())
        h.update(y.numpy().tobytes())
        return h.hexdigest()


def _label(value, name: str, index: int) -> int:
    """An item's label as an int; strings, floats and None are refused (``"3"`` is not 3)."""
    try:
        if isinstance(value, str | bytes):
            raise TypeError(value)
        if isinstance(value, np.ndarray) and value.size == 1:
            value = value.reshape(())  # [3] as torch.tensor([3]) reads: an integer array's one value
        return operator.index(value)
    except TypeError:
        raise InvalidLabelError(
            f"labels of {name} must be integers (class indices); item {index} has the label "
            f"{value!r:.40} ({type(value).__name__})"
        ) from None


class SplitDataset(Dataset):
    """Several named splits served as one data set, item ids in split order."""

    def __init__(self, splits: Mapping[str, Dataset]) -> None:
        if not splits:
            raise InvalidParameterError("splits must name at least one data set. Got none.")
        self.parts = {name: as_dataset(ds) for name, ds in splits.items()}
        self.names = list(self.parts)
        sizes = [len(p) for p in self.parts.values()]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.name = "+".join(getattr(p, "name", k) for k, p in self.parts.items())
        self.classes = next((p.classes for p in self.parts.values() if getattr(p, "classes", None)),
                            None)
        self.workers = max(getattr(p, "workers", 0) for p in self.parts.values())

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int):
        x, y = self.get_batch(np.array([index]))
        return x[0], int(y[0])

    def split_of(self, indices: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(self.offsets, indices, side="right") - 1
        return np.asarray(self.names, dtype=object)[codes]

    def get_batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        indices = np.asarray(indices)
        codes = np.searchsorted(self.offsets, indices, side="right") - 1
        xs, ys, order = [], [], []
        for code in np.unique(codes):
            where = np.flatnonzero(codes == code)
            part = self.parts[self.names[code]]
            x, y = part.get_batch(indices[where] - self.offsets[code])
            xs.append(x)
            ys.append(y)
            order.append(where)
        if len(xs) == 1:
            return xs[0], ys[0]
        perm = torch.from_numpy(np.argsort(np.concatenate(order), kind="stable"))
        return torch.cat(xs)[perm], torch.cat(ys)[perm]

    def labels_of(self, indices: np.ndarray) -> np.ndarray | None:
        """Labels of ``indices`` when every split knows them without reading inputs."""
        indices = np.asarray(indices)
        codes = np.searchsorted(self.offsets, indices, side="right") - 1
        out = np.empty(indices.size, np.int64)
        for code in np.unique(codes):
            where = np.flatnonzero(codes == code)
            part = self.parts[self.names[code]]
            labels = part.labels_of(indices[where] - self.offsets[code])
            if labels is None:
                return None
            out[where] = labels
        return out

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for name, part in self.parts.items():
            h.update(name.encode())
            h.update(part.fingerprint().encode())
        return h.hexdigest()


def as_dataset(data) -> Dataset:
    """Turn user data into a data set capture can read in batches.

    Accepts an :class:`ArrayDataset`, any map-style torch ``Dataset`` of
    ``(input, label)`` pairs, a list of such pairs, a ``DataLoader`` over a
    map-style data set, a ``(inputs, labels)`` tuple of arrays, or a mapping
    ``{split_name: data}`` whose splits become one data set with a ``split``
    column.

    A ``DataLoader`` stands for its data set: capture reads items by id (to
    capture a subset, resume a chunk, or compare stores), so the loader's
    batching, shuffling, sampler and collate function are not used; its
    ``num_workers`` is (capture fetches batches in that many processes).

    Examples
    --------
    >>> ds = as_dataset((np.zeros((4, 3)), np.array([0, 1, 0, 1])))
    >>> len(ds)
    4
    """
    if isinstance(data, ArrayDataset | TorchDatasetAdapter | SplitDataset):
        return data
    if isinstance(data, Mapping):
        return SplitDataset(data)
    if isinstance(data, DataLoader):
        if isinstance(data.dataset, IterableDataset):
            raise InvalidParameterError(
                f"a DataLoader over an IterableDataset ({type(data.dataset).__name__}) cannot be "
                "read by item id; give a map-style data set (with __len__ and __getitem__)"
            )
        inner = data.dataset
        from torch.utils.data._utils.collate import default_collate, default_convert

        if data.collate_fn not in (default_collate, default_convert):
            warnings.warn(
                f"the DataLoader's collate_fn is not used: capture reads the items of its data set "
                f"({type(inner).__name__}) by id and stacks them, so whatever "
                f"{getattr(data.collate_fn, '__name__', 'collate_fn')} does to a batch (scaling, "
                "padding, moving) is not in the store; do it in the data set's __getitem__ or in the "
                "model", UserWarning, stacklevel=2)
        if isinstance(inner, ArrayDataset | TorchDatasetAdapter | SplitDataset):
            return as_dataset(inner)  # read in batches already: workers would only add copies
        adapter = TorchDatasetAdapter(inner)
        # a TensorDataset is indexed directly: worker processes would only add copies
        adapter.workers = data.num_workers if adapter._tensors() is None else 0
        return adapter
    if isinstance(data, list) and all(isinstance(p, tuple | list) and len(p) == 2
                                      for p in data[:1]):
        return TorchDatasetAdapter(data, name="list")
    if isinstance(data, tuple) and len(data) == 2:
        return ArrayDataset(np.asarray(data[0]), np.asarray(data[1]))
    if isinstance(data, Dataset):
        return TorchDatasetAdapter(data)
    raise InvalidParameterError(
        "data must be an ArrayDataset, a torch Dataset or DataLoader, a list of (input, label) "
        "pairs, an (inputs, labels) tuple or a mapping of split names to those. Got "
        f"{type(data).__name__}."
    )
