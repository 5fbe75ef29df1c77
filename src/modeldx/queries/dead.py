"""Dead and saturated neurons per layer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.queries._common import answer, resolve_layers, subset_for
from modeldx.queries.registry import Evaluation, register

# Where a bounded activation saturates: |a| >= level, or (sigmoid) a <= low or a >= high.
_SATURATION = {
    "Tanh": ("abs", 0.99), "Hardtanh": ("abs", 0.99), "Softsign": ("abs", 0.99),
    "Sigmoid": ("ends", (0.01, 0.99)), "Hardsigmoid": ("ends", (0.01, 0.99)),
    "ReLU6": ("high", 6 * 0.99),
}


def _saturated(block: np.ndarray, rule) -> np.ndarray | None:
    if rule is None:
        return None
    kind, level = rule
    if kind == "abs":
        return np.abs(block) >= level
    if kind == "high":
        return block >= level
    return (block <= level[0]) | (block >= level[1])


class ActivityStats:
    def __init__(self, layers: list[str], tol: float, rules: dict) -> None:
        self.layers, self.tol, self.rules = layers, tol, rules
        self.arrays = [f"acts/{layer}" for layer in layers]

    def map(self, chunk: Chunk):
        w = chunk.weights
        out = {"w": w.sum()}
        for layer, name in zip(self.layers, self.arrays, strict=True):
            block = chunk.arrays[name]
            sat = _saturated(block, self.rules[layer])
            out[layer] = {
                "active": w @ (block > self.tol),
                "saturated": None if sat is None else w @ sat,
                "max": block.max(axis=0) if block.size else np.full(block.shape[1], -np.inf),
                "sum": w @ block.astype(np.float64),
            }
        return out

    def combine(self, a, b):
        out = {"w": a["w"] + b["w"]}
        for layer in self.layers:
            x, y = a[layer], b[layer]
            out[layer] = {
                "active": x["active"] + y["active"],
                "saturated": None if x["saturated"] is None else x["saturated"] + y["saturated"],
                "max": np.maximum(x["max"], y["max"]),
                "sum": x["sum"] + y["sum"],
            }
        return out

    def finalize(self, state):
        return state


@register("dead-neurons", evaluate=(Evaluation("dead-neurons", "dead"),))
def dead_neurons(store, *, layers=None, tol: float = 0.0, dead_fraction: float = 0.0,
                 saturation_level: float | None = None, saturated_fraction: float = 0.9,
                 items=None, weights=None, progress: bool = False, engine=None) -> pd.DataFrame:
    """Neurons that never fire (dead) or sit in their flat region (saturated), per layer.

    A neuron is *dead* when the (weighted) share of items on which its activation
    exceeds ``tol`` is at most ``dead_fraction`` — with the defaults, it is never
    positive. It is *saturated* when at least ``saturated_fraction`` of items put
    it in its saturation region: ``|a| >= 0.99`` for tanh-like modules, within
    0.01 of 0 or 1 for sigmoids, above 99% of the cap for ReLU6, or
    ``|a| >= saturation_level`` when that is given. Unbounded units (ReLU) have
    no saturation region unless ``saturation_level`` is given.

    Returns
    -------
    DataFrame
        ``layer, neuron, module_type, frac_active, frac_saturated, max, mean, dead, saturated``.

    Examples
    --------
    >>> d = dead_neurons(store)  # doctest: +SKIP
    >>> d.groupby("layer").dead.sum()
    """
    check_params("dead_neurons", {"dead_fraction": dead_fraction, "saturated_fraction": saturated_fraction},
                 {"dead_fraction": Interval(float, 0, 1), "saturated_fraction": Interval(float, 0, 1)})
    names = resolve_layers(store, layers)
    rules = {}
    for layer in names:
        mtype = store.manifest.layer(layer).module_type
        rules[layer] = (("abs", float(saturation_level)) if saturation_level is not None
                        else _SATURATION.get(mtype))
    subset = subset_for(store, items, weights)
    state = run_reduction(store, ActivityStats(names, tol, rules), subset, engine=engine,
                          progress=progress)
    frames = []
    total = state["w"]
    for layer in names:
        s = state[layer]
        n = s["max"].size
        frac_active = s["active"] / total
        frac_sat = np.full(n, np.nan) if s["saturated"] is None else s["saturated"] / total
        frames.append(pd.DataFrame({
            "layer": layer, "neuron": np.arange(n),
            "module_type": store.manifest.layer(layer).module_type,
            "frac_active": frac_active, "frac_saturated": frac_sat, "max": s["max"],
            "mean": s["sum"] / total, "dead": frac_active <= dead_fraction,
            "saturated": np.nan_to_num(frac_sat, nan=0.0) >= saturated_fraction if s["saturated"]
            is not None else np.zeros(n, dtype=bool),
        }))
    return answer(pd.concat(frames), "dead-neurons", store, subset, layers=names, tol=tol,
                  dead_fraction=dead_fraction, saturation_level=saturation_level,
                  saturated_fraction=saturated_fraction)
