"""Live sessions: steer a running training loop with controls and watch its streams, in a browser."""

from modeldx.live.controls import Button, Choice, Slider
from modeldx.live.history import ScalarHistory, ValueHistory
from modeldx.live.session import Event, LiveSession, StepContext, Subscription

__all__ = ["Button", "Choice", "Slider", "ScalarHistory", "ValueHistory", "Event", "LiveSession",
           "StepContext", "Subscription"]
