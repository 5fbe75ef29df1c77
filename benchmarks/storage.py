"""Storage per encoding, and how much 8-bit (and float16) storage changes the headline answer.

    .venv/bin/python benchmarks/storage.py

Captures the MNIST model over all 70k items in float32, float16 and uint8, prints the bytes of
each against float32, and the share of (layer, class, correct) groups whose top-10 neuron set
differs from float32's. Goal: uint8 changes the answer in <= 1% of groups.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from _common import machine, mnist_all, mnist_model

from modeldx import capture
from modeldx.data import as_dataset
from modeldx.queries import top_k_neurons


def groups(frame):
    """(layer, label, correct) -> the top-10 neurons in rank order."""
    return {key: tuple(g.sort_values("rank").neuron)
            for key, g in frame.groupby(["layer", "label", "correct"])}


def main() -> None:
    model = mnist_model()
    data = as_dataset(mnist_all())
    work = Path(tempfile.mkdtemp(prefix="modeldx-storage-"))
    try:
        stores = {enc: capture(model, data, work / enc, encoding=enc, progress=False)
                  for enc in ("float32", "float16", "uint8")}
        base_bytes = sum(stores["float32"].stored_bytes(f"acts/{n}") for n in stores["float32"].layers)
        answers = {enc: {by: groups(top_k_neurons(st, k=10, by=by)) for by in ("max", "mean")}
                   for enc, st in stores.items()}
        wide = {n for n in stores["float32"].layers if stores["float32"].neurons(n) > 10}
        print(f"machine: {machine()}")
        print(f"{'encoding':9s} {'acts bytes':>12s} {'vs float32':>10s} {'store bytes':>12s}   "
              "top-10 answers that differ from float32's, by max | by mean: set / order")
        for enc, st in stores.items():
            acts = sum(st.stored_bytes(f"acts/{n}") for n in st.layers)
            cells = []
            for by in ("max", "mean"):
                ref, got = answers["float32"][by], answers[enc][by]
                keys = [g for g in ref if g[0] in wide]  # layers with > k neurons: the set can change
                sets = sum(set(ref[g]) != set(got[g]) for g in keys) / len(keys)
                order = sum(ref[g] != got[g] for g in keys) / len(keys)
                cells.append(f"{sets:.1%} / {order:.1%}")
            print(f"{enc:9s} {acts:12,d} {acts / base_bytes:10.2f} {st.stored_bytes():12,d}   "
                  f"{' | '.join(cells)}  (of {len(keys)} groups in {', '.join(sorted(wide))})")
        raw = sum(stores["float32"].neurons(n) for n in stores["float32"].layers) * len(data) * 4
        print(f"uncompressed float32 activations: {raw:,d} bytes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
