"""The top-level API: capture, latent pass (run or from arrays), opening a store checked against a model."""

from __future__ import annotations

from modeldx.capture.driver import capture, latent_pass
from modeldx.capture.reuse import latent_store
from modeldx.store.store import open_store

__all__ = ["capture", "latent_pass", "latent_store", "open_store"]
