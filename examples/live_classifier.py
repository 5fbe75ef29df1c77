"""Make any PyTorch training loop live: sliders for the learning rate and weight decay, live charts.

Run ``.venv/bin/python examples/live_classifier.py`` and open the printed URL. The loop below is an
ordinary MNIST training loop; the live parts are marked.
"""

import numpy as np
import torch
from torch import nn

from modeldx.data import load_mnist
from modeldx.live import LiveSession
from modeldx.live.server import serve
from modeldx.zoo import LeNet5


def make_session(data_root=None, batch_size=128) -> LiveSession:
    train, test = load_mnist("train", root=data_root), load_mnist("test", root=data_root)
    x_test, y_test = test.get_batch(np.arange(2000))
    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)

    session = LiveSession("mnist-classifier")                              # live: the session
    session.slider("learning rate", 1e-5, 1.0, 1e-3, log=True)            # live: two sliders
    session.slider("weight decay", 1e-7, 1e-1, 1e-7, log=True)

    def step(ctx):                                                         # one training step
        for group in opt.param_groups:
            group["lr"] = ctx.controls["learning rate"]                    # live: read the sliders
            group["weight_decay"] = ctx.controls["weight decay"]
        x, y = train.get_batch(rng.integers(0, len(train), batch_size))
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.scalar("loss", loss.item())                                    # live: stream a value
        if ctx.step % 50 == 0:
            with torch.no_grad():
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            ctx.scalar("test accuracy", accuracy)

    session.step_fn = step
    # live: snapshot/restore buttons need a way to get and set the training state
    session.state_fns = (lambda: {"model": model.state_dict(), "opt": opt.state_dict()},
                         lambda s: (model.load_state_dict(s["model"]), opt.load_state_dict(s["opt"])))
    return session


if __name__ == "__main__":
    serve(make_session())                                                  # live: serve the dashboard
