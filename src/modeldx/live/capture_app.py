"""Serve a capture in progress to browsers: its progress and the headline answer converging as chunks land.

The page follows a store a capture is writing (started by ``modeldx serve capture
--checkpoint`` in this process, or anywhere else): items and chunks done, the
rate and the time left, and the top-k neurons of each (true class, correct)
group of a chosen layer, each with its confidence
(:func:`modeldx.progressive`); once the capture completes, how close each
earlier answer was to the final one.

Routes (every URL relative, so a proxy may mount it anywhere):

- ``/`` the page, ``/static/...`` its files.
- ``/api/status``: ``path``, ``status`` (``"waiting"`` before the store exists,
  ``"capturing"``, ``"complete"``), ``writing`` (a writer holds the store's
  lock), ``chunks_done``, ``chunks_total``, ``items_done``, ``items_total``,
  ``rate`` (items per second, from the chunks' landing times, or null),
  ``eta_s`` (null when unknown), ``chunk_order``, ``biased`` (chunks in data set
  order: the answers before completion are not a sample), ``layers`` (``[{name,
  neurons}]``), ``classes``, ``k``, ``error`` (the capture's error, or null).
- ``/api/answer?layer=``: the latest answer for ``layer`` (default the last):
  ``chunks_done``, ``items_done``, ``complete``, ``layer``, ``k``,
  ``mean_confidence`` and ``groups`` = ``[{label, correct, n_items, neurons:
  [{rank, neuron, value, confidence}]}]``; ``confidence`` is null where there
  is none yet (one chunk).
- ``/api/history?layer=``: one entry per answer computed: ``chunks``,
  ``items``, ``mean_confidence`` and ``precision`` (its precision@k against the
  final answer, null until the capture completes).

Answers are computed off the event loop, one at a time, once per new chunk
count, over every layer at once. Security is the live server's
(:mod:`modeldx.live.server`): Host and Origin checks, and a token on every
``/api/`` request beyond loopback.
"""

from __future__ import annotations

import contextlib
import os
import socket as sockets
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from modeldx._params import Interval, check_params
from modeldx.errors import LayerNotFoundError, StoreNotFoundError, StoreReplacedError
from modeldx.live.server import (
    STATIC,
    AppThread,
    api_answer,
    app_server,
    guarded_app,
    require_api_token,
    serve_announced,
)
from modeldx.store.fs import is_url
from modeldx.store.partial import PartialStore
from modeldx.store.store import PROGRESS

__all__ = ["CaptureView", "create_capture_app", "CaptureThread", "serve_capture"]

_KEY = ["layer", "label", "correct"]


def _float(v) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


