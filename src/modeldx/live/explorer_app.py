"""Serve a :class:`~modeldx.neurons.explore.Explorer` to browsers: the network explorer page and its JSON.

Routes (every URL the page uses is relative, so a proxy may mount it anywhere):
``/`` the page, ``/api/graph``, ``/api/cluster/{layer}/{cid}``,
``/api/item/{item_id}.png``, ``/api/ldam/{layer}/{cid}.png``, ``/static/...``.
A layer, cluster or item that does not exist is a 404 whose JSON ``detail``
names it. Security is the live server's (:mod:`modeldx.live.server`): Host and
Origin checks, and beyond loopback a token on every request (``?token=`` or
the ``X-Modeldx-Token`` header; the page carries the one it was opened with).
"""

from __future__ import annotations

import socket as sockets
from collections.abc import Iterable

from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from modeldx.live.server import (
    STATIC,
    AppThread,
    api_answer,
    app_server,
    guarded_app,
    require_api_token,
    serve_announced,
)
from modeldx.neurons.explore import Explorer


def create_explorer_app(explorer: Explorer, *, token: str | None = None, host: str = "127.0.0.1",
                        allowed_hosts: Iterable[str] = ()):
    """The ASGI app serving ``explorer``'s page and JSON (see the module docstring)."""
    app = guarded_app(f"modeldx explore: {explorer.store.path}", host=host, token=token,
                      allowed_hosts=allowed_hosts)
    app.state.explorer = explorer

    require_api_token(app, token)

    def png(render, *args) -> Response:
        return Response(render(*args), media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/graph")
    async def graph() -> Response:
        return api_answer(explorer.graph)

    @app.get("/api/cluster/{layer}/{cid}")
    async def cluster(layer: str, cid: int) -> Response:
        # a first click computes the groups' matrices: off the event loop, so other requests go on
        return await run_in_threadpool(api_answer, explorer.cluster, layer, cid)

    @app.get("/api/item/{item_id}.png")
    async def item(item_id: int) -> Response:
        return api_answer(png, explorer.item_png, item_id, as_json=False)

    @app.get("/api/ldam/{layer}/{cid}.png")
    async def ldam(layer: str, cid: int) -> Response:
        return await run_in_threadpool(lambda: api_answer(png, explorer.ldam_png, layer, cid, as_json=False))

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "explore.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


class ExplorerThread(AppThread):
    """The explorer served from a thread of this process (notebooks, tests); ``.url``, ``.stop()``."""

    def __init__(self, explorer: Explorer, *, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, **options) -> None:
        app = create_explorer_app(explorer, token=token, host=host, **options)
        super().__init__(app, app_server(app, host, port, "warning"), host=host, token=token)


def serve_explorer(explorer: Explorer, *, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
                   sock: sockets.socket | None = None, allowed_hosts: Iterable[str] = (),
                   log_level: str = "warning", announce=print) -> None:
    """Serve ``explorer`` until interrupted; prints the URL. ``sock``: one :func:`reserve` took already."""
    serve_announced(lambda: create_explorer_app(explorer, token=token, host=host,
                                                allowed_hosts=allowed_hosts),
                    host=host, port=port, token=token, sock=sock, log_level=log_level,
                    what=f"modeldx explore {explorer.store.path}", announce=announce)
