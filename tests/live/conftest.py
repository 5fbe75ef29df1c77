"""Browser tests' sessions: serve a LiveSession on a background server, stopped after the test."""

import pytest

from modeldx.live.server import BackgroundServer


@pytest.fixture
def serve():
    """``serve(session, start=True, **server_options) -> url``; servers and sessions end with the test."""
    running = []

    def start(session, *, start: bool = True, **options):
        if start:
            session.start()
        server = BackgroundServer(session, **options)
        running.append((server, session))
        return server.url

    yield start
    for server, session in reversed(running):
        server.stop()
        session.stop()
