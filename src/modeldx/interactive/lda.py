"""LDA by SAME Gibbs sampling with online updates and live mixins (thesis ch. 2, eqs. 2.7–2.11).

Each step takes a minibatch of documents and runs a few Gibbs sweeps: every
token's topic is drawn from ``p(z = k) ∝ θ_dk φ_kw`` (eq. 2.7), ``m`` times
independently (SAME, Doucet et al.: ``m`` replicated samples of ``z``; ``m`` is
the thesis' "nsamps", a temperature: a large ``m`` averages the draws into their
expectation, a small one is a high-variance random walk). ``θ_d`` is then the
MLE of the averaged counts with the prior ``α``. By default only the last sweep
draws (``draws=1``): the sweeps before it use the expected counts (m → ∞) to warm
θ up, at a tenth of a draw's cost and with the same perplexity and coherence on
Reuters (docs/lda.md). After the last sweep the
minibatch's averaged word–topic counts, scaled to the corpus, are blended into
the running statistics ``λ`` with rate ``ρ_t`` (online LDA, Hoffman et al. 2010;
``ρ_t = (offset + t)^-decay``, never below ``min_rate`` so the model keeps
following a change of its controls), and ``φ_k = (λ_k + β) / Σ_w (λ_kw + β)``.

Then the mixins (eq. 2.11) take a sub-gradient step on ``φ``:

- L1 (eqs. 2.8, 2.10 ``g1 = sign φ``): every weight loses ``l1``; those that
  would go below zero are zero — a hard threshold on the long tail;
- cosine (eq. 2.9, ``g2 = Σ_i φ_iw − φ_kw``): a word's weight in a topic loses
  ``cosine`` times its weight in the other topics, so a word shared by topics
  stays where it is dominant.

``φ`` is clipped at zero and renormalised onto the simplex and ``λ`` rescaled to
it (each topic keeps its mass). The m draws of a token's topic are drawn at once
as one multinomial count vector, by a chain of K − 1 binomials over all tokens
(exact, and its cost does not grow with ``m``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch

from modeldx._params import Interval, check_params
from modeldx.device import resolve_device
from modeldx.errors import InvalidParameterError

DENSE = 0.01  # the thesis' density g1 counts weights at least this


@dataclass
class LDAStep:
    docs: int  # documents in the minibatch
    tokens: int
    perplexity: float  # of the minibatch's tokens under its own θ and the φ before the update
    rate: float  # ρ_t used
    seconds: float


def _flatten(docs: Sequence[np.ndarray], num_words: int, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All tokens side by side (int64) and each document's start offset (len(docs) + 1)."""
    if len(docs) == 0:
        raise InvalidParameterError(f"{what} holds no documents")
    arrays = [np.asarray(d, dtype=np.int64).ravel() for d in docs]
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    tokens = np.concatenate(arrays) if lengths.sum() else np.zeros(0, np.int64)
    if tokens.size == 0:
        raise InvalidParameterError(f"{what} holds no tokens")
    if tokens.min() < 0 or tokens.max() >= num_words:
        raise InvalidParameterError(f"{what} hold word ids in [{tokens.min()}, {tokens.max()}]; "
                                    f"expected ids in [0, {num_words - 1}]")
    return torch.from_numpy(tokens), torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]))


