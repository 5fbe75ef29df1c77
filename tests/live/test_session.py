import base64
import json
import logging
import threading
import time

import numpy as np
import pytest

from modeldx.errors import InvalidParameterError, ModeldxError
from modeldx.live import LiveSession
from modeldx.live.session import StepContext
from tests.waiting import until


class Counter:
    """A stand-in training state: a value that grows by the 'rate' control each step."""

    def __init__(self):
        self.value = 0.0

    def get(self):
        return {"value": self.value}

    def set(self, state):
        self.value = state["value"]


def make(**start):
    s = LiveSession("test")
    s.slider("rate", 0.0, 10.0, 1.0)
    s.choice("mode", ["add", "sub"])
    s.button("reset")
    model = Counter()
    seen = []

    def step(ctx):
        if ctx.presses["reset"]:
            model.value = 0.0
        model.value += ctx.controls["rate"] * (1 if ctx.controls["mode"] == "add" else -1)
        seen.append((ctx.step, ctx.controls["rate"]))
        ctx.scalar("value", model.value)
        time.sleep(0.001)

    s.start(step, state=(model.get, model.set), **start)
    return s, model, seen


def test_a_control_change_takes_effect_between_steps_and_is_stamped_with_that_step():
    s, model, seen = make()
    try:
        assert s.wait(20)
        event = s.set("rate", 5.0)
        assert s.wait(event.step + 5 if event.step else 40)
        time.sleep(0.05)
        assert event.step is not None and event.applied >= event.received
        # every step before the stamped one ran with the old value, every step from it with the new
        assert all(rate == 1.0 for step, rate in seen if step < event.step)
        assert all(rate == 5.0 for step, rate in seen if step >= event.step)
        assert event.first_value is not None and event.first_value >= event.applied
        assert s.state()["events"][-1] == {"kind": "control", "name": "rate", "value": 5.0,
                                           "step": event.step}
    finally:
        s.stop()


def test_pause_step_resume():
    s, model, seen = make()
    try:
        s.wait(5)
        pause = s.pause()
        assert until(lambda: pause.step is not None)
        at = s.step
        time.sleep(0.1)
        assert s.step == at and s.paused
        s.step_once()
        assert until(lambda: s.step == at + 1)
        time.sleep(0.1)
        assert s.step == at + 1 and s.paused  # exactly one step
        s.resume()
        assert s.wait(at + 10)
    finally:
        s.stop()


def test_snapshot_and_restore_bring_back_state_and_controls():
    s, model, seen = make(paused=True)
    try:
        for _ in range(3):
            s.step_once()
        assert until(lambda: s.step == 3)
        s.snapshot("a")
        assert until(lambda: "a" in s.snapshots)
        saved = model.value
        s.set("rate", 7.0)
        s.resume()
        s.wait(s.step + 10)
        pause = s.pause()
        assert until(lambda: pause.step is not None)
        assert model.value > saved
        event = s.restore("a")
        assert until(lambda: event.step is not None)
        assert model.value == saved and s.controls["rate"].value == 1.0
        # the event carries the values now in force, so every browser can set its widgets from it
        assert event.value == {"from_step": 3, "controls": {"rate": 1.0, "mode": "add"}}
        assert s.state()["events"][-1]["value"]["controls"]["rate"] == 1.0
    finally:
        s.stop()


def test_buttons_count_presses_once():
    s, model, seen = make(paused=True)
    try:
        for _ in range(5):
            s.step_once()
        assert until(lambda: s.step == 5)
        assert model.value == 5.0
        s.set("reset")
        s.step_once()
        assert until(lambda: s.step == 6)
        assert model.value == 1.0
        s.step_once()
        assert until(lambda: s.step == 7)
        assert model.value == 2.0
    finally:
        s.stop()


@pytest.mark.parametrize("name,value,match", [
    ("rate", 11.0, r"\[0, 10\]. Got 11.0"), ("rate", float("nan"), "finite number"),
    ("rate", "fast", "finite number"), ("mode", "mul", r"one of \['add', 'sub'\]"),
    ("speed", 1.0, "no control named 'speed'")])
