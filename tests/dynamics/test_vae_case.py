"""The VAE NaN case (examples/vae_nan.py's mechanism on a smaller, faster VAE): a Gaussian decoder's
log-variance head collapses on MNIST's blank pixels until ``exp(-logvar)`` overflows; the
localisation names that head, and the clamp keeps the run finite. A general SGD blow-up of the
Bernoulli VAE, by contrast, is named at the encoder (docs/dynamics.md).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from modeldx.data import load_mnist
from modeldx.dynamics import localize, open_run, record
from modeldx.zoo import VAE, train_vae, vae_images

# the example's recipe (Adam, Gaussian decoder) on a VAE a quarter of the size at 3e-3: NaN at step 513
SMALL = {"decoder": "gaussian", "hidden": 100, "latent": 10}
RECIPE = {"steps": 600, "lr": 3e-3, "optimizer": "adam", "batch_size": 128, "seed": 2}


@pytest.fixture(scope="module")
def images():
    return vae_images(load_mnist("train")), vae_images(load_mnist("test"))[:128]


def recorded(path, images, model_args, recipe, every=5, n_train=10000):
    torch.set_num_threads(1)
    train, probe = images[0][:n_train], images[1]
    torch.manual_seed(recipe["seed"])
    model = VAE(**model_args)
    with record(model, probe, path, every=every, arch="vae", model_args=model_args) as rec:
        losses = train_vae(model, train, after_step=lambda loss: rec.step(loss=loss), **recipe)
    return open_run(path), losses


def test_the_decoder_log_variance_head_runs_away_and_is_named(tmp_path, images):
    run, losses = recorded(tmp_path / "diverged", images, SMALL, RECIPE)
    assert len(losses) == 514 and not math.isfinite(losses[-1]) and all(map(math.isfinite, losses[:-1]))
    failure = localize(run)
    assert failure is not None and failure.step == 513 and failure.snapshot == run.n_snapshots - 1
    # the direct trace: the head's largest |a| on the probe kept growing while every other layer
    # stayed several times smaller
    last = failure.snapshot - 1
    peak = {layer: np.abs(run.series(layer, "max_abs")).max(axis=1) for layer in run.layers}
    assert peak["fc4_logvar"][last] > 2 * peak["fc4_logvar"][last // 4] > 2 * peak["fc4_logvar"][1]
    others = [layer for layer in run.layers if layer != "fc4_logvar"]
    assert all(peak["fc4_logvar"][last] > 3 * peak[layer][last] for layer in others)
    assert failure.layer == "fc4_logvar"
    assert failure.scores["fc4_logvar"] > max(v for k, v in failure.scores.items() if k != "fc4_logvar") + 1
    # its first suspect is a pixel blank in almost every training image (a collapsed variance)
    ink = (images[0][:10000].reshape(10000, -1) > 0).float().mean(0)
    assert ink[failure.neurons[0]] < 0.02 < float(ink.median())


def test_the_clamped_vae_stays_finite_and_learns(tmp_path, images):
    run, losses = recorded(tmp_path / "clamped", images, {**SMALL, "logvar_clamp": 5.0}, RECIPE, every=50)
    assert len(losses) == RECIPE["steps"] and all(map(math.isfinite, losses))
    assert localize(run) is None
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 500


def test_a_general_sgd_blow_up_is_named_at_the_encoder(tmp_path, images):
    """Plain SGD at 3e-2 on the Bernoulli VAE: the encoder's gradients explode first (step 56)."""
    sgd = {"steps": 120, "lr": 3e-2, "optimizer": "sgd", "batch_size": 128, "seed": 2}
    run, losses = recorded(tmp_path / "sgd", images, {}, sgd, every=10, n_train=None)
    failure = localize(run)
    assert len(losses) == 57 and failure is not None and failure.step == 56
    assert failure.layer == "fc1"
