"""Models that train under live control: interactive k-means first."""

from modeldx.interactive.kmeans import InteractiveKMeans, StepResult

__all__ = ["InteractiveKMeans", "StepResult"]
