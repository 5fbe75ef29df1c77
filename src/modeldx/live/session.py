"""A training loop that runs in a worker thread and is steered while it runs.

:class:`LiveSession` calls a step function over and over in a worker thread.
Controls (sliders, choices, buttons) may be changed from any thread — the web
server's, a notebook's — but a change takes effect only *between* steps, and is
recorded as an event stamped with the step at which it took effect, so every
chart can mark where the objective changed. Pause, resume, single step,
snapshot and restore are commands handled the same way, between steps.

Streams (scalars, histograms, image grids, matrices, tables) keep bounded,
downsampled histories (:mod:`modeldx.live.history`), so a browser that connects
late, or reconnects, gets the whole run so far.

Examples
--------
>>> session = LiveSession("classifier")                        # doctest: +SKIP
>>> session.slider("lr", 1e-4, 1.0, 1e-2, log=True)
>>> def step(ctx):
...     for group in optimizer.param_groups:
...         group["lr"] = ctx.controls["lr"]
...     ctx.scalar("loss", train_one_batch())
>>> session.start(step, state=(model.state_dict, model.load_state_dict))
"""

from __future__ import annotations

import base64
import copy
import logging
import math
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modeldx._params import Interval, check_params
from modeldx.errors import InvalidParameterError, ModeldxError
from modeldx.live.controls import Button, Choice, Control, Slider
from modeldx.live.history import ScalarHistory, ValueHistory

log = logging.getLogger(__name__)



@dataclass
class Event:
    """Something the user did, and the step at which it took effect."""

    kind: str  # control, pause, resume, step, snapshot, restore, error
    name: str
    value: Any
    step: int | None = None  # the first step that ran with it; None while pending
    received: float = field(default_factory=time.perf_counter)
    applied: float | None = None
    first_value: float | None = None  # when the first stream value computed after it was logged

    def describe(self) -> dict:
        return {"kind": self.kind, "name": self.name, "value": _plain(self.value), "step": self.step}


