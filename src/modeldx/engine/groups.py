"""The groups of the headline query: items by (true class, correct), one integer code each.

Shared by the queries that answer per group and by sampling, which records each
group's size over all items so that a sample's answers can be scaled back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def n_groups(num_classes: int) -> int:
    """How many (true class, correct) groups a model with ``num_classes`` classes has."""
    return 2 * num_classes


def group_code(label, correct) -> np.ndarray:
    """The group of each item: ``2 * true class + correct`` (arrays or scalars).

    >>> group_code(np.array([0, 3]), np.array([True, False])).tolist()
    [1, 6]
    """
    return np.asarray(label) * 2 + np.asarray(correct).astype(int)


def group_codes(items: pd.DataFrame) -> np.ndarray:
    """The group of each row of an items table (columns ``label`` and ``correct``)."""
    return group_code(items["label"].to_numpy(), items["correct"].to_numpy())


def group_sizes(items: pd.DataFrame, num_classes: int) -> np.ndarray:
    """Items per group, for every group (0 where a group has none)."""
    return np.bincount(group_codes(items), minlength=n_groups(num_classes))
