"""Reference models: the paper's LeNet-5-shaped MNIST model, deeper CNNs, a small ResNet and an MLP VAE."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from modeldx._params import OneOf, check_params


class LeNet5(nn.Module):
    """conv 6 -> pool -> conv 16 -> pool -> fc 120 -> fc 84 -> fc 10.

    The shape of the model in Mehta et al.'s Figure 1; its 84-d ``act4`` output
    (the input of ``fc3``) is the latent space samplers work in. Every
    nonlinearity is its own module so capture can hook it by name.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        side = ((image_size // 2) - 4) // 2
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.act3(self.fc1(self.flatten(x)))
        x = self.act4(self.fc2(x))
        return self.fc3(x)


class DeepCNN(nn.Module):
    """Four 3x3 conv layers with batch norm in two stages, then fc 256 -> fc classes."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(in_channels, 32), *block(32, 32), nn.MaxPool2d(2),
            *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 256), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(256, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class PlainCNN(nn.Sequential):
    """Ten 3x3 conv layers in three stages (16, 32, 32 channels), each with its own ReLU, then fc.

    A deep *plain* network in the sense of CNNVis' training-diagnosis case study:
    nothing but convolutions and ReLUs between input and head, so a bad start
    can leave most ReLUs dead. ``batch_norm=True`` puts a ``BatchNorm2d``
    (``bn<i>``) between each ``conv<i>`` and its ReLU ``act<i>`` — the case
    study's fix. Modules are named ``conv1..conv10``, ``act1..act10``,
    ``pool1..pool3``, ``flatten`` and ``fc`` so capture can hook each by name.

    Examples
    --------
    >>> import torch
    >>> model = PlainCNN(batch_norm=True)
    >>> model(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    # conv widths per stage; a 2x2 max-pool ends each stage
    STAGES: tuple[tuple[int, ...], ...] = ((16, 16, 16), (32, 32, 32), (32, 32, 32, 32))

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 batch_norm: bool = False) -> None:
        layers: dict[str, nn.Module] = {}
        cin, i = in_channels, 0
        for s, widths in enumerate(self.STAGES, start=1):
            for cout in widths:
                i += 1
                # with batch norm a conv bias is redundant: the norm subtracts it again
                layers[f"conv{i}"] = nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)
                if batch_norm:
                    layers[f"bn{i}"] = nn.BatchNorm2d(cout)
                layers[f"act{i}"] = nn.ReLU()
                cin = cout
            layers[f"pool{s}"] = nn.MaxPool2d(2)
        side = image_size // 2 ** len(self.STAGES)
        layers["flatten"] = nn.Flatten()
        layers["fc"] = nn.Linear(cin * side * side, num_classes)
        super().__init__(OrderedDict(layers))
        self.batch_norm = batch_norm


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers and a skip connection; the ReLU ``act2`` follows the add.

    ``conv1 -> bn1 -> act1 -> conv2 -> bn2``, plus ``shortcut`` (the identity, or a strided
    1x1 conv + batch norm where the shape changes), then ``act2``: its output is the block's
    output, so capture's default (every nonlinearity module) records each block after its
    residual add, and each block's inner ReLU ``act1``.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()
        self.act2 = nn.ReLU()

    def forward(self, x):
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet (He et al.): a 3x3 stem, three stages of basic blocks, global pool, fc.

    Stages of ``blocks`` :class:`BasicBlock` each, with ``widths`` channels (16/32/64 by
    default, two blocks each: 13 ReLUs, 0.17 M parameters); the second and third stages
    halve the spatial size. Modules: ``conv``, ``bn``, ``act`` (the stem), ``layer1..3``
    (``layer<s>.<b>.act2`` is block b's output after the residual add), ``pool``
    (global average), ``flatten`` and ``fc``, whose 64-d input is the latent space.
    Any square input size works (28x28x1 MNIST, 32x32x3 CIFAR-shaped).

    Examples
    --------
    >>> import torch
    >>> ResNet()(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    >>> ResNet(in_channels=3, image_size=32)(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 widths: tuple[int, ...] = (16, 32, 64), blocks: int = 2) -> None:
        super().__init__()
        # image_size is accepted like the other zoo models' (train passes it); the global pool
        # makes the head independent of it
        self.image_size = image_size
        self.conv = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        self.act = nn.ReLU()
        cin = widths[0]
        for s, cout in enumerate(widths, start=1):
            stride = 1 if s == 1 else 2
            stage = [BasicBlock(cin if b == 0 else cout, cout, stride if b == 0 else 1)
                     for b in range(blocks)]
            setattr(self, f"layer{s}", nn.Sequential(*stage))
            cin = cout
        self.stages = len(widths)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        for s in range(1, self.stages + 1):
            x = getattr(self, f"layer{s}")(x)
        return self.fc(self.flatten(self.pool(x)))


class VAE(nn.Module):
    """An MLP variational autoencoder (Kingma & Welling) for 28x28 images in [0, 1].

    Encoder ``fc1`` (784 -> ``hidden``) + ReLU ``act1``, then two heads ``fc_mu`` and
    ``fc_logvar`` (``hidden`` -> ``latent``); decoder ``fc3`` (``latent`` -> ``hidden``)
    + ReLU ``act3`` + ``fc4``. ``forward`` returns ``(recon, mu, logvar)``; :meth:`loss`
    turns them into the negative ELBO. In training mode ``z = mu + exp(logvar / 2) * noise``;
    in eval mode ``z = mu``, so a probe pass is deterministic.

    ``decoder="bernoulli"``: ``fc4`` gives 784 Bernoulli logits and ``recon`` is them.
    ``decoder="gaussian"``: a Gaussian per pixel with a learned variance, the decoder's
    *log-variance head* ``fc4_logvar`` (``hidden`` -> 784) beside the mean ``sigmoid(fc4)``;
    ``recon`` is ``(mean, pixel_logvar)``. On pixels that are 0 in every image (MNIST's
    border) nothing stops that variance from collapsing: the mean approaches 0 and the
    log-variance follows it down until ``exp(-logvar)`` overflows (docs/dynamics.md).

    ``logvar_clamp=c`` clamps every log-variance (the encoder's and, for the Gaussian
    decoder, the decoder's) to ``[-c, c]`` — the usual fix; ``None`` leaves them free.

    Examples
    --------
    >>> import torch
    >>> model = VAE(latent=2)
    >>> x = torch.rand(3, 1, 28, 28)
    >>> logits, mu, logvar = model(x)
    >>> logits.shape, mu.shape
    (torch.Size([3, 784]), torch.Size([3, 2]))
    >>> model.loss(x, (logits, mu, logvar)).ndim
    0
    >>> (mean, pixel_logvar), mu, logvar = VAE(latent=2, decoder="gaussian")(x)
    >>> pixel_logvar.shape
    torch.Size([3, 784])
    """

    def __init__(self, in_features: int = 784, hidden: int = 400, latent: int = 20,
                 logvar_clamp: float | None = None, decoder: str = "bernoulli") -> None:
        super().__init__()
        check_params("VAE", {"decoder": decoder}, {"decoder": OneOf("bernoulli", "gaussian")})
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(in_features, hidden)
        self.act1 = nn.ReLU()
        self.fc_mu = nn.Linear(hidden, latent)
        self.fc_logvar = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.act3 = nn.ReLU()
        self.fc4 = nn.Linear(hidden, in_features)
        if decoder == "gaussian":
            self.fc4_logvar = nn.Linear(hidden, in_features)
        self.decoder = decoder
        self.logvar_clamp = None if logvar_clamp is None else float(logvar_clamp)

    def _clamp(self, logvar: torch.Tensor) -> torch.Tensor:
        c = self.logvar_clamp
        return logvar if c is None else logvar.clamp(-c, c)

    def forward(self, x: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor]:
        h = self.act1(self.fc1(self.flatten(x)))
        mu, logvar = self.fc_mu(h), self._clamp(self.fc_logvar(h))
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        d = self.act3(self.fc3(z))
        if self.decoder == "gaussian":
            # the mean clipped to the pixel range: on a pixel that is 0 in every image it reaches 0
            # exactly, and nothing but the clamp bounds that pixel's log-variance from below
            return (self.fc4(d).clamp(0, 1), self._clamp(self.fc4_logvar(d))), mu, logvar
        return self.fc4(d), mu, logvar

    @staticmethod
    def loss(x: torch.Tensor, out: tuple[Any, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Negative ELBO per image, averaged over the batch: reconstruction + KL.

        ``x`` holds the targets in [0, 1]; ``out`` is what :meth:`forward` returned. The
        reconstruction term is the Bernoulli cross-entropy summed over pixels, or for the
        Gaussian decoder ``0.5 * sum((x - mean)^2 * exp(-logvar) + logvar + log(2 pi))``.
        """
        recon, mu, logvar = out
        target = x.reshape(len(x), -1)
        if isinstance(recon, tuple):
            mean, pixel_logvar = recon
            nll = 0.5 * torch.sum((target - mean).pow(2) * torch.exp(-pixel_logvar) + pixel_logvar
                                  + math.log(2 * math.pi))
        else:
            nll = F.binary_cross_entropy_with_logits(recon, target, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (nll + kl) / len(x)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5, "deepcnn": DeepCNN,
    "plaincnn": PlainCNN, "plaincnn-bn": partial(PlainCNN, batch_norm=True),
    "resnet": ResNet, "vae": VAE,
}
"""Zoo architectures by name; ``MODELS[arch](**model_args)`` rebuilds a checkpoint's model."""

CLASSIFIERS: tuple[str, ...] = ("lenet5", "deepcnn", "plaincnn", "plaincnn-bn", "resnet")
"""The :data:`MODELS` that map images to class logits: what ``train``, capture and the explorer expect."""
