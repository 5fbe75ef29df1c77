import math

import pytest
import torch

from modeldx.errors import InvalidParameterError
from modeldx.interactive.sessions import classifier_session
from modeldx.zoo import MODELS, VAE, train
from modeldx.zoo.models import CLASSIFIERS
from modeldx.zoo.training import train_vae, vae_images


def test_vae_shapes_heads_and_loss():
    model = MODELS["vae"](latent=3)
    assert isinstance(model, VAE) and model.fc_mu.out_features == model.fc_logvar.out_features == 3
    x = torch.rand(4, 1, 28, 28)
    logits, mu, logvar = model(x)
    assert logits.shape == (4, 784) and mu.shape == logvar.shape == (4, 3)
    loss = model.loss(x, (logits, mu, logvar))
    # the KL term by hand, and BCE summed over pixels, averaged over the batch
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / 4
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.reshape(4, -1), reduction="sum") / 4
    assert loss.item() == pytest.approx((kl + bce).item(), rel=1e-5)


def test_eval_mode_is_deterministic_and_training_mode_samples():
    model, x = VAE(latent=2), torch.rand(2, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


def test_logvar_clamp_bounds_the_log_variance():
    model = VAE(latent=2, logvar_clamp=2.0)
    with torch.no_grad():
        model.fc_logvar.bias.fill_(100.0)
    _, _, logvar = model(torch.rand(3, 1, 28, 28))
    assert logvar.max().item() == 2.0
    assert math.isfinite(model.loss(torch.rand(3, 1, 28, 28), model(torch.rand(3, 1, 28, 28))).item())


def test_gaussian_decoder_has_a_log_variance_head_and_its_nll():
    model = VAE(latent=2, decoder="gaussian")
    assert model.fc4_logvar.out_features == model.fc4.out_features == 784
    assert not hasattr(VAE(latent=2), "fc4_logvar")
    model.eval()
    x = torch.rand(3, 1, 28, 28)
    (mean, pixel_logvar), mu, logvar = model(x)
    assert mean.min() >= 0 and mean.max() <= 1 and pixel_logvar.shape == (3, 784)
    target = x.reshape(3, -1)
    nll = 0.5 * ((target - mean) ** 2 / pixel_logvar.exp() + pixel_logvar + math.log(2 * math.pi)).sum() / 3
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum() / 3
    loss = model.loss(x, ((mean, pixel_logvar), mu, logvar))
    assert loss.item() == pytest.approx((nll + kl).item(), rel=1e-5)


def test_logvar_clamp_bounds_the_decoder_log_variance_too():
    model = VAE(latent=2, decoder="gaussian", logvar_clamp=3.0)
    with torch.no_grad():
        model.fc4_logvar.bias.fill_(-500.0)  # exp(500) overflows float32 unclamped
    x = torch.zeros(2, 1, 28, 28)
    (_, pixel_logvar), _, _ = model(x)
    assert pixel_logvar.min().item() == -3.0 and math.isfinite(model.loss(x, model(x)).item())


def test_unknown_decoder_is_refused():
    with pytest.raises(InvalidParameterError, match="'poisson'"):
        VAE(decoder="poisson")


def test_classifier_entry_points_refuse_the_vae(digits):
    assert "vae" in MODELS and "vae" not in CLASSIFIERS and set(CLASSIFIERS) < set(MODELS)
    with pytest.raises(InvalidParameterError, match="'vae'"):
        train("vae", digits, digits, epochs=1, progress=False)
    with pytest.raises(InvalidParameterError, match="'vae'"):
        classifier_session(digits, digits, arch="vae")


def test_train_vae_is_seeded_and_learns(digits):
    images = vae_images(digits)
    assert images.shape[1:] == (1, 8, 8) and images.min() >= 0 and images.max() <= 1

    def run():
        torch.manual_seed(0)
        model = VAE(in_features=64, hidden=32, latent=4)
        seen = []
        return model, train_vae(model, images, steps=60, lr=1e-2, batch_size=32, seed=3,
                                after_step=seen.append), seen

    (m1, l1, seen), (m2, l2, _) = run(), run()
    assert l1 == l2 == seen and len(l1) == 60
    assert sum(l1[-10:]) < sum(l1[:10])
    pairs = zip(m1.state_dict().values(), m2.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


def test_train_vae_stops_at_the_first_nonfinite_loss(digits):
    torch.manual_seed(0)
    model = VAE(in_features=64, hidden=32, latent=4)
    with torch.no_grad():
        model.fc_logvar.bias.fill_(200.0)  # exp(200) overflows float32 at the first step
    losses = train_vae(model, vae_images(digits), steps=50, optimizer="sgd", lr=1e-2)
    assert len(losses) == 1 and not math.isfinite(losses[0])
    with pytest.raises(InvalidParameterError, match="optimizer"):
        train_vae(model, vae_images(digits), steps=5, optimizer="rmsprop")
