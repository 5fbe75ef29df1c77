"""Progressive answers: a query over a capture still running, from the chunks written so far.

While a capture runs, the chunks it has finished (:mod:`modeldx.store.partial`)
are a part of the data; :func:`progressive` answers a query on them each time
more have landed, and ends with the exact answer once the store is complete.

What the chunks so far are. Under ``capture(..., chunk_order="random")`` the
chunks are written in a seeded random permutation, so the ``m`` chunks done at
any moment are a simple random sample (without replacement) of the ``M``
chunks: a *cluster sample* of the items, whole chunks of consecutive items at
a time. Under the default ascending order they are the first ``m`` chunks, the
data set's first items: not a sample of anything, and the answer is biased
towards whatever the data set's order puts first (a warning says so).

Weights. Every item captured so far stands for ``N / n`` items (``N`` items in
all, ``n`` captured): weighted sums estimate totals over all items (a ratio
estimator; with equal chunks it is the cluster sample's Horvitz-Thompson
weight ``M / m``). Post-stratifying by (true class, correct) group needs each
group's size over *all* items, which a capture only knows once it has run
every item (correctness is what it computes): with the sizes estimated from the
chunks so far, ``N̂_g / n_g = N / n`` -- the same weights, so that would add
nothing. Where the true sizes are known (``group_items=``, e.g. a latent pass's
counts) each item of group ``g`` weighs ``N_g / n_g``. For the headline query the
weights cancel: a group's maximum is unweighted and its weighted mean is the
same under any weights constant within a group; they matter for queries that
sum weights (counts, confusion matrices).

Confidence. Each neuron of a top-k answer gets the share of replicates whose
top k holds it, where a replicate keeps each *chunk* done so far with the chance
``m / M`` (a chunk is kept or dropped whole): the replicate stands to the chunks
so far as they stand to all chunks -- the thinning scheme of
:func:`~modeldx.queries.top_k_confidence` moved from items to the unit that was
actually sampled, so that items of one chunk that are alike are not counted as
independent evidence. As for items, the argument is an analogy (Bernoulli
thinning of a fixed-size random sample), not a theorem: read the confidence as
a calibrated heuristic for "would more chunks change this neuron", not as a
probability with a guarantee, and as nothing at all under ascending order.
Early on (``m`` small) most replicates hold no chunk of a small group and are
left out; the ``replicates`` column says how many counted. From one chunk there
is no confidence at all (NaN, ``replicates`` 0): every replicate holding
anything is that chunk. docs/progressive.md measures how far the confidence is
from the precision it estimates: with few chunks it is overconfident.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.groups import group_code, group_codes, n_groups
from modeldx.engine.local import run_reduction
from modeldx.engine.subset import Sample
from modeldx.errors import (
    BiasedAnswerWarning,
    InvalidParameterError,
    StoreIncompleteError,
    StoreNotFoundError,
)
from modeldx.queries._common import resolve_layers
from modeldx.queries.confidence import ReplicateTopK, inclusion_frequency, replicate_weights
from modeldx.queries.registry import get
from modeldx.queries.top_k_neurons import top_k_neurons
from modeldx.store.partial import PartialStore, Snapshot

__all__ = ["Progress", "progressive", "progressive_answer", "snapshot_sample", "ChunkThinning"]

# the queries answered with a confidence per neuron
TOP_K = ("top-k-neurons", "top-k-confidence")


class Progress(NamedTuple):
    """One answer of :func:`progressive`: chunks done, chunks in all, and the answer.

    ``answer.attrs["progress"]`` holds ``items_done``, ``items_total``,
    ``chunk_order``, ``biased``, ``complete`` and ``elapsed_s``.
    """

    done: int
    total: int
    answer: pd.DataFrame


def snapshot_sample(snap: Snapshot, group_items=None) -> Sample:
    """Every item of ``snap`` with its weight: ``N / n``, or ``N_g / n_g`` with the true group sizes.

    ``group_items``: items per (true class, correct) group over all ``N`` items
    (``2 · classes`` counts, each at least the snapshot's), known for example
    from a latent pass; ``None`` when unknown.
    """
    table = snap.items()
    ids = table["item_id"].to_numpy().astype(np.int64)
    total = snap.base.n_items
    n = max(ids.size, 1)
    weights = np.full(ids.size, total / n)
    groups = n_groups(snap.manifest.num_classes)
    info: dict[str, Any] = {"sample": "progressive", "method": "chunks so far",
                            "fraction": ids.size / max(total, 1),
                            "chunk_order": snap.manifest.extra.get("chunk_order", "ascending")}
    codes = group_codes(table) if ids.size else np.zeros(0, dtype=np.int64)
    held = np.bincount(codes, minlength=groups)
    if group_items is not None:
        population = np.asarray(group_items, dtype=np.int64)
        if population.shape != (groups,) or (population < held).any() or population.sum() != total:
            raise InvalidParameterError(
                f"group_items must be {groups} counts (items per true class and correct) summing to the "
                f"store's {total} items, each at least the {held.tolist()} captured so far. Got "
                f"{np.asarray(group_items).tolist()} instead.")
        weights = population[codes] / np.maximum(held[codes], 1)
        info["group_items"] = population.tolist()
    else:  # estimated from the chunks so far: N_g ≈ n_g · N / n
        info["group_items_estimated"] = np.round(held * total / n).astype(np.int64).tolist()
    return Sample(ids, weights, info, rows=np.arange(ids.size))


class ChunkThinning(ReplicateTopK):
    """Replicates that keep each chunk of a snapshot whole with the chance ``m / M`` (a cluster thinning).

    The replicate decision of an item is a hash of (seed, its base chunk,
    replicate): every item of a chunk is in or out together, and a chunk keeps
    its decisions from one snapshot to the next.
    """

    def __init__(self, snap: Snapshot, layers, by: str, replicates: int, seed: int) -> None:
        groups = n_groups(snap.manifest.num_classes)
        keep = np.full(groups, len(snap.chunks) / snap.manifest.n_chunks)
        super().__init__(layers, snap.manifest.num_classes, by, replicates, seed, keep)
        self._ids = snap.items()["item_id"].to_numpy().astype(np.int64)
        self._chunks = snap.rows // snap.chunk_items

    def _weights(self, ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
        chunks = self._chunks[np.searchsorted(self._ids, np.asarray(ids, dtype=np.int64))]
        return replicate_weights(chunks, self.replicates, self.seed, self.keep[codes])


def _top_k_with_confidence(snap: Snapshot, sample: Sample, *, replicates: int, seed: int, k: int = 10,
                           layers=None, by: str = "max") -> pd.DataFrame:
    names = resolve_layers(snap, layers)
    point = top_k_neurons(snap, k=k, layers=names, by=by, items=sample)
    if len(snap.chunks) < 2:
        # one chunk: every replicate holding anything is that chunk, so each neuron would always
        # survive -- one chunk says nothing about how chunks differ: no confidence yet
        return point.assign(confidence=np.nan, replicates=0)
    reduction = ChunkThinning(snap, names, by, replicates, seed)
    state = run_reduction(snap, reduction, None)
    confidence, valid = np.full(len(point), np.nan), np.zeros(len(point), dtype=np.int64)
    for (layer, label, ok), rows in point.groupby(["layer", "label", "correct"]).groups.items():
        scores = reduction.replicate_scores(state, layer, int(group_code(label, ok)))
        freq, count = inclusion_frequency(scores, min(k, scores.shape[1]))
        confidence[rows] = freq[point.loc[rows, "neuron"].to_numpy()]
        valid[rows] = count
    return point.assign(confidence=confidence, replicates=valid)


def progressive_answer(snap: Snapshot, query: str = "top-k-neurons", *, group_items=None,
                       replicates: int = 200, seed: int = 0, **params) -> pd.DataFrame:
    """The answer of ``query`` on a snapshot: weighted as a sample, with a confidence for top-k.

    On a snapshot of every chunk the answer is the plain query's on the whole
    store (for top-k with ``confidence`` 1 and ``replicates`` as asked, as
    :func:`~modeldx.queries.top_k_confidence` gives over every item).

    Examples
    --------
    >>> snap = PartialStore("runs/mnist").snapshot()  # doctest: +SKIP
    >>> progressive_answer(snap, k=10, layers="act4")
    """
    info = get(query)
    top_k = query in TOP_K
    if top_k:
        check_params("progressive", {"replicates": replicates, "seed": seed},
                     {"replicates": Interval(int, 10, 100_000), "seed": Interval(int, 0, 2 ** 32 - 1)})
        unknown = sorted(set(params) - {"k", "layers", "by"})
        if unknown:
            raise InvalidParameterError(f"{query} over a capture in progress takes k, layers and by. Got "
                                        f"{', '.join(map(repr, unknown))} instead.")
    order = snap.manifest.extra.get("chunk_order", "ascending")
    if snap.complete:
        store = snap.base
        frame = (top_k_neurons(store, **params) if top_k else info.func(store, **params))
        if top_k:
            frame = frame.assign(confidence=1.0, replicates=replicates)
        frame.attrs["query"] = query
    else:
        sample = snapshot_sample(snap, group_items)
        if top_k:
            frame = _top_k_with_confidence(snap, sample, replicates=replicates, seed=seed, **params)
        else:
            frame = info.func(snap, items=sample, **params)
        frame.attrs["query"] = query
        frame.attrs["source"] = {"exact": False, "items": sample.size, **sample.info}
    frame.attrs["progress"] = {
        "chunks_done": len(snap.chunks), "chunks_total": snap.manifest.n_chunks,
        "items_done": snap.n_items, "items_total": snap.base.n_items, "chunk_order": order,
        "biased": bool(order != "random" and not snap.complete), "complete": snap.complete}
    return frame


def _open(path, deadline: float | None, every: float) -> PartialStore:
    while True:
        try:
            return PartialStore(path)
        except StoreNotFoundError:
            if deadline is not None and time.monotonic() > deadline:
                raise
        time.sleep(every)


def _stopped(watched: PartialStore, seen: Snapshot) -> bool:
    """Whether the capture stopped for good: its lock was let go with nothing new written. A finishing
    writer marks the store complete before it lets go, so a second look tells finishing from dying."""
    again = watched.snapshot()
    return not again.complete and again.chunks == seen.chunks


def progressive(path, query: str = "top-k-neurons", *, every: float = 1.0, timeout: float | None = 60.0,
                group_items=None, replicates: int = 200, seed: int = 0,
                **params) -> Iterator[Progress]:
    """Answer ``query`` over the capture into ``path`` as it runs; the last answer is the exact one.

    Looks at the store every ``every`` seconds and yields a :class:`Progress`
    ``(chunks done, chunks in all, answer)`` each time new chunks have landed;
    the last one, once the store is complete, is the plain query's answer on
    the whole store. For ``"top-k-neurons"`` the answer has the columns of
    :func:`~modeldx.queries.top_k_neurons` plus ``confidence`` (each neuron's
    estimated chance of being in the exact top k) and ``replicates``; other
    queries are answered weighted, without a confidence. The module docstring
    says what the weights estimate and what the confidence means.

    Parameters
    ----------
    path
        The store a capture writes (or will: the generator waits for it to appear).
    query
        A registered query (:func:`modeldx.queries.available`).
    every : float, default=1.0
        Seconds between looks at the store.
    timeout : float or None, default=60.0
        Raise :class:`~modeldx.errors.StoreIncompleteError` when no chunk lands
        for this long (:class:`~modeldx.errors.StoreNotFoundError` when no store
        appears); ``None`` waits for ever. A capture on a local disk that
        stopped (no process holds the store's lock, and nothing new landed)
        raises at once, without waiting for the timeout.
    group_items
        Items per (true class, correct) group over all items, if known (a latent
        pass's counts): the weights are then post-stratified.
    replicates, seed
        Of the confidence (top-k only).
    **params
        The query's own parameters (``k``, ``layers``, ``by`` for top-k).

    Yields
    ------
    Progress

    Warns
    -----
    BiasedAnswerWarning
        When the capture writes its chunks in ascending order: the chunks so far
        are the data set's first items, not a random sample.

    Examples
    --------
    >>> for done, total, top in modeldx.progressive("runs/mnist", k=10, layers="act4"):  # doctest: +SKIP
    ...     print(done, total, top.confidence.mean())
    """
    check_params("progressive", {"every": every}, {"every": Interval(float, 0, None, "neither")})
    if timeout is not None:
        check_params("progressive", {"timeout": timeout}, {"timeout": Interval(float, 0, None, "neither")})
    get(query)  # an unknown name fails now, not after the first chunk
    start = time.monotonic()
    watched = _open(path, None if timeout is None else start + timeout, every)
    last_done, landed_at, warned = -1, time.monotonic(), False
    while True:
        snap = watched.snapshot()
        done = len(snap.chunks)
        # every chunk may have landed before the store is finalized: the exact answer comes after
        if done > 0 and (done > last_done or snap.complete):
            if not warned and snap.manifest.extra.get("chunk_order", "ascending") != "random" \
                    and not snap.complete:
                warnings.warn(
                    f"the capture into {watched.path} writes its chunks in ascending order: the chunks so "
                    "far are the data set's first items, not a random sample, so answers before it "
                    "completes are biased and their confidence means nothing; capture with "
                    "chunk_order='random'",
                    BiasedAnswerWarning, stacklevel=2)
                warned = True
            answer = progressive_answer(snap, query, group_items=group_items, replicates=replicates,
                                        seed=seed, **params)
            answer.attrs["progress"]["elapsed_s"] = time.monotonic() - start
            last_done, landed_at = done, time.monotonic()
            yield Progress(done, snap.manifest.n_chunks, answer)
        if snap.complete:
            return
        if watched.writing() is False and _stopped(watched, snap):
            raise StoreIncompleteError(
                f"the capture into {watched.path} stopped with {done} of {snap.manifest.n_chunks} chunks "
                "done: no process holds its lock (it failed or was killed); capture again to finish it")
        if timeout is not None and time.monotonic() - landed_at > timeout:
            writer = {True: "a writer holds its lock", False: "no writer holds its lock",
                      None: "fsspec storage has no lock to tell"}[watched.writing()]
            raise StoreIncompleteError(
                f"no chunk of the capture into {watched.path} landed for {timeout:g} s ({done} of "
                f"{snap.manifest.n_chunks} chunks done; {writer}): is the capture still running?")
        time.sleep(every)
