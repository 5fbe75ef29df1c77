"""What the store's integrity checks cost: capture and the headline query, with and without.

    .venv/bin/python benchmarks/store_checksums.py [--repeat 3] [--chunk-items N]

"With" is the store as written now: a CRC32C after zstd on every chunk, every chunk written
(also all-zero ones), a read checking that each chunk file it touches exists and that the
store was not replaced since it was opened. "Without" is the same code with the CRC left out
of the codec pipeline and reads as for a format-1 store (no chunk-file check, no store-id
check): what modeldx did before. Runs are interleaved so that drifts of a shared machine hit
both alike; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from _common import machine, mnist_all, mnist_model
from zarr.codecs import ZstdCodec

import modeldx.store.store as store_module
from modeldx import capture, open_store
from modeldx.queries import top_k_neurons


@contextmanager
def checks(on: bool):
    saved = store_module.COMPRESSORS, store_module.Store.check_current
    if not on:
        store_module.COMPRESSORS = (ZstdCodec(level=1),)
        store_module.Store.check_current = lambda self: None
    try:
        yield
    finally:
        store_module.COMPRESSORS, store_module.Store.check_current = saved


def clock(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-items", type=int, default=None,
                        help="items per chunk (default: capture's auto, 10,000 here)")
    args = parser.parse_args()
    model, data = mnist_model(), mnist_all()
    work = Path(tempfile.mkdtemp(prefix="modeldx-checks-"))
    paths = {True: work / "with", False: work / "without"}
    times: dict[str, list[float]] = {f"{what} {on}": [] for what in ("capture", "query") for on in paths}
    try:
        print(f"machine: {machine()}")
        for _ in range(args.repeat):
            for on, path in paths.items():
                with checks(on):
                    times[f"capture {on}"].append(clock(lambda p=path: capture(
                        model, data, p, overwrite=True, progress=False, device="cpu",
                        chunk_items=args.chunk_items or "auto")))
        meta = json.loads((paths[False] / "manifest.json").read_text())
        (paths[False] / "manifest.json").write_text(json.dumps({**meta, "format_version": 1}))
        stores = {on: open_store(path) for on, path in paths.items()}
        answers = {}
        for _ in range(5 * args.repeat):  # queries are short: more runs against the noise
            for on, st in stores.items():
                with checks(on):
                    times[f"query {on}"].append(clock(lambda s=st, o=on: answers.__setitem__(
                        o, top_k_neurons(s, k=10))))
        assert answers[True].equals(answers[False]), "the two stores answer differently"
        verify = clock(lambda: stores[True].verify())
        for what in ("capture", "query"):
            off, on = (statistics.median(times[f"{what} {x}"]) for x in (False, True))
            print(f"{what:8s} without {off:6.2f} s  with {on:6.2f} s  ratio {on / off:.3f}x  "
                  f"(runs: {[round(t, 2) for t in times[f'{what} False']]} / "
                  f"{[round(t, 2) for t in times[f'{what} True']]})")
        size = {on: st.stored_bytes() / 1e6 for on, st in stores.items()}
        print(f"on disk  without {size[False]:.1f} MB  with {size[True]:.1f} MB; "
              f"`modeldx check` (read every chunk) {verify:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
