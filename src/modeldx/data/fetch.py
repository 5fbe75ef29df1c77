"""Fetching a data set's batches ahead of the model, so that reading overlaps compute.

Capture asks for the batches of one chunk at a time; a :class:`BatchFetcher`
serves them in order while the next one is already being read: on a background
thread, or, with ``workers > 0``, in worker processes of a ``DataLoader`` that
live as long as the fetcher (starting them costs about 0.1 s, too much to pay
per chunk). Either way each batch is ``ds.get_batch(ids)``, so the tensors are
the same as reading them in line. With ``pin=True`` (a CUDA device) batches land
in pinned host memory, which lets the copy to the device run asynchronously.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

Batch = tuple[torch.Tensor, torch.Tensor]


class _Plan(Sampler):
    """The id arrays of the batches asked for now; each is one "index" of :class:`_Batches`.

    The loader iterates its sampler in this process, so a new plan reaches
    persistent workers without restarting them.
    """

    def __init__(self) -> None:
        self.batches: list[np.ndarray] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Batches(Dataset):
    """A data set whose items are whole batches: item ``ids`` is ``ds.get_batch(ids)``."""

    def __init__(self, ds) -> None:
        self.ds = ds

    def __getitem__(self, ids: np.ndarray) -> Batch:
        return self.ds.get_batch(ids)


def _as_is(batch: Batch) -> Batch:
    return batch


def _pinned(batch: Batch) -> Batch:
    # a data set may hold its tensors on the device already: nothing to pin then
    return tuple(t.pin_memory() if t.device.type == "cpu" else t for t in batch)


class BatchFetcher:
    """Serves a data set's batches in order, each read while the one before it is in use.

    Parameters
    ----------
    ds
        Anything with ``get_batch(ids) -> (inputs, labels)``, e.g. the result
        of :func:`modeldx.data.as_dataset`.
    workers
        0: one background thread reads the next batch. More: that many
        ``DataLoader`` worker processes, started on first use and kept until
        :meth:`close`; for data sets whose items cost Python work to make.
    pin
        Return batches in pinned (page-locked) host memory, for
        ``non_blocking`` copies to a CUDA device.

    Examples
    --------
    >>> ds = as_dataset((np.zeros((6, 2)), np.arange(6) % 2))
    >>> with BatchFetcher(ds) as fetcher:
    ...     [x.shape[0] for x, _ in fetcher.batches([np.arange(4), np.arange(4, 6)])]
    [4, 2]
    """

    def __init__(self, ds, *, workers: int = 0, pin: bool = False) -> None:
        self.ds = ds
        self.workers = workers
        self.pin = pin
        self._pool: ThreadPoolExecutor | None = None
        self._loader: DataLoader | None = None
        self._plan = _Plan()

    def batches(self, batches: Sequence[np.ndarray]) -> Iterator[Batch]:
        """Yield ``ds.get_batch(ids)`` for each ``ids`` in ``batches``, in order."""
        if not len(batches):
            return iter(())
        if self.workers > 0:
            return self._from_workers(batches)
        return self._from_thread(batches)

    def _fetch(self, ids: np.ndarray) -> Batch:
        batch = self.ds.get_batch(ids)
        return _pinned(batch) if self.pin else batch

    def _from_thread(self, batches: Sequence[np.ndarray]) -> Iterator[Batch]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modeldx-fetch")
        ahead: Future = self._pool.submit(self._fetch, batches[0])
        for following in [*batches[1:], None]:
            batch = ahead.result()  # an error reading this batch is raised here, in order
            if following is not None:
                ahead = self._pool.submit(self._fetch, following)
            yield batch

    def _from_workers(self, batches: Sequence[np.ndarray]) -> Iterator[Batch]:
        if self._loader is None:
            # batch_size=None: each sampler "index" is a whole batch, fetched by one worker
            self._loader = DataLoader(_Batches(self.ds), batch_size=None, sampler=self._plan,
                                      num_workers=self.workers, collate_fn=_as_is,
                                      pin_memory=self.pin, persistent_workers=True)
        self._plan.batches = list(batches)
        yield from self._loader

    def close(self) -> None:
        """Stop the thread or the worker processes; a later call to :meth:`batches` starts anew."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._loader is not None:
            running = getattr(self._loader, "_iterator", None)
            self._loader = None
            if running is not None:
                # what the loader's iterator does when garbage-collected, done now
                running._shutdown_workers()

    def __enter__(self) -> BatchFetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
