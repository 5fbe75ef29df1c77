"""Serve a training run (:func:`modeldx.dynamics.open_run`) to browsers: the training-dynamics views.

Routes (every URL the page uses is relative, so a proxy may mount it anywhere):

- ``/`` the page, ``/static/...`` its files.
- ``/api/run``: ``path``, ``meta``, ``status`` (``"recording"`` | ``"complete"``),
  ``n_snapshots``, ``stats`` (every statistic name), ``layers`` (``[{name,
  neurons, stats}]`` in forward order), ``steps`` and ``loss`` per snapshot,
  ``losses`` (``{steps, loss, n}``: every recorded step, or beyond
  ``LOSS_POINTS`` of them each bucket's extremes, see :func:`thin_losses`;
  ``n`` the number of recorded steps), ``first_nonfinite``
  (``{snapshot, step}`` or null), ``failure`` (the localisation's
  ``Failure.to_dict()`` or null) and ``contributors`` (``{available, reason}``:
  whether the neuron view can name contributors). While the run records, each
  call re-reads what was committed since.
- ``/api/summaries/{stat}``: per layer having ``stat``, ``{mean, min, max,
  nonfinite}`` over its neurons at each snapshot (``run.summary``).
- ``/api/lines/{layer}/{stat}?start=&stop=&lo=&hi=&m=``: the layer's series of
  ``stat`` over snapshots ``start:stop``, of the neurons that have a value in
  the band ``[lo, hi]`` there (or a non-finite one), blue-noise sampled
  (:func:`~modeldx.dynamics.blue_noise_sample`) to at most ``m`` (default 150,
  at most 1,000) lines: ``lines`` = ``[{neuron, values, outlier, nonfinite,
  early}]``, with ``eligible`` (how many neurons were in the window and band),
  ``neurons``, ``steps`` of the window, ``value_range`` (the finite range
  drawn) and ``basis``: once most series are non-finite (a run that blew up)
  they are compared over the window's first ``basis`` snapshots only, before
  that; ``outlier`` is :func:`~modeldx.dynamics.true_outliers` there (beyond
  20,000 series against its threshold estimated on 4,096 of them), ``early``
  a series non-finite there already (before most of its layer), ``nonfinite``
  one non-finite anywhere in the window, ``suspect`` one of the neurons the
  localisation names (always among the lines of its layer, before the sample).
- ``/api/neuron/{layer}/{neuron}?top=&source=``: the neuron's series of every
  statistic its layer has, and ``contributors``: ``{available, reason,
  source_layer, method, items: [{layer, neuron, series, total, mean}]}`` — the
  ``top`` (default 5) neurons of ``source`` (default: the nearest earlier
  recorded layer the credit module can reach, skipping a pre-activation) with
  the largest ``|total|`` of their gradient × activation contribution
  (:func:`~modeldx.dynamics.contribution_series`) over the snapshots; ``mean``
  is the contributor's own mean activation when its layer was recorded.
  Contributors need the model: ``model=`` (a checkpoint's architecture; weights
  come from ``run.state_dict``) or ``run.build_model()``; without either,
  ``available`` is false and ``reason`` says so.

Numbers that are not finite -- the failures these views are for -- are sent as
the strings ``"nan"``, ``"inf"`` and ``"-inf"``. A layer, statistic or neuron
that does not exist is a 404 (a bad parameter a 409, a damaged run a 500)
whose JSON ``detail`` names it. Heavy answers (sampling, contributions) are computed off the event
loop and cached per committed snapshot count. Security is the live server's
(:mod:`modeldx.live.server`): Host and Origin checks, and beyond loopback a
token on every ``/api/`` request (``?token=`` or the ``X-Modeldx-Token``
header; the page carries the one it was opened with).
"""

from __future__ import annotations

import socket as sockets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from torch import nn

from modeldx._params import Interval, check_params
from modeldx.dynamics._layout import architecture, architecture_fingerprint, weights_file
from modeldx.errors import InvalidParameterError, LayerNotFoundError, ModeldxError, RunMismatchError
from modeldx.live.server import (
    STATIC,
    AppThread,
    api_answer,
    app_server,
    guarded_app,
    require_api_token,
    serve_announced,
)

