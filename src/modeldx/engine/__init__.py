"""Chunked reductions over a store."""

from modeldx.engine.local import Chunk, LocalEngine, Reduction, iter_chunks, run_reduction
from modeldx.engine.subset import Sample, make_subset

__all__ = ["Chunk", "LocalEngine", "Reduction", "iter_chunks", "run_reduction", "Sample", "make_subset"]
