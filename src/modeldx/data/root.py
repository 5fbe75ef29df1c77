"""Where data sets live: an explicit argument, then ``MODELDX_DATA``, then ``./data``."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MODELDX_DATA"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root.

    Parameters
    ----------
    root
        An explicit folder. When ``None``, the environment variable
        ``MODELDX_DATA`` is used, and when that is unset, ``./data``.

    Examples
    --------
    >>> data_root("/srv/datasets")
    PosixPath('/srv/datasets')
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path("data")