__all__ = ["create_dynamics_app", "DynamicsThread", "serve_dynamics", "DEFAULT_LINES", "MAX_LINES"]

DEFAULT_LINES = 150
MAX_LINES = 1000
_REFRESH_S = 0.5  # a recording run is re-read at most this often, however many browsers poll
_CACHE = 64
_EXACT_OUTLIERS = 20_000  # beyond this many series, outliers are flagged against an estimated threshold
# /api/run is polled every 2 s while a run records: beyond this many per-step losses it sends each
# bucket's extremes (a chart is ~1,200 px wide); 300,000 steps sent whole were 8.5 MB a poll
LOSS_POINTS = 4000


class NeuronNotFoundError(LayerNotFoundError):
    """A neuron index outside its layer (a 404 like a missing layer)."""


def finite_or_name(values) -> list:
    """A JSON-safe list: finite numbers as they are, others as ``"nan"``, ``"inf"``, ``"-inf"``."""
    a = np.asarray(values, dtype=np.float64)
    out = a.astype(object)
    bad = ~np.isfinite(a)
    if bad.any():
        out[np.isnan(a)] = "nan"
        out[np.isposinf(a)] = "inf"
        out[np.isneginf(a)] = "-inf"
    return out.tolist()


def _json_safe(value: Any) -> Any:
    """``value`` with every float, array and tuple made JSON-safe (for ``Failure.to_dict()`` and meta)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite_or_name(value) if value.dtype.kind == "f" else value.tolist()
    if isinstance(value, float | np.floating):
        return finite_or_name([value])[0]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def thin_losses(steps: np.ndarray, loss: np.ndarray,
                points: int = LOSS_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` of the per-step ``(steps, loss)``: every step when they fit, else per bucket
    of consecutive steps its lowest and highest finite loss and its first non-finite one (at most
    two of the three, the non-finite one first), plus the first and last step."""
    n = len(steps)
    if n <= points:
        return steps, loss
    buckets = max(1, (points - 2) // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [0, n - 1]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        part = loss[lo:hi]
        finite = np.isfinite(part)
        bad = np.flatnonzero(~finite)
        picks = [lo + int(bad[0])] if bad.size else []
        if finite.any():
            masked = np.where(finite, part, np.nan)
            picks += [lo + int(np.nanargmax(masked)), lo + int(np.nanargmin(masked))]
        keep += picks[:2]
    index = np.unique(np.asarray(keep, dtype=np.int64))
    return steps[index], loss[index]


class _Cache:
    """A small LRU of computed answers, one computation per key at a time."""

    def __init__(self, size: int = _CACHE) -> None:
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()
        self.busy: dict[Any, threading.Lock] = {}

    def get(self, key, compute: Callable[[], Any]):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            gate = self.busy.setdefault(key, threading.Lock())
        with gate:  # a second request for the same key waits for the first instead of computing again
            with self.lock:
                if key in self.items:
                    return self.items[key]
            try:
                value = compute()
            finally:
                with self.lock:
                    self.busy.pop(key, None)
            with self.lock:
                self.items[key] = value
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value


def _check_architecture(run, model: nn.Module) -> None:
    """The model given for credit must be the run's architecture: its snapshots' weights load into it."""
    want = run.meta.get("model_fingerprint")
    if want is not None and architecture_fingerprint(architecture(model)) != want:
        raise RunMismatchError(
            f"the model ({type(model).__name__}) is not the architecture the run at {run.path} recorded "
            f"({run.meta.get('model_class', '?')}): its parameter names or shapes differ")


def _outliers_among(x: np.ndarray, rows: np.ndarray, *, k: int = 10, share: float = 0.01) -> np.ndarray:
    """Which of ``rows`` are outliers in the sense of :func:`~modeldx.dynamics.true_outliers` (top
    ``share`` by distance to the k-th nearest series), for many series: the threshold is that share's
    quantile on a random 4,096 of them, and only ``rows`` are measured against it -- ``true_outliers``
    itself measures every series (15 s for 10^5 x 200 on this CPU; this: well under 1 s)."""
    from modeldx.dynamics.polylines import _knn_distance, _subset, _weights

    finite = np.isfinite(x).all(1)
    good = np.flatnonzero(finite)
    xw = (torch.as_tensor(x[good]) * _weights(x.shape[1], torch.float64)).float()
    gen = torch.Generator().manual_seed(0)
    ref = _subset(len(good), 4096, gen)
    kk = max(1, min(len(ref) - 1, round(k * (len(ref) - 1) / (len(good) - 1))))
    threshold = float(torch.quantile(_knn_distance(xw, ref, ref, kk).double(), 1 - share))
    local = np.searchsorted(good, rows)
    ok = finite[rows]
    flags = np.zeros(len(rows), dtype=bool)
    if ok.any():
        d = _knn_distance(xw, torch.as_tensor(local[ok]), ref, kk).numpy()
        flags[ok] = (d >= threshold) & (d > 0)  # identical series are no outliers (true_outliers)
    return flags


class DynamicsView:
    """The computations behind the routes, on one run (re-read while it records)."""

    def __init__(self, run, model: nn.Module | None = None) -> None:
        self.run = run
        self.lock = threading.RLock()  # the run is re-read in place; reads must not interleave with that
        self.read_at = time.monotonic()
        self.cache = _Cache()
        if model is not None:
            _check_architecture(run, model)
        self.model = model if model is not None else run.build_model()
        self.model_from = "checkpoint" if model is not None else "run" if self.model is not None else None

    # -- the run ------------------------------------------------------------------------------------
    def current(self):
        """The run, re-read if it is still recording (at most every ``_REFRESH_S``)."""
        with self.lock:
            if self.run.replaced:  # recorded again (overwrite=True): the new run, nothing cached of the old
                self.run = self.run.refresh() or self.run
                self.cache = _Cache()
                self.read_at = time.monotonic()
            elif self.run.status == "recording" and time.monotonic() - self.read_at >= _REFRESH_S:
                self.run = self.run.refresh() or self.run
                self.read_at = time.monotonic()
            return self.run

    def check_layer(self, run, layer: str, stat: str | None = None) -> None:
        if layer not in run.layers:
            raise LayerNotFoundError(
                f"layer {layer!r} is not in the run; expected one of {', '.join(run.layers)}")
        if stat is not None and stat not in run.stats_of(layer):
            raise LayerNotFoundError(f"statistic {stat!r} is not recorded for layer {layer!r}; "
                                     f"expected one of {', '.join(run.stats_of(layer))}")

    def failure(self, run) -> dict | None:
        from modeldx.dynamics import localize

        def compute():
            try:
                found = localize(run)
            except ModeldxError as exc:  # the views still show the run; the reason says why no localisation
                return {"reason": f"the failure could not be localised: {exc}", "layer": None,
                        "neurons": [], "stat": None}
            return None if found is None else _json_safe(found.to_dict())
        return self.cache.get(("failure", run.n_snapshots), compute)

    def summary(self) -> dict:
        from modeldx.dynamics import STATS

        with self.lock:
            run = self.current()
            steps, loss = run.losses()
            shown_steps, shown_loss = thin_losses(steps, loss)
            first = run.first_nonfinite()
            out = {
                "path": str(run.path), "meta": _json_safe(run.meta), "status": run.status,
                "n_snapshots": int(run.n_snapshots), "stats": list(STATS),
                "layers": [{"name": n, "neurons": int(run.neurons(n)), "stats": list(run.stats_of(n))}
                           for n in run.layers],
                "steps": np.asarray(run.steps).tolist(), "loss": finite_or_name(run.loss),
                "losses": {"steps": np.asarray(shown_steps).tolist(), "loss": finite_or_name(shown_loss),
                           "n": int(len(steps))},
                "first_nonfinite": None if first is None else {"snapshot": int(first),
                                                               "step": int(run.steps[first])},
                "contributors": self.contributors_available(),
            }
            # under the lock: a refresh in between would change the run under the localisation
            out["failure"] = self.failure(run) if first is not None else None
        return out

    def contributors_available(self) -> dict:
        if self.model is None:
            return {"available": False, "reason": "contributors need the model: pass --checkpoint CKPT "
                                                  "(or record the run with arch=...)"}
        if not self.run.meta.get("weights"):
            return {"available": False, "reason": "contributors need the weights: the run was recorded "
                                                  "with weights=False"}
        return {"available": True, "reason": f"model from the {self.model_from}"}

    def summaries(self, stat: str) -> dict:
        from modeldx.dynamics import STATS

        with self.lock:
            run = self.current()
            if stat not in STATS:
                raise LayerNotFoundError(
                    f"statistic {stat!r} does not exist; expected one of {', '.join(STATS)}")
            layers = {}
            for layer in run.layers:
                if stat in run.stats_of(layer):
                    s = run.summary(layer, stat)
                    layers[layer] = {k: finite_or_name(s[k]) for k in ("mean", "min", "max", "nonfinite")}
            return {"stat": stat, "steps": np.asarray(run.steps).tolist(), "layers": layers}

    # -- the layer view -----------------------------------------------------------------------------
    def lines(self, layer: str, stat: str, start: int = 0, stop: int | None = None,
              lo: float | None = None, hi: float | None = None, m: int = DEFAULT_LINES) -> dict:
        with self.lock:
            run = self.current()
            self.check_layer(run, layer, stat)
            s = int(run.n_snapshots)
            stop = s if stop is None else stop
            check_params("lines", {"start": start, "stop": stop, "m": m},
                         {"start": Interval(int, 0, max(s - 1, 0)), "stop": Interval(int, start + 1, s),
                          "m": Interval(int, 1, MAX_LINES)})
            for name, v in (("lo", lo), ("hi", hi)):
                if v is not None and not np.isfinite(v):
                    raise InvalidParameterError(f"The {name!r} parameter of lines must be a finite number. "
                                                f"Got {v!r} instead.")
            if lo is not None and hi is not None and lo > hi:
                raise InvalidParameterError(f"The value band must have lo <= hi. Got lo={lo}, hi={hi}.")
            steps = np.asarray(run.steps)[start:stop].tolist()
            # the localisation's suspects are drawn whatever the sampler picks: they are why one looks
            failure = self.failure(run) if run.first_nonfinite() is not None else None
            keep = tuple(failure["neurons"]) if failure and failure.get("layer") == layer else ()

        def compute():
            with self.lock:
                series = np.asarray(run.series(layer, stat, start, stop))
            return self._sample(series, steps, layer, stat, start, stop, lo, hi, m, keep)
        return self.cache.get(("lines", layer, stat, start, stop, lo, hi, m, s), compute)

    @staticmethod
    def _sample(series: np.ndarray, steps: list, layer, stat, start, stop, lo, hi, m, keep=()) -> dict:
        from modeldx.dynamics import blue_noise_sample, true_outliers

        x = series.T.astype(np.float64)  # (neurons, snapshots of the window)
        finite = np.isfinite(x)
        eligible = np.arange(len(x))
        if lo is not None or hi is not None:
            inside = finite & (x >= (-np.inf if lo is None else lo)) & (x <= (np.inf if hi is None else hi))
            eligible = np.flatnonzero(inside.any(1) | ~finite.all(1))  # a broken series stays in any band
        n = len(eligible)
        k = min(m, n)
        # Once a run has blown up, every series is NaN from then on and the sampler would keep all of
        # them as "broken" alike; distances are measured over the snapshots before most series broke,
        # so the lines are still thinned and the outliers found where they differ: before the failure.
        broken = (~finite[eligible]).mean(0) > 0.5 if n else np.zeros(x.shape[1], dtype=bool)
        basis = x.shape[1] if not broken.any() else int(np.argmax(broken))
        basis = basis if basis >= 2 else x.shape[1]
        xb = x[eligible, :basis]
        allowed = set(eligible.tolist())
        kept = np.array([i for i in dict.fromkeys(keep) if i in allowed][:k], dtype=np.int64)
        suspects = set(kept.tolist())
        rest = np.setdiff1d(eligible, kept)
        need = min(k - len(kept), len(rest))
        if need <= 0:
            picked = np.zeros(0, dtype=np.int64)
        elif x.shape[1] >= 2:
            picked = rest[blue_noise_sample(x[rest, :basis], need)]
        else:  # one snapshot is no polyline: keep the extremes, then evenly spaced
            order = rest[np.argsort(np.nan_to_num(x[rest, 0], nan=np.inf))]
            picked = order[np.unique(np.linspace(0, len(rest) - 1, need).round().astype(int))]
        chosen = np.concatenate([kept, picked])
        outliers: set[int] = set()
        if n >= 2 and x.shape[1] >= 2:
            if n <= _EXACT_OUTLIERS:
                outliers = set(eligible[true_outliers(xb)].tolist())
            else:
                outliers = set(chosen[_outliers_among(xb, np.searchsorted(eligible, chosen))].tolist())
        fin = x[eligible][finite[eligible]]
        value_range = [float(fin.min()), float(fin.max())] if fin.size else [0.0, 1.0]
        if lo is not None:
            value_range[0] = float(lo)
        if hi is not None:
            value_range[1] = float(hi)
        return {
            "layer": layer, "stat": stat, "start": start, "stop": stop, "steps": steps,
            "neurons": int(len(x)), "eligible": int(n), "m": int(m), "value_range": value_range,
            "basis": basis,
            "lines": [{"neuron": int(i), "values": finite_or_name(x[i]), "outlier": int(i) in outliers,
                       "suspect": int(i) in suspects,
                       "nonfinite": bool(not finite[i].all()), "early": bool(not finite[i, :basis].all())}
                      for i in chosen],
        }

    # -- the neuron view ----------------------------------------------------------------------------
    def neuron(self, layer: str, neuron: int, top: int = 5, source: str | None = None) -> dict:
        with self.lock:
            run = self.current()
            self.check_layer(run, layer)
            if not 0 <= neuron < run.neurons(layer):
                raise NeuronNotFoundError(f"neuron {neuron} is not in layer {layer!r}; expected 0..."
                                          f"{run.neurons(layer) - 1}")
            check_params("neuron", {"top": top}, {"top": Interval(int, 1, 50)})
            if source is not None:
                self.check_layer(run, source)
                before = run.layers[:run.layers.index(layer)]
                if source not in before:  # its own layer or a later one credits nothing to this neuron
                    raise InvalidParameterError(
                        f"source {source!r} is not a recorded layer before {layer!r}; expected one of: "
                        f"{', '.join(before) or 'none (no recorded layer runs before it)'}")
            stats = {st: finite_or_name(run.series(layer, st)[:, neuron]) for st in run.stats_of(layer)}
            out = {"layer": layer, "neuron": neuron, "steps": np.asarray(run.steps).tolist(), "stats": stats}
            s = int(run.n_snapshots)
        out["contributors"] = self.cache.get(("contrib", layer, neuron, top, source, s),
                                             lambda: self._contributors(layer, neuron, top, source, s))
        return out

    def _sources(self, run, layer: str) -> list[str]:
        """Earlier recorded layers, nearest first; a target without parameters (an activation) skips
        the layer right before it when that one has as many neurons (its pre-activation: credit 1:1)."""
        before = run.layers[:run.layers.index(layer)][::-1]
        modules = dict(self.model.named_modules())
        target = modules.get(layer)
        if (before and target is not None and not any(True for _ in target.parameters())
                and run.neurons(before[0]) == run.neurons(layer)):
            before = before[1:] + before[:1]  # still the last resort
        return [b for b in before if b in modules]

    def _contributors(self, layer: str, neuron: int, top: int, source: str | None, s: int) -> dict:
        from modeldx.dynamics import contribution_series

        state = self.contributors_available()
        if not state["available"]:
            return {**state, "source_layer": None, "method": None, "items": []}
        with self.lock:
            run = self.run
            candidates = [source] if source is not None else self._sources(run, layer)
            if not candidates:
                return {"available": False, "reason": f"no recorded layer runs before {layer!r}",
                        "source_layer": None, "method": None, "items": []}
            # paths, not state dicts: contribution_series loads one snapshot at a time, so a long run
            # of a large model is not held in memory whole
            states = [weights_file(run.path, i) for i in range(s)]
            missing = next((p for p in states if not p.is_file()), None)
            if missing is not None:
                return {"available": False, "source_layer": None, "method": None, "items": [],
                        "reason": f"the run's weights are incomplete: {missing} is missing"}
            probe = run.probe()
        last: Exception | None = None
        for src in candidates:
            try:
                c = contribution_series(states, self.model, probe, layer, neuron, source_layer=src,
                                        method="grad_x_act")
            except ModeldxError as exc:  # this source cannot reach the target: try the next earlier one
                last = exc
                continue
            total = np.nansum(np.where(np.isfinite(c), c, np.nan), axis=0)
            order = np.argsort(-np.abs(total), kind="stable")[:top]
            with self.lock:
                means = (np.asarray(self.run.series(src, "mean", 0, s)) if src in self.run.layers
                         and "mean" in self.run.stats_of(src) else None)
            items = [{"layer": src, "neuron": int(j), "series": finite_or_name(c[:, j]),
                      "total": finite_or_name([total[j]])[0],
                      "mean": None if means is None else finite_or_name(means[:, j])} for j in order]
            return {"available": True, "reason": state["reason"], "source_layer": src, "method": "grad_x_act",
                    "items": items}
        return {"available": False, "reason": f"no earlier layer reaches {layer!r}: {last}",
                "source_layer": None, "method": None, "items": []}


def create_dynamics_app(run, *, model: nn.Module | None = None, token: str | None = None,
                        host: str = "127.0.0.1", allowed_hosts: Iterable[str] = ()):
    """The ASGI app serving ``run``'s views and JSON (see the module docstring).

    ``model``: the run's architecture (e.g. a checkpoint's), for the neuron view's
    contributors; default ``run.build_model()``.
    """
    view = DynamicsView(run, model)
    app = guarded_app(f"modeldx dynamics: {run.path}", host=host, token=token, allowed_hosts=allowed_hosts)
    app.state.view = view

    require_api_token(app, token)

    @app.get("/api/run")
    async def run_info() -> Response:
        return await run_in_threadpool(api_answer, view.summary)

    @app.get("/api/summaries/{stat}")
    async def summaries(stat: str) -> Response:
        return await run_in_threadpool(api_answer, view.summaries, stat)

    @app.get("/api/lines/{layer}/{stat}")
    async def lines(layer: str, stat: str, start: int = 0, stop: int | None = None, lo: float | None = None,
                    hi: float | None = None, m: int = DEFAULT_LINES) -> Response:
        return await run_in_threadpool(api_answer, view.lines, layer, stat, start, stop, lo, hi, m)

    @app.get("/api/neuron/{layer}/{neuron}")
    async def neuron(layer: str, neuron: int, top: int = 5, source: str | None = None) -> Response:
        return await run_in_threadpool(api_answer, view.neuron, layer, neuron, top, source)

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "dynamics.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class DynamicsThread(AppThread):
    """A run's views served from a thread of this process (notebooks, tests); ``.url``, ``.stop()``."""

    def __init__(self, run, *, model: nn.Module | None = None, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, **options) -> None:
        app = create_dynamics_app(run, model=model, token=token, host=host, **options)
        super().__init__(app, app_server(app, host, port, "warning"), host=host, token=token)


def serve_dynamics(run, *, model: nn.Module | None = None, host: str = "127.0.0.1", port: int = 8765,
                   token: str | None = None, sock: sockets.socket | None = None,
                   allowed_hosts: Iterable[str] = (), log_level: str = "warning", announce=print) -> None:
    """Serve ``run``'s views until interrupted; prints the URL. ``sock``: one :func:`reserve` took already."""
    serve_announced(lambda: create_dynamics_app(run, model=model, token=token, host=host,
                                                allowed_hosts=allowed_hosts),
                    host=host, port=port, token=token, sock=sock, log_level=log_level,
                    what=f"modeldx dynamics {run.path}", announce=announce)