def test_bad_control_values_are_refused_and_change_nothing(name, value, match):
    s = LiveSession()
    s.slider("rate", 0, 10, 1)
    s.choice("mode", ["add", "sub"])
    with pytest.raises(InvalidParameterError, match=match):
        s.set(name, value)
    assert s.controls["rate"].value == 1.0 and s.events == []


def test_bad_control_definitions():
    s = LiveSession()
    with pytest.raises(InvalidParameterError, match="low > 0"):
        s.slider("lr", 0.0, 1.0, 0.1, log=True)
    with pytest.raises(InvalidParameterError, match="low < high"):
        s.slider("x", 1.0, 1.0, 1.0)
    s.slider("x", 0, 1, 0.5)
    with pytest.raises(InvalidParameterError, match="exists already"):
        s.slider("x", 0, 1, 0.5)
    with pytest.raises(InvalidParameterError, match="no snapshot named 'z'"):
        s.restore("z")
    with pytest.raises(ModeldxError, match="no state to snapshot"):
        s.snapshot()


def test_a_failing_step_pauses_the_session_and_says_why():
    s = LiveSession()
    s.slider("x", -1, 1, 0)

    def step(ctx):
        if ctx.controls["x"] < 0:
            raise ValueError("x must not be negative")
        ctx.scalar("x", ctx.controls["x"])

    s.start(step)
    try:
        s.wait(3)
        s.set("x", -0.5)
        deadline = time.monotonic() + 5
        while not s.paused and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.paused and "x must not be negative" in s.error and s.running
        s.set("x", 0.5)
        s.resume()
        at = s.step
        assert s.wait(at + 3) and s.error is None
    finally:
        s.stop()


def test_streams_reach_subscribers_and_the_state():
    s = LiveSession()
    sub = s.subscribe()

    def step(ctx):
        ctx.scalar("loss", 1.0 / (ctx.step + 1))
        ctx.histogram("sizes", [1, 2, 3], [0, 1, 2, 3])
        ctx.images("centres", np.random.default_rng(ctx.step).random((4, 5, 5)))
        ctx.matrix("m", np.eye(2))
        ctx.table("t", [{"a": np.int64(1)}])

    s.start(step, max_steps=10)
    s.wait(10)
    s.stop()
    updates, dropped = sub.drain()
    assert not dropped
    assert [u["step"] for u in updates if u.get("stream") == "loss"] == list(range(10))
    state = s.state()
    assert state["streams"]["loss"]["kind"] == "scalar" and len(state["streams"]["loss"]["step"]) == 10
    img = state["streams"]["centres"]["latest"][1]
    pixels = np.frombuffer(base64.b64decode(img["data"]), dtype=np.uint8)
    assert img["shape"] == [4, 5, 5] and pixels.size == 100 and pixels.max() == 255 and img["columns"] == 2
    assert state["streams"]["t"]["latest"][1] == {"rows": [{"a": 1}], "control": None, "key": None}
    # the writers check their input before logging anything
    ctx = StepContext(s)
    with pytest.raises(InvalidParameterError, match="len\\(edges\\)"):
        ctx.histogram("h", [1, 2], [0, 1])
    with pytest.raises(InvalidParameterError, match="shape \\(5,\\)"):
        ctx.images("i", np.zeros(5))
    with pytest.raises(InvalidParameterError, match="is a scalar stream"):
        ctx.histogram("loss", [1], [0, 1])
    assert "h" not in s.state()["streams"]


