"""Interactive LDA (SAME Gibbs, online) against scikit-learn's online variational LDA on Reuters-21578.

Same training documents (ModApte train, 7,770) and vocabulary (min_count 5, max_doc_share 0.5),
same K, minibatch size, number of passes, priors (α = 0.1, β = 0.01) and step-size schedule
((10 + t)^-0.7). Both models' φ go through the same metrics: held-out perplexity on ModApte test
by document completion (θ folded in on each document's first half with φ fixed, 50 EM steps;
the second half scored), NPMI of each topic's top 10 words over the training documents, g1
(share of φ ≥ 0.01) and the mean off-diagonal topic cosine. Then the mixins: from the trained
model, one more pass with each L1 / cosine weight (as a user moves a slider after convergence).

    PYTHONPATH=src python benchmarks/lda_vs_sklearn.py [--data-root /work/shared/data] [--figure PATH]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from modeldx.data import load_reuters
from modeldx.interactive.lda import InteractiveLDA, density, heldout_perplexity, mean_overlap, npmi_coherence

K, BATCH, PASSES, ALPHA, BETA = 20, 256, 3, 0.1, 0.01


def metrics(phi: np.ndarray, test_docs, reference) -> dict:
    top = np.argsort(-phi, axis=1)[:, :10]
    return {"perplexity": heldout_perplexity(phi, test_docs, alpha=ALPHA, iterations=50),
            "npmi": float(npmi_coherence(top, reference).mean()), "g1": density(phi),
            "overlap": mean_overlap(phi), "support": float((phi >= 1e-5).mean())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--figure", default=None, help="save the mixins' figure here (PNG)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = load_reuters("train", root=args.data_root, min_count=5, max_doc_share=0.5)
    test = load_reuters("test", root=args.data_root, vocabulary=train.vocabulary)
    counts, words = train.counts(), train.vocabulary.words
    print(f"Reuters ModApte: {len(train)} train / {len(test)} test docs, {len(words)} words, "
          f"{train.num_tokens} train tokens; K={K}, batch {BATCH}, {PASSES} passes, 1 thread")
    results = {}

    from sklearn.decomposition import LatentDirichletAllocation
    sk = LatentDirichletAllocation(n_components=K, learning_method="online", batch_size=BATCH,
                                   max_iter=PASSES, doc_topic_prior=ALPHA, topic_word_prior=BETA,
                                   learning_offset=10.0, learning_decay=0.7, total_samples=len(train),
                                   random_state=0, n_jobs=1)
    start = time.perf_counter()
    sk.fit(counts)
    seconds = time.perf_counter() - start
    phi_sk = sk.components_ / sk.components_.sum(1, keepdims=True)
    results["sklearn online"] = {**metrics(phi_sk, test.docs, counts), "seconds": seconds,
                                 "docs_per_s": PASSES * len(train) / seconds}

    steps = int(np.ceil(len(train) / BATCH))
    # draws=5: every sweep draws (the first version); draws=1, the default: only the last one
    for name, draws in (("modeldx SAME, 5 draws", 5), ("modeldx SAME m=100", 1)):
        lda = InteractiveLDA(train.docs, len(words), K, batch_size=BATCH, nsamps=100, draws=draws,
                             alpha=ALPHA, beta=BETA, seed=0, device="cpu")
        start = time.perf_counter()
        for _ in range(PASSES * steps):
            lda.step()
        seconds = time.perf_counter() - start
        results[name] = {**metrics(lda.phi.numpy(), test.docs, counts), "seconds": seconds,
                         "docs_per_s": PASSES * steps * BATCH / seconds}
    for name, r in results.items():
        print(f"{name:20s} perplexity {r['perplexity']:8.1f}  NPMI {r['npmi']:.4f}  g1 {r['g1']:.5f}  "
              f"overlap {r['overlap']:.3f}  {r['docs_per_s']:7.0f} docs/s ({r['seconds']:.1f} s)")

    # the mixins, one pass each from the trained model
    trained = lda.lam.clone()
    v = len(words)
    settings = [("none", 0.0, 0.0), ("l1 0.1/V", 0.1 / v, 0.0), ("l1 0.5/V", 0.5 / v, 0.0),
                ("l1 1/V", 1.0 / v, 0.0), ("cosine 0.002", 0.0, 0.002), ("cosine 0.01", 0.0, 0.01),
                ("cosine 0.05", 0.0, 0.05)]
    mixins = {}
    for name, l1, cosine in settings:
        lda.lam, lda.l1, lda.cosine = trained.clone(), l1, cosine
        for _ in range(steps):
            lda.step()
        mixins[name] = metrics(lda.phi.numpy(), test.docs, counts)
        m = mixins[name]
        print(f"+1 pass, {name:12s} perplexity {m['perplexity']:8.1f}  NPMI {m['npmi']:.4f}  "
              f"g1 {m['g1']:.5f}  "
              f"overlap {m['overlap']:.3f}  support {m['support']:.3f}  top words of topic 0: "
              f"{' '.join(words[w] for w in lda.top_words(6)[0])}")
    results["mixins"] = mixins
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        names = list(mixins)
        fig, axes = plt.subplots(1, 5, figsize=(18, 3.8))
        colours = ["#888888"] + ["#d95f02"] * 3 + ["#1b9e77"] * 3
        for ax, (key, title) in zip(axes, [("npmi", "NPMI coherence (higher: more coherent)"),
                                          ("g1", "density g1 (share of φ ≥ 0.01)"),
                                          ("support", "support (share of φ ≥ 1e-5)"),
                                          ("overlap", "mean topic cosine (overlap)"),
                                          ("perplexity", "held-out perplexity")], strict=True):
            ax.bar(range(len(names)), [mixins[n][key] for n in names], color=colours)
            ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
            ax.set_title(title, fontsize=10)
            if key == "perplexity":
                ax.set_yscale("log")
        fig.suptitle(f"Mixins on Reuters (K={K}): one pass from the trained model at each weight; "
                     "orange L1, green cosine", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)


if __name__ == "__main__":
    main()
