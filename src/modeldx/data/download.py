"""Checksummed download of published data files into a local cache.

Nothing in modeldx downloads on its own: loaders only call this with
``download=True``. A file is written to a temporary name and renamed only after
its MD5 matches the published value, so the cache never holds a bad file.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from modeldx._atomic import atomic_write
from modeldx.errors import ChecksumError, DataNotFoundError


class _WrongChecksum(Exception):
    """A mirror served other bytes; try the next one."""


def cache_dir() -> Path:
    """``$MODELDX_CACHE``, else ``$XDG_CACHE_HOME/modeldx``, else ``~/.cache/modeldx``."""
    if os.environ.get("MODELDX_CACHE"):
        return Path(os.environ["MODELDX_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modeldx"


def file_md5(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.md5()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def download_file(
    urls: list[str], dest: Path, md5: str, *, progress: bool = True, timeout: float = 60.0
) -> Path:
    """Fetch the first of ``urls`` that answers into ``dest`` and check its MD5.

    Returns ``dest`` at once when it already exists with the right checksum.

    Examples
    --------
    >>> download_file(["https://example.org/f.gz"], Path("/tmp/f.gz"), md5="...")  # doctest: +SKIP
    """
    dest = Path(dest)
    if dest.is_file() and file_md5(dest) == md5:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            # the MD5 is checked inside the atomic write: a bad file never replaces ``dest``
            with atomic_write(dest) as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                h = hashlib.md5()
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                          disable=not progress) as bar:
                    while chunk := resp.read(1 << 16):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
                if h.hexdigest() != md5:
                    raise _WrongChecksum(f"{url}: MD5 {h.hexdigest()}, expected {md5}")
            return dest
        except _WrongChecksum as exc:
            errors.append(str(exc))
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            errors.append(f"{url}: {exc}")
    if errors and all("MD5" in e for e in errors):
        raise ChecksumError(f"no mirror served {dest.name} with the published checksum: " + "; ".join(errors))
    raise DataNotFoundError(f"could not download {dest.name}: " + "; ".join(errors))
