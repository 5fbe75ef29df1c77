"""The dashboard stays in step with the server: restores, snapshots, late streams, errors (issue 10, item 14).

Some of these need the server side of the protocol contract (issue 10, items 14 and 16): restore
events that carry the control values, the snapshot cap, error replies to binary frames, and errors
of the push task reaching the session.
"""

import logging
import socket
import time

import numpy as np
import pytest

from modeldx.live import LiveSession
from modeldx.live.server import BackgroundServer
from tests.browser import not_blank, save
from tests.waiting import until


def steered(name: str = "sync") -> LiveSession:
    """A session with a slider and a choice, whose state (a counter) can be snapshot and restored."""
    session = LiveSession(name)
    session.slider("level", 0.0, 10.0, 1.0)
    session.choice("mode", ["a", "b", "c"], "a")
    state = {"n": 0}

    def step(ctx):
        state["n"] += 1
        ctx.scalar("level", ctx.controls["level"])
        time.sleep(0.005)

    session.step_fn = step
    session.state_fns = (lambda: dict(state), state.update)
    return session


def shown(page, name):
    """What the control widget shows: a slider's value text, a choice's selected option."""
    return page.evaluate(f"""(() => {{
      const el = document.querySelector("[data-widget='control:{name}']");
      const select = el.querySelector('select');
      return select ? JSON.parse(select.value) : el.querySelector('.value').textContent;
    }})()""")


def test_a_restore_sets_the_sliders_and_choices_to_the_restored_values(serve, page):
    session = steered()
    url = serve(session)
    session.set("level", 2.0)
    session.set("mode", "b")
    session.snapshot("before")
    assert until(lambda: "before" in session.snapshots)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:mode')")
    session.set("level", 8.0)
    session.set("mode", "c")
    page.wait_for_function("window.modeldx.model.controls.mode.value === 'c'")
    assert shown(page, "level") == "8" and shown(page, "mode") == "c"
    page.select_option("#snapshots", "before")
    page.locator("#restore").click()
    page.wait_for_function("window.modeldx.model.events.some(e => e.kind === 'restore')")
    assert session.controls["level"].value == 2.0 and session.controls["mode"].value == "b"
    page.wait_for_function("document.querySelector(\"[data-widget='control:mode'] select\")"
                           ".value === '\"b\"'")
    assert shown(page, "level") == "2" and shown(page, "mode") == "b"
    slider = page.locator("[data-widget='control:level'] input[type=range]")
    assert slider.evaluate("(el) => +el.value") == 200
    png = page.screenshot(full_page=True)
    save(png, "dashboard-restored.png")
    not_blank(png)


def test_a_control_changed_elsewhere_moves_the_widget(serve, page):
    """Every control event carries the value in force: a second browser (here Python) stays in sync."""
    session = steered()
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:mode')")
    session.set("level", 4.5)
    session.set("mode", "c")
    page.wait_for_function("window.modeldx.model.controls.mode.value === 'c'")
    page.wait_for_function("document.querySelector(\"[data-widget='control:level'] .value\")"
                           ".textContent === '4.5'")
    assert shown(page, "mode") == "c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_after_a_reconnect_the_snapshot_list_is_the_servers(page):
    """A server restarted on the same port with a new session: the old snapshots leave the list."""
    port = free_port()
    old = steered("restarted")
    old.start()
    old.snapshot("old one")
    assert until(lambda: "old one" in old.snapshots)
    server = BackgroundServer(old, port=port)
    try:
        page.goto(server.url)
        page.wait_for_function("window.modeldx && window.modeldx.model.snapshots.includes('old one')")
        assert page.locator("#snapshots option").all_inner_texts() == ["old one"]
    finally:
        server.stop()
        old.stop()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('reconnecting')")
    new = steered("restarted")
    new.start()
    server = BackgroundServer(new, port=port)
    try:
        page.wait_for_function("document.querySelector('#status').textContent === 'running'", timeout=20_000)
        page.wait_for_function("window.modeldx.model.snapshots.length === 0")
        assert page.locator("#snapshots option").all_inner_texts() == ["no snapshots"]
        new.snapshot("new one")
        page.wait_for_function("window.modeldx.model.snapshots.includes('new one')")
        assert page.locator("#snapshots option").all_inner_texts() == ["new one"]
        png = page.screenshot()
        save(png, "dashboard-reconnected.png")
        not_blank(png)
    finally:
        server.stop()
        new.stop()


