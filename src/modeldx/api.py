"""The top-level API: capture, latent pass, and opening a store checked against a model."""

from __future__ import annotations

from modeldx.capture.driver import capture, latent_pass
from modeldx.store.store import open_store

__all__ = ["capture", "latent_pass", "open_store"]
