"""The confusion matrix and the misclassified items (from the items table alone)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.base import get_engine
from modeldx.queries._common import answer, subset_for
from modeldx.queries.registry import Evaluation, register


def _table(store, subset, engine) -> tuple[pd.DataFrame, np.ndarray]:
    # these queries read the items table alone, which the caller's process holds already (the
    # subset is resolved against it): no chunk to map, on any engine; the engine is still checked
    get_engine(engine)
    table = store.items()
    if subset is None:
        return table, np.ones(len(table))
    return table.iloc[subset.rows], subset.weights


@register("confusion-matrix", evaluate=(Evaluation("confusion-matrix", "confusion"),))
def confusion_matrix(store, *, items=None, weights=None, engine=None) -> pd.DataFrame:
    """Counts of (true class, predicted class), weighted by the subset's inclusion weights.

    Returns
    -------
    DataFrame
        Long form: ``label, pred, count`` for every pair (zeros included).

    Examples
    --------
    >>> cm = confusion_matrix(store)  # doctest: +SKIP
    >>> cm.pivot(index="label", columns="pred", values="count")
    """
    subset = subset_for(store, items, weights)
    table, w = _table(store, subset, engine)
    n = store.manifest.num_classes
    codes = table["label"].to_numpy() * n + table["pred"].to_numpy()
    counts = np.bincount(codes, weights=w, minlength=n * n)
    frame = pd.DataFrame({"label": np.repeat(np.arange(n), n), "pred": np.tile(np.arange(n), n),
                          "count": counts})
    return answer(frame, "confusion-matrix", store, subset)


@register("misclassified")
def misclassified(store, *, limit: int | None = None, label: int | None = None, items=None,
                  weights=None, engine=None) -> pd.DataFrame:
    """Misclassified items, the most confident mistakes first.

    Returns
    -------
    DataFrame
        ``item_id, split, label, pred, confidence, loss, weight`` (weight 1 on the full store).

    Examples
    --------
    >>> misclassified(store, limit=20)  # doctest: +SKIP
    """
    check_params("misclassified", {"limit": limit, "label": label},
                 {"limit": [None, Interval(int, 1, None)], "label": [None, Interval(int, 0, None)]})
    subset = subset_for(store, items, weights)
    table, w = _table(store, subset, engine)
    wrong = ~table["correct"].to_numpy()
    if label is not None:
        wrong &= table["label"].to_numpy() == label
    frame = table.loc[wrong, ["item_id", "split", "label", "pred", "confidence", "loss"]].copy()
    frame["weight"] = w[wrong]
    frame = frame.sort_values(["confidence", "item_id"], ascending=[False, True], kind="stable")
    if limit is not None:
        frame = frame.head(limit)
    return answer(frame, "misclassified", store, subset, limit=limit, label=label)
