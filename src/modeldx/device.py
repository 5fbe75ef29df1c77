"""Choosing the torch device: one helper that capture, the zoo and live sessions share."""

from __future__ import annotations

import torch

from modeldx.errors import DeviceUnavailableError, InvalidParameterError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; a device this machine lacks is a user error.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidParameterError(f"{device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:1', "
                                    "'auto')") from exc
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceUnavailableError(f"device {device!r} was asked for, but CUDA is not available on "
                                         "this machine; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= count:
            raise DeviceUnavailableError(f"device {device!r} was asked for, but this machine has {count} "
                                         f"CUDA device(s): cuda:0..cuda:{count - 1}")
    return dev