def test_scatter_and_images_carry_titles_hover_thumbnails_and_column_names():
    s = LiveSession()
    ctx = StepContext(s)
    ctx.scatter("old", [0, 1], [1, 0])  # the earlier payload is unchanged but for empty optional fields
    old = s.state()["streams"]["old"]["latest"][1]
    assert old["x_title"] is None and old["hover"] is None and old["thumbnails"] is None
    ctx.scatter("map", [0, 1, 2], [2, 1, 0], labels=[0, 1, 2], x_title="PCA 1", y_title="PCA 2",
                hover=["act3:0", "act3:1 dead", "act3:2"],
                thumbnails={2: np.ones((3, 3)), 0: np.zeros((3, 3))})
    v = s.state()["streams"]["map"]["latest"][1]
    assert (v["x_title"], v["y_title"]) == ("PCA 1", "PCA 2") and v["hover"][1] == "act3:1 dead"
    thumbs = v["thumbnails"]
    pixels = np.frombuffer(base64.b64decode(thumbs["data"]), dtype=np.uint8).reshape(thumbs["shape"])
    assert thumbs["index"] == [0, 2] and thumbs["shape"] == [2, 3, 3]
    assert pixels[0].max() == 0 and pixels[1].min() == 255  # in index order, values kept (not stretched)
    ctx.images("chains", np.zeros((6, 4, 4)), columns=3, column_names=["fc3:0", "fc3:1", "fc3:2"])
    assert s.state()["streams"]["chains"]["latest"][1]["column_names"] == ["fc3:0", "fc3:1", "fc3:2"]
    with pytest.raises(InvalidParameterError, match="3 columns; got 2 column names"):
        ctx.images("chains", np.zeros((6, 4, 4)), columns=3, column_names=["a", "b"])
    with pytest.raises(InvalidParameterError, match="3 points; got 2 hover"):
        ctx.scatter("map", [0, 1, 2], [0, 1, 2], hover=["a", "b"])
    with pytest.raises(InvalidParameterError, match="thumbnails for points 0..5"):
        ctx.scatter("map", [0, 1, 2], [0, 1, 2], thumbnails={5: np.zeros((2, 2)), 0: np.zeros((2, 2))})


def test_a_slow_subscriber_is_told_to_resync_instead_of_growing_without_bound():
    s = LiveSession()
    sub = s.subscribe(limit=5)

    def step(ctx):
        ctx.scalar("x", 1.0)

    s.start(step, max_steps=50)
    s.wait(50)
    s.stop()
    updates, dropped = sub.drain()
    assert dropped and len(updates) <= 5


