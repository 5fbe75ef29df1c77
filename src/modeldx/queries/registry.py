"""The query registry: a stable name for each query function (used by the CLI)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from modeldx.errors import DuplicateNameError, UnknownNameError

QUERIES: dict[str, QueryInfo] = {}


@dataclass(frozen=True)
class QueryInfo:
    name: str
    func: Callable
    summary: str

    def parameters(self) -> dict[str, inspect.Parameter]:
        """Keyword parameters a caller may set (everything but the store and the subset)."""
        skip = {"store", "items", "weights", "engine", "progress"}
        return {n: p for n, p in inspect.signature(self.func).parameters.items() if n not in skip}


def register(name: str):
    """Class/function decorator: ``@register("top-k-neurons")``."""

    def add(func: Callable) -> Callable:
        if name in QUERIES:
            raise DuplicateNameError(f"a query named {name!r} is already registered")
        doc = (func.__doc__ or "").strip().splitlines()
        QUERIES[name] = QueryInfo(name, func, doc[0] if doc else "")
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
