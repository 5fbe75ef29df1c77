"""A latent-pass store from arrays the user already has: no forward pass is run again.

A training loop's last evaluation computes every item's logits and the head's
input (the latent vector); :func:`latent_store` writes them as the store
:func:`~modeldx.capture.driver.latent_pass` would have written, so the samplers
(``modeldx.sample``) read it unchanged. A capture's store needs nothing of this:
it already holds ``latent``, ``probs`` and the items table, and ``modeldx.sample``
samples from it directly.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from modeldx import __version__
from modeldx.capture.layers import head_module
from modeldx.data.arrays import as_dataset
from modeldx.errors import InvalidLabelError, InvalidParameterError, NonFiniteActivationError
from modeldx.fingerprint import model_fingerprint
from modeldx.store.manifest import Manifest
from modeldx.store.store import Store, StoreWriter

_CHUNK_ITEMS = 10_000  # capture's "auto" cap: a latent pass's rows are narrow


def latent_store(path: str | os.PathLike, model: nn.Module, data, *, latent, logits=None, probs=None,
                 item_ids=None, latent_layer: str | None = None, encoding: str = "float16",
                 overwrite: bool = False) -> Store:
    """Write the latent-pass store of ``model`` over ``data`` from precomputed arrays.

    Parameters
    ----------
    path
        The store's folder (a complete store there is replaced only with ``overwrite=True``).
    model, data
        The model the arrays came from and its data set (anything
        :func:`modeldx.data.as_dataset` takes): their fingerprints go in the
        manifest, the labels and splits come from ``data``. Neither is run.
    latent
        (items, dim): each item's latent vector, by default the input of the
        model's head (its last Linear/Conv module), as a latent pass keeps it.
    logits, probs
        (items, classes): exactly one of them. With ``logits`` the items table's
        losses and confidences are computed as capture computes them; with
        ``probs`` the loss is ``-log p[label]`` (equal up to rounding).
    item_ids
        The data set positions the rows belong to; default ``0 .. items-1``.
        Rows are stored in id order, as capture stores them.
    latent_layer
        What the latent is, recorded in the manifest; default ``"input:<head>"``.
    encoding
        ``"float16"`` (the latent is then float16) or ``"float32"``.

    Returns
    -------
    Store
        The finished store, open read-only.

    Examples
    --------
    >>> # the last evaluation of a training loop kept the head's input and the logits
    >>> store = latent_store("runs/mnist-latent", model, test_set, latent=z, logits=out)  # doctest: +SKIP
    >>> modeldx.sample(store, "latent-svm", 0.05)  # doctest: +SKIP
    """
    if not isinstance(model, nn.Module):
        raise InvalidParameterError(f"model must be a torch nn.Module. Got {type(model).__name__}.")
    if encoding not in ("float16", "float32"):
        raise InvalidParameterError(f"encoding must be 'float16' or 'float32'. Got {encoding!r}.")
    if (logits is None) == (probs is None):
        raise InvalidParameterError("pass exactly one of logits= and probs= (items x classes).")
    ds = as_dataset(data)
    latent = _matrix("latent", latent)
    n = latent.shape[0]
    if latent.shape[1] == 0:
        raise InvalidParameterError("latent must have at least one column (items, dim >= 1). Got "
                                    f"{latent.shape}.")
    if item_ids is None and n > len(ds):
        raise InvalidParameterError(f"latent has {n} rows but the data set has {len(ds)} items: pass "
                                    "item_ids= to say which items the rows are, or the matching data set.")
    scores = _matrix("logits" if probs is None else "probs", logits if probs is None else probs)
    if scores.shape[0] != n or scores.shape[1] < 2:
        raise InvalidParameterError(
            f"{'logits' if probs is None else 'probs'} must have shape ({n}, classes >= 2) to match "
            f"latent. Got {scores.shape}.")
    if probs is not None:
        sums = scores.sum(axis=1, dtype=np.float64)
        if (scores < 0).any() or (scores > 1 + 1e-4).any() or not np.allclose(sums, 1, atol=1e-3):
            worst = int(np.argmax(np.abs(sums - 1)))
            raise InvalidParameterError(
                "probs must be probabilities: each row in [0, 1] and summing to 1 (pass logits= for raw "
                f"scores). Got values in [{scores.min():g}, {scores.max():g}]; row {worst} sums to "
                f"{sums[worst]:g}.")
    ids = np.arange(n, dtype=np.int64) if item_ids is None else np.asarray(item_ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise InvalidParameterError(f"item_ids must be {n} integer ids, one per row of latent. Got "
                                    f"{ids.dtype} of shape {ids.shape}.")
    if ids.min() < 0 or ids.max() >= len(ds) or np.unique(ids).size != n:
        raise InvalidParameterError(f"item_ids must be distinct ids in [0, {len(ds)}) of the data set.")
    order = np.argsort(ids, kind="stable")
    ids, latent, scores = ids[order].astype(np.int64), latent[order], scores[order]
    labels = np.asarray(ds.labels_of(ids) if hasattr(ds, "labels_of") else ds.get_batch(ids)[1],
                        dtype=np.int64)
    k = scores.shape[1]
    if ((labels < 0) | (labels >= k)).any():
        raise InvalidLabelError(f"labels of the data set must be class indices in [0, {k}). Got "
                                f"{np.unique(labels[(labels < 0) | (labels >= k)])[:5].tolist()}.")
    if probs is None:
        t = torch.from_numpy(scores)
        p = torch.softmax(t, dim=1).numpy()
        loss = F.cross_entropy(t, torch.from_numpy(labels), reduction="none").numpy()
    else:
        p = scores
        loss = -np.log(np.clip(p[np.arange(n), labels], 1e-30, None))
    pred = p.argmax(axis=1)
    head = head_module(model)[0]
    manifest = Manifest(
        n_items=n, chunk_items=min(_CHUNK_ITEMS, n), encoding=encoding, layers=[],
        latent_layer=latent_layer or f"input:{head}", latent_dim=latent.shape[1], num_classes=k,
        gradients=False, model_fingerprint=model_fingerprint(model),
        dataset_fingerprint=ds.fingerprint(), dataset_name=getattr(ds, "name", ""),
        model_name=type(model).__name__, classes=getattr(ds, "classes", None),
        modeldx_version=__version__,
        extra={"item_ids_hash": hashlib.blake2b(ids.tobytes(), digest_size=16).hexdigest(),
               "subset": bool(n < len(ds)), "dataset_items": len(ds), "source": "arrays"})
    items = {"item_id": ids, "split": np.asarray(ds.split_of(ids)).astype(str), "label": labels,
             "pred": pred.astype(np.int64), "correct": labels == pred,
             "confidence": p.max(axis=1).astype(np.float32), "loss": loss.astype(np.float32)}
    with StoreWriter(path, manifest, overwrite=overwrite,
                     array_dims={"latent": latent.shape[1], "probs": k}) as writer:
        for index in range(manifest.n_chunks):
            rows = slice(index * manifest.chunk_items, (index + 1) * manifest.chunk_items)
            writer.write_chunk(index, {"latent": latent[rows], "probs": p[rows].astype(np.float32)},
                               {name: col[rows] for name, col in items.items()})
        return writer.finalize()


def _matrix(name: str, values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    out = np.asarray(values, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] == 0:
        raise InvalidParameterError(f"{name} must have shape (items, columns) with at least one item. "
                                    f"Got {out.shape}.")
    if not np.isfinite(out).all():
        raise NonFiniteActivationError(f"{name} holds NaN or infinite values; a store needs finite ones")
    return out
