"""Shared fixtures: small seeded models on real data (scikit-learn's digits, MNIST)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from modeldx.data import load_digits, load_mnist

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO / "data"


class TinyNet(nn.Module):
    """A small CNN for 1x8x8 digits: conv 4 -> pool -> fc 16 -> fc 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(64, 16)
        self.act2 = nn.ReLU()
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(self.act2(self.fc1(self.flat(self.pool(self.act1(self.conv(x)))))))


def train_tiny(dataset, epochs: int = 15, seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    model = TinyNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = dataset.get_batch(np.arange(len(dataset)))
    for _ in range(epochs):
        for i in range(0, len(dataset), 128):
            loss = nn.functional.cross_entropy(model(x[i:i + 128]), y[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def digits():
    return load_digits()


@pytest.fixture(scope="session")
def tiny_model(digits):
    return train_tiny(digits)


@pytest.fixture
def fresh_tiny(digits):
    """A model a test may change."""
    return train_tiny(digits, epochs=3)


@pytest.fixture(scope="session")
def digits_store(tmp_path_factory, tiny_model, digits):
    """The digits captured in float32 with small chunks, so queries cross many chunks."""
    from modeldx import capture

    path = tmp_path_factory.mktemp("stores") / "digits"
    return capture(tiny_model, digits, path, encoding="float32", chunk_items=256, batch_size=100,
                   progress=False)


@pytest.fixture(scope="session")
def mnist_test():
    return load_mnist("test", root=MNIST_DIR)


@pytest.fixture(scope="session")
def mnist_train():
    return load_mnist("train", root=MNIST_DIR)


@pytest.fixture(scope="session")
def mnist_model(tmp_path_factory, mnist_train, mnist_test):
    """The zoo LeNet-5 trained with the default recipe (about a minute on a laptop CPU)."""
    from modeldx.zoo import train

    path = tmp_path_factory.mktemp("zoo") / "lenet5-mnist.pt"
    result = train("lenet5", mnist_train, mnist_test, checkpoint=path, progress=False)
    return result


@pytest.fixture(scope="session")
def mnist_store(tmp_path_factory, mnist_model, mnist_train, mnist_test):
    from modeldx import capture

    path = tmp_path_factory.mktemp("stores") / "mnist"
    return capture(mnist_model.model, {"train": mnist_train, "test": mnist_test}, path, progress=False)


def other_data_root() -> Path:
    """Where Fashion-MNIST and the other shared data sets are: $MODELDX_DATA, as CI sets it."""
    root = os.environ.get("MODELDX_DATA")
    if not root or not (Path(root) / "fashion-mnist").is_dir():
        pytest.fail("this test needs Fashion-MNIST: set MODELDX_DATA to a folder holding "
                    "'fashion-mnist/' (CI sets it to ../shared/data)")
    return Path(root)


@pytest.fixture
def page():
    """A page of a headless Chromium; fails the test if the page raised a JavaScript error."""
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_path

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        yield pg
        browser.close()
        assert not errors, errors


def train_recorded(path, *, steps: int = 40, every: int = 2, blow_up_at: int | None = None, width: int = 24):
    """A small MLP trained ``steps`` steps on random data under the real recorder; from
    ``blow_up_at`` on its learning rate is huge, so the weights overflow and the loss goes NaN."""
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
