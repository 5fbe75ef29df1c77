"""Ready-made live sessions: interactive k-means and LDA (thesis ch. 2) and an MNIST classifier.

Each function returns a :class:`~modeldx.live.LiveSession` with its controls
and a step function, not yet started; ``modeldx serve`` starts it and serves the
dashboard. They are also the worked examples of making a training loop live.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from modeldx._params import Interval, OneOf, check_params
from modeldx.device import resolve_device
from modeldx.errors import InvalidParameterError
from modeldx.interactive.kmeans import InteractiveKMeans
from modeldx.interactive.lda import InteractiveLDA, heldout_perplexity, mean_overlap, npmi_coherence
from modeldx.live import LiveSession, StepContext
from modeldx.zoo.models import CLASSIFIERS, MODELS

SILHOUETTE_ITEMS = 1000


def kmeans_session(features: np.ndarray, k: int = 64, *, blocks=None, block_names=None,
                   images: np.ndarray | None = None, batch_size: int = 1024, seed: int = 0,
                   device: str = "auto", every: int = 10) -> LiveSession:
    """Interactive k-means: sliders for the size weight, the centre rate and each block's weight.

    Streams: ``loss`` and ``objective`` every step; ``cluster sizes`` (a
    histogram of how many items each cluster holds, from the running sizes of
    eq. 2.5) and ``centres`` (each cluster's mean image, largest clusters first)
    every step; the ``silhouette`` of a fixed subsample of 1,000 items every
    ``every`` steps. ``images`` (n, h, w) are what the centres look like: the
    items' pixels when clustering activations.
    """
    km = InteractiveKMeans(features, k, blocks=blocks, batch_size=batch_size, seed=seed, device=device)
    names = block_names or [f"block {i}" for i in range(len(km.blocks))]
    session = LiveSession("kmeans")
    session.slider("size weight", 0.0, 5.0, 0.0)
    session.slider("centre rate", 0.01, 1.0, km.eta, log=True)
    if len(km.blocks) > 1:
        for name in names:
            session.slider(f"weight: {name}", 0.0, 5.0, 1.0)
    session.button("restart")
    rng = np.random.default_rng(seed)
    fixed = torch.as_tensor(rng.choice(km.x.shape[0], min(SILHOUETTE_ITEMS, km.x.shape[0]), replace=False))
    pictures = None if images is None else torch.as_tensor(np.asarray(images, dtype=np.float32))
    shape = None if pictures is None else pictures.shape[1:]
    means = None if pictures is None else torch.zeros((k, int(np.prod(shape))))
    gen = torch.Generator().manual_seed(seed)

    def step(ctx: StepContext) -> None:
        nonlocal means
        if ctx.presses.get("restart"):
            km.restart()
            if means is not None:
                means.zero_()
        km.size_weight = ctx.controls["size weight"]
        km.eta = ctx.controls["centre rate"]
        if len(km.blocks) > 1:
            weights = [ctx.controls[f"weight: {n}"] for n in names]
            if any(w > 0 for w in weights):
                km.set_block_weights(weights)
        idx = torch.randint(km.x.shape[0], (km.batch_size,), generator=gen)
        result = km.step(km.x[idx.to(km.device)])
        ctx.scalar("loss", result.loss)
        ctx.scalar("objective", result.objective)
        sizes = km.sizes.cpu().numpy()
        counts, edges = np.histogram(sizes, bins=20, range=(0, max(float(sizes.max()), 1e-9)))
        ctx.histogram("cluster sizes", counts, edges)
        order = np.argsort(-sizes)
        if pictures is not None:
            ids = result.assignments.cpu()
            hit = torch.bincount(ids, minlength=k) > 0
            batch_means = torch.zeros_like(means).index_add_(0, ids, pictures[idx].reshape(len(idx), -1))
            batch_means[hit] /= torch.bincount(ids, minlength=k)[hit, None].float()
            means[hit] = torch.where(means[hit].abs().sum(1, keepdim=True) > 0,
                                     0.8 * means[hit] + 0.2 * batch_means[hit], batch_means[hit])
            ctx.images("centres", means[order[:64]].reshape(-1, *shape).numpy())
        if ctx.step % every == 0:
            ids, scores = km.silhouette(fixed.to(km.device))
            ctx.silhouette("silhouette", ids, scores)

    session.step_fn = step
    session.state_fns = (lambda: {"centres": km.centres.clone(), "sizes": km.sizes.clone(),
                                  "counts": km.counts.clone()},
                         lambda s: (setattr(km, "centres", s["centres"]), setattr(km, "sizes", s["sizes"]),
                                    setattr(km, "counts", s["counts"])))
    session.model = km
    return session


LDA_TOPICS = (5, 10, 20, 32, 50, 100)
MAX_TOPICS = 200  # a person reads the K x K similarity matrix and the K rows of top words every step


def lda_session(corpus, k: int = 20, *, test=None, batch_size: int = 256, nsamps: int = 100,
                seed: int = 0, device: str = "auto", every: int = 10, heldout_docs: int = 1000,
                top: int = 10) -> LiveSession:
    """Interactive LDA (thesis ch. 2): sliders ``nsamps`` (SAME's m), ``l1`` and ``cosine``; ``k`` on restart.

    ``corpus`` has ``docs`` (word-id arrays) and ``vocabulary.words`` (e.g.
    :func:`modeldx.data.load_reuters`); ``test`` is the held-out corpus (default:
    the last tenth of ``corpus``' documents, then left out of training).

    Streams every step: ``batch perplexity``, ``density g1``, ``topic overlap`` (mean
    off-diagonal cosine), ``topic sizes`` (each topic's share of the tokens, one bar
    per topic), ``top words`` (a table: topic, share, its ``top`` words) and ``topic
    similarity`` (the K x K cosine matrix); every ``every`` steps ``perplexity`` (held
    out, by document completion on up to ``heldout_docs`` documents) and ``NPMI``
    (mean coherence of the topics' top 10 words over the training documents).
    The ``l1`` slider is in the thesis' raw units (subtracted from every weight of
    φ per step); it goes up to ``2 / V``, where it zeroes nearly every weight. ``cosine``
    goes up to 0.1: on Reuters 0.05 makes the topics disjoint within a pass.
    """
    words = list(corpus.vocabulary.words)
    check_params("lda_session", {"k": k}, {"k": Interval(int, 2, MAX_TOPICS)})
    docs = list(corpus.docs)
    if test is None:
        cut = len(docs) - max(1, len(docs) // 10)
        docs, held = docs[:cut], docs[cut:]
    else:
        held = list(test.docs)
    rng = np.random.default_rng(seed)
    held = [d for d in held if len(d) >= 2]  # document completion scores a second half
    if not held:
        raise InvalidParameterError("lda_session needs held-out documents of at least 2 tokens; "
                                    "the held-out corpus has none")
    held = [held[i] for i in np.sort(rng.permutation(len(held))[:heldout_docs])]
    lda = InteractiveLDA(docs, len(words), k, batch_size=batch_size, nsamps=nsamps, seed=seed, device=device)
    reference = corpus.counts() if test is not None and hasattr(corpus, "counts") else docs
    session = LiveSession("lda")
    session.slider("nsamps", 1, 1000, nsamps, log=True)
    session.slider("l1", 0.0, 2.0 / len(words), 0.0)
    session.slider("cosine", 0.0, 0.1, 0.0)
    session.choice("k", sorted({*(t for t in LDA_TOPICS if t <= len(words)), k}), k)
    session.button("restart")

    def step(ctx: StepContext) -> None:
        if ctx.presses.get("restart"):
            lda.restart(k=int(ctx.controls["k"]))
        lda.nsamps = max(1, int(round(ctx.controls["nsamps"])))
        lda.l1, lda.cosine = float(ctx.controls["l1"]), float(ctx.controls["cosine"])
        result = lda.step()
        if result.tokens:  # a minibatch of empty documents has no perplexity
            ctx.scalar("batch perplexity", result.perplexity)
        phi = lda.phi.cpu().numpy()
        ctx.scalar("density g1", lda.density())
        ctx.scalar("topic overlap", mean_overlap(phi))
        sizes = lda.sizes.cpu().numpy()
        ctx.histogram("topic sizes", sizes, np.arange(lda.k + 1) - 0.5, labels=list(range(lda.k)),
                      x_title="topic", y_title="share of tokens")
        ids = lda.top_words(top)
        ctx.table("top words", [{"topic": t, "share": round(float(sizes[t]), 4),
                                 "words": " ".join(words[w] for w in ids[t])} for t in range(lda.k)])
        ctx.matrix("topic similarity", lda.similarity(), rows=list(range(lda.k)), columns=list(range(lda.k)),
                   note="topics x topics, cosine of φ")
        if ctx.step % every == 0:
            ctx.scalar("perplexity", heldout_perplexity(phi, held, alpha=lda.alpha, iterations=20))
            ctx.scalar("NPMI", float(npmi_coherence(ids[:, :10], reference, len(words)).mean()))

    session.step_fn = step
    session.state_fns = (lambda: {"lam": lda.lam.clone(), "k": lda.k, "updates": lda.updates},
                         lambda s: (setattr(lda, "lam", s["lam"]), setattr(lda, "k", s["k"]),
                                    setattr(lda, "updates", s["updates"])))
    session.model = lda
    return session


def classifier_session(train_set, test_set, *, arch: str = "lenet5", batch_size: int = 128, seed: int = 0,
                       device: str = "auto", eval_every: int = 50, eval_items: int = 2000) -> LiveSession:
    """Train a zoo classifier live: learning rate and weight decay sliders, loss and accuracy charts."""
    check_params("classifier_session", {"arch": arch}, {"arch": OneOf(*CLASSIFIERS)})
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):  # seeded weights, and the caller's global RNG left as it was
        torch.manual_seed(seed)
        model = MODELS[arch]()
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    session = LiveSession("classifier")
    session.slider("learning rate", 1e-5, 1.0, 1e-3, log=True)
    session.slider("weight decay", 1e-7, 1e-1, 1e-7, log=True)
    rng = np.random.default_rng(seed)
    held_out = np.sort(rng.choice(len(test_set), min(eval_items, len(test_set)), replace=False))
    x_test, y_test = test_set.get_batch(held_out)

    def step(ctx: StepContext) -> None:
        for group in opt.param_groups:
            group["lr"] = ctx.controls["learning rate"]
            group["weight_decay"] = ctx.controls["weight decay"]
        x, y = train_set.get_batch(rng.integers(0, len(train_set), batch_size))
        model.train()
        logits = model(x.to(dev))
        loss = nn.functional.cross_entropy(logits, y.to(dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.scalar("loss", loss.item())
        ctx.scalar("batch accuracy", float((logits.argmax(1).cpu() == y).float().mean()))
        if ctx.step % eval_every == 0:
            model.eval()
            with torch.no_grad():
                pred = model(x_test.to(dev)).argmax(1).cpu()
            ctx.scalar("test accuracy", float((pred == y_test).float().mean()))

    session.step_fn = step
    session.state_fns = (lambda: {"model": copy.deepcopy(model.state_dict()),
                                  "opt": copy.deepcopy(opt.state_dict())},
                         lambda s: (model.load_state_dict(s["model"]), opt.load_state_dict(s["opt"])))
    session.model = model
    return session
