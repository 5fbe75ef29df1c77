"""What the recorder and the reader of a run share: file names, statistics, run.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from torch import nn

from modeldx._atomic import atomic_write

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


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    """Replace run.json atomically: its ``snapshots`` count is the commit point of a run."""
    with atomic_write(path / RUN_JSON, "w") as fh:
        json.dump(meta, fh, indent=1)