class StepContext:
    """What a step function sees: the step number, the control values, and stream writers."""

    def __init__(self, session: LiveSession) -> None:
        self._session = session
        self.step = 0
        self.controls: dict[str, Any] = {}
        self.presses: dict[str, int] = {}  # button presses since the previous step

    def scalar(self, name: str, value: float) -> None:
        self._session._log("scalar", name, self.step, float(value))

    def histogram(self, name: str, counts, edges=None, *, labels=None, x_title: str | None = None,
                  y_title: str | None = None) -> None:
        """Bars: ``counts`` of the bins between ``edges``, or one bar per category with ``labels``.

        ``labels`` (one per bar) make it a bar chart of categories (e.g. LDA's topics
        and their shares); ``x_title``, ``y_title`` replace the axis titles "value", "count".
        """
        counts = np.asarray(counts, dtype=np.float64)
        edges = np.arange(counts.size + 1, dtype=np.float64) if edges is None else np.asarray(edges, float)
        if edges.size != counts.size + 1:
            raise InvalidParameterError(f"histogram {name!r} needs len(edges) == len(counts) + 1. "
                                        f"Got {edges.size} edges for {counts.size} counts.")
        if labels is not None and len(labels) != counts.size:
            raise InvalidParameterError(f"histogram {name!r} has {counts.size} bars; "
                                        f"got {len(labels)} labels")
        self._session._log("histogram", name, self.step,
                           {"counts": counts.tolist(), "edges": edges.tolist(),
                            "labels": None if labels is None else [str(v) for v in labels],
                            "x_title": x_title, "y_title": y_title})

    def images(self, name: str, grid, *, columns: int | None = None, scaled: bool = False,
               column_names: list[str] | None = None) -> None:
        """A grid of images, (n, h, w) or (n, h, w, 3).

        Values are stretched to [0, 1] per image, unless ``scaled=True`` says
        they are display values in [0, 1] already (LDAM's grey-is-zero offset).
        ``column_names`` label the columns (one name per column), e.g. LDAM's neurons.
        """
        arr = np.asarray(grid, dtype=np.float32)
        if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3)):
            raise InvalidParameterError(f"images {name!r} takes an (n, h, w) or (n, h, w, 3) array. "
                                        f"Got shape {arr.shape}.")
        columns = columns or int(np.ceil(np.sqrt(arr.shape[0])))
        if column_names is not None and len(column_names) != columns:
            raise InvalidParameterError(f"images {name!r} has {columns} columns; got {len(column_names)} "
                                        "column names")
        self._session._log("images", name, self.step,
                           {"shape": list(arr.shape), "columns": columns, "data": _image_bytes(arr, scaled),
                            "column_names": None if column_names is None else [str(c) for c in column_names]})

    def matrix(self, name: str, values, *, rows=None, columns=None, note: str | None = None) -> None:
        """A heat map; ``rows``, ``columns`` name its rows and columns, ``note`` says what it shows."""
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 2:
            raise InvalidParameterError(f"matrix {name!r} takes a 2-d array. Got shape {arr.shape}.")
        self._session._log("matrix", name, self.step,
                           {"values": arr.tolist(), "rows": rows, "columns": columns, "note": note})

    def silhouette(self, name: str, clusters, scores) -> None:
        """A silhouette graph (thesis eq. 2.2): per item its cluster and score, grouped and sorted."""
        clusters, scores = np.asarray(clusters), np.asarray(scores, dtype=np.float64)
        if clusters.shape != scores.shape or clusters.ndim != 1:
            raise InvalidParameterError(f"silhouette {name!r} takes two 1-d arrays of one length. "
                                        f"Got shapes {clusters.shape} and {scores.shape}.")
        order = np.lexsort((-scores, clusters))
        self._session._log("silhouette", name, self.step,
                           {"cluster": clusters[order].tolist(), "score": np.round(scores[order], 4).tolist(),
                            "mean": float(scores.mean()) if scores.size else 0.0})

    def scatter(self, name: str, x, y, *, labels=None, keys=None, control: str | None = None,
                x_title: str | None = None, y_title: str | None = None, hover=None,
                thumbnails: dict | None = None) -> None:
        """Points in 2-D; with ``control``, clicking a point sets that control to the point's key.

        ``x_title``, ``y_title``: axis titles; ``hover``: a text per point shown
        under the pointer; ``thumbnails``: ``{point index: image}`` small
        (h, w) images in [0, 1] drawn on those points (all of one shape).
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise InvalidParameterError(f"scatter {name!r} takes two 1-d arrays of one length. "
                                        f"Got shapes {x.shape} and {y.shape}.")
        for what, values in (("labels", labels), ("hover", hover), ("keys", keys)):
            if values is not None and len(values) != len(x):
                raise InvalidParameterError(f"scatter {name!r} has {len(x)} points; got {len(values)} {what}")
        thumbs = None
        if thumbnails:
            index = sorted(int(i) for i in thumbnails)
            if index[0] < 0 or index[-1] >= len(x):
                raise InvalidParameterError(f"scatter {name!r} has {len(x)} points; thumbnails for points "
                                            f"{index[0]}..{index[-1]}")
            stack = np.stack([np.asarray(thumbnails[i], dtype=np.float32) for i in index])
            if stack.ndim != 3:
                raise InvalidParameterError(f"scatter {name!r}: thumbnails must be (h, w) images. "
                                            f"Got shape {stack.shape[1:]}.")
            thumbs = {"index": index, "shape": list(stack.shape), "data": _image_bytes(stack, True)}
        self._session._log("scatter", name, self.step,
                           {"x": x.tolist(), "y": y.tolist(),
                            "labels": None if labels is None else [str(v) for v in labels],
                            "keys": None if keys is None else _plain(list(keys), f"scatter stream {name!r}"),
                            "control": control, "x_title": x_title, "y_title": y_title,
                            "hover": None if hover is None else [str(v) for v in hover],
                            "thumbnails": thumbs})

    def table(self, name: str, records: list[dict], *, control: str | None = None,
              key: str | None = None) -> None:
        """Rows of a table; with ``control`` and ``key``, a click on a row sets the control to its ``key``."""
        rows = _plain(list(records), f"table stream {name!r}")
        self._session._log("table", name, self.step, {"rows": rows, "control": control, "key": key})


def _image_bytes(arr: np.ndarray, scaled: bool) -> str:
    """Images as base64 uint8 bytes (a third of a JSON list's size): [0, 1] values, or stretched per image."""
    if scaled:
        unit = np.clip(arr, 0.0, 1.0)
    else:
        low = arr.reshape(arr.shape[0], -1).min(axis=1).reshape(-1, *[1] * (arr.ndim - 1))
        high = arr.reshape(arr.shape[0], -1).max(axis=1).reshape(-1, *[1] * (arr.ndim - 1))
        unit = (arr - low) / np.where(high > low, high - low, 1)
    return base64.b64encode(np.round(unit * 255).astype(np.uint8).tobytes()).decode()


class Subscription:
    """A queue of updates for one listener (a browser connection); bounded, with a resync flag."""

    def __init__(self, limit: int = 10_000) -> None:
        self.queue: deque = deque()
        self.limit = limit
        self.overflowed = False
        self.lock = threading.Lock()

    def put(self, update: dict) -> None:
        with self.lock:
            if len(self.queue) >= self.limit:
                # a listener too slow to keep up gets the whole state again instead of a gap
                self.queue.clear()
                self.overflowed = True
            self.queue.append(update)

    def drain(self) -> tuple[list[dict], bool]:
        """Updates since the last drain, and whether some were dropped (then resend the state)."""
        with self.lock:
            items, flag = list(self.queue), self.overflowed
            self.queue.clear()
            self.overflowed = False
            return items, flag


class LiveSession:
    """A step function in a worker thread, steered by controls, watched through streams.

    Memory is bounded however long it runs: scalar and value histories thin
    themselves (``scalar_capacity``, ``value_capacity``), at most ``max_events``
    events are kept (the oldest dropped, ``events_dropped`` counts them) and at
    most ``max_snapshots`` snapshots (taking one more drops the oldest).
    """

    _limits = {"max_snapshots": Interval(int, 1, None), "max_events": Interval(int, 1, None)}

    def __init__(self, name: str = "session", *, scalar_capacity: int = 1024,
                 value_capacity: int = 32, max_snapshots: int = 20, max_events: int = 500) -> None:
        check_params("LiveSession", {"max_snapshots": max_snapshots, "max_events": max_events}, self._limits)
        self.name = name
        # tells this session from another of the same name (the script started again on the same port)
        self.instance = secrets.token_hex(8)
        self.controls: dict[str, Control] = {}
        self.streams: dict[str, tuple[str, ScalarHistory | ValueHistory]] = {}
        self.events: list[Event] = []
        self.max_events, self.events_dropped = max_events, 0
        self.snapshots: dict[str, dict] = {}  # oldest first
        self.max_snapshots = max_snapshots
        self.step = 0
        self.paused = False
        self.error: str | None = None
        self._scalar_capacity, self._value_capacity = scalar_capacity, value_capacity
        self._commands: deque[Event] = deque()
        self._subscribers: list[Subscription] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._single = 0
        self._pending_effect: list[Event] = []
        self._lock = threading.RLock()
        self.step_fn: Callable[[StepContext], Any] | None = None  # what start() runs by default
        self.state_fns: tuple[Callable, Callable] | None = None  # (get, set): what snapshots copy
        self.model: Any = None  # what the session trains, for scripts and tests

    # ----- controls
    def slider(self, name: str, low: float, high: float, value: float, *, log: bool = False) -> Slider:
        return self._add(Slider(name, low, high, value, log))

    def choice(self, name: str, options: list, value: Any = None) -> Choice:
        return self._add(Choice(name, list(options), value))

    def button(self, name: str) -> Button:
        return self._add(Button(name))

    def _add(self, control):
        if control.name in self.controls:
            raise InvalidParameterError(f"a control named {control.name!r} exists already")
        self.controls[control.name] = control
        return control

    def set(self, name: str, value: Any = None) -> Event:
        """Change a control (press a button); it takes effect before the next step.

        Raises at once, naming the control and the bad value, if the value does
        not fit; nothing is queued then. Changes of one slider or choice that
        arrive before the next step are one event (a dragged slider is one
        burst): the value of the pending event is replaced. Button presses all count.
        """
        if name not in self.controls:
            raise InvalidParameterError(f"no control named {name!r}; controls: {sorted(self.controls)}")
        control = self.controls[name]
        control.check(value)  # fail now, in the caller's thread
        if control.kind != "button":
            with self._wake:
                pending = self._pending_control(name)
                if pending is not None:
                    pending.value, pending.received = value, time.perf_counter()
                    return pending
        return self._command(Event("control", name, value))

    def _pending_control(self, name: str) -> Event | None:
        """The queued change of ``name`` a new value may replace: none if a snapshot or restore follows it."""
        for event in reversed(self._commands):
            if event.kind in ("snapshot", "restore"):
                return None  # the snapshot must see the value set before it
            if event.kind == "control" and event.name == name:
                return event
        return None

    # ----- commands
    def pause(self) -> Event:
        return self._command(Event("pause", "", None))

    def resume(self) -> Event:
        return self._command(Event("resume", "", None))

    def step_once(self) -> Event:
        """Run exactly one step, then stay paused."""
        return self._command(Event("step", "", None))

    def snapshot(self, name: str = "snapshot") -> Event:
        if self.state_fns is None:
            raise ModeldxError("this session has no state to snapshot: start it with state=(get, set)")
        return self._command(Event("snapshot", name, None))

    def restore(self, name: str = "snapshot") -> Event:
        if name not in self.snapshots and not any(e.kind == "snapshot" and e.name == name
                                                   for e in self._commands):
            raise InvalidParameterError(f"no snapshot named {name!r}; snapshots: {sorted(self.snapshots)}")
        return self._command(Event("restore", name, None))

    def _command(self, event: Event) -> Event:
        with self._wake:
            self._commands.append(event)
            self._wake.notify_all()
        if not self.running:
            self._apply_commands()  # nothing steps: apply at once
        return event

    # ----- streams
    def _history(self, kind: str, name: str):
        entry = self.streams.get(name)
        if entry is None:
            hist = (ScalarHistory(self._scalar_capacity) if kind == "scalar"
                    else ValueHistory(self._value_capacity))
            entry = self.streams[name] = (kind, hist)
        elif entry[0] != kind:
            raise InvalidParameterError(f"stream {name!r} is a {entry[0]} stream; cannot log a {kind} to it")
        return entry[1]

    def _log(self, kind: str, name: str, step: int, value) -> None:
        if kind != "scalar":
            # JSON-safe here, in the step's thread, so a bad value fails the ctx.<kind>() call that made it
            value = _plain(value, f"{kind} stream {name!r}")
        hist = self._history(kind, name)
        if self._pending_effect:
            now = time.perf_counter()
            for event in self._pending_effect:
                event.first_value = now
            self._pending_effect = []
        if kind == "scalar":
            point = hist.add(step, value)
            if point is not None:
                self._publish({"type": "point", "stream": name, "step": point.step,
                               **_plain({"value": point.value, "low": point.low, "high": point.high})})
        else:
            hist.add(step, value)
            self._publish({"type": "value", "stream": name, "kind": kind, "step": step, "value": value})

    def subscribe(self, limit: int = 10_000) -> Subscription:
        sub = Subscription(limit)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def _publish(self, update: dict) -> None:
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            sub.put(update)

    def state(self) -> dict:
        """Everything a newly connected browser needs: controls, streams' histories, events, status."""
        streams = {}
        for name, (kind, hist) in list(self.streams.items()):
            streams[name] = {"kind": kind, **hist.snapshot()}
        return {"name": self.name, "instance": self.instance, "step": self.step, "paused": self.paused,
                "error": self.error,
                "running": self.running, "controls": [c.describe() for c in self.controls.values()],
                "streams": _plain(streams), "events": [e.describe() for e in list(self.events)],
                "events_dropped": self.events_dropped, "snapshots": list(self.snapshots)}

    # ----- running
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, step_fn: Callable[[StepContext], Any] | None = None, *,
              state: tuple[Callable, Callable] | None = None, paused: bool = False,
              max_steps: int | None = None) -> LiveSession:
        """Run ``step_fn(ctx)`` in a worker thread until :meth:`stop` (or ``max_steps``).

        ``state=(get, set)`` makes snapshots possible: ``get()`` returns the
        training state (copied), ``set(state)`` puts one back.
        """
        if self.running:
            raise ModeldxError(f"session {self.name!r} is running already")
        step_fn = step_fn or self.step_fn
        if step_fn is None:
            raise ModeldxError(f"session {self.name!r} has no step function to run")
        if state is not None:
            self.state_fns = state
        self.paused = paused
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(step_fn, max_steps), daemon=True,
                                        name=f"modeldx-live-{self.name}")
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait(self, step: int, timeout: float = 30.0) -> bool:
        """Block until ``step`` steps have run (for scripts and tests)."""
        end = time.monotonic() + timeout
        while self.step < step and time.monotonic() < end:
            if not self.running:
                return self.step >= step
            time.sleep(0.002)
        return self.step >= step

    def _loop(self, step_fn, max_steps) -> None:
        ctx = StepContext(self)
        while not self._stop.is_set() and (max_steps is None or self.step < max_steps):
            self._apply_commands()
            if self.paused and not self._single:
                with self._wake:
                    if not self._commands and not self._stop.is_set():
                        self._wake.wait(0.1)
                continue
            ctx.step = self.step
            ctx.controls = {n: c.value for n, c in self.controls.items() if c.kind != "button"}
            ctx.presses = {n: c.value for n, c in self.controls.items() if c.kind == "button"}
            for c in self.controls.values():
                if c.kind == "button":
                    c.value = 0
            try:
                step_fn(ctx)
            except Exception as exc:  # the session survives a failing step: pause and say why
                self.fail(f"step {self.step}", exc)
                continue
            self.step += 1
            if self._single:
                self._single -= 1
        self._apply_commands()  # what arrived while the last step ran

    def fail(self, where: str, exc: BaseException, *, pause: bool = True) -> None:
        """Make a failure seen: the session's ``error``, an ``error`` event for every browser, the log.

        ``pause=True`` (a step, snapshot or restore failed) also pauses the
        session; resuming clears the error.
        """
        self.error = f"{where}: {type(exc).__name__}: {exc}"
        log.error("live session %r: %s", self.name, self.error, exc_info=exc)
        if pause:
            self.paused = True
            self._single = 0
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=3))
        self._record(Event("error", type(exc).__name__, trace, self.step, applied=time.perf_counter()))

    def _apply_commands(self) -> None:
        while True:
            with self._wake:
                if not self._commands:
                    return
                event = self._commands.popleft()
            step = self.step
            try:
                self._apply(event)
            except Exception as exc:  # a snapshot or restore that raises must not kill the worker
                self.fail(f"{event.kind} {event.name!r}" if event.name else event.kind, exc)
                event.step, event.applied = step, time.perf_counter()
                continue
            # stamped last: a caller waiting for the step then also sees the event's value
            event.step, event.applied = step, time.perf_counter()
            self._record(event)

    def _apply(self, event: Event) -> None:
        """Carry out one queued command or control change (in the worker, between steps)."""
        if event.kind == "control":
            control = self.controls[event.name]
            control.value = control.check(event.value)
            event.value = control.value
            self._pending_effect.append(event)
        elif event.kind == "pause":
            self.paused = True
        elif event.kind == "resume":
            self.paused, self.error = False, None
        elif event.kind == "step":
            self.paused = True
            self._single += 1
        elif event.kind == "snapshot":
            snap = {"state": copy.deepcopy(self.state_fns[0]()), "step": self.step,
                    "controls": self._values()}
            self.snapshots.pop(event.name, None)  # taken again: it becomes the newest
            if len(self.snapshots) >= self.max_snapshots:
                dropped = next(iter(self.snapshots))
                del self.snapshots[dropped]
                event.value = {"dropped": dropped}
            self.snapshots[event.name] = snap
        elif event.kind == "restore":
            snap = self.snapshots[event.name]
            self.state_fns[1](copy.deepcopy(snap["state"]))
            for n, v in snap["controls"].items():
                self.controls[n].value = v
            # the values now in force, so every browser can set its widgets from the event
            event.value = {"from_step": snap["step"], "controls": self._values()}

    def _values(self) -> dict[str, Any]:
        return {n: c.value for n, c in self.controls.items() if c.kind != "button"}

    def _record(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
            if len(self.events) > self.max_events:
                del self.events[0]
                self.events_dropped += 1
        self._publish({"type": "event", **event.describe()})


def _plain(value, where: str = "value"):
    """JSON-ready: NumPy (and torch) scalars, arrays and keys to Python numbers, lists and strings.

    NaN and infinities become ``None`` (JSON has no such numbers; a browser's
    ``JSON.parse`` refuses them). Anything else JSON cannot encode raises
    :class:`InvalidParameterError` naming ``where`` and the value's type, in the
    caller's thread, instead of failing later in every browser's push.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_key(k, where): _plain(v, where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, np.generic) or hasattr(value, "tolist"):  # NumPy and torch scalars and arrays
        return _plain(value.tolist(), where)
    raise InvalidParameterError(f"{where} holds a value of type {type(value).__name__} ({value!r:.60}), "
                                "which JSON cannot encode: pass numbers, strings, lists, dicts, NumPy arrays")


def _key(key, where: str) -> str:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, (str, int, float, bool)) or key is None:
        return str(key)
    raise InvalidParameterError(f"{where} has a key of type {type(key).__name__} ({key!r:.60}): "
                                "keys must be strings or numbers")
