"""Langevin-dynamics activation maximization (LDAM, thesis ch. 4, Algorithm 1), batched.

Gradient ascent finds one local optimum of a neuron's activation; LDAM samples
images x with probability proportional to ``exp((f(x) + sum_i lambda_i R_i(x)) / T)``
(eq. 4.6), so many chains per neuron show the many faces of a neuron. One step,
for every chain of every neuron at once (one batch of ``neurons x chains``):

    g_t     = grad f(x_t) + l2 * (-x_t) + d * s_t grad D(x_t) + eta,  eta ~ N(0, sigma^2)
    v_{t+1} = gamma * v_t + beta * g_t
    x_{t+1} = x_t + v_{t+1}

The L2 regulariser ``R(x) = -||x||^2 / 2`` enters raw (thesis: no normalising
needed); the discriminator's gradient is normalised, because its scale can
differ from the activation's by orders of magnitude: ``s_t`` is the ratio of the
running RMS norms of ``grad f`` and ``grad D`` of each chain (RMSprop over whole
images, not pixels), so ``d = 1`` pulls as hard as the neuron. After ``burn_in``
steps every chain also keeps the running mean of its samples (sample averaging,
Fig. 4.4b/d). Every setting is an attribute the live view changes between steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from modeldx._params import Interval, check_params
from modeldx.errors import InvalidParameterError
from modeldx.ldam.targets import Target, make_target, reading

_FINITE = math.inf  # an open upper bound at infinity: any finite number, never inf


class LDAM:
    """Many Langevin chains per neuron, in one batch: rows are chains, columns are neurons.

    Parameters
    ----------
    model : nn.Module
        The classifier; never changed (weights, mode and hooks are as before after each step).
    layer, neurons, position
        The target (see :func:`~modeldx.ldam.targets.make_target`); default: the pre-softmax outputs.
    image_shape : (C, H, W)
        Input shape; 1 or 3 channels, any size.
    chains : int, default=8
        Independent chains per neuron.
    beta, gamma, sigma, l2 : float
        Step size, momentum, noise standard deviation, L2 weight (eq. 4.8 and Algorithm 1).
        The default L2 weight, 0.1, was tuned with ``benchmarks/ldam_quality.py`` (docs/ldam.md,
        "Quality"): at 1.0 the demo LeNet-5's chains of a neuron collapsed to one faint image.
    burn_in : int, default=100
        Steps before a chain's samples enter its running average.
    discriminator : OnlineDiscriminator, optional
        Algorithm 2's learned regulariser, weighted by ``disc_weight``.

    The settings in ``_limits`` are checked in the constructor and whenever
    one is set later (a live slider does): momentum ``gamma`` >= 1 diverges.
    """

    _limits = {
        "chains": Interval(int, 1, None),
        "beta": Interval(float, 0, _FINITE, "neither"),
        "gamma": Interval(float, 0, 1, "left"),
        "sigma": Interval(float, 0, _FINITE, "left"),
        "l2": Interval(float, 0, _FINITE, "left"),
        "disc_weight": Interval(float, 0, _FINITE, "left"),
        "burn_in": Interval(int, 0, None),
        "init_std": Interval(float, 0, _FINITE, "neither"),
        "rms_decay": Interval(float, 0, 1, "left"),
        "seed": Interval(int, 0, None),
    }

    def __setattr__(self, name: str, value) -> None:
        limit = self._limits.get(name)
        if limit is not None:  # every later change is checked as the constructor's values are
            check_params("LDAM", {name: value}, self._limits)
            value = limit.kind(value)
        super().__setattr__(name, value)

    def __init__(self, model: nn.Module, image_shape: Sequence[int], *, layer: str | None = None,
                 neurons: Sequence[int] | None = None, position: Sequence[int] | None = None,
                 chains: int = 8, beta: float = 0.05, gamma: float = 0.9, sigma: float = 0.05,
                 l2: float = 0.1, disc_weight: float = 0.0, discriminator=None, burn_in: int = 100,
                 init_std: float = 1.0, rms_decay: float = 0.9, seed: int = 0, device: str = "auto") -> None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
            raise InvalidParameterError("image_shape must be (channels, height, width) with 1 or 3 "
                                        f"channels. Got {tuple(image_shape)}.")
        check_params("LDAM", {"chains": chains, "beta": beta, "gamma": gamma, "sigma": sigma, "l2": l2,
                              "disc_weight": disc_weight, "burn_in": burn_in, "init_std": init_std,
                              "rms_decay": rms_decay, "seed": seed}, self._limits)
        self.model = model
        # chains live where the model is: LDAM never moves the model
        self.device = next(model.parameters()).device
        if device != "auto" and torch.device(device) != self.device:
            raise InvalidParameterError(f"device {device!r} differs from the model's {self.device}; "
                                        "move the model there first")
        self.target: Target = make_target(model, shape, layer, neurons, position)
        self.image_shape, self.chains = shape, chains
        self.beta, self.gamma, self.sigma, self.l2 = beta, gamma, sigma, l2
        self.disc_weight, self.discriminator = disc_weight, discriminator
        self.burn_in, self.init_std, self.rms_decay = burn_in, init_std, rms_decay
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.restart()

    @property
    def neurons(self) -> int:
        return len(self.target.neurons)

    def restart(self) -> None:
        """New random images (isotropic Gaussian), zero velocity, empty averages."""
        n = self.neurons * self.chains
        self.x = (torch.randn(n, *self.image_shape, generator=self.generator) * self.init_std).to(self.device)
        self.v = torch.zeros_like(self.x)
        self.mean = torch.zeros_like(self.x)
        self.rms = torch.zeros(n, 2, device=self.device)  # running mean squares of |grad f|, |grad D|
        self.t = 0
        self.averaged = 0
        self.activation = torch.zeros(n)

    _state = ("x", "v", "mean", "rms", "t", "averaged", "activation")

    def get_state(self) -> dict:
        """The chains (images, velocities, averages, RMS) and the noise generator: what a snapshot keeps."""
        state = {k: getattr(self, k) for k in self._state}
        return {**{k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()},
                "generator": self.generator.get_state()}

    def set_state(self, state: dict) -> None:
        """Put back chains from :meth:`get_state` (of an LDAM with the same target and chain count)."""
        given, own = tuple(state["x"].shape), tuple(self.x.shape)
        if given != own:
            raise InvalidParameterError(f"these chains have shape {given}; this LDAM's have {own}: "
                                        "a state of another target or chain count")
        for k in self._state:
            v = state[k]
            if torch.is_tensor(v):  # activations stay on the CPU, chains where the model is
                v = v.clone().to("cpu" if k == "activation" else self.device)
            setattr(self, k, v)
        self.generator.set_state(state["generator"])

    def step(self, steps: int = 1) -> torch.Tensor:
        """Run ``steps`` steps of Algorithm 1 for every chain; returns the last activations, one per chain."""
        with reading(self.model, self.target) as read:
            for _ in range(steps):
                x = self.x.detach().requires_grad_(True)
                f = read(x)
                (grad_f,) = torch.autograd.grad(f.sum(), x)
                g = grad_f - self.l2 * x.detach()
                if self.discriminator is not None and self.disc_weight > 0:
                    g = g + self.disc_weight * self._disc_gradient(x.detach(), grad_f)
                if self.sigma > 0:
                    noise = torch.randn(self.x.shape, generator=self.generator).to(self.device)
                    g = g + self.sigma * noise
                self.v = self.gamma * self.v + self.beta * g
                self.x = (x.detach() + self.v).detach()
                self.t += 1
                if self.t > self.burn_in:
                    self.averaged += 1
                    self.mean += (self.x - self.mean) / self.averaged
                self.activation = f.detach().cpu()
        return self.activation

    def _disc_gradient(self, x: torch.Tensor, grad_f: torch.Tensor) -> torch.Tensor:
        """The discriminator's gradient at the activation gradient's scale, one factor per chain.

        RMSprop on the *norms*: each chain keeps running mean squares of
        ``|grad f|`` and ``|grad D|`` and rescales ``grad D`` by their ratio, so a
        weight of 1 pulls as hard as the neuron does. Per-pixel RMSprop (the
        earlier version) set every pixel's step to about 1 whatever its
        gradient — the background's tiny gradients as large as the strokes' —
        so the discriminator drowned the neuron and every column became the
        same blob.
        """
        grad_d = self.discriminator.input_gradient(x)
        dims = tuple(range(1, x.ndim))
        square_d = (grad_d ** 2).sum(dims)
        square_f = (grad_f ** 2).sum(dims)
        self.rms = self.rms_decay * self.rms + (1 - self.rms_decay) * torch.stack([square_f, square_d], 1)
        # both means start at 0 and are updated together: their start-up bias cancels in the ratio
        scale = self.rms[:, 0].sqrt() / (self.rms[:, 1].sqrt() + 1e-12)
        return grad_d * scale.reshape(-1, *([1] * (x.ndim - 1)))

    def grid(self, which: str = "sample") -> np.ndarray:
        """(chains, neurons, C, H, W): current samples, or running averages (``which="average"``)."""
        if which not in ("sample", "average"):
            raise InvalidParameterError(f"which must be 'sample' or 'average'. Got {which!r}.")
        x = self.x if which == "sample" or self.averaged == 0 else self.mean
        return x.detach().cpu().numpy().reshape(self.chains, self.neurons, *self.image_shape)


def to_display(images: np.ndarray) -> np.ndarray:
    """Thesis §4.4: scale each image into [-128, 127] by its largest magnitude and add 128.

    White: strongly positive (correlates with the neuron); black: strongly
    negative; grey: uncorrelated. Returns uint8 of the same shape.
    """
    x = np.asarray(images, dtype=np.float64)
    flat = x.reshape(x.shape[0], -1) if x.ndim == 4 else x.reshape(1, -1)  # per image of a batch
    peak = np.abs(flat).max(axis=1, keepdims=True)
    scaled = flat / np.where(peak > 0, peak, 1) * 127.5 + 127.5
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8).reshape(x.shape)


def grid_image(grid: np.ndarray, pad: int = 2) -> np.ndarray:
    """One picture of a (rows, columns, C, H, W) grid: (H', W') grey or (H', W', 3) colour, uint8."""
    rows, cols, c, h, w = grid.shape
    tiles = to_display(grid.reshape(rows * cols, c, h, w)).reshape(rows, cols, c, h, w)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for r in range(rows):
        for k in range(cols):
            out[pad + r * (h + pad):pad + r * (h + pad) + h,
                pad + k * (w + pad):pad + k * (w + pad) + w] = tiles[r, k].transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def save_png(image: np.ndarray, path) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)
