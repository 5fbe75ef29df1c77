import json
import logging
import socket
import time

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from modeldx.errors import InvalidParameterError, PortInUseError
from modeldx.live import LiveSession
from modeldx.live.server import BINARY_REFUSED, BackgroundServer, coalesce, create_app, is_loopback, serve
from tests.waiting import until


def counting_session():
    s = LiveSession("count")
    s.slider("rate", 0.0, 10.0, 1.0)
    s.choice("mode", ["a", "b"])
    box = {"value": 0.0}

    def step(ctx):
        box["value"] += ctx.controls["rate"]
        ctx.scalar("value", box["value"])
        ctx.histogram("h", [ctx.step % 3, 1], [0, 1, 2])
        time.sleep(0.002)

    s.step_fn = step
    s.state_fns = (lambda: dict(box), lambda st: box.update(st))
    return s


@pytest.fixture
def running():
    s = counting_session()
    s.start()
    yield s
    s.stop()


def receive_until(ws, predicate, limit=200):
    for _ in range(limit):
        msg = json.loads(ws.receive_text())
        if predicate(msg):
            return msg
    raise AssertionError("no matching message")


def test_connect_gets_the_state_then_streamed_updates(running):
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        first = json.loads(ws.receive_text())
        assert first["type"] == "state" and first["name"] == "count"
        assert [c["name"] for c in first["controls"]] == ["rate", "mode"]
        update = receive_until(ws, lambda m: m["type"] == "updates")
        kinds = {u["type"] for u in update["updates"]}
        assert "point" in kinds
        # of a non-scalar stream only the latest value of each push is sent
        assert sum(1 for u in update["updates"] if u.get("stream") == "h") <= 1


def test_a_control_message_changes_the_session_and_comes_back_as_an_event(running):
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_text()
        ws.send_text(json.dumps({"type": "control", "name": "rate", "value": 4.0}))
        event = receive_until(ws, lambda m: m["type"] == "updates" and any(
            u["type"] == "event" for u in m["updates"]))
        e = next(u for u in event["updates"] if u["type"] == "event")
        assert e["name"] == "rate" and e["value"] == 4.0 and e["step"] is not None
        assert running.controls["rate"].value == 4.0


@pytest.mark.parametrize("raw,expected", [
    ("not json", "invalid message"),
    (json.dumps({"type": "launch"}), "invalid message"),
    (json.dumps({"type": "control", "name": "rate", "value": 99}), r"[0, 10]. Got 99"),
    (json.dumps({"type": "control", "name": "nope", "value": 1}), "no control named 'nope'"),
    (json.dumps({"type": "control", "name": "rate", "value": [1, 2]}), "invalid message"),
    (json.dumps({"type": "command", "command": "restore", "name": "missing"}), "no snapshot named"),
    (json.dumps({"type": "control", "name": "x" * 20_000}), "over the limit"),
])
def test_bad_messages_get_an_error_and_the_session_goes_on(running, raw, expected):
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_text()
        ws.send_text(raw)
        err = receive_until(ws, lambda m: m["type"] == "error")
        assert expected in err["message"]
        ws.send_text(json.dumps({"type": "ping"}))
        assert receive_until(ws, lambda m: m["type"] == "pong")["step"] >= 0
        at = running.step
        assert running.wait(at + 5) and running.controls["rate"].value == 1.0


def test_commands_pause_step_snapshot_restore(running):
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_text()
        for command in ("pause", "snapshot"):
            ws.send_text(json.dumps({"type": "command", "command": command, "name": "s1"}))
        assert until(lambda: running.paused and "s1" in running.snapshots)
        at = running.step
        ws.send_text(json.dumps({"type": "command", "command": "step"}))
        assert until(lambda: running.step == at + 1)
        time.sleep(0.1)
        assert running.step == at + 1  # one step, then paused again
        ws.send_text(json.dumps({"type": "command", "command": "restore", "name": "s1"}))
        ws.send_text(json.dumps({"type": "command", "command": "resume"}))
        assert until(lambda: not running.paused)
        kinds = [e.kind for e in running.events]
        assert kinds[kinds.index("pause"):] == ["pause", "snapshot", "step", "restore", "resume"]


def test_several_clients_and_a_reconnect_get_the_history(running):
    app = create_app(running, push_hz=50)
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
            a.receive_text()
            b.receive_text()
            receive_until(a, lambda m: m["type"] == "updates")
            receive_until(b, lambda m: m["type"] == "updates")
            assert app.state.clients == 2
        running.wait(running.step + 20)
        with client.websocket_connect("/ws") as again:
            state = json.loads(again.receive_text())
            assert state["type"] == "state"
            # the whole history so far, not only what happens after reconnecting
            assert state["streams"]["value"]["step"][0] == 0 and len(state["streams"]["value"]["step"]) > 20


TOKEN = "correct-horse-battery"


