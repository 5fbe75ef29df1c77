"""The top-level API: capture, latent pass, and opening a store checked against a model."""

from __future__ import annotations

import os

from torch import nn

from modeldx.capture.driver import capture, latent_pass
from modeldx.data.arrays import as_dataset
from modeldx.fingerprint import model_fingerprint
from modeldx.store.store import Store
from modeldx.store.store import open_store as _open_store


def open_store(path: str | os.PathLike, *, mode: str = "r", model: nn.Module | None = None,
               dataset=None) -> Store:
    """Open a store; with ``model`` or ``dataset``, check they are the ones it was captured from.

    A mismatch raises :class:`~modeldx.errors.StoreMismatchError` naming it.

    Examples
    --------
    >>> store = modeldx.open_store("modeldx-demo/mnist-lenet5", model=model)  # doctest: +SKIP
    """
    expect = {}
    if model is not None:
        expect["model"] = model_fingerprint(model)
    if dataset is not None:
        expect["dataset"] = as_dataset(dataset).fingerprint()
    return _open_store(path, mode=mode, expect=expect)


__all__ = ["capture", "latent_pass", "open_store"]
