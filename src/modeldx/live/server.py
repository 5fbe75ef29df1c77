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
``max_message_bytes``, names a bad value or comes as a binary frame gets
``{"type": "error", "message": ...}`` back; the connection and the session go on.

State and events. ``state`` carries ``controls`` (each ``value`` current),
``events`` (the last ``max_events`` of the session, oldest first) with
``events_dropped`` (how many older ones were dropped), ``snapshots`` (every
name kept, oldest first: the full list, to replace what the browser had) and
``error`` (the session's error, or null), and ``instance`` (random per
``LiveSession``: a restarted script's session of the same name has another, and a
browser sends what was set while reconnecting only to the same instance). Each ``event`` update's ``value`` is
the value in force: for ``control`` the control's new value (changes of one
control that arrive before the next step are one event), for ``restore``
``{"from_step": int, "controls": {name: value}}``, for a ``snapshot`` that
dropped the oldest one (at most ``max_snapshots`` are kept)
``{"dropped": name}``. A failure — a step, snapshot or restore that raised, an
update that could not be sent — sets the session's ``error`` and is sent as an
``error`` event.

Security. Binding anything but loopback requires a token, of at least 16
characters (a shorter one is refused at start), passed as ``?token=`` (or the
``X-Modeldx-Token`` header). Every request must name this server in its
``Host`` header — ``localhost``, ``127.0.0.1``, ``[::1]``, the bound address,
the address the connection arrived on, or a name in ``allowed_hosts``, with the
port — so a page of another site that rebinds its DNS name to 127.0.0.1 gets
403 (a WebSocket is closed with code 1008). A WebSocket whose ``Origin`` is not
this server's own (``http(s)://`` + its ``Host``) is closed with code 1008: no
other site's page can steer a session, with or without a token. A WebSocket
with no ``Origin`` (not a browser: browsers always send one) is accepted; no web
page can open one, and beyond loopback it still needs the token. An HTTP
request with another ``Origin``, or that a browser marks as sent by a page of
another site (``Sec-Fetch-Site`` cross-site or same-site — another port on this
machine is the same site — for anything but a navigation) gets 403: another
page can link here, but not load or fetch from here.
``/docs``, ``/redoc`` and ``/openapi.json`` are off.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import socket as sockets
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnected

from modeldx.errors import InvalidParameterError, ModeldxError, PortInUseError
from modeldx.live.session import LiveSession

STATIC = Path(__file__).parent / "static"
MIN_TOKEN_LENGTH = 16
BINARY_REFUSED = "binary frames are not accepted; send JSON text"
log = logging.getLogger(__name__)


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


def check_exposure(host: str, token: str | None) -> None:
    """Refuse, before anything is loaded, a bind beyond loopback without a token, and a short token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise InvalidParameterError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters long (got {len(token)}): "
            "make one with python -c 'import secrets; print(secrets.token_urlsafe())'")
    if not is_loopback(host) and not token:
        raise InvalidParameterError(
            f"binding {host!r} exposes the session beyond this machine: pass a token (--token)")


def reserve(host: str, port: int, token: str | None = None) -> sockets.socket:
    """Check the bind is allowed and take the port now, before data loads or a URL is printed.

    Returns the bound socket for :func:`serve` to listen on; a port another
    server holds raises :class:`~modeldx.errors.PortInUseError` naming it.
    """
    check_exposure(host, token)
    family = sockets.AF_INET6 if ":" in host else sockets.AF_INET
    sock = sockets.socket(family, sockets.SOCK_STREAM)
    sock.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEADDR, 1)  # as uvicorn does: no wait after a restart
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PortInUseError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; another server may be "
                             "using that port: pick another with --port") from exc
    return sock


class SameOrigin:
    """ASGI middleware: refuse a ``Host`` that is not this server (DNS rebinding) and cross-site sockets."""

    # a browser always sends Host, and Origin on a WebSocket; DNS rebinding changes neither to ours

    def __init__(self, app, host: str, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        names = ["localhost", "127.0.0.1", "[::1]", host, *allowed_hosts]
        self.names = {_bracket(n) for n in names}

    def refusal(self, scope) -> str | None:
        """Why this request is refused, or None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "").lower()
        server = scope.get("server") or ("", None)
        names = self.names | {_bracket(str(server[0]))}  # the address the connection arrived on
        allowed = {f"{n}:{server[1]}" for n in names} | (set(names) if server[1] in (80, 443) else set())
        if host not in allowed:
            return f"Host {host!r} is not this server"
        origin = headers.get("origin")
        if origin is not None:  # sent by browsers on sockets, cross-origin fetches and every POST
            parts = urlsplit(origin.lower())
            if parts.scheme not in ("http", "https") or parts.netloc != host:
                return f"Origin {origin!r} is not this server"
        site, mode = headers.get("sec-fetch-site"), headers.get("sec-fetch-mode")
        if scope["type"] == "http" and site in ("cross-site", "same-site") and mode != "navigate":
            # another page's <img>, <script> or no-cors fetch (another port on this machine is same-site);
            # following a link here is a navigation, and is let through
            return f"a {mode or 'no-cors'} request from a page of another site ({site})"
        return None

    async def __call__(self, scope, receive, send) -> None:
        why = self.refusal(scope) if scope["type"] in ("http", "websocket") else None
        if why is None:
            await self.app(scope, receive, send)
            return
        log.warning("live server refused a %s request: %s", scope["type"], why)
        if scope["type"] == "http":
            await PlainTextResponse(why, status_code=403)(scope, receive, send)
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})


