"""Samplers that choose items from the latent space, and their registry.

Importing this package registers every built-in sampler; a third-party sampler
is one class decorated with :func:`register`.
"""

from modeldx.engine.subset import Sample
from modeldx.sampling import (  # noqa: F401  (imported to register the samplers)
    eb_tree,
    latent_gmm,
    latent_grid,
    latent_strata,
    latent_svm,
    stratified,
    uniform,
    vas,
)
from modeldx.sampling.base import SAMPLERS, Sampler, available, build, get, register
from modeldx.sampling.sample import load_sample, sample

__all__ = ["SAMPLERS", "Sampler", "Sample", "available", "build", "get", "register", "sample",
           "load_sample"]
