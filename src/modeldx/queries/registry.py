"""The query registry: a stable name for each query function, and what else knows about it.

A new query is one module and one ``@register(...)`` line: the CLI, the
sampling evaluation (``evaluate=``) and the conformance test (``example=``) read
this registry and need no edit of their own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modeldx.errors import DuplicateNameError, UnknownNameError

QUERIES: dict[str, QueryInfo] = {}


@dataclass(frozen=True)
class Evaluation:
    """One entry of the sampling evaluation's workload for a query.

    ``compare`` names how an approximate answer is scored against the exact one
    (a key of :data:`modeldx.evaluate.workload.COMPARISONS`); ``params`` are the
    query's settings (``k`` comes from the sweep where the query takes one);
    ``exact``, where set, names the workload entry whose exact answer this one is
    scored against (a confidence is checked against the plain top-k).
    """

    name: str
    compare: str
    params: dict[str, Any] = field(default_factory=dict)
    exact: str | None = None


@dataclass(frozen=True)
class QueryInfo:
    name: str
    func: Callable
    summary: str
    example: dict[str, Any] = field(default_factory=dict)
    evaluations: tuple[Evaluation, ...] = ()

    def parameters(self) -> dict[str, inspect.Parameter]:
        """Keyword parameters a caller may set (everything but the store and the subset)."""
        skip = {"store", "items", "weights", "engine", "progress"}
        return {n: p for n, p in inspect.signature(self.func).parameters.items() if n not in skip}


def register(name: str, *, example: dict[str, Any] | None = None, evaluate: tuple[Evaluation, ...] = ()):
    """Function decorator: ``@register("top-k-neurons")``.

    ``example``: settings for a small, quick run on any store (the conformance
    test fills layer, neuron, item and class arguments from the store it uses).
    ``evaluate``: how the sampling evaluation scores the query, if it does.
    """

    def add(func: Callable) -> Callable:
        if name in QUERIES:
            raise DuplicateNameError(f"a query named {name!r} is already registered")
        doc = (func.__doc__ or "").strip().splitlines()
        QUERIES[name] = QueryInfo(name, func, doc[0] if doc else "", dict(example or {}), tuple(evaluate))
        return func

    return add


def available() -> list[str]:
    """Names of the registered queries."""
    return sorted(QUERIES)


def get(name: str) -> QueryInfo:
    if name not in QUERIES:
        import difflib

        close = difflib.get_close_matches(name, QUERIES, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(f"no query named {name!r}.{hint} Queries: {', '.join(available())}")
    return QUERIES[name]
