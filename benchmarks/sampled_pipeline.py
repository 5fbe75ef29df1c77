"""The sampled pipeline against a full capture of costly artifacts, side by side in one run.

    .venv/bin/python benchmarks/sampled_pipeline.py [--items 10000] [--methods latent-svm,uniform] [--seeds 3]

The artifacts are the ones the paper says a sample saves: whole conv maps (no spatial
reduction) and the gradient of every layer, of the zoo ResNet (13 ReLUs and the head) on the
first ``--items`` MNIST test items. The ResNet is trained briefly on MNIST first if
``modeldx-demo/resnet-mnist.pt`` is missing (1 epoch on 12,000 training items).

Full: capture every layer's maps and gradients for all items. Sampled, at 1% and 5%:
(a) a latent pass over all items, or (b) the latent store built from arrays a training loop's
last evaluation already had (``modeldx.latent_store``; that evaluation is not counted, it was
run anyway), then the sampler's fit and selection, then the capture of the sample's items only.
Answers: the headline query (top-10 neurons by max per layer x class x correct) on each
sampled store with the sample's weights, scored by precision@10 against the full store's.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import REPO, machine
from threadpoolctl import threadpool_limits

from modeldx import capture, latent_pass, latent_store, sample
from modeldx.data import load_mnist
from modeldx.errors import CheckpointError
from modeldx.evaluate.workload import workload
from modeldx.queries import top_k_neurons
from modeldx.zoo import load_checkpoint, train

COSTLY = {"reduction": "none", "gradients": True}  # whole maps, and every layer's gradient


def resnet(train_set, test_set):
    """The trained ResNet and its MNIST test accuracy (from the checkpoint's record)."""
    ckpt = REPO / "modeldx-demo" / "resnet-mnist.pt"
    try:
        model, meta = load_checkpoint(ckpt)
        return model, meta["test_accuracy"]
    except CheckpointError:
        result = train("resnet", train_set, test_set, epochs=1, train_items=12_000, batch_size=64, lr=3e-3,
                       checkpoint=ckpt, progress=False)
        return result.model, result.test_accuracy


def evaluation_arrays(model, data, batch_size: int = 500):
    """What a training loop's last evaluation holds: the head's input and the logits."""
    kept = []
    handle = model.fc.register_forward_pre_hook(lambda _m, inputs: kept.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            logits = [model.eval()(data.get_batch(np.arange(s, min(s + batch_size, len(data))))[0])
                      for s in range(0, len(data), batch_size)]
    finally:
        handle.remove()
    return torch.cat(kept), torch.cat(logits)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--methods", default="latent-svm,stratified-cm,uniform")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_set, test_set = load_mnist("train", root=REPO / "data"), load_mnist("test", root=REPO / "data")
    model, accuracy = resnet(train_set, test_set)
    data = test_set.subset(np.arange(args.items))
    headline = workload()["top-k-neurons"]
    work = Path(tempfile.mkdtemp(prefix="modeldx-pipeline-"))
    try:
        print(f"machine: {machine()}; torch and BLAS 1 thread, machine shared with other jobs")
        print(f"model: zoo ResNet, MNIST test accuracy {accuracy:.4f}; "
              f"items: the first {args.items} MNIST test items; artifacts: {COSTLY}")
        t_full, full = timed(lambda: capture(model, data, work / "full", progress=False, **COSTLY))
        b_full = full.stored_bytes()
        t_exact, exact = timed(lambda: top_k_neurons(full, k=10))
        print(f"full capture: {t_full:.1f} s, {b_full / 1e6:.1f} MB, {len(full.layers)} layers, "
              f"{sum(full.manifest.layer(n).neurons for n in full.layers)} columns of acts (and as many of "
              f"grads) per item; exact headline query {t_exact:.1f} s")
        t_latent, latent = timed(lambda: latent_pass(model, data, work / "latent", progress=False))
        arrays = evaluation_arrays(model, data)
        t_reuse, reused = timed(lambda: latent_store(work / "reused", model, data, latent=arrays[0],
                                                     logits=arrays[1]))
        b_latent = latent.stored_bytes()
        print(f"latent pass: {t_latent:.1f} s, {b_latent / 1e6:.2f} MB; latent store from the evaluation's "
              f"arrays: {t_reuse:.2f} s, {reused.stored_bytes() / 1e6:.2f} MB")
        print(f"{'sampler':<14s} {'fraction':>8s} {'fit+sel s':>9s} {'capture s':>9s} {'sample MB':>9s} "
              f"{'time vs full (pass)':>19s} {'(reused)':>9s} {'bytes vs full':>13s} {'p@10':>11s}")
        for method, fraction in itertools.product(args.methods.split(","), (0.01, 0.05)):
            fits, caps, sizes, precision = [], [], [], []
            for seed in range(args.seeds):
                with threadpool_limits(1):
                    t_fit, s = timed(lambda m=method, f=fraction, sd=seed: sample(reused, m, f, seed=sd,
                                                                         save=False))
                t_cap, part = timed(lambda s=s, m=method, f=fraction, sd=seed: capture(
                    model, data, work / f"{m}-{f}-{sd}", items=s.item_ids, progress=False, **COSTLY))
                approx = top_k_neurons(part, k=10, items=s.item_ids, weights=s.weights)
                precision.append(np.mean([row[-1] for row in headline.compare(exact, approx)]))
                fits.append(t_fit)
                caps.append(t_cap)
                sizes.append(part.stored_bytes() + b_latent)
            t_fit, t_cap, size = statistics.median(fits), statistics.median(caps), statistics.median(sizes)
            with_pass = t_latent + t_fit + t_cap
            with_reuse = t_reuse + t_fit + t_cap
            print(f"{method:<14s} {fraction:8.0%} {t_fit:9.2f} {t_cap:9.1f} {size / 1e6:9.1f} "
                  f"{t_full / with_pass:18.1f}x {t_full / with_reuse:8.1f}x {b_full / size:12.1f}x "
                  f"{np.mean(precision):5.3f}±{np.std(precision):.3f}", flush=True)
        print("ratios are full / sampled (larger saves more); sampled bytes = sample capture + latent store; "
              f"p@10 over {args.seeds} seeds (mean ± sd)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
