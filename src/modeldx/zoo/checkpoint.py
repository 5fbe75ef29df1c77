"""Checkpoints: weights plus the metadata needed to trust and rebuild them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modeldx._atomic import atomic_write
from modeldx.errors import CheckpointError
from modeldx.zoo.models import MODELS


def save_checkpoint(model: nn.Module, path: str | os.PathLike, arch: str, meta: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``meta`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": 1, "arch": arch, "meta": meta,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    with atomic_write(path) as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at ``path``; returns ``(model, meta)`` with the model in eval mode.

    Examples
    --------
    >>> model, meta = load_checkpoint("runs/lenet5-mnist.pt")  # doctest: +SKIP
    >>> meta["test_accuracy"]
    0.9891
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise CheckpointError(f"{path} is not a readable modeldx checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("arch") not in MODELS:
        raise CheckpointError(
            f"{path} names no known architecture (expected one of {sorted(MODELS)})"
        )
    meta = payload.get("meta", {})
    model = MODELS[payload["arch"]](**meta.get("model_args", {}))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit {payload['arch']}: {exc}") from exc
    return model.eval(), meta