def test_controls_can_be_changed_from_many_threads():
    s, model, seen = make()
    try:
        threads = [threading.Thread(target=lambda v=v: s.set("rate", v)) for v in (2.0, 3.0, 4.0, 5.0)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s.wait(s.step + 5)
        time.sleep(0.05)
        # changes that arrive before one step are one event; none is lost, the last one is in force
        assert 1 <= len([e for e in s.events if e.kind == "control"]) <= 4
        assert s.controls["rate"].value == [e for e in s.events if e.kind == "control"][-1].value
    finally:
        s.stop()


def blocked_session(**options):
    """A session whose step waits for ``gate``: commands sent meanwhile arrive before the next step."""
    s = LiveSession("blocked", **options)
    s.slider("rate", 0.0, 10.0, 1.0)
    s.button("go")
    gate, entered = threading.Event(), threading.Event()

    def step(ctx):
        entered.set()
        gate.wait(5)
        gate.clear()

    return s, step, gate, entered


def test_a_burst_of_changes_to_one_control_is_one_event_with_the_last_value():
    s, step, gate, entered = blocked_session()
    s.start(step)
    try:
        assert entered.wait(5)
        for i in range(50):  # a dragged slider, while one step runs
            s.set("rate", i / 10)
        s.set("go")
        s.set("go")  # button presses all count
        gate.set()
        assert until(lambda: sum(e.kind == "control" for e in s.events) == 3)
        controls = [e for e in s.events if e.kind == "control"]
        assert [(e.name, e.value) for e in controls] == [("rate", 4.9), ("go", 1), ("go", 2)]
        assert s.controls["rate"].value == 4.9
    finally:
        gate.set()
        s.stop()


def test_a_change_queued_before_a_snapshot_is_not_merged_with_one_after_it():
    s, step, gate, entered = blocked_session()
    s.start(step, state=(dict, lambda _: None))
    try:
        assert entered.wait(5)
        s.set("rate", 2.0)
        s.snapshot("a")
        s.set("rate", 3.0)
        gate.set()
        assert until(lambda: sum(e.kind == "control" for e in s.events) == 2)
        assert s.snapshots["a"]["controls"]["rate"] == 2.0 and s.controls["rate"].value == 3.0
    finally:
        gate.set()
        s.stop()


def test_the_event_history_is_bounded_and_counts_what_it_dropped():
    s = LiveSession("bounded", max_events=5)
    s.button("press")
    for _ in range(8):  # not running: each press is applied at once, one event each
        s.set("press")
    state = s.state()
    assert len(state["events"]) == 5 and state["events_dropped"] == 3
    assert [e["value"] for e in state["events"]] == [4, 5, 6, 7, 8]  # the newest are kept


def test_snapshots_are_capped_and_the_oldest_is_dropped():
    s = LiveSession("capped", max_snapshots=3)
    s.slider("rate", 0.0, 10.0, 1.0)
    s.state_fns = (lambda: {"big": np.zeros(1000)}, lambda state: None)
    events = [s.snapshot(f"s{i}") for i in range(5)]
    assert s.state()["snapshots"] == ["s2", "s3", "s4"]
    assert [e.value for e in events] == [None, None, None, {"dropped": "s0"}, {"dropped": "s1"}]
    s.snapshot("s2")  # taken again: it becomes the newest, nothing dropped
    assert list(s.snapshots) == ["s3", "s4", "s2"]
    with pytest.raises(InvalidParameterError, match="max_snapshots"):
        LiveSession(max_snapshots=0)


@pytest.mark.parametrize("failing", ["get", "set"])
def test_a_snapshot_or_restore_that_raises_pauses_with_an_error_event_and_the_worker_lives(failing, caplog):
    s = LiveSession("fragile")
    s.slider("rate", 0.0, 10.0, 1.0)
    box = {"fail": False}

    def get():
        if failing == "get" and box["fail"]:
            raise OSError("disk full")
        return {"v": 1}

    def put(state):
        if failing == "set":
            raise KeyError("weights")

    s.start(lambda ctx: ctx.scalar("x", 1.0), state=(get, put))
    try:
        assert s.wait(3)
        s.snapshot("a")
        assert until(lambda: "a" in s.snapshots)
        box["fail"] = True
        with caplog.at_level(logging.ERROR, logger="modeldx.live"):
            s.snapshot("b") if failing == "get" else s.restore("a")
            assert until(lambda: s.error is not None)
        assert s.paused and s.running  # paused, not a dead worker thread
        assert ("disk full" if failing == "get" else "weights") in s.error
        assert s.state()["events"][-1]["kind"] == "error" and "b" not in s.snapshots
        assert any("fragile" in r.getMessage() for r in caplog.records)
        at = s.step
        s.resume()  # and it goes on
        assert s.wait(at + 3) and s.error is None
    finally:
        s.stop()


def test_stream_values_are_made_json_safe_where_they_are_logged():
    s = LiveSession("values")
    ctx = StepContext(s)
    ctx.matrix("m", np.eye(2), rows=np.array([3, 4]), columns=[np.int64(1), np.float32(2.5)])
    ctx.table("t", [{"id": np.int64(7), "score": np.float32(0.5), "missing": float("nan")}])
    ctx.scalar("loss", float("nan"))
    ctx.histogram("h", [1, 2], [0, 1, np.inf])
    text = json.dumps(s.state(), allow_nan=False)  # strict JSON, as a browser parses it
    streams = json.loads(text)["streams"]
    assert streams["m"]["latest"][1]["rows"] == [3, 4] and streams["m"]["latest"][1]["columns"] == [1, 2.5]
    assert streams["t"]["latest"][1]["rows"] == [{"id": 7, "score": 0.5, "missing": None}]
    assert streams["loss"]["value"] == [None] and streams["h"]["latest"][1]["edges"][-1] is None


def test_a_value_json_cannot_encode_is_refused_at_the_call_that_logged_it():
    s = LiveSession("values")
    sub = s.subscribe()
    ctx = StepContext(s)
    with pytest.raises(InvalidParameterError, match=r"table stream 't' holds a value of type object"):
        ctx.table("t", [{"what": object()}])
    with pytest.raises(InvalidParameterError, match=r"matrix stream 'm' .*key of type tuple"):
        ctx.matrix("m", np.eye(2), rows=[{(1, 2): 3}])
    assert sub.drain() == ([], False) and "t" not in s.state()["streams"]
