"""How activations are encoded on disk: float16 (default), float32, or 8-bit quantized.

The 8-bit encoding is affine per neuron and per item chunk: each chunk keeps,
for every neuron, the offset (its minimum in the chunk) and the scale
((max - min) / 255). Per-chunk ranges let capture stream — a neuron's range over
the whole data set is not known until the end — and keep the error of a value
below half a step of its own chunk's range (MISTIQUE's 8-bit idea, without the
full-data quantile pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modeldx.errors import EncodingOverflowError, InvalidParameterError

ENCODINGS = ("float16", "float32", "uint8")
_F16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class Encoded:
    """An encoded block and, for uint8, its per-neuron ``(offset, scale)`` pair."""

    values: np.ndarray
    params: np.ndarray | None = None  # shape (2, neurons): offset, scale


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    # torch's vectorised float16 conversion is ~5-9x NumPy's and rounds identically; the result
    # is a NumPy-owned array so that memory accounting sees it. torch is imported here, not at
    # the top, so that reading a store does not need it
    import torch

    out = np.empty(values.shape, dtype=dtype)
    torch.from_numpy(out).copy_(torch.from_numpy(np.ascontiguousarray(values)))
    return out


def storage_dtype(encoding: str) -> str:
    return {"float16": "float16", "float32": "float32", "uint8": "uint8"}[encoding]


def latent_encoding(encoding: str) -> str:
    """The latent is float16 unless the store is float32: samplers need its distances, which
    float16 keeps to ~1e-3 relative error, while 8-bit codes would distort them."""
    return "float32" if encoding == "float32" else "float16"


def encode(block: np.ndarray, encoding: str) -> Encoded:
    """Encode a float32 block of shape (items, neurons).

    Raises :class:`~modeldx.errors.EncodingOverflowError` (an ``OverflowError``) when
    float16 cannot hold a finite value of the block.
    """
    if encoding == "float32":
        return Encoded(np.ascontiguousarray(block, dtype=np.float32))
    if encoding == "float16":
        peak = float(np.max(np.abs(block))) if block.size else 0.0
        if peak > _F16_MAX:
            raise EncodingOverflowError(
                f"a value of magnitude {peak:.4g} exceeds float16's range (65504); "
                "capture with encoding='float32'"
            )
        return Encoded(_cast(block, np.dtype(np.float16)))
    if encoding == "uint8":
        lo = block.min(axis=0) if block.size else np.zeros(block.shape[1], np.float32)
        hi = block.max(axis=0) if block.size else lo
        scale = (hi - lo) / 255.0
        safe = np.where(scale > 0, scale, 1.0)
        q = np.rint((block - lo) / safe)
        np.clip(q, 0, 255, out=q)
        return Encoded(q.astype(np.uint8), np.stack([lo, scale]).astype(np.float32))
    raise InvalidParameterError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")


def decode(values: np.ndarray, encoding: str, params: np.ndarray | None = None) -> np.ndarray:
    """Decode to float32. ``params`` is the (2, neurons) pair stored with a uint8 chunk."""
    if encoding == "uint8":
        if params is None:
            raise InvalidParameterError("uint8 values need their (offset, scale) parameters to decode")
        out = values.astype(np.float32)
        out *= params[1]
        out += params[0]
        return out
    if values.dtype == np.float16:
        return _cast(values, np.dtype(np.float32))
    return values.astype(np.float32, copy=False)