def test_a_token_guards_the_socket_and_the_api():
    s = counting_session()
    with TestClient(create_app(s, token=TOKEN)) as client:
        assert client.get("/api/state").status_code == 403
        assert client.get(f"/api/state?token={TOKEN}").json()["name"] == "count"
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect("/ws?token=wrong") as ws:
            ws.receive_text()
        assert info.value.code == 4403
        with client.websocket_connect(f"/ws?token={TOKEN}") as ws:
            assert json.loads(ws.receive_text())["type"] == "state"


def test_binding_beyond_loopback_needs_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0")
    with pytest.raises(InvalidParameterError, match="pass a token"):
        serve(counting_session(), host="0.0.0.0", start=False)


def test_dashboard_page_and_static_files_are_served():
    with TestClient(create_app(counting_session())) as client:
        page = client.get("/")
        assert page.status_code == 200 and "modeldx" in page.text


def test_coalesce_keeps_points_and_events_and_the_latest_value():
    updates = [{"type": "point", "stream": "a", "step": 1}, {"type": "value", "stream": "h", "step": 1},
               {"type": "event", "name": "x"}, {"type": "value", "stream": "h", "step": 2},
               {"type": "point", "stream": "a", "step": 2}]
    assert [u.get("step") for u in coalesce(updates)] == [1, None, 2, 2]


def test_a_short_token_is_refused_at_start():
    for start in (lambda: create_app(counting_session(), token="short"),
                  lambda: serve(counting_session(), host="0.0.0.0", token="fifteen-chars!!", start=False)):
        with pytest.raises(InvalidParameterError, match="at least 16 characters"):
            start()


def test_no_api_docs_or_schema_are_served():
    with TestClient(create_app(counting_session())) as client:
        for path in ("/openapi.json", "/docs", "/redoc"):
            assert client.get(path).status_code == 404


@pytest.mark.parametrize("headers", [{"origin": "http://evil.example"}, {"origin": "null"},
                                     {"origin": "http://testserver.evil.example"},
                                     {"host": "evil.example"}, {"host": "evil.example:80"}])
def test_a_socket_from_another_site_or_host_is_refused(headers):
    with TestClient(create_app(counting_session())) as client:
        with pytest.raises(WebSocketDisconnect) as info:
            client.websocket_connect("/ws", headers=headers).__enter__()
        assert info.value.code == 1008
        # the same origin is accepted
        with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
            assert json.loads(ws.receive_text())["type"] == "state"


def test_a_page_reached_by_another_host_name_gets_403():
    with TestClient(create_app(counting_session())) as client:
        assert client.get("/", headers={"host": "evil.example"}).status_code == 403
        assert client.get("/api/state", headers={"host": "evil.example"}).status_code == 403
        assert client.get("/").status_code == 200


def test_a_proxy_name_is_accepted_only_when_allowed():
    with TestClient(create_app(counting_session(), allowed_hosts=["proxy.example"])) as client:
        assert client.get("/", headers={"host": "proxy.example"}).status_code == 200
        assert client.get("/", headers={"host": "proxy.example.evil"}).status_code == 403
    with TestClient(create_app(counting_session())) as client:
        assert client.get("/", headers={"host": "proxy.example"}).status_code == 403


def test_a_real_server_accepts_its_own_origin_and_names_and_refuses_others():
    session = counting_session()
    server = BackgroundServer(session)
    try:
        url = f"ws://127.0.0.1:{server.port}/ws"
        for origin in (f"http://127.0.0.1:{server.port}", None):
            with connect(url, origin=origin) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "state"
        with connect(f"ws://localhost:{server.port}/ws", origin=f"http://localhost:{server.port}") as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "state"
        for origin in ("http://evil.example", f"http://127.0.0.1:{server.port + 1}"):
            with pytest.raises(InvalidStatus) as info:
                connect(url, origin=origin)  # the handshake itself is refused: no connection to close
            assert info.value.response.status_code == 403  # closed before accept: the handshake is refused
        with pytest.raises(InvalidStatus):
            connect(url, additional_headers={"Host": "evil.example"})
    finally:
        server.stop()


def test_a_binary_frame_gets_an_error_and_the_connection_goes_on(running):
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_text()
        ws.send_bytes(b"\x00\x01")
        assert receive_until(ws, lambda m: m["type"] == "error")["message"] == BINARY_REFUSED
        ws.send_text(json.dumps({"type": "ping"}))
        assert receive_until(ws, lambda m: m["type"] == "pong")["step"] >= 0


