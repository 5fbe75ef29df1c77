"""Serve a LiveSession to browsers: FastAPI, one WebSocket per browser, the dashboard's static files.

Protocol (JSON text frames). The server sends ``{"type": "state", ...}`` on
connect (and again whenever a slow browser fell behind), then
``{"type": "updates", "updates": [...]}`` at most ``push_hz`` times a second:
scalar points in full, and for every other stream only its latest value in
that interval — so bandwidth is bounded however fast the session steps. The
browser sends

- ``{"type": "control", "name": ..., "value": ...}`` — move a slider, pick a choice, press a button;
- ``{"type": "command", "command": "pause" | "resume" | "step" | "snapshot" | "restore", "name": ...}``;
- ``{"type": "ping"}``.

A message that is not JSON, does not validate, is larger than
``max_message_bytes`` or names a bad value gets ``{"type": "error", ...}`` back;
the connection and the session go on. Binding anything but loopback requires a
token, passed as ``?token=`` (or the ``X-Modeldx-Token`` header).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from modeldx.errors import InvalidParameterError, ModeldxError
from modeldx.live.session import LiveSession

STATIC = Path(__file__).parent / "static"


class ControlMessage(BaseModel):
    type: Literal["control"]
    name: str = Field(max_length=200)
    value: float | int | str | bool | None = None


class CommandMessage(BaseModel):
    type: Literal["command"]
    command: Literal["pause", "resume", "step", "snapshot", "restore"]
    name: str = Field(default="snapshot", max_length=200)


class PingMessage(BaseModel):
    type: Literal["ping"]


Message = TypeAdapter(Annotated[ControlMessage | CommandMessage | PingMessage, Field(discriminator="type")])


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def handle(session: LiveSession, raw: str, max_bytes: int) -> dict[str, Any] | None:
    """Apply one browser message; returns the reply (an error or a pong), if any."""
    if len(raw.encode()) > max_bytes:
        return {"type": "error", "message": f"message of {len(raw.encode())} bytes is over the limit of "
                                            f"{max_bytes} bytes"}
    try:
        msg = Message.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        return {"type": "error", "message": f"invalid message ({where}: {first['msg']})"}
    try:
        if isinstance(msg, PingMessage):
            return {"type": "pong", "step": session.step}
        if isinstance(msg, ControlMessage):
            session.set(msg.name, msg.value)
        else:
            command = {"pause": session.pause, "resume": session.resume, "step": session.step_once}
            if msg.command in command:
                command[msg.command]()
            else:
                getattr(session, msg.command)(msg.name)
    except (InvalidParameterError, ModeldxError) as exc:
        return {"type": "error", "message": str(exc)}
    return None


def coalesce(updates: list[dict]) -> list[dict]:
    """Keep every scalar point and event; of other stream values only the latest per stream."""
    latest: dict[str, int] = {}
    for i, u in enumerate(updates):
        if u["type"] == "value":
            latest[u["stream"]] = i
    return [u for i, u in enumerate(updates) if u["type"] != "value" or latest[u["stream"]] == i]


def encoded(update: dict) -> str:
    """An update's JSON, encoded once however many browsers it goes to (they share the dict)."""
    text = update.get("_json")
    if text is None:
        text = json.dumps({k: v for k, v in update.items() if k != "_json"})
        update["_json"] = text  # a race between two pushers only encodes it twice
    return text


def create_app(session: LiveSession, *, token: str | None = None, push_hz: float = 20.0,
               max_message_bytes: int = 16_384) -> FastAPI:
    """The ASGI app serving ``session``: dashboard, ``/api/state`` and the ``/ws`` WebSocket."""
    app = FastAPI(title=f"modeldx live: {session.name}", docs_url=None, redoc_url=None)
    app.state.session = session
    app.state.clients = 0

    def allowed(given: str | None) -> bool:
        return token is None or (given is not None and secrets.compare_digest(given, token))

    @app.get("/api/state")
    def state(request: Request) -> JSONResponse:
        if not allowed(request.query_params.get("token") or request.headers.get("x-modeldx-token")):
            raise HTTPException(status_code=403, detail="a valid token is required")
        return JSONResponse(session.state())

    @app.websocket("/ws")
    async def socket(ws: WebSocket) -> None:
        if not allowed(ws.query_params.get("token") or ws.headers.get("x-modeldx-token")):
            await ws.close(code=4403, reason="a valid token is required")
            return
        await ws.accept()
        sub = session.subscribe()
        app.state.clients += 1
        await ws.send_text(json.dumps({"type": "state", **session.state()}))

        async def push() -> None:
            while True:
                await asyncio.sleep(1.0 / push_hz)
                updates, dropped = sub.drain()
                if dropped:
                    await ws.send_text(json.dumps({"type": "state", **session.state()}))
                elif updates:
                    head = json.dumps({"type": "updates", "step": session.step, "paused": session.paused,
                                       "error": session.error})
                    body = ",".join(encoded(u) for u in coalesce(updates))
                    await ws.send_text(f'{head[:-1]}, "updates": [{body}]}}')

        pusher = asyncio.create_task(push())
        try:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the browser went away
                while True:
                    raw = await ws.receive_text()
                    reply = handle(session, raw, max_message_bytes)
                    if reply is not None:
                        await ws.send_text(json.dumps(reply))
        finally:
            pusher.cancel()
            session.unsubscribe(sub)
            app.state.clients -= 1

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _server(session: LiveSession, host: str, port: int, token: str | None, compress: bool,
            log_level: str, **app_options):
    import uvicorn

    if not is_loopback(host) and not token:
        raise InvalidParameterError(
            f"binding {host!r} exposes the session beyond this machine: pass a token (--token)")
    app = create_app(session, token=token, **app_options)
    # per-message deflate would zlib every push inside the process that trains: measured, it took
    # the streaming overhead from 3% to 10% (docs/benchmarks.md); pushes are bounded anyway
    return app, uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                              ws_per_message_deflate=compress))


class BackgroundServer:
    """The dashboard served from a thread of this process (notebooks, scripts, tests).

    ``port=0`` picks a free port; ``.url`` is the address to open, ``.stop()`` ends it.
    """

    def __init__(self, session: LiveSession, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, compress: bool = False, **app_options) -> None:
        import threading
        import time

        self.session = session
        self.app, self.server = _server(session, host, port, token, compress, "warning", **app_options)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="modeldx-live-server")
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise ModeldxError(f"the live server did not start on {host}:{port}")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{'127.0.0.1' if is_loopback(host) else host}:{self.port}/" + (
            f"?token={token}" if token else "")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(session: LiveSession, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          start: bool = True, log_level: str = "warning", compress: bool = False, announce=print) -> None:
    """Start ``session`` (unless started) and serve it until interrupted; prints the URL to open.

    ``compress`` turns on WebSocket per-message deflate: less bandwidth to a remote browser, more
    CPU in the process that trains (benchmarks/live_session.py measures both).
    """
    _, server = _server(session, host, port, token, compress, log_level)
    if start and not session.running:
        session.start()
    query = f"?token={token}" if token else ""
    shown = "localhost" if is_loopback(host) else host
    announce(f"modeldx live session {session.name!r}: open http://{shown}:{port}/{query}")
    try:
        server.run()
    finally:
        session.stop()
