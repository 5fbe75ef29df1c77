"""Capture on Dask: the MNIST LeNet-5 over all 70k MNIST items, in this process and on a local
Dask cluster of 1 and 2 worker processes, side by side in one run (rounds interleaved).

    .venv/bin/python benchmarks/dask_capture.py [--repeat 3] [--batch-size 500]

Every side runs torch with one thread per process, so that 1 worker vs local is the Dask path's
overhead (shipping model and data, scheduling, the coordinator's plan and finalize) and 2 workers
vs local the speed-up of a second process. The clusters are started before timing (their start is
printed apart); each store is checked equal to the local one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, mnist_all, mnist_model

from modeldx import capture, open_store
from modeldx.engine.cluster import connect


def _one_thread() -> int:
    torch.set_num_threads(1)
    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, data = mnist_model(), mnist_all()
    print(machine())
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine)")
    tmp = Path(tempfile.mkdtemp(prefix="modeldx-dask-bench-"))
    kw = dict(batch_size=args.batch_size, progress=False, overwrite=True, device="cpu")
    times: dict[str, list[float]] = {"local": [], "dask-1": [], "dask-2": []}
    try:
        start = time.perf_counter()
        with connect(workers=1) as c1, connect(workers=2) as c2:
            print(f"two local clusters (1 + 2 workers) started in {time.perf_counter() - start:.1f} s")
            for c in (c1, c2):
                c.run(_one_thread)
            sides = {"local": {}, "dask-1": {"engine": "dask", "scheduler": c1.scheduler.address},
                     "dask-2": {"engine": "dask", "scheduler": c2.scheduler.address}}
            for r in range(args.repeat):
                for name, extra in sides.items():
                    t = time.perf_counter()
                    st = capture(model, data, tmp / name, **kw, **extra)
                    times[name].append(time.perf_counter() - t)
                    if name != "local" and r == 0:
                        ref = open_store(tmp / "local")
                        same = all(np.array_equal(st.read(n), ref.read(n)) for n in ref.array_names())
                        same = same and st.items().equals(ref.items())
                        print(f"{name}: store bit-identical to local: {same}")
                print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio1 = [d / loc for d, loc in zip(times["dask-1"], times["local"], strict=True)]
    ratio2 = [loc / d for d, loc in zip(times["dask-2"], times["local"], strict=True)]
    print("items: 70000, median s: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
    print(f"dask 1 worker / local (overhead): {statistics.median(ratio1):.2f}x "
          f"(rounds {', '.join(f'{x:.2f}' for x in ratio1)})")
    print(f"local / dask 2 workers (speed-up): {statistics.median(ratio2):.2f}x "
          f"(rounds {', '.join(f'{x:.2f}' for x in ratio2)})")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
