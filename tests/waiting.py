"""Waiting for a worker thread in tests."""

import time


def until(predicate, timeout: float = 5.0) -> bool:
    """Poll instead of sleeping a fixed time: a loaded CI machine may be slow to step."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.002)
    return True
