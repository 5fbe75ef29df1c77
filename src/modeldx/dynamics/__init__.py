"""Training dynamics (DGMTracker): series per neuron over snapshots, how to show them, and credit
assignment between neurons."""

from modeldx.dynamics._layout import STATS
from modeldx.dynamics.credit import LRP_MODULES, contribution_series, contributions
from modeldx.dynamics.localize import Failure, localize, upstream
from modeldx.dynamics.polylines import (
    blue_noise_sample,
    clutter,
    outliers_kept,
    polyline_distance,
    true_outliers,
)
from modeldx.dynamics.recorder import Recorder, record
from modeldx.dynamics.run import Run, open_run

__all__ = ["LRP_MODULES", "contribution_series", "contributions", "blue_noise_sample", "clutter",
           "outliers_kept", "polyline_distance", "true_outliers", "STATS", "Recorder", "record", "Run",
           "open_run", "Failure", "localize", "upstream"]
