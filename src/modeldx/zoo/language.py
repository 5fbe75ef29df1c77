"""A word-level LSTM language model with a full or power-law embedding, and its recipe.

The thesis' chapter 5 experiment (Table 5.3): the same LSTM language model on Penn
Treebank with a dense ``nn.Embedding`` (and tied ``nn.Linear`` output) or with a
:class:`~modeldx.nn.PowerLawEmbedding` (and tied :class:`~modeldx.nn.PowerLawOutput`).
Training is truncated backpropagation through time on batchified streams with
gradient-norm clipping; the score is perplexity, ``exp`` of the mean cross-entropy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from modeldx._params import Interval, OneOf, check_params
from modeldx.errors import InvalidParameterError
from modeldx.nn import PowerLawEmbedding, PowerLawOutput

EMBEDDINGS = ("full", "power-law")


class WordLSTM(nn.Module):
    """Embedding -> LSTM -> (tied) output over the vocabulary.

    Parameters
    ----------
    num_words
        Vocabulary size; with ``embedding="power-law"`` ids must be frequency ranks.
    dim, hidden, layers
        Embedding dimension, LSTM hidden size and number of LSTM layers. A tied model
        needs ``hidden == dim`` (the output layer is the embedding's transpose).
    embedding
        "full" (``nn.Embedding`` + ``nn.Linear``) or "power-law"
        (``PowerLawEmbedding`` + ``PowerLawOutput``).
    budget, exponent
        For "power-law": a parameter budget for the embedding (the smallest exponent that
        fits, :meth:`PowerLawEmbedding.from_budget`) or the exponent itself (default 1,
        the thesis' layout). At most one of them.
    num_blocks
        Blocks of the power-law layout.
    tie
        Share the input embedding's weights with the output layer.
    init_range
        All weights are drawn from U(-init_range, init_range), as in the thesis; biases
        of the output layer start at 0.

    Examples
    --------
    >>> model = WordLSTM(10000, 200, 200, embedding="power-law", budget=500_000)
    >>> model.embedding_parameters <= 500_000
    True
    >>> logits, state = model(torch.zeros(35, 4, dtype=torch.long))
    >>> logits.shape
    torch.Size([35, 4, 10000])
    """

    def __init__(self, num_words: int, dim: int, hidden: int, layers: int = 1, *, embedding: str = "full",
                 budget: int | None = None, exponent: float | None = None, num_blocks: int = 5,
                 tie: bool = True, init_range: float = 0.1) -> None:
        super().__init__()
        check_params("WordLSTM",
                     {"num_words": num_words, "dim": dim, "hidden": hidden, "layers": layers,
                      "embedding": embedding, "tie": tie, "init_range": init_range},
                     {"num_words": Interval(int, 1, None), "dim": Interval(int, 1, None),
                      "hidden": Interval(int, 1, None), "layers": Interval(int, 1, None),
                      "embedding": OneOf(*EMBEDDINGS), "tie": bool,
                      "init_range": Interval(float, 0, None, closed="neither")})
        if tie and hidden != dim:
            raise InvalidParameterError(f"A tied WordLSTM needs hidden == dim (the output is the embedding's "
                                        f"transpose). Got hidden={hidden}, dim={dim}.")
        if embedding == "full" and (budget is not None or exponent is not None):
            raise InvalidParameterError(
                "'budget' and 'exponent' are for embedding='power-law'; "
                f"got budget={budget!r}, exponent={exponent!r} with embedding='full'.")
        if budget is not None and exponent is not None:
            raise InvalidParameterError(f"Give WordLSTM a 'budget' or an 'exponent', not both. "
                                        f"Got budget={budget!r}, exponent={exponent!r}.")
        self.num_words, self.dim, self.hidden, self.layers = num_words, dim, hidden, layers
        self.kind, self.tied = embedding, tie
        if embedding == "full":
            self.embed: nn.Module = nn.Embedding(num_words, dim)
            self.out: nn.Module = nn.Linear(hidden, num_words)
            if tie:
                self.out.weight = self.embed.weight
        else:
            if budget is not None:
                self.embed = PowerLawEmbedding.from_budget(num_words, dim, budget, num_blocks=num_blocks)
            else:
                self.embed = PowerLawEmbedding(num_words, dim, exponent=1.0 if exponent is None else exponent,
                                               num_blocks=num_blocks)
            self.out = PowerLawOutput(self.embed, tie=tie)
        self.lstm = nn.LSTM(dim, hidden, layers)
        self.init_range = init_range
        self.reset_parameters()

    def reset_parameters(self) -> None:
        r = self.init_range
        for name, p in self.named_parameters():
            if name.startswith("out.") and name.endswith("bias"):
                nn.init.zeros_(p)
            else:
                nn.init.uniform_(p, -r, r)

    @property
    def embedding_parameters(self) -> int:
        """Parameters of the input embedding (shared with a tied output layer)."""
        return sum(p.numel() for p in self.embed.parameters())

    @property
    def full_embedding_parameters(self) -> int:
        """``num_words * dim``: what a dense embedding has."""
        return self.num_words * self.dim

    @property
    def num_parameters(self) -> int:
        """All distinct parameters (a tied weight counted once)."""
        return sum(p.numel() for p in self.parameters())

    def init_state(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        p = next(self.lstm.parameters())
        zeros = torch.zeros(self.layers, batch_size, self.hidden, dtype=p.dtype, device=p.device)
        return zeros, zeros.clone()

    def forward(self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``ids`` (seq, batch) -> logits (seq, batch, num_words) and the LSTM's last state."""
        if ids.dim() != 2:
            raise InvalidParameterError(
                f"WordLSTM takes ids of shape (seq, batch). Got shape {tuple(ids.shape)}.")
        h, state = self.lstm(self.embed(ids), state)
        return self.out(h), state


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """A 1-d stream cut into ``batch_size`` parallel streams: shape (len // batch_size, batch_size).

    The tail that does not fill a row is dropped.

    Examples
    --------
    >>> batchify(torch.arange(10), 3)[:, 0]
    tensor([0, 1, 2])
    """
    check_params("batchify", {"batch_size": batch_size}, {"batch_size": Interval(int, 1, None)})
    if ids.dim() != 1 or len(ids) < 2 * batch_size:
        raise InvalidParameterError(f"batchify takes a 1-d stream of at least 2 * batch_size = "
                                    f"{2 * batch_size} ids. Got shape {tuple(ids.shape)}.")
    rows = len(ids) // batch_size
    return ids[:rows * batch_size].view(batch_size, rows).t().contiguous()


def _detach(state):
    return tuple(s.detach() for s in state)


@torch.no_grad()
def evaluate_perplexity(model: WordLSTM, ids: torch.Tensor, *, batch_size: int = 10, bptt: int = 35) -> float:
    """Perplexity of ``model`` on the stream ``ids`` (state carried across windows)."""
    model.eval()
    data = batchify(ids, batch_size)
    state = model.init_state(batch_size)
    total, count = 0.0, 0
    for i in range(0, len(data) - 1, bptt):
        n = min(bptt, len(data) - 1 - i)
        logits, state = model(data[i:i + n], state)
        total += F.cross_entropy(logits.reshape(-1, model.num_words), data[i + 1:i + 1 + n].reshape(-1),
                                 reduction="sum").item()
        count += n * batch_size
    return math.exp(total / count)


@dataclass
class LMResult:
    """What :func:`train_language_model` measured."""

    model: WordLSTM
    steps: int
    seconds: float
    """Training wall-clock time (validation excluded)."""
    valid_perplexity: float | None
    losses: list[float] = field(default_factory=list)
    """The training cross-entropy of every step."""


def train_language_model(model: WordLSTM, train_ids: torch.Tensor, valid_ids: torch.Tensor | None = None, *,
                         steps: int | None = None, epochs: float = 1.0, batch_size: int = 20, bptt: int = 35,
                         lr: float = 20.0, clip: float = 0.25, seed: int = 0) -> LMResult:
    """Truncated BPTT with plain SGD and gradient-norm clipping; validation perplexity at the end.

    ``model`` is re-initialised from ``seed`` first, so the same seed gives the same run.

    ``steps`` windows of ``bptt`` words over ``batch_size`` streams (default: ``epochs``
    passes over ``train_ids``; the streams wrap around), the LSTM state carried from one
    window to the next but not back-propagated through. The defaults are PyTorch's
    word-language-model example (lr 20, clip 0.25), which trains quickly; the thesis used
    lr 1, clip 5, 20-word windows and batches of 400 until over-fitting.
    """
    check_params("train_language_model",
                 {"batch_size": batch_size, "bptt": bptt, "lr": lr, "clip": clip, "epochs": epochs},
                 {"batch_size": Interval(int, 1, None), "bptt": Interval(int, 1, None),
                  "lr": Interval(float, 0, None, closed="neither"),
                  "clip": Interval(float, 0, None, closed="neither"),
                  "epochs": Interval(float, 0, None, closed="neither")})
    torch.manual_seed(seed)
    model.reset_parameters()
    data = batchify(train_ids, batch_size)
    windows = math.ceil((len(data) - 1) / bptt)
    if steps is None:
        steps = max(1, round(epochs * windows))
    check_params("train_language_model", {"steps": steps}, {"steps": Interval(int, 1, None)})
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses: list[float] = []
    state = model.init_state(batch_size)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        i = (step % windows) * bptt
        if i == 0:
            state = model.init_state(batch_size)  # a new pass over the streams
        n = min(bptt, len(data) - 1 - i)
        logits, state = model(data[i:i + n], _detach(state))
        loss = F.cross_entropy(logits.reshape(-1, model.num_words), data[i + 1:i + 1 + n].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    ppl = evaluate_perplexity(model, valid_ids, bptt=bptt) if valid_ids is not None else None
    return LMResult(model, steps, seconds, ppl, losses)
