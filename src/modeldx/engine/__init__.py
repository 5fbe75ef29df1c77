"""Chunked reductions over a store: the local engine, and the Dask engine (``engine="dask"``)."""

from modeldx.engine.base import Engine, get_engine
from modeldx.engine.dask_engine import DaskEngine
from modeldx.engine.local import Chunk, LocalEngine, Reduction, iter_chunks, run_reduction
from modeldx.engine.subset import Sample, make_subset

__all__ = ["Chunk", "DaskEngine", "Engine", "LocalEngine", "Reduction", "get_engine", "iter_chunks",
           "run_reduction", "Sample", "make_subset"]
