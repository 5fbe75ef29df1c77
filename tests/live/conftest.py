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


def train_recorded(path, *, steps: int = 40, every: int = 2, blow_up_at: int | None = None, width: int = 24):
    """A small MLP trained ``steps`` steps on random data under the real recorder; from
    ``blow_up_at`` on its learning rate is huge, so the weights overflow and the loss goes NaN."""
    import torch
    from torch import nn

    from modeldx.dynamics import open_run, record

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                              nn.Linear(width, 1))
        x = torch.randn(128, 6)
        y = x.sum(1, keepdim=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        with record(model, x[:16], path, every=every) as rec:
            for step in range(steps):
                if step == blow_up_at:
                    for group in opt.param_groups:
                        group["lr"] = 50.0
                opt.zero_grad()
                loss = (model(x) - y).pow(2).mean()
                loss.backward()
                opt.step()
                rec.step(loss=loss.item())
    return open_run(path), model


@pytest.fixture(scope="session")
def dynamics_runs(tmp_path_factory):
    """Two recorded runs of the same MLP: ``"finite"`` stays finite, ``"nan"`` blows up; and the model."""
    folder = tmp_path_factory.mktemp("dynamics")
    finite, model = train_recorded(folder / "finite")
    broken, _ = train_recorded(folder / "nan", blow_up_at=24)
    return {"finite": finite, "nan": broken, "model": model}
