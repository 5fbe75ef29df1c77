"""Where did a failed run start to fail? The layer and neurons behind the first non-finite snapshot.

The recorder snapshots after ``optimizer.step()``, so at the first snapshot with a non-finite
value the weights may already be NaN and every layer downstream of the NaN gradient is non-finite
too: "the first non-finite layer in forward order" names whichever layer comes first, not the one
that broke. :func:`localize` therefore reads the snapshots *before* the failure: for each neuron
and each of ``max_abs``, ``grad_norm`` and ``weight_change`` its growth — the largest finite value
in the last ``window`` snapshots before the failing one over its usual high before them (its 90th
percentile, and at least the layer's: see ``_growth``). A runaway starts in a few
neurons and spreads to whole layers downstream (every neuron fed by a runaway one grows with it),
so a layer scores by how far its top neurons outgrew the layer's typical neuron (concentration),
not by the size of its values; an activation layer's evidence counts for the weighted layer whose
units it passes on. With no history to compare (a failure in the first snapshots) it
falls back to the first layer in forward order that holds a non-finite value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn

from modeldx._params import Interval, OneOf, check_params
from modeldx.dynamics.credit import contribution_series
from modeldx.dynamics.run import Run
from modeldx.errors import InvalidParameterError, LayerNotFoundError

__all__ = ["Failure", "localize", "upstream"]

GROWTH_STATS: tuple[str, ...] = ("max_abs", "grad_norm", "weight_change")
"""Statistics whose per-neuron growth before a failure :func:`localize` compares."""

_TOP = 10  # suspects reported per layer
_TINY = 1e-12
_USUAL = 90  # percentile: a neuron's (and a layer's) usual high


@dataclass
class Failure:
    """Where a run first went non-finite and the layer where it started (see :func:`localize`)."""

    snapshot: int
    step: int
    layer: str
    neurons: list[int]
    stat: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: plain ints, floats (non-finite scores as None) and strings."""
        return {"snapshot": int(self.snapshot), "step": int(self.step), "layer": self.layer,
                "neurons": [int(n) for n in self.neurons], "stat": self.stat, "reason": self.reason,
                "scores": {k: (float(v) if math.isfinite(v) else None) for k, v in self.scores.items()}}


def _window_start(fail: int, window: int) -> int:
    return max(min(2, fail - 1), fail - window)


def _growth(values: np.ndarray, fail: int, window: int) -> np.ndarray | None:
    """Per neuron: max finite |value| in the window before ``fail`` over its usual high before it.

    ``values`` holds snapshots ``0..fail``. The failing snapshot itself is left out: its gradients
    and weight changes come from the step whose loss was already non-finite, and show where the
    NaN went rather than where it came from. The base is a neuron's 90th percentile over its
    history, so a neuron whose gradients spike now and then (an exponential in the loss) has not
    grown until it exceeds its own spikes; and at least the layer's 90th percentile, so a neuron
    silent so far (a clamped or dead unit) that wakes up to the layer's usual level has not either.
    A short run shrinks the window so that two snapshots of history stay; None when there are not
    three snapshots before the failure.
    """
    start = _window_start(fail, window)
    if start < 2:
        return None
    history = np.abs(values[:start]).astype(np.float64)
    recent = np.abs(values[start:fail]).astype(np.float64)
    recent = np.where(np.isfinite(recent), recent, np.nan)
    with np.errstate(all="ignore"):
        peak = np.nanmax(np.where(np.isnan(recent), -np.inf, recent), axis=0)
        base = np.nanpercentile(np.where(np.isfinite(history), history, np.nan), _USUAL, axis=0)
    base = np.nan_to_num(base, nan=0.0)
    floor = max(float(np.percentile(base, _USUAL)), _TINY)
    return np.where(peak > 0, peak / np.maximum(base, floor), 1.0)


