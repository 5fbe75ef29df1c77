"""Hooks that exist only while a capture runs and always come off."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn
from torch.utils.hooks import RemovableHandle


class HookGroup:
    """A set of hook handles removed together; :meth:`remove` may be called any number of times."""

    def __init__(self) -> None:
        self._handles: list[RemovableHandle] = []

    def add(self, handle: RemovableHandle) -> RemovableHandle:
        self._handles.append(handle)
        return handle

    def remove(self) -> None:
        while self._handles:
            self._handles.pop().remove()

    def __len__(self) -> int:
        return len(self._handles)


@contextlib.contextmanager
def hook_group() -> Iterator[HookGroup]:
    """``with hook_group() as hooks: hooks.add(m.register_forward_hook(f))`` — removed on exit."""
    group = HookGroup()
    try:
        yield group
    finally:
        group.remove()


def hook_count(model: nn.Module) -> int:
    """Forward, pre-forward and backward hooks on all of ``model``'s modules (0 after a capture)."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_forward_hooks_with_kwargs", {}))
        for m in model.modules()
    )
