"""The ``Engine`` protocol, and resolving a caller's ``engine=`` to one.

An engine runs one :class:`~modeldx.engine.local.Reduction` over a store's item
chunks: ``map`` each chunk, ``combine`` the partial states, ``finalize`` the
last. Every query takes ``engine=`` and hands it to
:func:`~modeldx.engine.local.run_reduction`, which resolves it here.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from modeldx.errors import InvalidParameterError

ENGINES = ("local", "dask")


@runtime_checkable
class Engine(Protocol):
    """Runs a reduction over a store's item chunks (all, or those holding a subset's rows)."""

    name: str

    def run(self, store, reduction, subset=None, *, progress: bool = False) -> Any: ...


def _is_dask_client(obj) -> bool:
    """Whether ``obj`` is a ``distributed.Client`` (without importing distributed when it is not)."""
    return any(c.__name__ == "Client" and c.__module__.startswith("distributed")
               for c in type(obj).__mro__)


def get_engine(engine=None, *, scheduler: str | None = None, workers: int | None = None) -> Engine:
    """The engine that ``engine`` names.

    Parameters
    ----------
    engine
        ``None`` or ``"local"`` (in this process), ``"dask"`` (a ``dask.distributed``
        cluster, see :class:`~modeldx.engine.dask_engine.DaskEngine`), a
        ``distributed.Client`` (its cluster), or an object with ``name`` and ``run``
        (returned as it is).
    scheduler, workers
        For the Dask engine only: a scheduler address (else ``$MODELDX_SCHEDULER``)
        or the size of a local cluster of worker processes.

    Examples
    --------
    >>> get_engine().name
    'local'
    >>> get_engine("dask", workers=2).name  # doctest: +SKIP
    'dask'
    """
    if isinstance(engine, str) or engine is None:
        name = engine or "local"
        if name == "local":
            if scheduler is not None or workers is not None:
                raise InvalidParameterError(
                    "scheduler and workers are settings of the Dask engine; pass engine='dask' with "
                    f"them. Got engine={engine!r}, scheduler={scheduler!r}, workers={workers!r}.")
            from modeldx.engine.local import LocalEngine

            return LocalEngine()
        if name == "dask":
            from modeldx.engine.dask_engine import DaskEngine

            return DaskEngine(scheduler=scheduler, workers=workers)
        raise InvalidParameterError(
            f"The 'engine' parameter must be one of {ENGINES} or an Engine instance. Got {engine!r} instead.")
    if _is_dask_client(engine):  # the user's own distributed.Client: run on its cluster
        from modeldx.engine.dask_engine import DaskEngine

        return DaskEngine(engine, scheduler=scheduler, workers=workers)
    if isinstance(engine, Engine) and isinstance(getattr(engine, "name", None), str):
        if scheduler is not None or workers is not None:
            raise InvalidParameterError(
                f"scheduler and workers cannot reconfigure the engine instance {engine!r}; set them "
                "when making it")
        return engine
    raise InvalidParameterError(
        f"The 'engine' parameter must be one of {ENGINES} or an Engine instance (with `name` and "
        f"`run(store, reduction, subset, progress=...)`). Got {engine!r} instead.")
