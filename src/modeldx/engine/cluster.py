"""Where Dask work runs: a scheduler address, the environment, or a local cluster of processes.

Queries and capture both reach a ``dask.distributed`` cluster through
:func:`connect`, so that ``--scheduler``, ``--workers`` and ``MODELDX_SCHEDULER``
mean the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from modeldx.errors import InvalidParameterError, SchedulerUnreachableError

SCHEDULER_ENV = "MODELDX_SCHEDULER"


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The scheduler to use: ``scheduler``, else ``$MODELDX_SCHEDULER``, else ``None`` (start one)."""
    address = scheduler if scheduler is not None else os.environ.get(SCHEDULER_ENV) or None
    if address is not None and not isinstance(address, str):
        raise InvalidParameterError(
            f"scheduler must be an address such as 'tcp://host:8786'. Got {address!r}.")
    return address


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, *,
            threads_per_worker: int = 1) -> Iterator:
    """A ``distributed.Client`` for the duration of a ``with`` block.

    Connects to ``scheduler`` (or ``$MODELDX_SCHEDULER``); with neither, starts a
    ``LocalCluster`` of ``workers`` separate processes (default: one per CPU core,
    one thread each, since torch and NumPy bring their own threads) and closes it
    on leaving the block. The client is not made the process's default: Dask's
    global scheduler setting stays the user's (a default client that closes out
    of order with another leaves ``dask.compute`` pointing at a closed cluster).
    ``workers`` is only for a local cluster: a running cluster has the workers it has.
    """
    from distributed import Client, LocalCluster

    address = scheduler_address(scheduler)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InvalidParameterError(f"workers must be a positive integer. Got {workers!r}.")
    if address is not None:
        if workers is not None:
            raise InvalidParameterError(
                f"workers={workers} applies to a local cluster only; the cluster at {address} has the "
                "workers that were started for it (start more with `dask worker ADDRESS`)")
        try:  # gives up after Dask's connect timeout (distributed.comm.timeouts.connect, 30 s)
            client = Client(address, set_as_default=False)
        except (OSError, ValueError, TypeError) as exc:
            raise SchedulerUnreachableError(
                f"cannot reach the Dask scheduler at {address!r} ({exc}); check the address "
                "(tcp://HOST:PORT, as `dask scheduler` prints it) and that the scheduler is running"
                + (f", or unset ${SCHEDULER_ENV}" if scheduler is None else "")) from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    # the dashboard on a free port (None means Dask's default 8787, often taken). The cluster
    # lives for this block only: its processes' log lines (a heartbeat cut off
    # as it closes, a task's error that the client raises anyway) would only be noise
    with LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client