def _bracket(host: str) -> str:
    host = host.lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def token_ok(token: str | None, given: str | None) -> bool:
    """Whether a request may pass: no token is set, or it gave the right one (compared in constant time)."""
    return token is None or (given is not None and secrets.compare_digest(given, token))


def given_token(request: Request | WebSocket) -> str | None:
    """The token a request carries: ``?token=`` or the ``X-Modeldx-Token`` header."""
    return request.query_params.get("token") or request.headers.get("x-modeldx-token")


def guarded_app(title: str, *, host: str, token: str | None, allowed_hosts: Iterable[str] = ()) -> FastAPI:
    """A FastAPI app with every server's checks: the token's length, Host and Origin, no docs routes.

    Each route still checks the token itself (:func:`token_ok`): some pages
    (the dashboard's ``/``) are served without one and carry it on.
    """
    if token is not None:
        check_exposure(host, token)
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SameOrigin, host=host, allowed_hosts=tuple(allowed_hosts))
    return app


def require_api_token(app: FastAPI, token: str | None) -> None:
    """Refuse every ``/api/`` request without the token (403, JSON): pages whose HTML and scripts
    hold no data (the explorer, the dynamics views) serve those freely and fetch the rest with it."""

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if request.url.path.startswith("/api/") and not token_ok(token, given_token(request)):
            return JSONResponse({"detail": "a valid token is required"}, status_code=403)
        return await call_next(request)


def api_answer(fn, *args, as_json: bool = True) -> Response:
    """``fn(*args)`` as the API's reply (JSON unless ``as_json=False``: ``fn`` makes its own
    ``Response``), or a modeldx error as ``{"detail": ...}`` with a status that says what kind:
    404 for something not found (the KeyError kinds: a layer, an item), 409 for a bad
    setting, 500 for anything else modeldx refused (a damaged or replaced store or run), so
    that the page shows the message rather than "HTTP 500"."""
    try:
        out = fn(*args)
        return JSONResponse(out) if as_json else out
    except ModeldxError as exc:
        if isinstance(exc, KeyError):  # str() of a KeyError quotes its message
            return JSONResponse({"detail": str(exc.args[0] if exc.args else exc)}, status_code=404)
        status = 409 if isinstance(exc, InvalidParameterError) else 500
        return JSONResponse({"detail": str(exc)}, status_code=status)


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
               max_message_bytes: int = 16_384, host: str = "127.0.0.1",
               allowed_hosts: Iterable[str] = ()) -> FastAPI:
    """The ASGI app serving ``session``: dashboard, ``/api/state`` and the ``/ws`` WebSocket.

    ``host`` is the address bound; ``allowed_hosts`` are more names browsers
    may use for it (a machine's DNS name when binding 0.0.0.0). See the module
    docstring for the Host and Origin checks.
    """
    app = guarded_app(f"modeldx live: {session.name}", host=host, token=token, allowed_hosts=allowed_hosts)
    app.state.session = session
    app.state.clients = 0

    @app.get("/api/state")
    def state(request: Request) -> JSONResponse:
        if not token_ok(token, given_token(request)):
            raise HTTPException(status_code=403, detail="a valid token is required")
        return JSONResponse(session.state())

    @app.websocket("/ws")
    async def socket(ws: WebSocket) -> None:
        if not token_ok(token, given_token(ws)):
            await ws.close(code=4403, reason="a valid token is required")
            return
        await ws.accept()
        sub = session.subscribe()
        app.state.clients += 1

        async def push() -> None:
            await ws.send_text(json.dumps({"type": "state", **session.state()}))
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

        async def receive() -> None:
            # a push-only client still needs this loop: it is how a vanished browser is noticed
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is None:
                    await ws.send_text(json.dumps({"type": "error", "message": BINARY_REFUSED}))
                    continue
                reply = handle(session, message["text"], max_message_bytes)
                if reply is not None:
                    await ws.send_text(json.dumps(reply))

        tasks = [asyncio.create_task(push()), asyncio.create_task(receive())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect | WebSocketDisconnected):
                    await _failed(ws, session, exc)
        finally:
            for task in tasks:
                task.cancel()
            session.unsubscribe(sub)
            app.state.clients -= 1

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _failed(ws: WebSocket, session: LiveSession, exc: BaseException) -> None:
    """A browser's connection failed for a reason other than the browser leaving: make it seen."""
    session.fail("serving a browser", exc, pause=False)
    try:  # tell the page, then close so it reconnects and gets the whole state again
        await ws.send_text(json.dumps({"type": "error", "message": session.error}))
        await ws.close(code=1011, reason="internal error; reconnect")
    except (WebSocketDisconnect, WebSocketDisconnected, OSError):
        log.info("the browser left before it could be told of the error")