def _gather(tokens: torch.Tensor, offsets: torch.Tensor,
            ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens of documents ``ids`` and each token's position in ``ids`` (no Python loop)."""
    starts, lengths = offsets[ids], offsets[ids + 1] - offsets[ids]
    doc = torch.repeat_interleave(torch.arange(len(ids), device=ids.device), lengths)
    first = torch.repeat_interleave(torch.cumsum(lengths, 0) - lengths, lengths)
    index = starts[doc] + torch.arange(int(lengths.sum()), device=ids.device) - first
    return tokens[index], doc


def multinomial_counts(probs: torch.Tensor, m: int | torch.Tensor,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, K) counts of ``m`` independent draws from each row of ``probs`` (rows sum to 1).

    ``m`` is one number of trials or one per row. A chain of binomials,
    ``n_k ~ Bin(m − Σ_{j<k} n_j, p_k / Σ_{j≥k} p_j)``: exact in any order of the
    categories, and its cost is at most K binomial draws per row whatever ``m``. The
    chain takes each row's categories from the most probable down: the trials run
    out after the few likely topics, a binomial of 0 trials costs next to nothing
    (5 ns against 70–120), and the chain stops when no row has trials left.
    """
    probs, order = torch.sort(probs, 1, descending=True)
    tail = torch.flip(torch.cumsum(torch.flip(probs, [1]), 1), [1])
    q_all = (probs / tail.clamp_min(1e-30)).clamp_(0.0, 1.0)
    if isinstance(m, torch.Tensor):
        left = m.to(device=probs.device, dtype=probs.dtype).clone()
    else:
        left = torch.full((probs.shape[0],), float(m), device=probs.device, dtype=probs.dtype)
    counts = torch.zeros_like(probs)
    for k in range(probs.shape[1] - 1):
        if k % 4 == 3 and not bool(left.any()):  # a host sync: not every column
            break
        counts[:, k] = torch.binomial(left, q_all[:, k], generator=generator)
        left = left - counts[:, k]
    counts[:, -1] += left  # what is left goes to the last category (0 after an early stop)
    return torch.zeros_like(counts).scatter_(1, order, counts)


def _check_topics(k: int, num_words: int) -> None:
    # more topics than words cannot be told apart, and K x V floats of λ is what a huge k allocates
    if k > num_words:
        raise InvalidParameterError(f"k = {k} topics: expected at most the number of words ({num_words})")


class InteractiveLDA:
    """LDA trained by minibatch SAME Gibbs sampling, with an L1 and a cosine mixin (eq. 2.11).

    Parameters
    ----------
    docs : sequence of int arrays
        Each document's word ids (e.g. ``ReutersCorpus.docs``).
    num_words : int
        Vocabulary size.
    k : int, default=20
        Number of topics (change it with :meth:`restart`).
    batch_size : int, default=256
        Documents per step.
    nsamps : int, default=100
        SAME's m: replicated draws of each token's topic (the thesis' default).
    sweeps : int, default=5
        Gibbs sweeps over a minibatch per step.
    draws : int, default=1
        How many of the last sweeps draw the topics (SAME's m draws); the sweeps
        before them take each token's expected counts (m → ∞), a deterministic
        warm-up of θ at a tenth of a draw's cost. On Reuters (K = 20, 3 passes)
        ``draws=1`` reaches the perplexity and NPMI of ``draws=5`` (870 vs 883,
        0.224 vs 0.220) at 4x the documents per second (docs/lda.md).
    alpha, beta : float, default=0.1, 0.01
        Dirichlet priors of θ and φ.
    offset, decay, min_rate : float
        The step size ``ρ_t = max((offset + t)^-decay, min_rate)``.
    seed : int, default=0
    device : str, default="auto"
    """

    def __init__(self, docs: Sequence[np.ndarray], num_words: int, k: int = 20, *, batch_size: int = 256,
                 nsamps: int = 100, sweeps: int = 5, draws: int = 1, alpha: float = 0.1, beta: float = 0.01,
                 offset: float = 10.0, decay: float = 0.7, min_rate: float = 0.02, seed: int = 0,
                 device: str = "auto") -> None:
        check_params("InteractiveLDA",
                     {"num_words": num_words, "k": k, "batch_size": batch_size, "nsamps": nsamps,
                      "sweeps": sweeps, "alpha": alpha, "beta": beta, "offset": offset, "decay": decay,
                      "min_rate": min_rate},
                     {"num_words": Interval(int, 1, None), "k": Interval(int, 2, None),
                      "batch_size": Interval(int, 1, None), "nsamps": Interval(int, 1, None),
                      "sweeps": Interval(int, 1, None), "alpha": Interval(float, 0, None, closed="neither"),
                      "beta": Interval(float, 0, None, closed="neither"),
                      "offset": Interval(float, 0, None), "decay": Interval(float, 0.5, 1.0),
                      "min_rate": Interval(float, 0, 1)})
        check_params("InteractiveLDA", {"draws": draws}, {"draws": Interval(int, 1, sweeps)})
        _check_topics(k, num_words)
        self.device = resolve_device(device)
        tokens, offsets = _flatten(docs, num_words, "docs")
        self.tokens, self.offsets = tokens.to(self.device), offsets.to(self.device)
        self.num_docs, self.num_words = len(docs), num_words
        self.batch_size, self.sweeps = min(batch_size, self.num_docs), sweeps
        self.draws = draws
        self.alpha, self.beta = alpha, beta
        self.offset, self.decay, self.min_rate = offset, decay, min_rate
        self.nsamps = nsamps
        self.l1 = 0.0
        self.cosine = 0.0
        self.seed = seed
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.k = k
        self.restarts = 0
        self.restart()

    # ----- state
    def restart(self, k: int | None = None) -> None:
        """New random topics (``k`` of them if given); the step size schedule starts again."""
        if k is not None:
            check_params("InteractiveLDA.restart", {"k": k}, {"k": Interval(int, 2, None)})
            _check_topics(k, self.num_words)
            self.k = k
        # random topics around uniform (Hoffman's Gamma(100, 1/100)), holding the corpus' tokens
        rng = np.random.default_rng([self.seed, self.restarts])
        noise = torch.as_tensor(rng.gamma(100.0, 0.01, (self.k, self.num_words)), dtype=torch.float32)
        self.lam = noise.to(self.device) * (self.tokens.numel() / (self.k * self.num_words))
        self.restarts += 1
        self.updates = 0
        self._order = self._permutation()
        self._cursor = 0

    def _permutation(self) -> torch.Tensor:
        return torch.randperm(self.num_docs, generator=self.generator, device=self.device)

    @property
    def phi(self) -> torch.Tensor:
        """(K, V) topic–word distributions."""
        smoothed = self.lam + self.beta
        return smoothed / smoothed.sum(1, keepdim=True)

    def set_phi(self, phi: torch.Tensor) -> None:
        """Make ``φ`` the topics, each topic keeping its mass (``λ`` rescaled)."""
        mass = (self.lam + self.beta).sum(1, keepdim=True)
        self.lam = (phi * mass - self.beta).clamp_min_(0.0)

    @property
    def sizes(self) -> torch.Tensor:
        """Each topic's share of the corpus' tokens (running, from λ)."""
        mass = self.lam.sum(1)
        return mass / mass.sum()

    # ----- eq. 2.7 with SAME
    def infer(self, tokens: torch.Tensor, doc: torch.Tensor, num_docs: int, *, sweeps: int | None = None,
              nsamps: int | None = None, phi: torch.Tensor | None = None,
              weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Gibbs sweeps over the tokens of ``num_docs`` documents: their θ (D, K) and the last counts (T, K).

        ``nsamps=0`` uses each token's expected counts (m → ∞) instead of draws.
        ``weights``: each row of ``tokens`` stands for that many tokens of one word in
        one document (they share ``p(z)``): its ``m`` draws per token are one multinomial
        of ``m · weight`` trials — the same distribution as one row per token, and fewer rows.
        """
        phi = self.phi if phi is None else phi
        m = self.nsamps if nsamps is None else nsamps
        k = phi.shape[0]
        w = None if weights is None else weights.to(device=phi.device, dtype=phi.dtype)
        lengths = torch.bincount(doc, weights=w, minlength=num_docs).to(phi.dtype)
        theta = torch.full((num_docs, k), 1.0 / k, device=phi.device, dtype=phi.dtype)
        word_probs = phi.T[tokens]  # (T, K)
        counts = word_probs
        sweeps = self.sweeps if sweeps is None else sweeps
        for sweep in range(sweeps):
            p = theta[doc] * word_probs
            p = p / p.sum(1, keepdim=True).clamp_min(1e-30)
            if m == 0 or sweep < sweeps - self.draws:
                counts = p if w is None else p * w[:, None]
            else:
                counts = multinomial_counts(p, m if w is None else m * w, self.generator) / m
            per_doc = torch.zeros_like(theta).index_add_(0, doc, counts)
            theta = (per_doc + self.alpha) / (lengths[:, None] + k * self.alpha)
        return theta, counts

    def step(self, ids: torch.Tensor | None = None) -> LDAStep:
        """One minibatch: SAME Gibbs sweeps, the online update of φ, then the mixins."""
        start = time.perf_counter()
        if ids is None:
            if self._cursor + self.batch_size > self.num_docs:
                self._order, self._cursor = self._permutation(), 0
            ids = self._order[self._cursor:self._cursor + self.batch_size]
            self._cursor += self.batch_size
        ids = ids.to(self.device)
        with torch.no_grad():
            tokens, doc = _gather(self.tokens, self.offsets, ids)
            # one row per distinct (document, word) with its count: exact (see infer), a third fewer rows
            pairs, weights = torch.unique(doc * self.num_words + tokens, return_counts=True)
            words, pair_doc = pairs % self.num_words, pairs // self.num_words
            weights = weights.to(self.lam.dtype)
            phi = self.phi
            theta, counts = self.infer(words, pair_doc, len(ids), phi=phi, weights=weights)
            likelihood = (theta[pair_doc] * phi.T[words]).sum(1).clamp_min(1e-30).log()
            perplexity = (float(torch.exp(-(likelihood * weights).sum() / weights.sum()))
                          if tokens.numel() else float("nan"))
            batch = torch.zeros_like(self.lam).index_add_(1, words, counts.T)  # (K, V) averaged counts
            rate = max((self.offset + self.updates + 1) ** -self.decay, self.min_rate)
            self.lam = (1 - rate) * self.lam + rate * batch * (self.num_docs / len(ids))
            self.updates += 1
            self.apply_mixins()
        return LDAStep(len(ids), int(tokens.numel()), perplexity, rate, time.perf_counter() - start)

    # ----- eqs. 2.10 and 2.11
    def apply_mixins(self) -> None:
        if self.l1 <= 0 and self.cosine <= 0:
            return
        phi = self.phi
        step = torch.zeros_like(phi)
        if self.l1 > 0:
            step += self.l1 * torch.sign(phi)
        if self.cosine > 0:
            step += self.cosine * (phi.sum(0, keepdim=True) - phi)
        new = (phi - step).clamp_min_(0.0)
        empty = new.sum(1) <= 0  # a topic the step emptied keeps its old weights (nothing to renormalise)
        new[empty] = phi[empty]
        self.set_phi(new / new.sum(1, keepdim=True))

    # ----- what the dashboard shows
    def density(self) -> float:
        """The thesis' g1: the share of φ's weights at least 0.01."""
        return float((self.phi >= DENSE).float().mean())

    def similarity(self) -> np.ndarray:
        """(K, K) cosine similarity of the topics' word distributions."""
        return topic_similarity(self.phi.cpu().numpy())

    def top_words(self, n: int = 10) -> np.ndarray:
        """(K, n) each topic's most probable word ids, most probable first."""
        return torch.topk(self.phi, min(n, self.num_words), dim=1).indices.cpu().numpy()

    def perplexity(self, docs: Sequence[np.ndarray], *, iterations: int = 50) -> float:
        """Held-out perplexity by document completion: see :func:`heldout_perplexity`."""
        return heldout_perplexity(self.phi.cpu().numpy(), docs, alpha=self.alpha, iterations=iterations)


# ----- metrics shared with the scikit-learn comparison (they take any φ)
def topic_similarity(phi: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of the rows of ``phi``."""
    phi = np.asarray(phi, dtype=np.float64)
    unit = phi / np.maximum(np.linalg.norm(phi, axis=1, keepdims=True), 1e-30)
    return unit @ unit.T


def mean_overlap(phi: np.ndarray) -> float:
    """The mean off-diagonal topic cosine similarity."""
    s = topic_similarity(phi)
    k = s.shape[0]
    return float((s.sum() - np.trace(s)) / (k * (k - 1)))


def density(phi: np.ndarray) -> float:
    """The thesis' g1: the share of weights at least 0.01."""
    return float((np.asarray(phi) >= DENSE).mean())


def heldout_perplexity(phi: np.ndarray, docs: Sequence[np.ndarray], *, alpha: float = 0.1,
                       iterations: int = 50) -> float:
    """Perplexity of held-out documents by document completion, for any topics ``phi`` (K, V).

    Each document's tokens are cut in two halves (in order); θ is folded in on the
    first half with ``phi`` fixed, by ``iterations`` EM steps from uniform
    (``θ ∝ α + Σ_i p(z_i = k)`` with ``p(z_i = k) ∝ θ_k φ_kw_i``, the MAP point
    estimate); the second half is scored by ``log Σ_k θ_k φ_kw``. Perplexity is
    ``exp(−Σ log p / number of scored tokens)``. Documents of fewer than 2 tokens
    are skipped. (Wallach et al. 2009's "document completion", with a point θ.)
    """
    phi = torch.as_tensor(np.asarray(phi, dtype=np.float64))
    phi = phi / phi.sum(1, keepdim=True)
    kept = [np.asarray(d, dtype=np.int64) for d in docs if len(d) >= 2]
    if not kept:
        raise InvalidParameterError("held-out perplexity needs documents of at least 2 tokens")
    first = [d[:len(d) // 2] for d in kept]
    second = [d[len(d) // 2:] for d in kept]
    f_tokens, f_offsets = _flatten(first, phi.shape[1], "held-out docs")
    s_tokens, s_offsets = _flatten(second, phi.shape[1], "held-out docs")
    f_doc = torch.repeat_interleave(torch.arange(len(kept)), f_offsets.diff())
    s_doc = torch.repeat_interleave(torch.arange(len(kept)), s_offsets.diff())
    k = phi.shape[0]
    theta = torch.full((len(kept), k), 1.0 / k, dtype=phi.dtype)
    word_probs = phi.T[f_tokens]
    for _ in range(iterations):
        p = theta[f_doc] * word_probs
        p = p / p.sum(1, keepdim=True)
        theta = torch.zeros_like(theta).index_add_(0, f_doc, p) + alpha
        theta = theta / theta.sum(1, keepdim=True)
    log_p = (theta[s_doc] * phi.T[s_tokens]).sum(1).log()
    return float(torch.exp(-log_p.mean()))


def npmi_coherence(top_words: np.ndarray, docs: Sequence[np.ndarray] | scipy.sparse.spmatrix,
                   num_words: int | None = None) -> np.ndarray:
    """Each topic's mean NPMI over the pairs of its top words, by document co-occurrence.

    ``NPMI(a, b) = log(P(a, b) / (P(a) P(b))) / −log P(a, b)``, with ``P`` the share
    of ``docs`` holding the word(s); a pair never seen together scores −1 (its limit).
    ``docs`` are word-id arrays or a documents × words (count) matrix.
    """
    top = np.asarray(top_words, dtype=np.int64)
    if top.ndim != 2 or top.shape[1] < 2:
        raise InvalidParameterError(f"top_words must be (topics, n >= 2) word ids. Got shape {top.shape}.")
    if scipy.sparse.issparse(docs):
        matrix = scipy.sparse.csr_matrix(docs)
    else:
        n = num_words if num_words is not None else int(max(int(np.max(d)) for d in docs if len(d)) + 1)
        rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
        cols = np.concatenate([np.asarray(d, dtype=np.int64) for d in docs])
        matrix = scipy.sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(docs), n))
    words = np.unique(top)
    present = (matrix[:, words] > 0).astype(np.float64)
    together = (present.T @ present).toarray() / matrix.shape[0]  # P(a, b); the diagonal P(a)
    single = np.diag(together)
    where = {w: i for i, w in enumerate(words)}
    scores = np.empty(top.shape[0])
    for t, row in enumerate(top):
        idx = np.array([where[w] for w in row])
        a, b = np.triu_indices(len(idx), 1)
        joint, pa, pb = together[idx[a], idx[b]], single[idx[a]], single[idx[b]]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.log(joint / (pa * pb)) / -np.log(joint)
        value[joint <= 0] = -1.0
        value[(joint >= 1)] = 1.0  # a pair in every document: perfectly associated
        scores[t] = value.mean()
    return scores