class CaptureView:
    """The computations behind the routes, on one store (opened when it appears).

    Parameters
    ----------
    path
        The store a capture writes.
    k, replicates
        The answer's neurons per group, and the confidence's replicates.
    error
        A callable returning the capture's error message, or None (set when this
        process runs the capture).
    """

    def __init__(self, path: str | os.PathLike, *, k: int = 10, replicates: int = 100,
                 error: Callable[[], str | None] = lambda: None) -> None:
        check_params("serve capture", {"k": k, "replicates": replicates},
                     {"k": Interval(int, 1, None), "replicates": Interval(int, 10, 100_000)})
        # a folder, or an fsspec URL as PartialStore takes (Path would turn "file://x" into "file:/x")
        self.path = str(path) if is_url(path) else Path(path)
        self.k, self.replicates, self.error = k, replicates, error
        self.watched: PartialStore | None = None
        self.lock = threading.Lock()  # one answer computed at a time
        self.answer: pd.DataFrame | None = None
        self.history: list[dict[str, Any]] = []  # per answer: chunks, items, its top-k sets, confidences
        self.landed: dict[int, float] = {}  # chunk -> when its marker appeared (its mtime)
        self.rate: float | None = None

    # -- the store --------------------------------------------------------------------------------
    def store(self) -> PartialStore | None:
        if self.watched is None:
            try:
                self.watched = PartialStore(self.path)
            except StoreNotFoundError:
                return None
        return self.watched

    def _note_landings(self, watched: PartialStore, chunks: list[int]) -> None:
        for c in chunks:
            if c not in self.landed:
                self.landed[c] = time.time()  # when first seen, where the marker's time is not to be had
                if watched.fs.local:
                    with contextlib.suppress(FileNotFoundError):  # the capture finished: markers gone
                        self.landed[c] = os.stat(watched.fs.full(f"{PROGRESS}/chunk-{c:06d}.done")).st_mtime
        if len(self.landed) >= 2:
            times = sorted(self.landed.values())
            span = times[-1] - times[0]
            per = watched.manifest.chunk_items
            if span > 0:
                self.rate = (len(times) - 1) * per / span

    def _status(self) -> dict:
        watched = self.store()
        base = {"path": str(self.path), "k": self.k, "error": self.error()}
        if watched is None:
            return {**base, "status": "waiting", "writing": False, "chunks_done": 0, "chunks_total": None,
                    "items_done": 0, "items_total": None, "rate": None, "eta_s": None, "chunk_order": None,
                    "biased": False, "layers": [], "default_layer": None, "classes": None}
        chunks = watched.done_chunks()
        m = watched.manifest
        self._note_landings(watched, chunks)
        bounds = watched.store.chunk_bounds()
        items = int(sum(bounds[c][1] - bounds[c][0] for c in chunks))
        complete = watched.complete
        order = m.extra.get("chunk_order", "ascending")
        eta = 0.0 if complete else (None if not self.rate else (m.n_items - items) / self.rate)
        return {**base, "status": "complete" if complete else "capturing", "writing": watched.writing(),
                "chunks_done": len(chunks), "chunks_total": m.n_chunks, "items_done": items,
                "items_total": m.n_items, "rate": self.rate, "eta_s": eta, "chunk_order": order,
                "biased": order != "random", "classes": m.classes or list(map(str, range(m.num_classes))),
                "layers": [{"name": s.name, "neurons": s.neurons} for s in m.layers],
                "default_layer": self._default_layer(m.layers)}

    def _default_layer(self, specs) -> str | None:
        """The last layer with more than k neurons (else the last): the head's k logits would make every
        group's top k all of them, confidence 1 from the first chunk -- an answer that says nothing."""
        wide = [s.name for s in specs if s.neurons > self.k]
        return wide[-1] if wide else (specs[-1].name if specs else None)

    def _afresh(self, fn, *args):
        """``fn(*args)``; when another capture replaced the store, start over on the new one."""
        try:
            return fn(*args)
        except StoreReplacedError:
            # a capture run again with overwrite=True: follow it, with a history of its own (precision
            # against another capture's final answer would mean nothing)
            with self.lock:
                self.watched, self.answer, self.history = None, None, []
                self.landed, self.rate = {}, None
            return fn(*args)

    def status(self) -> dict:
        """Progress of the capture: chunks and items done, the rate, the time left, its layers."""
        return self._afresh(self._status)

    def answer_of(self, layer: str | None = None) -> dict:
        """The latest answer for ``layer`` (default: the last layer wider than k)."""
        return self._afresh(self._answer_of, layer)

    def history_of(self, layer: str | None = None) -> dict:
        """Every answer so far for ``layer``: items, mean confidence, precision against the final one."""
        return self._afresh(self._history_of, layer)

    # -- the answer -------------------------------------------------------------------------------
    def refresh(self) -> pd.DataFrame | None:
        """Compute the answer again if chunks landed since the last one."""
        from modeldx.queries.progressive import progressive_answer

        watched = self.store()
        if watched is None:
            return None
        with self.lock:
            snap = watched.snapshot()
            done = len(snap.chunks)
            if done == 0 or (self.answer is not None and self.history[-1]["chunks"] == done
                             and self.history[-1]["complete"] == snap.complete):
                return self.answer
            answer = progressive_answer(snap, "top-k-neurons", k=self.k, replicates=self.replicates)
            self.answer = answer
            sets = answer.groupby(_KEY)["neuron"].apply(frozenset).to_dict()
            self.history.append({"chunks": done, "items": snap.n_items, "complete": snap.complete,
                                 "sets": sets, "confidence": answer.groupby("layer")["confidence"].mean()})
            return answer

    def _layer(self, layer: str | None) -> str:
        watched = self.store()
        layers = watched.store.layers if watched is not None else []
        if layer is None:
            if not layers:
                raise LayerNotFoundError("the store holds no layers yet")
            return self._default_layer(watched.store.manifest.layers)
        if layer not in layers:
            raise LayerNotFoundError(
                f"layer {layer!r} is not in the store; expected one of {', '.join(layers)}")
        return layer

    def _answer_of(self, layer: str | None = None) -> dict:
        answer = self.refresh()
        if answer is None:
            return {"chunks_done": 0, "items_done": 0, "complete": False, "layer": layer, "k": self.k,
                    "mean_confidence": None, "groups": []}
        layer = self._layer(layer)
        part = answer[answer["layer"] == layer]
        groups = []
        for (label, ok), rows in part.groupby(["label", "correct"], sort=True):
            neurons = [{"rank": int(r.rank), "neuron": int(r.neuron), "value": _float(r.value),
                        "confidence": _float(r.confidence)} for r in rows.itertuples()]
            groups.append({"label": int(label), "correct": bool(ok), "n_items": int(rows["n_items"].iloc[0]),
                           "neurons": neurons})
        progress = answer.attrs["progress"]
        return {"chunks_done": progress["chunks_done"], "items_done": progress["items_done"],
                "complete": progress["complete"], "layer": layer, "k": self.k,
                "mean_confidence": _float(part["confidence"].mean()) if part["confidence"].notna().any()
                else None, "groups": groups}

    def _history_of(self, layer: str | None = None) -> dict:
        self.refresh()
        if not self.history:
            return {"layer": layer, "entries": []}
        layer = self._layer(layer)
        final = self.history[-1]["sets"] if self.history[-1]["complete"] else None
        entries = []
        for h in self.history:
            precision = None
            if final is not None:
                keys = [key for key in final if key[0] == layer]
                precision = float(np.mean([len(h["sets"].get(key, frozenset()) & final[key]) / len(final[key])
                                           for key in keys]))
            entries.append({"chunks": h["chunks"], "items": h["items"], "precision": precision,
                            "mean_confidence": _float(h["confidence"].get(layer, np.nan))})
        return {"layer": layer, "entries": entries}


