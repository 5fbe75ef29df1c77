"""Latent SVM and GMM samplers: fit time against precision@10 of the headline query, per setting.

    .venv/bin/python benchmarks/sampler_fit.py [--store modeldx-demo/mnist-lenet5] [--seeds 3]

On the demo's MNIST/LeNet-5 store (70,000 latents): each setting (subsample size for the SVM;
subsample, EM iterations and tolerance for the GMM) is fitted with every seed, a 1% and a 5%
sample are drawn, and the headline query (top-10 neurons by max per layer x class x correct)
on each sample is scored against the exact answer. BLAS runs on one thread: on a shared machine
more threads than cores made the same fits 5-20x slower and the timings meaningless.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import REPO, machine
from threadpoolctl import threadpool_limits

from modeldx import open_store
from modeldx.engine.subset import Sample
from modeldx.evaluate.workload import workload
from modeldx.sampling.base import build

SETTINGS = [
    ("latent-svm", {"fit_items": 2_000}), ("latent-svm", {"fit_items": 5_000}),
    ("latent-svm", {"fit_items": 10_000}), ("latent-svm", {"fit_items": 20_000}),
    ("latent-gmm", {"fit_items": 20_000, "max_iter": 200, "tol": 1e-3}),
    ("latent-gmm", {"fit_items": 10_000, "max_iter": 100, "tol": 1e-3}),
    ("latent-gmm", {"fit_items": 5_000, "max_iter": 100, "tol": 1e-3}),
    ("latent-gmm", {"fit_items": 5_000, "max_iter": 30, "tol": 1e-2}),
    ("latent-gmm", {"fit_items": 2_000, "max_iter": 100, "tol": 1e-3}),
]
FRACTIONS = (0.01, 0.05)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", default=str(REPO / "modeldx-demo" / "mnist-lenet5"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default=None, help="run only this method's settings")
    args = parser.parse_args()
    store = open_store(args.store)
    items = store.items()
    latent = store.read("latent")
    pred, labels, ids = items.pred.to_numpy(), items.label.to_numpy(), items.item_id.to_numpy()
    headline = workload()["top-k-neurons"]
    exact = headline.run_exact(store, 10)
    print(f"machine: {machine()}; BLAS threads 1; store {args.store} ({len(ids)} items)")
    print(f"{'method':<11s} {'setting':<40s} {'fit s':>6s} " + " ".join(f"{'p@10 ' + format(f, '.0%'):>9s}"
                                                                       for f in FRACTIONS))
    for method, params in SETTINGS:
        if args.only and method != args.only:
            continue
        seconds, scores = [], {f: [] for f in FRACTIONS}
        for seed in range(args.seeds):
            with threadpool_limits(1):
                start = time.perf_counter()
                sampler = build(method, seed=seed, **params).fit(latent, pred, labels)
                seconds.append(time.perf_counter() - start)
            for f in FRACTIONS:
                sel = sampler.select(f)
                approx = headline.run(store, Sample(ids[sel.rows], sel.weights, sel.info, rows=sel.rows), 10)
                scores[f].append(np.mean([row[-1] for row in headline.compare(exact, approx)]))
        setting = ", ".join(f"{k}={v}" for k, v in params.items())
        cells = " ".join(f"{np.mean(scores[f]):5.3f}±{np.std(scores[f]):.2f}" for f in FRACTIONS)
        print(f"{method:<11s} {setting:<40s} {np.median(seconds):6.2f} {cells}", flush=True)


if __name__ == "__main__":
    main()