def app_server(app: FastAPI, host: str, port: int, log_level: str, **config):
    """A uvicorn server for ``app``, not started (every app of the live package is served so)."""
    import uvicorn

    return uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, **config))


def _server(session: LiveSession, host: str, port: int, token: str | None, compress: bool,
            log_level: str, **app_options):
    check_exposure(host, token)
    app = create_app(session, token=token, host=host, **app_options)
    # per-message deflate would zlib every push inside the process that trains: measured, it took
    # the streaming overhead from 3% to 10% (docs/benchmarks.md); pushes are bounded anyway
    return app, app_server(app, host, port, log_level, ws_per_message_deflate=compress)


class AppThread:
    """An app of this module served from a thread of this process (notebooks, scripts, tests).

    ``port=0`` picks a free port; ``.url`` is the address to open, ``.stop()`` ends it.
    """

    def __init__(self, app: FastAPI, server, *, host: str, token: str | None) -> None:
        import threading
        import time

        self.app, self.server = app, server
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="modeldx-live-server")
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise ModeldxError(f"the live server did not start on {host}")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{'127.0.0.1' if is_loopback(host) else host}:{self.port}/" + (
            f"?token={token}" if token else "")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class BackgroundServer(AppThread):
    """The dashboard served from a thread of this process (notebooks, scripts, tests).

    ``port=0`` picks a free port; ``.url`` is the address to open, ``.stop()`` ends it.
    """

    def __init__(self, session: LiveSession, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, compress: bool = False, **app_options) -> None:
        self.session = session
        app, server = _server(session, host, port, token, compress, "warning", **app_options)
        super().__init__(app, server, host=host, token=token)


def serve(session: LiveSession, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          start: bool = True, log_level: str = "warning", compress: bool = False, announce=print,
          sock: sockets.socket | None = None, allowed_hosts: Iterable[str] = ()) -> None:
    """Start ``session`` (unless started) and serve it until interrupted; prints the URL to open.

    The port is taken before the URL is printed (a port in use raises
    :class:`~modeldx.errors.PortInUseError`); ``sock`` is one :func:`reserve`
    took already, before loading data. ``compress`` turns on WebSocket
    per-message deflate: less bandwidth to a remote browser, more CPU in the
    process that trains (benchmarks/live_session.py measures both).
    """
    sock = sock if sock is not None else reserve(host, port, token)
    port = sock.getsockname()[1]
    _, server = _server(session, host, port, token, compress, log_level, allowed_hosts=allowed_hosts)
    if start and not session.running:
        session.start()
    try:
        run_announced(server, sock, host, token, f"modeldx live session {session.name!r}", announce)
    finally:
        session.stop()


def serve_announced(make_app, *, host: str, port: int, token: str | None, sock: sockets.socket | None,
                    log_level: str, what: str, announce) -> None:
    """Take the port (unless ``sock`` took it already), then build the app, print its URL and serve it
    until interrupted: the explorer, dynamics and capture pages' ``serve_*``."""
    sock = sock if sock is not None else reserve(host, port, token)
    server = app_server(make_app(), host, sock.getsockname()[1], log_level)
    run_announced(server, sock, host, token, what, announce)


def run_announced(server, sock: sockets.socket, host: str, token: str | None, what: str, announce) -> None:
    """Print the URL to open (``what: open URL``), then serve on ``sock`` until interrupted."""
    query = f"?token={token}" if token else ""
    shown = "localhost" if is_loopback(host) else host
    announce(f"{what}: open http://{shown}:{sock.getsockname()[1]}/{query}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
