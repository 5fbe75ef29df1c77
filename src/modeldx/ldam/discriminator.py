"""Algorithm 2: a discriminator trained online against real images, used as LDAM's regulariser.

The discriminator has the classifier's input size and a similar shape (two
conv layers, one linear). It is trained with chains of its own that follow
Algorithm 2: start from noise, take LDAM steps until the discriminator calls
them real (D(x) > 0.9, or a step limit), then one update on half a batch of
these samples labelled fake and half a batch of real images labelled real, and
start again. The chains the user watches are separate and run on: training the
regulariser never resets what is on the screen.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Discriminator(nn.Module):
    """conv 16 -> pool -> conv 32 -> pool -> linear 1, for (C, H, W) inputs; outputs a logit."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 5, padding=2), nn.LeakyReLU(0.2), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Linear(32 * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))[:, 0]


class OnlineDiscriminator:
    """A discriminator, its optimizer and the real images it learns from.

    ``input_gradient(x)`` is what LDAM adds (before RMSprop normalising): the
    gradient of the logit, whose direction is that of D(x) itself.
    """

    def __init__(self, real_images: torch.Tensor, *, lr: float = 1e-3, batch_size: int = 64,
                 threshold: float = 0.9, max_wait: int = 200, seed: int = 0, device="cpu") -> None:
        self.real = torch.as_tensor(real_images, dtype=torch.float32)
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):  # seeded weights, and the caller's global RNG left as it was
            torch.manual_seed(seed)
            net = Discriminator(self.real.shape[1])
        self.net = net.to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))
        self.batch_size, self.threshold, self.max_wait = batch_size, threshold, max_wait
        self.rng = np.random.default_rng(seed)
        self.updates = 0
        self.last_loss = float("nan")

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(self.net(x.to(self.device))).cpu()

    def input_gradient(self, x: torch.Tensor) -> torch.Tensor:
        here = x.detach().to(self.device).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.net(here).sum(), here)
        return grad.to(x.device)  # back where the chains are

    def update(self, fakes: torch.Tensor) -> float:
        """One step of Algorithm 2's line 9: fakes labelled 0, as many real images labelled 1."""
        half = min(self.batch_size // 2, fakes.shape[0])
        fakes = fakes[:half].detach().to(self.device)
        reals = self.real[self.rng.integers(0, len(self.real), half)].to(self.device)
        logits = self.net(torch.cat([fakes, reals]))
        labels = torch.cat([torch.zeros(half), torch.ones(half)]).to(self.device)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.updates += 1
        self.last_loss = loss.item()
        return self.last_loss


class DiscriminatorTrainer:
    """Algorithm 2's loop, a step at a time: its own LDAM chains, restarted after each update."""

    def __init__(self, ldam_factory, discriminator: OnlineDiscriminator) -> None:
        self.disc = discriminator
        self.chains = ldam_factory()  # an LDAM over the same targets whose regulariser is this discriminator
        self.waited = 0

    def step(self) -> bool:
        """One LDAM step of the training chains; returns True when it updated the discriminator."""
        self.chains.step()
        self.waited += 1
        real_enough = float(self.disc.probability(self.chains.x).mean()) > self.disc.threshold
        if not real_enough and self.waited < self.disc.max_wait:
            return False
        self.disc.update(self.chains.x)
        self.chains.restart()
        self.waited = 0
        return True