def test_the_snapshot_list_drops_what_the_server_dropped(serve, page):
    """The server keeps at most 20 snapshots; the page's list follows the events that say which went."""
    session = steered()
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 2")
    for i in range(23):
        session.snapshot(f"s{i:02d}")
    assert until(lambda: "s22" in session.snapshots)
    page.wait_for_function("window.modeldx.model.snapshots.includes('s22')")
    options = page.locator("#snapshots option").all_inner_texts()
    assert options == sorted(session.snapshots) == [f"s{i:02d}" for i in range(3, 23)]


def test_a_stream_that_appears_later_gets_a_widget_unless_the_user_removed_it(serve, page):
    session = LiveSession("late")
    session.slider("level", 0.0, 10.0, 1.0)

    def step(ctx):
        ctx.scalar("loss", 1.0 / (1 + ctx.step))
        if ctx.step >= 40:  # like LDAM's neuron map or a discriminator's loss
            ctx.scalar("late loss", 0.5)
            ctx.images("late map", np.random.default_rng(ctx.step).random((4, 6, 6)))
        time.sleep(0.005)

    session.step_fn = step
    url = serve(session, start=False)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:level')")
    assert not page.evaluate("window.modeldx.widgets.has('stream:late loss')")
    session.start()
    page.wait_for_function("window.modeldx.widgets.has('stream:late loss') && "
                           "window.modeldx.widgets.has('stream:late map')")
    page.wait_for_function("window.modeldx.model.streams['late loss'].steps.length > 3")
    assert page.locator("[data-widget='stream:late map'] canvas").count() == 1
    png = page.screenshot(full_page=True)
    save(png, "dashboard-late-streams.png")
    not_blank(png)
    # removed by the user, it stays off the dashboard after a reload, and is in the add-widget menu
    page.locator("[data-widget='stream:late loss'] .close").click()
    page.reload()
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('stream:late map')")
    page.wait_for_function("window.modeldx.model.streams['late loss'].steps.length > 0")
    assert not page.evaluate("window.modeldx.widgets.has('stream:late loss')")
    page.locator("#add").click()
    assert page.locator("[data-add='stream:late loss']").count() == 1


def test_an_error_reply_is_shown(serve, page):
    session = steered()
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 2")
    page.evaluate("window.modeldx.send({type: 'control', name: 'level', value: 99})")
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "level" in message.inner_text() and "99" in message.inner_text()
    png = page.screenshot()
    save(png, "dashboard-error-reply.png")
    not_blank(png)


def test_a_binary_frame_gets_an_error_reply_that_is_shown_and_the_connection_stays(serve, page):
    session = steered()
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 2")
    page.evaluate("window.modeldx.socket().send(new Uint8Array([1, 2, 3]))")
    message = page.locator("#message")
    message.wait_for(state="visible")
    assert "binary frames are not accepted" in message.inner_text()
    socket_before = page.evaluate_handle("window.modeldx.socket()")
    page.evaluate("window.modeldx.send({type: 'control', name: 'level', value: 3})")
    page.wait_for_function("window.modeldx.model.controls.level.value === 3")
    assert page.evaluate("(s) => s === window.modeldx.socket() && s.readyState === WebSocket.OPEN",
                         socket_before)


def test_a_session_error_is_shown_in_a_banner_until_the_session_runs_again(serve, page):
    session = LiveSession("failing")
    session.slider("level", 0.0, 10.0, 1.0)

    def step(ctx):
        if ctx.controls["level"] > 5:
            raise ValueError(f"level {ctx.controls['level']} is too high for this model")
        ctx.scalar("level", ctx.controls["level"])
        time.sleep(0.005)

    session.step_fn = step
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 2")
    banner = page.locator("#error-banner")
    assert banner.is_hidden()
    session.set("level", 7.0)
    banner.wait_for(state="visible")
    assert "ValueError" in banner.inner_text() and "too high" in banner.inner_text()
    png = page.screenshot()
    save(png, "dashboard-session-error.png")
    not_blank(png)
    # an error reply that comes afterwards does not hide it
    page.evaluate("window.modeldx.send({type: 'control', name: 'level', value: 99})")
    page.locator("#message").wait_for(state="visible")
    assert banner.is_visible()
    session.set("level", 1.0)
    session.resume()
    banner.wait_for(state="hidden")
    assert session.error is None