def localize(run: Run, *, window: int = 5) -> Failure | None:
    """The first non-finite snapshot of ``run``, the layer where the failure started and its neurons.

    Parameters
    ----------
    run : Run
        A recorded run (:func:`modeldx.dynamics.open_run`).
    window : int
        How many snapshots before the failing one count as "just before"; earlier ones are each
        neuron's own history.

    Returns
    -------
    Failure or None
        None when the run never went non-finite.

    Examples
    --------
    >>> from modeldx.dynamics import open_run
    >>> failure = localize(open_run("runs/vae-nan/diverged"))  # doctest: +SKIP
    >>> failure.layer, failure.neurons[:2]  # doctest: +SKIP
    ('fc4_logvar', [770, 77])
    """
    check_params("localize", {"window": window}, {"window": Interval(int, 1, None)})
    fail = run.first_nonfinite()
    if fail is None:
        return None
    step = int(run.steps[fail])
    scores: dict[str, float] = {}
    best: tuple[float, str, str, np.ndarray] | None = None
    layers = run.layers
    for i, layer in enumerate(layers):
        # an activation layer right after a weighted one of the same width holds that layer's
        # neurons (ReLU(fc1) is fc1's units): its evidence counts for the weighted layer
        owner = layer
        if (i > 0 and "weight_change" not in run.stats_of(layer)
                and "weight_change" in run.stats_of(layers[i - 1])
                and run.neurons(layers[i - 1]) == run.neurons(layer)):
            owner = layers[i - 1]
        layer_best: tuple[float, str, np.ndarray] | None = None
        for stat in GROWTH_STATS:
            if stat not in run.stats_of(layer):
                continue
            growth = _growth(run.series(layer, stat, 0, fail + 1), fail, window)
            if growth is None:
                continue
            typical = float(np.median(growth))
            top = np.sort(growth)[::-1][:3]
            # how far the top neurons outgrew the layer's typical neuron (log10); a runaway in a
            # few neurons scores high, a whole layer growing with its input does not
            score = float(np.log10(max(float(np.mean(top)), 1.0) / max(typical, 1.0)))
            if layer_best is None or score > layer_best[0]:
                layer_best = (score, stat, growth)
        if layer_best is None:
            continue
        scores[owner] = max(scores.get(owner, -math.inf), layer_best[0])
        if best is None or layer_best[0] > best[0]:  # ties keep the earlier layer
            best = (layer_best[0], owner, layer_best[1], layer_best[2])
    start = _window_start(fail, window)
    if best is not None and best[0] > 0:
        score, layer, stat, growth = best
        order = np.argsort(-growth, kind="stable")
        neurons = [int(n) for n in order[:_TOP] if growth[n] > max(2.0, math.sqrt(growth[order[0]]))]
        neurons = neurons or [int(order[0])]
        reason = (f"{layer}: {stat} of neuron{'s' if len(neurons) > 1 else ''} "
                  f"{', '.join(map(str, neurons[:3]))} grew {growth[order[0]]:.3g}x over "
                  f"{'its' if len(neurons) == 1 else 'their'} usual high in the snapshots from step "
                  f"{int(run.steps[start])} to step {int(run.steps[fail - 1])}, before the failure at "
                  f"step {step} "
                  f"(10^{score:.1f} more than the layer's typical neuron)")
        return Failure(fail, step, layer, neurons, stat, reason, scores)
    return _first_nonfinite_layer(run, fail, step, scores)


def _first_nonfinite_layer(run: Run, fail: int, step: int, scores: dict[str, float]) -> Failure:
    """No usable history: the first layer in forward order holding a non-finite value at ``fail``."""
    for layer in run.layers:
        for stat in run.stats_of(layer):
            row = run.series(layer, stat, fail, fail + 1)[0]
            bad = ~np.isfinite(row)
            if stat == "nonfinite_share":
                bad |= np.nan_to_num(row, nan=1.0) > 0
            if bad.any():
                neurons = [int(n) for n in np.flatnonzero(bad)[:_TOP]]
                reason = (f"{layer}: first layer in forward order with a non-finite {stat} at step {step} "
                          "(too few snapshots before the failure to compare growth)")
                return Failure(fail, step, layer, neurons, stat, reason, scores)
    reason = f"the loss went non-finite at step {step} while every recorded statistic stayed finite"
    return Failure(fail, step, "", [], "loss", reason, scores)


def upstream(run: Run, failure: Failure, *, model: nn.Module | None = None, source_layer: str | None = None,
             method: str = "grad_x_act", top: int = 5) -> list[dict[str, Any]]:
    """The neurons of an earlier layer that drove ``failure.neurons[0]`` over the snapshots before it.

    :func:`modeldx.dynamics.contribution_series` on the run's probe with the kept weights of
    snapshots ``0 .. failure.snapshot - 1`` (the failing one's weights may be NaN).
    ``source_layer=None`` takes the nearest earlier recorded layer the credit module reaches.

    Returns
    -------
    list of dict
        ``{"layer", "neuron", "series" (snapshots,), "total"}`` for the ``top`` neurons by
        ``|total|`` (the sum of the series), largest first.
    """
    check_params("upstream", {"method": method, "top": top},
                 {"method": OneOf("lrp", "grad_x_act"), "top": Interval(int, 1, None)})
    if not failure.layer or not failure.neurons:
        raise InvalidParameterError(f"failure names no layer and neuron to explain: {failure.reason}")
    model = model if model is not None else run.build_model()
    if model is None:
        raise InvalidParameterError(
            f"run {run.path} names no architecture (record(..., arch=...)); pass model= to upstream")
    snapshots = list(range(failure.snapshot)) or [failure.snapshot]
    states = [run.state_dict(s) for s in snapshots]
    probe = run.probe()
    layers = run.layers
    if failure.layer not in layers:
        raise LayerNotFoundError(
            f"failure layer {failure.layer!r} is not in the run; it has {', '.join(layers)}")
    if source_layer is not None:
        candidates = [source_layer]
    else:
        candidates = list(reversed(layers[:layers.index(failure.layer)]))
    errors = []
    for source in candidates:
        try:
            series = contribution_series(states, model, probe, failure.layer, failure.neurons[0],
                                         source_layer=source, method=method)
        except (InvalidParameterError, LayerNotFoundError) as exc:
            if source_layer is not None:
                raise
            errors.append(f"{source}: {exc}")
            continue
        series = np.nan_to_num(series, nan=0.0, posinf=0.0, neginf=0.0)
        totals = series.sum(axis=0)
        order = np.argsort(-np.abs(totals), kind="stable")[:top]
        return [{"layer": source, "neuron": int(n), "series": series[:, n].astype(np.float64),
                 "total": float(totals[n])} for n in order]
    raise InvalidParameterError(
        f"no recorded layer before {failure.layer!r} reaches it for credit assignment"
        + (f" ({'; '.join(errors)})" if errors else ""))

