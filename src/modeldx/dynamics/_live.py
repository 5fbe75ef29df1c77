"""A recorder's snapshots as scalar streams of a LiveSession."""

from __future__ import annotations

import math

import torch

from modeldx.errors import InvalidParameterError

PREFIX = "dynamics/"


def stream_names(layers: list[str]) -> list[str]:
    """The scalar streams a recorder publishes: the loss, then per layer its summaries."""
    names = [f"{PREFIX}loss"]
    for layer in layers:
        names += [f"{PREFIX}{layer}/nonfinite", f"{PREFIX}{layer}/max_abs", f"{PREFIX}{layer}/mean"]
    return names


def check_session(session):
    """A LiveSession or a StepContext (the ``ctx`` a session's step function gets), or None."""
    if session is None:
        return None
    from modeldx.live.session import LiveSession, StepContext

    if not isinstance(session, LiveSession | StepContext):
        raise InvalidParameterError(
            f"session must be a modeldx.live.LiveSession or its step context. Got "
            f"{type(session).__name__}.")
    return session


def publish(session, step: int, loss: float, acts: dict[str, dict[str, torch.Tensor]]) -> None:
    """Log one snapshot through the session's public StepContext.scalar.

    The stream step is the session's own step when the recorder runs in its step function (so
    the recorder's points line up with the user's other streams), else the training step.
    Non-finite values are published as they are: ``<layer>/nonfinite`` is the share of the
    probe's values that are NaN or infinite (largest over the layer's neurons), and ``max_abs`` is
    the largest |activation| over the layer's neurons.
    """
    from modeldx.live.session import StepContext

    if isinstance(session, StepContext):
        ctx = session
    else:
        ctx = StepContext(session)
        ctx.step = session.step if session.running else step
    ctx.scalar(f"{PREFIX}loss", loss)
    for layer, stats in acts.items():
        nonfinite = float(stats["nonfinite_share"].max())
        ctx.scalar(f"{PREFIX}{layer}/nonfinite", nonfinite)
        peak = stats["max_abs"]
        ctx.scalar(f"{PREFIX}{layer}/max_abs", math.nan if torch.isnan(peak).any() else float(peak.max()))
        ctx.scalar(f"{PREFIX}{layer}/mean", float(stats["mean"].mean()))