def test_values_json_cannot_encode_do_not_freeze_the_page_and_their_error_is_shown(serve, page):
    """Issue 10, item 16: a matrix whose row names are NumPy values reaches the page; a value that
    cannot be sent at all stops the session with an error the page shows, and pushes go on."""
    session = LiveSession("unencodable")
    session.slider("level", 0.0, 10.0, 1.0)
    failed = []

    def step(ctx):
        ctx.scalar("level", ctx.controls["level"])
        if ctx.step == 20:
            ctx.matrix("m", np.eye(2), rows=[np.int64(0), np.int64(1)])
        if ctx.step == 40 and not failed:
            failed.append(ctx.step)
            ctx.table("t", [{"a": object()}])
        time.sleep(0.005)

    session.step_fn = step
    url = serve(session, start=False)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:level')")
    session.start()
    page.wait_for_function("window.modeldx.widgets.has('stream:m') && window.modeldx.model.step > 25")
    assert page.evaluate("window.modeldx.model.streams.m.value.values") == [[1, 0], [0, 1]]
    banner = page.locator("#error-banner")
    banner.wait_for(state="visible", timeout=10_000)
    assert session.error is not None and banner.inner_text().strip()
    png = page.screenshot()
    save(png, "dashboard-unencodable.png")
    not_blank(png)
    # the page still gets updates: resume, and the steps go on
    session.resume()
    banner.wait_for(state="hidden")
    page.wait_for_function("window.modeldx.model.step > 60")


@pytest.mark.parametrize("origin_ok", [True, False])
def test_only_the_dashboards_own_origin_may_open_the_websocket(serve, page, origin_ok):
    """Issue 10, item 12: a page of another origin (another port here) cannot steer the session."""
    session = steered()
    url = serve(session)
    other = serve(steered("other"))
    page.goto(url if origin_ok else other)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 0")
    target = url.replace("http://", "ws://") + "ws"
    outcome = page.evaluate("""(target) => new Promise((done) => {
      const ws = new WebSocket(target);
      ws.onmessage = (e) => { done(JSON.parse(e.data).type); ws.close(); };
      ws.onclose = () => done('closed');
    })""", target)
    assert outcome == ("state" if origin_ok else "closed")


def test_another_pages_loads_and_fetches_from_here_are_refused(serve, page, caplog):
    """A page on another port of this machine (same site, other origin) can neither read nor poke the API."""
    url = serve(steered())
    other = serve(steered("other"))
    page.goto(other)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 0")
    with caplog.at_level(logging.WARNING, logger="modeldx.live"):
        sent = page.evaluate("(u) => fetch(u + 'api/state', {mode: 'no-cors'}).then(() => 'sent')", url)
        assert sent == "sent"
        assert page.evaluate("""(u) => new Promise((done) => {
          const img = new Image();
          img.onload = () => done('load'); img.onerror = () => done('error');
          img.src = u + 'api/state';
        })""", url) == "error"
    refused = [r.getMessage() for r in caplog.records if "refused a http request" in r.getMessage()]
    assert len(refused) == 2 and all("(same-site)" in m for m in refused), refused
    # the page's own requests still pass
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.model.step > 0")


def test_a_slider_moved_while_reconnecting_reaches_the_session_once_back(serve, page):
    session = steered()
    url = serve(session)
    page.goto(url)
    page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:level')")
    page.evaluate("window.modeldx.socket().close()")
    page.wait_for_function("window.modeldx.socket().readyState !== WebSocket.OPEN")
    slider = page.locator("[data-widget='control:level'] input[type=range]")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("window.modeldx.socket().readyState === WebSocket.OPEN")
    assert until(lambda: session.controls["level"].value == pytest.approx(1.05), timeout=10), \
        session.controls["level"].value  # the value set offline reached the session
    page.wait_for_function("Math.abs(window.modeldx.model.controls.level.value - 1.05) < 1e-9")


def test_a_slider_moved_while_reconnecting_is_not_sent_to_a_restarted_session_of_the_same_name(page):
    # the same script started again serves a new session under the same name on the same port:
    # the value meant for the old run must not steer the new one
    old = steered()
    old.start()
    server = BackgroundServer(old)
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    new = steered()
    try:
        page.goto(server.url)
        page.wait_for_function("window.modeldx && window.modeldx.widgets.has('control:level')")
        server.stop()
        old.stop()
        page.wait_for_function("window.modeldx.socket().readyState !== WebSocket.OPEN")
        slider = page.locator("[data-widget='control:level'] input[type=range]")
        slider.focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        new.start()
        server = BackgroundServer(new, port=port)
        page.wait_for_function("window.modeldx.socket().readyState === WebSocket.OPEN")
        page.wait_for_function("window.modeldx.model.step > 0")
        # a round trip after the state: anything the page sent on reconnect has reached the session
        page.evaluate("window.modeldx.socket().send(JSON.stringify({type: 'command', command: 'pause'}))")
        assert until(lambda: new.paused, timeout=10)
        assert new.controls["level"].value == 1.0
    finally:
        server.stop()
        new.stop()
        old.stop()
