"""The thesis' chapter 5 experiment at laptop scale: full vs power-law embeddings on Penn Treebank.

Trains ``modeldx.zoo.WordLSTM`` (1-layer LSTM, tied input/output embedding) on PTB train with
the same recipe for every configuration -- the full ``nn.Embedding`` and the power-law
embedding at several shares of the full embedding's parameters -- and prints, side by side,
embedding parameters, total parameters, validation perplexity and training time. Each
configuration runs in its own process with one torch thread (``--jobs`` at a time).

The recipe (default: dim = hidden = 200, batches of 20 streams, 35-word windows, SGD lr 20,
clip 0.25, one epoch = 1,327 steps) is far shorter than the thesis' training (2 layers, trained
until over-fitting): the perplexities compare the configurations with each other, not with the
thesis' Table 5.3.

Run (about 4 min of CPU per configuration; results in docs/power_law.md)::

    MODELDX_DATA=../shared/data PYTHONPATH=src .venv/bin/python examples/power_law_ptb.py \\
        --configs full 0.5 0.25 0.125 --seeds 0 1 --only-seeds-for full 0.25 --json power-law-ptb.json \\
        --figure docs/figures/power-law-ptb.png
"""

import argparse
import json
import multiprocessing as mp
import statistics
import time

import torch

from modeldx.data import load_ptb
from modeldx.zoo.language import WordLSTM, train_language_model


def run_one(job: dict) -> dict:
    torch.set_num_threads(1)
    train, valid = load_ptb("train"), load_ptb("valid")
    vocab = len(train.vocabulary)
    config, seed = job["config"], job["seed"]
    if config == "full":
        model = WordLSTM(vocab, job["dim"], job["dim"], job["layers"], embedding="full")
    else:
        budget = round(float(config) * vocab * job["dim"])
        model = WordLSTM(vocab, job["dim"], job["dim"], job["layers"], embedding="power-law", budget=budget)
    result = train_language_model(model, train.ids, valid.ids, epochs=job["epochs"], seed=seed)
    blocks = getattr(model.embed, "blocks", None)
    return {"config": config, "seed": seed, "embedding_parameters": model.embedding_parameters,
            "share": model.embedding_parameters / model.full_embedding_parameters,
            "total_parameters": model.num_parameters, "valid_perplexity": result.valid_perplexity,
            "train_seconds": result.seconds, "steps": result.steps,
            "final_train_loss": sum(result.losses[-50:]) / len(result.losses[-50:]),
            "blocks": [list(b) for b in blocks] if blocks else None}


def table(rows: list[dict]) -> str:
    lines = ["| embedding | seed | blocks (size x dim) | embedding params | share | total params | "
             "valid ppl | train time |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "full" if r["config"] == "full" else f"power-law {float(r['config']):.1%} budget"
        blocks = "10000x" + str(r["embedding_parameters"] // 10000) if r["blocks"] is None else \
            ", ".join(f"{n}x{d}" for n, d in r["blocks"])
        lines.append(f"| {name} | {r['seed']} | {blocks} | {r['embedding_parameters']:,} | "
                     f"{r['share']:.1%} | {r['total_parameters']:,} | {r['valid_perplexity']:.1f} | "
                     f"{r['train_seconds']:.0f} s |")
    return "\n".join(lines)


def figure(rows: list[dict], path: str, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for kind, colour, marker in (("full", "tab:blue", "s"), ("power-law", "tab:orange", "o")):
        pts = [r for r in rows if (r["config"] == "full") == (kind == "full")]
        ax.scatter([r["embedding_parameters"] / 1e6 for r in pts], [r["valid_perplexity"] for r in pts],
                   c=colour, marker=marker, label=kind + " embedding (one point per seed)", zorder=3)
        means = {}
        for r in pts:
            means.setdefault(r["embedding_parameters"], []).append(r["valid_perplexity"])
        xs = sorted(means)
        if kind == "power-law" and len(xs) > 1:
            ax.plot([x / 1e6 for x in xs], [statistics.mean(means[x]) for x in xs], c=colour, lw=1)
    ax.set_xlabel("embedding parameters (millions; tied input/output)")
    ax.set_ylabel("validation perplexity")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["full", "0.5", "0.25", "0.125"],
                        help="'full' or a share of the full embedding's parameters for the power-law one")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--only-seeds-for", nargs="*", default=None,
                        help="run every seed only for these configs (the others get the first seed)")
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--figure", default=None, help="write perplexity vs embedding parameters here (PNG)")
    parser.add_argument("--from-json", default=None, help="only print the table and draw the figure of a run")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as fh:
            rows = json.load(fh)
    else:
        jobs = [{"config": c, "seed": s, "dim": args.dim, "layers": args.layers, "epochs": args.epochs}
                for c in args.configs
                for s in (args.seeds if args.only_seeds_for is None or c in args.only_seeds_for
                          else args.seeds[:1])]
        start = time.perf_counter()
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            rows = []
            for row in pool.imap_unordered(run_one, jobs):
                rows.append(row)
                print(f"done {row['config']} seed {row['seed']}: ppl {row['valid_perplexity']:.1f} "
                      f"in {row['train_seconds']:.0f} s", flush=True)
        order = {c: i for i, c in enumerate(args.configs)}
        rows.sort(key=lambda r: (order[r["config"]], r["seed"]))
        print(f"all configurations: {time.perf_counter() - start:.0f} s wall-clock")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(rows, fh, indent=1)
    print(table(rows))
    if args.figure:
        epochs = "one epoch" if args.epochs == 1 else f"{args.epochs:g} epochs"
        title = f"PTB, {args.layers}-layer LSTM {args.dim}, {epochs} (not the thesis' training)"
        figure(rows, args.figure, title)


if __name__ == "__main__":
    main()
