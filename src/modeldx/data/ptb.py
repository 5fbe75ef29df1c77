"""The word-level Penn Treebank language-modelling corpus (Mikolov's split).

Read from ``<data root>/ptb/ptb.{train,valid,test}.txt`` and checked against the
published MD5s. Each line is a sentence; its words are followed by ``<eos>``. The
vocabulary is the training split's 10,000 words (``<unk>`` and ``<eos>`` included),
most frequent first, so a word's id is its frequency rank.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from modeldx._params import OneOf, check_params
from modeldx.data.download import file_md5
from modeldx.data.root import ENV_VAR, data_root
from modeldx.data.text import Vocabulary
from modeldx.errors import ChecksumError, DataNotFoundError

FOLDER = "ptb"
SPLITS = ("train", "valid", "test")
MD5 = {
    "ptb.train.txt": "f26c4b92c5fdc7b3f8c7cdcb991d8420",
    "ptb.valid.txt": "aa0affc06ff7c36e977d7cd49e3839bf",
    "ptb.test.txt": "8b80168b89c18661a38ef683c0dc3721",
}
EOS = "<eos>"
UNK = "<unk>"


@dataclass(frozen=True)
class PTBCorpus:
    """One split as a single stream of word ids (``ids``: int64 tensor) over ``vocabulary``."""

    split: str
    ids: torch.Tensor
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return len(self.ids)


def _path(base: Path, split: str, explicit_root: bool) -> Path:
    name = f"ptb.{split}.txt"
    path = base / FOLDER / name
    if not path.is_file():
        raise DataNotFoundError(
            f"Penn Treebank file {name!r} not found in {base / FOLDER} (data root from "
            f"{'the argument' if explicit_root else ENV_VAR + ' or ./data'}). Put the published "
            f"files there or point {ENV_VAR} at a folder holding '{FOLDER}/'."
        )
    return path


@functools.lru_cache(maxsize=4)
def _tokens(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    # keyed by size and mtime too, so a file replaced on disk is read and checked again
    name = Path(path).name
    digest = file_md5(Path(path))
    if digest != MD5[name]:
        raise ChecksumError(f"{path} is damaged or not the published file: MD5 {digest}, "
                            f"expected {MD5[name]}")
    out: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            out.extend(line.split())
            out.append(EOS)
    return tuple(out)


def _read(base: Path, split: str, explicit_root: bool) -> tuple[str, ...]:
    path = _path(base, split, explicit_root)
    stat = path.stat()
    return _tokens(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def load_ptb(
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    vocabulary: Vocabulary | None = None,
) -> PTBCorpus:
    """Penn Treebank ``split`` ("train", "valid" or "test") as word ids.

    The vocabulary is built on the training split (whatever ``split`` is) unless
    ``vocabulary`` is given; words outside it become ``<unk>`` (are dropped when it has none).

    Examples
    --------
    >>> train = load_ptb("train")  # doctest: +SKIP
    >>> len(train), len(train.vocabulary)  # doctest: +SKIP
    (929589, 10000)
    >>> train.vocabulary.words[:3]  # doctest: +SKIP
    ('the', '<unk>', '<eos>')
    """
    check_params("load_ptb", {"split": split}, {"split": OneOf(*SPLITS)})
    base = data_root(root)
    tokens = _read(base, split, root is not None)
    if vocabulary is None:
        train = tokens if split == "train" else _read(base, "train", root is not None)
        counts = Counter(train)
        words = sorted(counts, key=lambda w: (-counts[w], w))
        vocabulary = Vocabulary(tuple(words), np.array([counts[w] for w in words], dtype=np.int64))
    unknown = vocabulary.id(UNK) if UNK in vocabulary else None
    ids = vocabulary.encode(tokens, unknown=unknown)
    return PTBCorpus(split, torch.from_numpy(ids), vocabulary)
