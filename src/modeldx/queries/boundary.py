"""Boundary inputs between two classes: the smallest softmax margin between them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modeldx._params import Interval, check_params
from modeldx.engine.local import Chunk, run_reduction
from modeldx.errors import InvalidParameterError
from modeldx.queries._common import answer, item_columns, subset_for
from modeldx.queries.registry import register
from modeldx.queries.top_k_inputs import TopRows


@register("boundary-inputs", example={"class_a": 1, "class_b": 8, "k": 3})
def boundary_inputs(store, *, class_a: int, class_b: int, k: int = 20, items=None, weights=None,
                    progress: bool = False, engine=None) -> pd.DataFrame:
    """Items on the decision boundary between ``class_a`` and ``class_b``.

    An item qualifies when ``class_a`` and ``class_b`` are its two most probable
    classes; items are ranked by the margin ``p(top) - p(second)``, smallest
    first.

    Returns
    -------
    DataFrame
        ``rank, item_id, margin, p_a, p_b, split, label, pred, correct, confidence``.

    Examples
    --------
    >>> boundary_inputs(store, class_a=4, class_b=9, k=10)  # doctest: +SKIP
    """
    n = store.manifest.num_classes
    check_params("boundary_inputs", {"class_a": class_a, "class_b": class_b, "k": k},
                 {"class_a": Interval(int, 0, n - 1), "class_b": Interval(int, 0, n - 1),
                  "k": Interval(int, 1, None)})
    if class_a == class_b:
        raise InvalidParameterError(f"class_a and class_b must differ. Got {class_a} for both.")
    subset = subset_for(store, items, weights)

    def margin(chunk: Chunk) -> np.ndarray:
        probs = chunk.arrays["probs"]
        top2 = np.argsort(-probs, axis=1, kind="stable")[:, :2]
        first, second = top2[:, 0], top2[:, 1]
        ok = ((first == class_a) & (second == class_b)) | ((first == class_b) & (second == class_a))
        m = np.abs(probs[:, class_a] - probs[:, class_b]).astype(np.float64)
        m[~ok] = np.inf
        return m

    def kept(chunk: Chunk) -> np.ndarray:  # the answer's p_a, p_b travel with their rows
        return chunk.arrays["probs"][:, [class_a, class_b]]

    margins, rows, probs = run_reduction(store, TopRows(["probs"], margin, k, largest=False, carry=kept),
                                         subset, engine=engine, progress=progress)
    if probs is None:
        probs = np.zeros((0, 2))
    frame = item_columns(store, rows)
    frame.insert(0, "rank", np.arange(1, rows.size + 1))
    frame.insert(2, "margin", margins)
    frame.insert(3, "p_a", probs[:, 0])
    frame.insert(4, "p_b", probs[:, 1])
    return answer(frame, "boundary-inputs", store, subset, class_a=class_a, class_b=class_b, k=k)
