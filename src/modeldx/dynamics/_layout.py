"""What the recorder and the reader of a run share: file names, statistics, run.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from torch import nn

from modeldx._atomic import atomic_write
from modeldx.errors import RunNotFoundError

RUN_JSON = "run.json"
SERIES = "series.zarr"
PROBE = "probe.pt"
WEIGHTS = "weights"
FORMAT = "modeldx-run"
FORMAT_VERSION = 1

ACTIVATION_STATS = ("mean", "max_abs", "zero_share", "nonfinite_share")
WEIGHT_STATS = ("weight_change", "grad_norm")
STATS = ACTIVATION_STATS + WEIGHT_STATS

# Snapshots per chunk of a statistic's array: a long run writes one file per 64 snapshots and
# statistic, not one per snapshot, layer and statistic. The chunk being filled is rewritten whole
# at every snapshot, so wide arrays get fewer rows per chunk (at most CHUNK_BYTES of float32).
CHUNK_SNAPSHOTS = 64
MIN_CHUNK_SNAPSHOTS = 8
CHUNK_BYTES = 256 * 1024
# Per-step losses per chunk (8 bytes each: 32 KiB per chunk).
CHUNK_STEPS = 4096
# Arrays are created this long so that appending never rewrites their metadata; only chunks
# that were written exist on disk, and readers never look past the committed count.
MAX_ROWS = 1 << 40

STATUS_RECORDING = "recording"
STATUS_COMPLETE = "complete"


def architecture(model: nn.Module) -> dict[str, list[int]]:
    """Parameter and buffer names with their shapes: what a resumed run must match."""
    return {name: list(t.shape) for name, t in model.state_dict().items()}


def architecture_fingerprint(arch: dict[str, list[int]]) -> str:
    return hashlib.blake2b(json.dumps(arch, sort_keys=True).encode(), digest_size=16).hexdigest()


def chunk_snapshots(width: int) -> int:
    """Snapshots per chunk of an array of ``width`` float32 columns."""
    return max(MIN_CHUNK_SNAPSHOTS, min(CHUNK_SNAPSHOTS, CHUNK_BYTES // (4 * max(width, 1))))


# The Zarr arrays of series.zarr. All statistics of all layers are columns of one array (run.json
# "columns" says which): one array write per snapshot instead of one per statistic, about 1.5 ms
# each (docs/benchmarks.md).
STATS_ARRAY = "stats"  # (snapshot, column) float32
SNAPSHOTS_ARRAY = "snapshots"  # (snapshot, 2) float64: training step, loss
STEP_LOSS_ARRAY = "step_loss"  # (step,) float64: the loss of every rec.step call


def weights_file(path: Path, snapshot: int) -> Path:
    return path / WEIGHTS / f"{snapshot}.pt"


def read_meta(path: Path) -> dict[str, Any]:
    return json.loads((path / RUN_JSON).read_text())


# what a reader needs of run.json; a file without them is damaged, not an empty run
REQUIRED_META = ("format_version", "status", "snapshots", "steps_recorded", "every", "layers", "columns")


def load_meta(path: Path) -> dict[str, Any]:
    """run.json of the run at ``path``, checked: a run of this format and version, with its fields.

    Raises
    ------
    RunNotFoundError
        No run.json, a damaged one, another format, or a run written by a newer modeldx.
    """
    if not (path / RUN_JSON).is_file():
        raise RunNotFoundError(f"{path} is not a recorded run (no {RUN_JSON} in it)")
    try:
        meta = read_meta(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunNotFoundError(f"{path} is not a readable run: {RUN_JSON} is damaged ({exc})") from exc
    if not isinstance(meta, dict):
        raise RunNotFoundError(f"{path} is not a readable run: {RUN_JSON} is damaged (it holds a JSON "
                               f"{type(meta).__name__}, expected an object)")
    if meta.get("format") != FORMAT:
        raise RunNotFoundError(f"{path} is not a recorded run ({RUN_JSON} has format "
                               f"{meta.get('format')!r}, expected {FORMAT!r})")
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise RunNotFoundError(f"{path} is not a readable run: {RUN_JSON} is damaged (it lacks "
                               f"{', '.join(missing)})")
    version = meta["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunNotFoundError(f"{path} is not a readable run: {RUN_JSON} is damaged (format_version "
                               f"{version!r}, expected an integer >= 1)")
    if version > FORMAT_VERSION:
        raise RunNotFoundError(
            f"{path} was recorded by a newer modeldx (run format {version}, this one reads up to "
            f"{FORMAT_VERSION}); upgrade modeldx to read it")
    return meta


def write_meta(path: Path, meta: dict[str, Any], *, sync: bool = True) -> None:
    """Replace run.json atomically: its ``snapshots`` count is the commit point of a run.

    A snapshot's commit passes ``sync=False``: its Zarr chunks are not fsynced either, so a sync
    here would cost ~5 ms a snapshot and buy no durability; a killed process is still safe.
    """
    with atomic_write(path / RUN_JSON, "w", sync=sync) as fh:
        json.dump(meta, fh, indent=1)
