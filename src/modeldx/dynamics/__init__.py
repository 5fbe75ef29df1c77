"""Training dynamics: series per neuron over snapshots, and how to show them."""

from modeldx.dynamics.polylines import (
    blue_noise_sample,
    clutter,
    outliers_kept,
    polyline_distance,
    true_outliers,
)

__all__ = ["blue_noise_sample", "clutter", "outliers_kept", "polyline_distance", "true_outliers"]
