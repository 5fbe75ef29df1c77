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
    """A LiveSession, or None."""
    if session is None:
        return None
    from modeldx.live.session import LiveSession

    if not isinstance(session, LiveSession):
        raise InvalidParameterError(
            f"session must be a modeldx.live.LiveSession. Got {type(session).__name__}.")
    return session


def stream_step(session, step: int) -> int:
    """The step a snapshot taken now is published at: the session's own step while it runs (so
    the recorder's points line up with the user's other streams), else the training step."""
    return session.step if session.running else step


def publish(session, step: int, loss: float, acts: dict[str, dict[str, torch.Tensor]]) -> None:
    """Log one snapshot at stream step ``step`` (see :func:`stream_step`) through the session's
    public writer, ``StepContext.scalar``.

    Non-finite values are published as they are: ``<layer>/nonfinite`` is the share of the
    probe's values that are NaN or infinite (largest over the layer's neurons), and ``max_abs`` is
    the largest |activation| over the layer's neurons.
    """
    from modeldx.live.session import StepContext

    # a context of its own: a background writer must not move the step of the session's ctx
    ctx = StepContext(session)
    ctx.step = step
    ctx.scalar(f"{PREFIX}loss", loss)
    for layer, stats in acts.items():
        nonfinite = float(stats["nonfinite_share"].max())
        ctx.scalar(f"{PREFIX}{layer}/nonfinite", nonfinite)
        peak = stats["max_abs"]
        ctx.scalar(f"{PREFIX}{layer}/max_abs", math.nan if torch.isnan(peak).any() else float(peak.max()))
        ctx.scalar(f"{PREFIX}{layer}/mean", float(stats["mean"].mean()))
