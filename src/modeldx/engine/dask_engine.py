"""The Dask engine: the same reductions, their chunks mapped on a ``dask.distributed`` cluster.

Each chunk is one task. The task carries the reduction and a
:class:`~modeldx.engine.chunks.ChunkTask` (the store's absolute path and
identity, the chunk's index and the subset's rows in it); the worker opens the
store itself and reads only that chunk. The partial states come back to the
client, which combines them **in chunk order** as they arrive and finalizes.

Why combine on the client, in order: floating-point sums depend on the order of
their terms, and the answer on Dask must be the local engine's to the last bit
(the conformance test asserts it). The states are small beside a chunk (a few
(groups x neurons) arrays; the largest, ``top-k-confidence`` by max, keeps a few
hundred candidates per group and neuron), so moving them costs little next to
reading and decoding a chunk; a tree reduction on the workers would save the
client one ``combine`` per chunk but change the order. Out-of-order states wait
on the client until the chunks before them arrive.

A worker that dies mid-query loses only its running tasks: the scheduler runs
them again elsewhere (the tasks are pure reads), and the answer is the same. A
task that kills its worker every time ends as :class:`~modeldx.errors.WorkerLostError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tqdm.auto import tqdm

from modeldx.engine.chunks import chunk_tasks, map_task
from modeldx.engine.cluster import connect, scheduler_address
from modeldx.engine.subset import Sample
from modeldx.errors import InvalidParameterError, WorkerLostError


class DaskEngine:
    """Runs a reduction's ``map`` per item chunk on a Dask cluster; combines and finalizes here.

    Parameters
    ----------
    client
        A ``distributed.Client`` to use. Without one: ``scheduler`` (or
        ``$MODELDX_SCHEDULER``); else the current default client (one made with
        ``distributed.Client(...)`` in this process); else a ``LocalCluster`` of
        ``workers`` processes (:func:`modeldx.engine.cluster.connect`), started per
        query, or once for a ``with DaskEngine(...) as engine:`` block.
    scheduler, workers
        As in :func:`modeldx.engine.cluster.connect`.

    Examples
    --------
    >>> with DaskEngine(workers=2) as engine:  # doctest: +SKIP
    ...     top = top_k_neurons(store, k=10, engine=engine)
    >>> top_k_neurons(store, k=10, engine="dask")  # doctest: +SKIP
    """

    name = "dask"

    def __init__(self, client=None, *, scheduler: str | None = None, workers: int | None = None) -> None:
        if client is not None and (scheduler is not None or workers is not None):
            raise InvalidParameterError(
                "pass a client, or scheduler/workers to connect with, not both. "
                f"Got client={client!r}, scheduler={scheduler!r}, workers={workers!r}.")
        self.client = client
        self.scheduler = scheduler
        self.workers = workers
        self._stack: contextlib.ExitStack | None = None
        self._held = None

    def __enter__(self) -> DaskEngine:
        if self.client is None and self._held is None:
            self._stack = contextlib.ExitStack()
            self._held = self._stack.enter_context(self._connection())
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the cluster this engine started (idempotent); a given client stays open."""
        if self._stack is not None:
            self._stack.close()
        self._stack, self._held = None, None

    def __repr__(self) -> str:
        return f"DaskEngine(client={self.client!r}, scheduler={self.scheduler!r}, workers={self.workers!r})"

    @contextlib.contextmanager
    def _connection(self) -> Iterator:
        if self.client is not None or self._held is not None:
            yield self.client if self.client is not None else self._held
            return
        if self.scheduler is None and self.workers is None and scheduler_address() is None:
            from distributed import default_client

            try:
                current = default_client()
            except ValueError:  # no client in this process
                current = None
            if current is not None:
                yield current
                return
        with connect(self.scheduler, self.workers) as client:
            yield client

    def run(self, store, reduction, subset: Sample | None = None, *, progress: bool = False) -> Any:
        """``map`` every chunk (holding rows of ``subset``) on the cluster, combine in order, finalize."""
        store.require_complete()
        store.check_current()  # a store replaced since it was opened must not answer
        tasks = chunk_tasks(store, reduction.arrays, subset)
        if not tasks:
            return reduction.finalize(None)
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        with self._connection() as client, \
                tqdm(total=len(tasks), desc="query", unit="chunk", disable=not progress) as bar:
            futures = [client.submit(map_task, reduction, task, pure=False) for task in tasks]
            position = {f.key: i for i, f in enumerate(futures)}
            waiting: dict[int, Any] = {}
            state, nxt = None, 0
            try:
                for future in as_completed(futures, loop=client.loop):
                    i = position[future.key]
                    try:
                        waiting[i] = future.result()
                    except KilledWorker as exc:
                        raise WorkerLostError(
                            f"chunk {tasks[i].index} of {store.path} killed a Dask worker each time it "
                            f"ran ({exc}); the query was abandoned") from None
                    future.release()
                    while nxt in waiting:  # the local engine's order: the answer is identical
                        part = waiting.pop(nxt)
                        state = part if state is None else reduction.combine(state, part)
                        nxt += 1
                    bar.update()
            finally:
                client.cancel([f for f in futures if not f.done()])
        return reduction.finalize(state)
