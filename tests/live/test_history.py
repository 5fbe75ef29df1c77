import numpy as np
import pytest

from modeldx.live import ScalarHistory, ValueHistory


def test_scalar_history_downsamples_and_keeps_the_whole_run():
    hist = ScalarHistory(capacity=16)
    for step in range(1000):
        hist.add(step, float(step))
    snap = hist.snapshot()
    assert len(snap["step"]) < 16 and snap["stride"] == 64
    # the first point still covers the run's start and the last its end: downsampled, not truncated
    assert snap["low"][0] == 0.0 and snap["step"][-1] >= 1000 - snap["stride"]
    # each point is the mean of the steps it covers
    assert snap["value"][0] == pytest.approx(np.mean(np.arange(snap["step"][0] + 1)))
    assert all(lo <= v <= hi for lo, v, hi in zip(snap["low"], snap["value"], snap["high"], strict=True))


def test_scalar_history_memory_is_bounded():
    hist = ScalarHistory(capacity=64)
    for step in range(200_000):
        hist.add(step, 1.0)
    assert len(hist.points) < 64


def test_value_history_keeps_the_latest_and_a_thinned_past():
    hist = ValueHistory(capacity=8)
    for step in range(100):
        hist.add(step, {"x": step})
    snap = hist.snapshot()
    assert snap["latest"] == (99, {"x": 99}) and len(snap["history"]) < 8
    steps = [s for s, _ in snap["history"]]
    assert steps == sorted(steps) and steps[0] < 20


@pytest.mark.parametrize("capacity", [3, 5])
def test_bad_capacity(capacity):
    with pytest.raises(ValueError, match="even number"):
        ScalarHistory(capacity)
