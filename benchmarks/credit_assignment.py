"""Time of credit assignment for one target neuron over 100 snapshots (issue 12).

The demo's LeNet-5 (``modeldx-demo/lenet5-mnist.pt``), 100 snapshots made by
perturbing its weights (1% Gaussian noise, so each snapshot differs), a probe
batch of 64 MNIST test images; target: output logit 3 (``fc3``), sources
``act3`` (120 neurons, LRP through fc3 only) and ``act1`` (6 channels, the
longest chain: pool1, conv2, act2, pool2, flatten, fc1, act3, fc2, act4, fc3).
Run: ``.venv/bin/python benchmarks/credit_assignment.py``.
"""

from __future__ import annotations

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from _common import REPO, machine, timed  # noqa: E402

from modeldx.data import load_mnist  # noqa: E402
from modeldx.dynamics import contribution_series  # noqa: E402
from modeldx.zoo import load_checkpoint  # noqa: E402

SNAPSHOTS = 100
PROBE = 64


def main() -> None:
    torch.set_num_threads(1)
    print(machine())
    model, _ = load_checkpoint(REPO / "modeldx-demo" / "lenet5-mnist.pt")
    data = load_mnist("test", root=REPO / "data")
    probe = torch.stack([torch.as_tensor(data[i][0]) for i in range(PROBE)]).float()
    torch.manual_seed(0)
    base = model.state_dict()
    snaps = [{k: v + 0.01 * v.std() * torch.randn_like(v) if v.is_floating_point() else v
              for k, v in base.items()} for _ in range(SNAPSHOTS)]
    print(f"LeNet-5, {SNAPSHOTS} snapshots, probe batch {PROBE}, target fc3[3]")
    for source in ("act3", "act1"):
        for method in ("lrp", "grad_x_act"):
            secs, series = timed(lambda s=source, m=method: contribution_series(
                snaps, model, probe, "fc3", 3, source_layer=s, method=m))
            print(f"  source {source:4s} {method:10s}: {secs:.2f} s "
                  f"({secs / SNAPSHOTS * 1e3:.1f} ms per snapshot), series {series.shape}")


if __name__ == "__main__":
    main()
