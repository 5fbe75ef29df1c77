"""modeldx: diagnose deep-learning models by capturing and querying their activations."""

__version__ = "0.1.0"

from modeldx.api import capture, latent_pass, latent_store, open_store  # noqa: E402
from modeldx.errors import ModeldxError  # noqa: E402

__all__ = ["__version__", "capture", "latent_pass", "latent_store", "open_store", "sample", "ModeldxError",
           "queries", "sampling", "progressive"]


def __getattr__(name: str):
    # subpackages that import scikit-learn load on first use, not at `import modeldx`
    import importlib

    if name in ("queries", "sampling"):
        return importlib.import_module(f"modeldx.{name}")
    if name == "progressive":
        return importlib.import_module("modeldx.queries.progressive").progressive
    if name == "sample":
        return importlib.import_module("modeldx.sampling").sample
    raise AttributeError(f"module 'modeldx' has no attribute {name!r}")