def create_capture_app(view: CaptureView, *, token: str | None = None, host: str = "127.0.0.1",
                       allowed_hosts: Iterable[str] = ()):
    """The ASGI app serving ``view``'s page and JSON (see the module docstring)."""
    app = guarded_app(f"modeldx capture: {view.path}", host=host, token=token, allowed_hosts=allowed_hosts)
    app.state.view = view
    require_api_token(app, token)

    @app.get("/api/status")
    async def status() -> Response:
        return await run_in_threadpool(api_answer, view.status)

    @app.get("/api/answer")
    async def top(layer: str | None = None) -> Response:
        return await run_in_threadpool(api_answer, view.answer_of, layer)

    @app.get("/api/history")
    async def history(layer: str | None = None) -> Response:
        return await run_in_threadpool(api_answer, view.history_of, layer)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "capture.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class CaptureThread(AppThread):
    """A capture's page served from a thread of this process (notebooks, tests); ``.url``, ``.stop()``."""

    def __init__(self, view: CaptureView, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 **options) -> None:
        app = create_capture_app(view, token=token, host=host, **options)
        super().__init__(app, app_server(app, host, port, "warning"), host=host, token=token)


def serve_capture(view: CaptureView, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                  sock: sockets.socket | None = None, allowed_hosts: Iterable[str] = (),
                  log_level: str = "warning", announce=print) -> None:
    """Serve ``view`` until interrupted; prints the URL. ``sock``: one :func:`reserve` took already."""
    serve_announced(lambda: create_capture_app(view, token=token, host=host,
                                               allowed_hosts=allowed_hosts),
                    host=host, port=port, token=token, sock=sock, log_level=log_level,
                    what=f"modeldx capture {view.path}", announce=announce)
