"""modeldx: diagnose deep-learning models by capturing and querying their activations."""

__version__ = "0.1.0"

from modeldx.api import capture, latent_pass, open_store  # noqa: E402
from modeldx.errors import ModeldxError  # noqa: E402

__all__ = ["__version__", "capture", "latent_pass", "open_store", "ModeldxError", "queries"]


def __getattr__(name: str):
    # `modeldx.queries` without importing pandas-heavy modules at `import modeldx` time
    if name == "queries":
        import importlib

        return importlib.import_module("modeldx.queries")
    raise AttributeError(f"module 'modeldx' has no attribute {name!r}")