def test_a_failing_push_reaches_the_session_the_log_and_the_page(running, caplog):
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_text()
        with caplog.at_level(logging.ERROR, logger="modeldx.live"):
            # an update no encoder can send (a stream value that bypassed ctx's checks)
            running._publish({"type": "value", "stream": "odd", "kind": "table", "step": 0,
                              "value": object()})
            error = receive_until(ws, lambda m: m["type"] == "error")
        assert "serving a browser" in error["message"] and "not JSON serializable" in error["message"]
        with pytest.raises(WebSocketDisconnect) as info:
            receive_until(ws, lambda m: False)
        assert info.value.code == 1011  # closed, so the page reconnects and gets the state again
    assert "serving a browser" in running.error
    assert any(e.kind == "error" for e in running.events)
    assert any("serving a browser" in r.getMessage() for r in caplog.records)


def test_a_bug_in_handling_a_message_is_not_hidden_as_a_disconnect(running, monkeypatch):
    def broken(name, value=None):
        raise RuntimeError("a bug in set")

    monkeypatch.setattr(running, "set", broken)
    with TestClient(create_app(running, push_hz=50)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_text()
        ws.send_text(json.dumps({"type": "control", "name": "rate", "value": 2.0}))
        error = receive_until(ws, lambda m: m["type"] == "error")
    assert "a bug in set" in error["message"] and "a bug in set" in running.error


def test_restore_events_carry_the_controls_and_a_reconnect_gets_the_current_snapshots():
    s = LiveSession("snaps", max_snapshots=2)
    s.slider("rate", 0.0, 10.0, 1.0)
    s.state_fns = (dict, lambda state: None)
    app = create_app(s, push_hz=50)
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as ws:
            ws.receive_text()
            for name in ("s1", "s2"):
                ws.send_text(json.dumps({"type": "command", "command": "snapshot", "name": name}))
            ws.send_text(json.dumps({"type": "control", "name": "rate", "value": 5.0}))
            ws.send_text(json.dumps({"type": "command", "command": "restore", "name": "s1"}))
            restore = receive_until(ws, lambda m: m["type"] == "updates" and any(
                u.get("kind") == "restore" for u in m["updates"]))
            event = next(u for u in restore["updates"] if u.get("kind") == "restore")
            assert event["value"] == {"from_step": 0, "controls": {"rate": 1.0}}
            ws.send_text(json.dumps({"type": "command", "command": "snapshot", "name": "s3"}))
            dropped = receive_until(ws, lambda m: m["type"] == "updates" and any(
                u.get("name") == "s3" for u in m["updates"]))
            assert next(u for u in dropped["updates"] if u.get("name") == "s3")["value"] == {"dropped": "s1"}
        with client.websocket_connect("/ws") as again:
            state = json.loads(again.receive_text())
            assert state["snapshots"] == ["s2", "s3"] and state["events_dropped"] == 0
            assert {c["name"]: c["value"] for c in state["controls"]} == {"rate": 1.0}


def test_a_port_in_use_fails_before_any_url_is_printed():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        printed = []
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port}.*--port"):
            serve(counting_session(), port=port, start=False, announce=printed.append)
        assert printed == []


def test_api_answer_maps_modeldx_errors_to_what_the_page_shows():
    import json as jsonlib

    from modeldx.errors import InvalidParameterError, LayerNotFoundError, StoreCorruptError
    from modeldx.live.server import api_answer
    from modeldx.neurons.explore import ItemNotFoundError

    def raising(exc):
        def fn():
            raise exc
        return fn

    ok = api_answer(lambda: {"a": 1})
    assert ok.status_code == 200 and jsonlib.loads(ok.body) == {"a": 1}
    for exc, status in [(LayerNotFoundError("no layer 'x'"), 404), (ItemNotFoundError("no item 7"), 404),
                        (InvalidParameterError("k must be >= 1"), 409), (StoreCorruptError("chunk 3"), 500)]:
        got = api_answer(raising(exc))
        # a KeyError's str() quotes its message: the page gets the message itself
        assert got.status_code == status and jsonlib.loads(got.body)["detail"] == exc.args[0]
    with pytest.raises(ZeroDivisionError):  # a bug is not dressed up as an answer
        api_answer(lambda: 1 / 0)


@pytest.mark.parametrize("headers", [{"origin": "http://evil.example"}, {"origin": "null"},
                                     {"origin": "http://127.0.0.1:1"},
                                     {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
                                     {"sec-fetch-site": "same-site", "sec-fetch-mode": "cors"},
                                     {"sec-fetch-site": "same-site"}])
def test_a_request_from_another_sites_page_gets_403(headers):
    with TestClient(create_app(counting_session())) as client:
        for path in ("/", "/api/state"):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 403, (path, headers)


def test_our_own_pages_requests_and_links_from_elsewhere_pass():
    with TestClient(create_app(counting_session())) as client:
        own = {"origin": "http://testserver", "sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"}
        for headers in (own,
                        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},  # a link followed
                        {"sec-fetch-site": "none", "sec-fetch-mode": "navigate"}):  # typed in the address bar
            assert client.get("/", headers=headers).status_code == 200, headers
