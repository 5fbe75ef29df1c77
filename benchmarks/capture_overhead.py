"""Capture overhead: every layer of a LeNet-5 over 70k items written to a store, against a plain
inference pass over the same tensors in the same batches, side by side in one run, for every kind
of data set capture reads:

- ``arrays``: modeldx's own MNIST arrays (train + test, normalised per batch);
- ``tensor-dataset``: a user's ``TensorDataset`` of 70,000 random 1x28x28 inputs;
- ``getitems``: the same tensors behind torch's batched ``__getitems__`` protocol;
- ``map-style``: the same tensors behind a plain ``__getitem__``, one item at a time;
- ``loader-workers``: that map-style data set in a ``DataLoader`` with ``--workers`` workers.

The reference for ``arrays`` reads its batches with ``get_batch`` (what the trainer does); for the
others it slices the tensors in memory: the fastest a user could feed the model. For
``loader-workers`` a second reference is printed beside it: the user's own inference loop over the
same ``DataLoader``, which pays for the loader's worker processes as capture does.

    .venv/bin/python benchmarks/capture_overhead.py [--device cpu|cuda] [--repeat 3] [--kinds ...]

Goal: capture / inference <= 1.3 for every kind, on CPU.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import machine, mnist_all, mnist_model, timed
from torch.utils.data import DataLoader, Dataset, TensorDataset

from modeldx import capture
from modeldx.data import as_dataset

KINDS = ("arrays", "tensor-dataset", "getitems", "map-style", "loader-workers")


class MapStyle(Dataset):
    """A user's data set read one item at a time."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return self.x[i], int(self.y[i])


class Batched(MapStyle):
    """The same, also speaking torch's batched protocol (a list of items per list of ids)."""

    def __getitems__(self, ids: list[int]):
        xs, ys = self.x[ids], self.y[ids].tolist()
        return list(zip(xs.unbind(0), ys, strict=True))


def plain_arrays(model, data, batch_size: int, device) -> np.ndarray:
    """What a user runs without modeldx on modeldx's arrays: batches through the model."""
    preds = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x, _ = data.get_batch(np.arange(start, min(start + batch_size, len(data))))
            preds.append(model(x.to(device)).argmax(1).cpu())
    return torch.cat(preds).numpy()


def plain_tensors(model, x: torch.Tensor, batch_size: int, device) -> np.ndarray:
    """Plain inference over tensors in memory, sliced in batches."""
    preds = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            preds.append(model(x[start:start + batch_size].to(device)).argmax(1).cpu())
    return torch.cat(preds).numpy()


def plain_loader(model, loader: DataLoader, device) -> np.ndarray:
    """The user's own loop over their DataLoader: what inference costs them without modeldx."""
    preds = []
    with torch.no_grad():
        for xb, _ in loader:
            preds.append(model(xb.to(device)).argmax(1).cpu())
    return torch.cat(preds).numpy()


def fetch_seconds(data, batch_size: int) -> tuple[float, float]:
    """Seconds to read every item in batches: item by item (``__getitem__`` and stacking, what
    capture did before it read batches whole) and as capture reads them now (``get_batch``)."""
    ds = as_dataset(data)
    base = data.dataset if isinstance(data, DataLoader) else data
    batches = [np.arange(s, min(s + batch_size, len(ds))) for s in range(0, len(ds), batch_size)]

    def by_item():
        for ids in batches:
            items = [base[int(i)] for i in ids]
            torch.stack([torch.as_tensor(x) for x, _ in items])
            torch.tensor([int(y) for _, y in items])

    def by_batch():
        for ids in batches:
            ds.get_batch(ids)

    return timed(by_item, 1)[0], timed(by_batch, 1)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads (1 on a shared machine)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of loader-workers")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--model", default="lenet5", choices=["lenet5", "deepcnn"],
                        help="deepcnn: a seeded, untrained DeepCNN (speed does not depend on weights)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.model == "lenet5":
        model = mnist_model()
    else:
        from modeldx.zoo import DeepCNN

        torch.manual_seed(0)
        model = DeepCNN().eval()
    model = model.to(device)
    arrays = as_dataset(mnist_all())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(len(arrays), 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (len(arrays),), generator=g)
    data = {
        "arrays": arrays,
        "tensor-dataset": TensorDataset(x, y),
        "getitems": Batched(x, y),
        "map-style": MapStyle(x, y),
        "loader-workers": DataLoader(MapStyle(x, y), batch_size=args.batch_size,
                                     num_workers=args.workers),
    }

    def plain(kind: str):
        if kind == "arrays":
            return plain_arrays(model, arrays, args.batch_size, device)
        return plain_tensors(model, x, args.batch_size, device)

    work = Path(tempfile.mkdtemp(prefix="modeldx-bench-"))
    print(f"machine: {machine()}")
    print(f"model: {args.model}; items: {len(arrays):,}; batches of {args.batch_size}; device {device}; "
          f"{args.repeat} interleaved runs per kind, medians")
    try:
        ratios = {}
        for kind in args.kinds:
            plain(kind)  # warm-up
            t_plain, t_cap, t_loop = [], [], []
            for _ in range(args.repeat):  # interleaved, so drifts of a shared machine hit both alike
                t_plain.append(timed(lambda kind=kind: plain(kind), 1)[0])
                t, store = timed(lambda kind=kind: capture(
                    model, data[kind], work / kind, device=device, overwrite=True,
                    batch_size=args.batch_size, progress=False), 1)
                t_cap.append(t)
                if kind == "loader-workers":
                    t_loop.append(timed(lambda k=kind: plain_loader(model, data[k], device), 1)[0])
            p, c = statistics.median(t_plain), statistics.median(t_cap)
            ratios[kind] = c / p
            runs = (f"plain {', '.join(f'{t:.2f}' for t in t_plain)}; "
                    f"capture {', '.join(f'{t:.2f}' for t in t_cap)}")
            print(f"{kind:15s} plain {p:6.2f} s  capture {c:6.2f} s  ratio {c / p:5.2f}x "
                  f"(goal <= 1.3x)  [{runs}]  {store.stored_bytes() / 1e6:.1f} MB, "
                  f"{sum(store.neurons(n) for n in store.layers)} neurons/item", flush=True)
            if t_loop:
                loop = statistics.median(t_loop)
                print(f"{'':15s} the user's own loop over the same DataLoader {loop:6.2f} s "
                      f"[{', '.join(f'{t:.2f}' for t in t_loop)}]: capture / that loop {c / loop:5.2f}x",
                      flush=True)
            shutil.rmtree(work / kind, ignore_errors=True)
            if kind != "arrays":
                one, whole = fetch_seconds(data[kind], args.batch_size)
                print(f"{'':15s} reading all items: item by item {one:5.2f} s, as capture reads them "
                      f"{whole:5.2f} s (in line, no overlap)", flush=True)
        worst = max(ratios, key=ratios.get)
        print(f"worst: {worst} {ratios[worst]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
