"""``modeldx.sample``: choose a sample from a store's latent pass and save it under a name."""

from __future__ import annotations

import time

from modeldx.engine.groups import group_sizes
from modeldx.engine.subset import Sample
from modeldx.errors import InvalidParameterError, UnknownNameError
from modeldx.sampling.base import build
from modeldx.store.store import Store, open_store


def sample(store: Store | str, method: str, fraction: float, *, seed: int = 0, name: str | None = None,
           save: bool = True, overwrite: bool = False, **params) -> Sample:
    """Choose ``fraction`` of a store's items with sampler ``method`` and save it in the store.

    The sampler sees only the store's latent vectors, predictions and (for
    supervised samplers) true labels.

    Parameters
    ----------
    store
        A store (or its path) holding at least a latent pass.
    method
        A name from :func:`modeldx.sampling.available`.
    fraction
        Share of the items to sample, in (0, 1].
    seed
        Makes the sample reproducible.
    name
        Saved as ``samples/<name>.parquet``; default ``"<method>-<fraction>-s<seed>"``.
    params
        Settings of the sampler (e.g. ``j=0.3`` for the latent samplers).

    Examples
    --------
    >>> s = modeldx.sample("runs/mnist-latent", "latent-svm", 0.01, j=0.3)  # doctest: +SKIP
    >>> top_k_neurons(full_store, items=s)  # doctest: +SKIP
    """
    if name is not None and not _plain_name(name):
        # checked before any work; the store refuses such names too, this only says it sooner
        raise InvalidParameterError(f"a sample name must be a plain file name (no '/', '\\' or leading "
                                    f"'.'). Got {name!r}.")
    sampler = build(method, seed=seed, **params)
    cls = type(sampler)
    st = open_store(store.path if isinstance(store, Store) else store, mode="r+" if save else "r")
    st.require_complete()
    items = st.items()
    start = time.perf_counter()
    sampler.fit(st.read("latent"), items["pred"].to_numpy(),
                items["label"].to_numpy() if cls.supervised else None)
    sel = sampler.select(fraction)
    info = {**sel.info, "seconds": round(time.perf_counter() - start, 3), "store": str(st.path)}
    # items per (true class, correct) group over all items: what a store holding only the sample
    # cannot tell, and what the confidence of a sampled top-k answer needs (top_k_confidence)
    info["group_items"] = group_sizes(items, st.manifest.num_classes).tolist()
    name = name or f"{method}-{fraction:g}-s{seed}"
    info["sample"] = name
    ids = items["item_id"].to_numpy()[sel.rows]
    result = Sample(ids, sel.weights, info, rows=sel.rows)
    if save:
        st.save_sample(name, ids, sel.weights, info, overwrite=overwrite)
    return result


def _plain_name(name: str) -> bool:
    return bool(name) and not any(ch in name for ch in "/\\") and not name.startswith(".")


def load_sample(store: Store | str, name: str) -> Sample:
    """A sample saved in a store by :func:`sample`."""
    st = store if isinstance(store, Store) else open_store(store)
    if name not in st.samples():
        raise UnknownNameError(f"no sample {name!r} in {st.path}; it has {st.samples() or 'none'}")
    ids, weights, info = st.load_sample(name)
    return Sample(ids, weights, {**info, "sample": name})
