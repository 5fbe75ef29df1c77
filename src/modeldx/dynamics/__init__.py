"""Training dynamics (DGMTracker, issue 12): credit assignment over snapshots."""

from modeldx.dynamics.credit import LRP_MODULES, contribution_series, contributions

__all__ = ["LRP_MODULES", "contribution_series", "contributions"]
