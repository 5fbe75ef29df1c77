"""Training-dynamics recording overhead: LeNet-5 training on MNIST, the same loop unrecorded and
recorded (one snapshot per 10 steps, probe batch of 256 test items), alternating repeats; then
the bytes per snapshot on disk and how they grow with the number of neurons (MLPs of 3 widths).

    .venv/bin/python benchmarks/recording_overhead.py [--steps 200] [--repeat 5] [--threads 1]

Goal: recorded / unrecorded training time <= 1.10.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import machine, mnist_all
from torch import nn

from modeldx.dynamics import open_run, record
from modeldx.zoo.models import LeNet5

BATCH = 128  # modeldx.zoo.train's recipe: Adam, batch 128


def batches(data, steps: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same ``steps`` training batches for every repeat, loaded before timing."""
    order = np.random.default_rng(seed).permutation(len(data))
    return [data.get_batch(np.sort(order[i * BATCH:(i + 1) * BATCH])) for i in range(steps)]


def train_loop(model: nn.Module, loader, rec=None) -> tuple[float, float]:
    """The user's loop; the recorder adds one line. Returns wall and CPU seconds (the process's,
    all threads: the background writer's work counts)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    cpu = time.process_time()
    start = time.perf_counter()
    for x, y in loader:
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = loss.item()
        if rec is not None:
            rec.step(loss=value)
    if rec is not None:
        rec.close()
    return time.perf_counter() - start, time.process_time() - cpu


def fresh(factory, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return factory()


def run_bytes(path: Path) -> tuple[int, int]:
    """Bytes of the statistics (series.zarr: every array, its metadata) and of the kept weights;
    run.json and probe.pt are once per run."""
    weights = sum(p.stat().st_size for p in (path / "weights").glob("*.pt"))
    series = sum(p.stat().st_size for p in (path / "series.zarr").rglob("*") if p.is_file())
    return series, weights


def mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width),
                         nn.ReLU(), nn.Linear(width, 10))


def growth(data, probe, work: Path, snapshots: int) -> list[tuple[str, int, float, float, float]]:
    """(model, neurons, statistics bytes per snapshot, weights bytes per snapshot, CPU ms per
    snapshot without weights)."""
    rows = []
    models = [("LeNet-5", LeNet5)] + [(f"MLP {w}-{w}", lambda w=w: mlp(w)) for w in (128, 512, 2048)]
    for name, factory in models:
        model = fresh(factory)
        path = work / f"growth-{name.replace(' ', '')}"
        rec = record(model, probe, path, every=1, weights=False, overwrite=True)
        train_loop(model, batches(data, snapshots, seed=1), rec)
        timing = record(model, probe, work / "timing", every=1, weights=False, overwrite=True)
        cpu = time.process_time()
        for _ in range(16):
            timing.step(loss=0.0)
        ms = (time.process_time() - cpu) / 16 * 1e3
        timing.close()
        run = open_run(path)
        neurons = sum(run.neurons(layer) for layer in run.layers)
        stats_bytes = run_bytes(path)[0] / run.n_snapshots
        # one snapshot with weights: a state dict's size does not depend on training
        rec = record(model, probe, path, every=1, overwrite=True)
        rec.step(loss=0.0)
        rec.close()
        rows.append((name, neurons, stats_bytes, run_bytes(path)[1], ms))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--growth-snapshots", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = mnist_all()
    loader = batches(data["train"], args.steps)
    probe = data["test"].get_batch(np.arange(256))[0]
    work = Path(tempfile.mkdtemp(prefix="modeldx-bench-"))
    print(machine())
    print(f"LeNet-5, Adam, batch {BATCH}, {args.steps} steps per loop, snapshot every "
          f"{args.every} steps, probe {tuple(probe.shape)}")
    try:
        train_loop(fresh(LeNet5), loader[:20])  # warm-up
        modes = ("unrecorded", "recorded", "recorded, background=True")
        wall: dict[str, list[float]] = {m: [] for m in modes}
        cpu: dict[str, list[float]] = {m: [] for m in modes}
        for i in range(args.repeat):  # alternating, so drifts of a shared machine hit all alike
            for mode in modes:
                model = fresh(LeNet5)
                rec = None if mode == "unrecorded" else record(
                    model, probe, work / "run", every=args.every, overwrite=True, arch="lenet5",
                    background=mode.endswith("True"))
                w, c = train_loop(model, loader, rec)
                wall[mode].append(w)
                cpu[mode].append(c)
            print(f"  repeat {i}: " + ", ".join(f"{m} {wall[m][-1]:.2f} s" for m in modes))
        base = np.array(wall["unrecorded"])
        base_cpu = np.array(cpu["unrecorded"])
        for mode in modes[1:]:
            ratios = np.array(wall[mode]) / base
            cpu_ratios = np.array(cpu[mode]) / base_cpu
            print(f"{mode}: wall ratio median {np.median(ratios):.3f} (min {ratios.min():.3f}, max "
                  f"{ratios.max():.3f}); CPU-time ratio median {np.median(cpu_ratios):.3f}; goal <= 1.10")
        print(f"unrecorded wall median {np.median(base):.2f} s")
        run = open_run(work / "run")
        stats_bytes, weights_bytes = run_bytes(work / "run")
        print(f"bytes per snapshot ({run.n_snapshots} snapshots): statistics "
              f"{stats_bytes / run.n_snapshots:,.0f}, with weights "
              f"{(stats_bytes + weights_bytes) / run.n_snapshots:,.0f}; probe.pt "
              f"{(work / 'run' / 'probe.pt').stat().st_size:,} once per run")
        print(f"bytes per snapshot by size ({args.growth_snapshots} snapshots, every step):")
        print("  model            neurons   statistics B/snapshot   weights B/snapshot   CPU ms/snapshot")
        for name, neurons, sb, wb, ms in growth(data["train"], probe, work, args.growth_snapshots):
            print(f"  {name:15s} {neurons:8d} {sb:20,.0f} {wb:20,.0f} {ms:17.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
