"""Power-law shaped embedding and output layers (thesis chapter 5, "Power law shape matrix").

Words are sorted by frequency rank (id 0 the most frequent) and split into blocks
whose sizes double with rank while their dimensions fall by a power law. The
thesis' layout for PTB (Table 5.2) is ``num_words=10000, dim=512, exponent=1,
num_blocks=5``: ranks 0-624, 625-1249, 1250-2499, 2500-4999, 5000-9999 get 512,
256, 128, 64 and 32 dimensions -- 960,000 parameters instead of 5.12M.

Block ``j`` (``j >= 1``) starts at rank ``s_j = n0 * 2**(j - 1)`` and has dimension
``dim * 2**(-exponent * j)``, i.e. proportional to ``s_j ** -exponent``: a power law
in rank.

The thesis' matrix is a group of dense blocks inside one ``dim x num_words``
matrix: a rare word's vector is zero beyond its block's dimension
(``projection="pad"``, no extra parameters). ``projection="linear"`` instead maps
each smaller block to ``dim`` by a learned projection (Baevski & Auli's adaptive
input). Either way the module is a drop-in for ``nn.Embedding(num_words, dim)``,
and :class:`PowerLawOutput` gives the matching (tied or untied) output layer.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from modeldx._params import Interval, OneOf, check_params
from modeldx.errors import InvalidParameterError

PROJECTIONS = ("pad", "linear")


def power_law_blocks(num_words: int, dim: int, *, exponent: float = 1.0, num_blocks: int = 5,
                     min_dim: int = 1) -> list[tuple[int, int]]:
    """The ``(size, dim)`` of each block, most frequent words first.

    The last block holds half the vocabulary, the one before a quarter, ...; the
    first two blocks are equal. Dimensions are ``dim * 2**(-exponent * j)`` rounded,
    at least ``min_dim``.

    Examples
    --------
    >>> power_law_blocks(10000, 512)
    [(625, 512), (625, 256), (1250, 128), (2500, 64), (5000, 32)]
    """
    check_params("power_law_blocks",
                 {"num_words": num_words, "dim": dim, "exponent": exponent, "num_blocks": num_blocks,
                  "min_dim": min_dim},
                 {"num_words": Interval(int, 1, None), "dim": Interval(int, 1, None),
                  "exponent": Interval(float, 0, None), "num_blocks": Interval(int, 1, None),
                  "min_dim": Interval(int, 1, None)})
    if min_dim > dim:
        raise InvalidParameterError(f"The 'min_dim' parameter of power_law_blocks must be at most "
                                    f"dim={dim}. Got {min_dim!r} instead.")
    n0 = math.ceil(num_words / 2 ** (num_blocks - 1))
    starts = [0] + [n0 * 2 ** (j - 1) for j in range(1, num_blocks)]
    ends = [*starts[1:], num_words]
    if any(end <= start for start, end in zip(starts, ends, strict=True)):
        raise InvalidParameterError(
            f"The 'num_blocks' parameter of power_law_blocks is too large for {num_words} words "
            f"(a block would be empty); use at most {1 + max(0, math.floor(math.log2(num_words)))}. "
            f"Got {num_blocks!r} instead.")
    return [(end - start, max(min_dim, min(dim, round(dim * 2.0 ** (-exponent * j)))))
            for j, (start, end) in enumerate(zip(starts, ends, strict=True))]


def _count(blocks: list[tuple[int, int]], dim: int, projection: str) -> int:
    weights = sum(n * d for n, d in blocks)
    if projection == "linear":
        weights += sum(d * dim for _, d in blocks if d < dim)
    return weights


def _check_blocks(blocks, num_words: int, dim: int) -> list[tuple[int, int]]:
    ok = (isinstance(blocks, list | tuple) and len(blocks) > 0
          and all(isinstance(b, list | tuple) and len(b) == 2
                  and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in b)
                  and b[0] >= 1 and 1 <= b[1] <= dim for b in blocks))
    if not ok or sum(b[0] for b in blocks) != num_words:
        raise InvalidParameterError(
            f"The 'blocks' parameter of PowerLawEmbedding must be a list of (size, dim) pairs with "
            f"sizes >= 1 summing to num_words={num_words} and dims in [1, {dim}]. Got {blocks!r} instead.")
    return [(int(n), int(d)) for n, d in blocks]


class PowerLawEmbedding(nn.Module):
    """A drop-in for ``nn.Embedding(num_words, dim)`` whose per-word dimension falls
    with frequency rank by a power law, in blocks.

    Parameters
    ----------
    num_words, dim
        As for ``nn.Embedding``; ids must be frequency ranks (0 the most frequent word).
    exponent
        The power law's exponent: dimensions halve ``exponent`` times per block (0 gives
        the full embedding, 1 the thesis' layout).
    num_blocks, min_dim
        How many blocks, and the smallest dimension a block gets.
    blocks
        An explicit layout of ``(size, dim)`` pairs instead of ``exponent`` (e.g. the
        thesis' Table 5.2 rows).
    projection
        "pad" (the thesis: smaller blocks fill the first coordinates, the rest is zero)
        or "linear" (each smaller block has a learned ``d_j -> dim`` projection).

    Examples
    --------
    >>> emb = PowerLawEmbedding(10000, 512)
    >>> emb(torch.tensor([[0, 9999]])).shape
    torch.Size([1, 2, 512])
    >>> emb.num_parameters, emb.full_parameters
    (960000, 5120000)
    """

    def __init__(self, num_words: int, dim: int, *, exponent: float | None = 1.0, num_blocks: int = 5,
                 min_dim: int = 1, blocks: list[tuple[int, int]] | None = None, projection: str = "pad",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_params("PowerLawEmbedding", {"num_words": num_words, "dim": dim, "projection": projection},
                     {"num_words": Interval(int, 1, None), "dim": Interval(int, 1, None),
                      "projection": OneOf(*PROJECTIONS)})
        if blocks is not None:
            layout = _check_blocks(blocks, num_words, dim)
            exponent = None
        else:
            if exponent is None:
                raise InvalidParameterError("PowerLawEmbedding needs an 'exponent' or explicit 'blocks'.")
            layout = power_law_blocks(num_words, dim, exponent=exponent, num_blocks=num_blocks,
                                      min_dim=min_dim)
        self.num_words, self.dim, self.exponent, self.projection = num_words, dim, exponent, projection
        self.blocks = layout
        starts = [0]
        for n, _ in layout[:-1]:
            starts.append(starts[-1] + n)
        self.starts = starts
        factory = {"device": device, "dtype": dtype}
        self.weights = nn.ParameterList([nn.Parameter(torch.empty(n, d, **factory)) for n, d in layout])
        # a block of the full dimension needs no projection
        self.projections = nn.ModuleList([
            nn.Linear(d, dim, bias=False, **factory) if projection == "linear" and d < dim else nn.Identity()
            for _, d in layout])
        self.reset_parameters()

    @classmethod
    def from_budget(cls, num_words: int, dim: int, budget: int, *, num_blocks: int = 5, min_dim: int = 1,
                    projection: str = "pad", **kwargs) -> PowerLawEmbedding:
        """The embedding with the smallest exponent whose parameters fit in ``budget``.

        Examples
        --------
        >>> PowerLawEmbedding.from_budget(10000, 512, 1_000_000).num_parameters <= 1_000_000
        True
        """
        check_params("PowerLawEmbedding.from_budget", {"budget": budget, "projection": projection},
                     {"budget": Interval(int, 1, None), "projection": OneOf(*PROJECTIONS)})

        def count(exponent: float) -> int:
            return _count(power_law_blocks(num_words, dim, exponent=exponent, num_blocks=num_blocks,
                                           min_dim=min_dim), dim, projection)

        if count(0.0) <= budget:
            return cls(num_words, dim, exponent=0.0, num_blocks=num_blocks, min_dim=min_dim,
                       projection=projection, **kwargs)
        # beyond this exponent every block but the first has min_dim: the smallest layout
        lo, hi = 0.0, math.log2(dim) + 1.0
        if count(hi) > budget:
            raise InvalidParameterError(
                f"The 'budget' parameter of PowerLawEmbedding.from_budget must be at least {count(hi)} "
                f"for {num_words} words in {num_blocks} blocks of dim {dim}. Got {budget!r} instead.")
        for _ in range(60):  # the count is non-increasing in the exponent: bisect
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if count(mid) <= budget else (mid, hi)
        return cls(num_words, dim, exponent=hi, num_blocks=num_blocks, min_dim=min_dim,
                   projection=projection, **kwargs)

    def reset_parameters(self) -> None:
        """Block weights ~ N(0, 1) as ``nn.Embedding``; projections as ``nn.Linear``."""
        for w in self.weights:
            nn.init.normal_(w)
        for p in self.projections:
            if isinstance(p, nn.Linear):
                p.reset_parameters()

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def full_parameters(self) -> int:
        """Parameters of the ``nn.Embedding(num_words, dim)`` this replaces."""
        return self.num_words * self.dim

    @property
    def parameter_share(self) -> float:
        """``num_parameters / full_parameters``."""
        return self.num_parameters / self.full_parameters

    def extra_repr(self) -> str:
        return (f"{self.num_words}, {self.dim}, blocks={self.blocks}, projection={self.projection!r}, "
                f"parameters={self.num_parameters} ({self.parameter_share:.1%} of the full embedding)")

    def block_vectors(self, j: int, local_ids: torch.Tensor) -> torch.Tensor:
        """Block ``j``'s words (ids relative to the block's start) as ``dim``-vectors."""
        vec = self.weights[j][local_ids]
        if self.projection == "linear":
            return self.projections[j](vec)
        return F.pad(vec, (0, self.dim - vec.shape[-1]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
            raise InvalidParameterError(f"PowerLawEmbedding takes integer word ids. Got dtype {ids.dtype}.")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_words):
            raise InvalidParameterError(
                f"Word ids must be in [0, {self.num_words}). "
                f"Got ids in [{int(ids.min())}, {int(ids.max())}].")
        ids = ids.long()
        w0 = self.weights[0]
        out = torch.zeros(*ids.shape, self.dim, dtype=w0.dtype, device=w0.device)
        for j, (start, (n, _)) in enumerate(zip(self.starts, self.blocks, strict=True)):
            mask = (ids >= start) & (ids < start + n)
            if mask.any():
                out[mask] = self.block_vectors(j, ids[mask] - start)
        return out

    def dense_weight(self) -> torch.Tensor:
        """The equivalent ``(num_words, dim)`` matrix (for inspection; it has the full size)."""
        return torch.cat([self.block_vectors(j, torch.arange(n, device=self.weights[j].device))
                          for j, (n, _) in enumerate(self.blocks)])


class PowerLawOutput(nn.Module):
    """Logits over the whole vocabulary from power-law blocks: the output layer that
    matches a :class:`PowerLawEmbedding`.

    Block ``j``'s logits are ``h[..., :d_j] @ W_j.T`` ("pad") or ``(h @ P_j) @ W_j.T``
    ("linear", ``P_j`` the embedding's projection, transposed): the transpose of the
    embedding, as a tied ``nn.Linear`` is of ``nn.Embedding``.

    Parameters
    ----------
    embedding
        The input embedding whose layout (and, with ``tie=True``, weights) to use.
    tie
        Share the embedding's blocks and projections; otherwise own a copy of the layout.
    bias
        A bias per word.

    Examples
    --------
    >>> emb = PowerLawEmbedding(10000, 512)
    >>> out = PowerLawOutput(emb)
    >>> out(torch.zeros(3, 512)).shape
    torch.Size([3, 10000])
    >>> out.num_parameters  # tied: the bias only
    10000
    """

    def __init__(self, embedding: PowerLawEmbedding, *, tie: bool = True, bias: bool = True) -> None:
        super().__init__()
        check_params("PowerLawOutput", {"embedding": embedding, "tie": tie, "bias": bias},
                     {"embedding": PowerLawEmbedding, "tie": bool, "bias": bool})
        self.tied = tie
        if tie:
            self.source = embedding
        else:
            w = embedding.weights[0]
            self.source = PowerLawEmbedding(embedding.num_words, embedding.dim, blocks=embedding.blocks,
                                            projection=embedding.projection, device=w.device, dtype=w.dtype)
        w = embedding.weights[0]
        self.bias = nn.Parameter(torch.zeros(embedding.num_words, device=w.device, dtype=w.dtype)) if bias \
            else None

    @property
    def num_parameters(self) -> int:
        """This layer's own parameters (the shared blocks of a tied layer are not counted)."""
        own = 0 if self.tied else self.source.num_parameters
        return own + (self.bias.numel() if self.bias is not None else 0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        src = self.source
        if h.shape[-1] != src.dim:
            raise InvalidParameterError(f"PowerLawOutput takes inputs of last dimension {src.dim}. "
                                        f"Got shape {tuple(h.shape)}.")
        parts = []
        for j, (_, d) in enumerate(src.blocks):
            proj = src.projections[j]
            # the transpose of the embedding's map: Linear(d, dim).weight is (dim, d)
            z = h @ proj.weight if isinstance(proj, nn.Linear) else h[..., :d]
            parts.append(z @ src.weights[j].T)
        logits = torch.cat(parts, dim=-1)
        return logits + self.bias if self.bias is not None else logits
