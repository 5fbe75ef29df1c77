"""Text corpora: tokenising, an English stop-word list and a vocabulary with counts.

Shared by the Reuters-21578 and Penn Treebank loaders. A :class:`Vocabulary` keeps
words sorted by falling count, so a word's id is its frequency rank (what
:class:`modeldx.nn.PowerLawEmbedding` expects).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from modeldx._params import Interval, check_params
from modeldx.errors import InvalidParameterError

# A small standard English stop-word list (articles, pronouns, auxiliaries,
# prepositions, conjunctions and the commonest adverbs), written for modeldx.
_STOP_WORDS_TEXT = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each either else
ever few for from further had has have having he her here hers herself him himself his how
however i if in into is it its itself just me more most my myself neither no nor not now of
off on once only or other our ours ourselves out over own same she should so some such than
that the their theirs them themselves then there these they this those through to too under
until up upon us very was we were what when where which while who whom whose why will with
within without would yet you your yours yourself yourselves
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_WORDS_TEXT.split())

# letters only: runs of Unicode letters (no digits, no underscore), so "U.S." gives "u", "s"
# and Reuters' one Latin-1 "ü" stays inside its word
_WORD = re.compile(r"[^\W\d_]+")


def tokenize(text: str, *, stop_words: Iterable[str] | None = STOP_WORDS,
             min_length: int = 2) -> list[str]:
    """Lower-case ``text`` and split it into runs of letters.

    Tokens shorter than ``min_length`` and those in ``stop_words`` are dropped.

    Examples
    --------
    >>> tokenize("The U.S. cocoa crop, 6.4 mln bags.")
    ['cocoa', 'crop', 'mln', 'bags']
    """
    stop = frozenset(stop_words or ())
    return [w for w in _WORD.findall(text.lower()) if len(w) >= min_length and w not in stop]


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Words and their counts, most frequent first: a word's id is its frequency rank.

    ``doc_counts`` is the number of documents each word occurs in (``None`` for a
    corpus read as one stream, like the Penn Treebank).
    """

    words: tuple[str, ...]
    counts: np.ndarray
    doc_counts: np.ndarray | None = None
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})

    @classmethod
    def from_documents(cls, documents: Sequence[Sequence[str]], *, min_count: int = 1,
                       max_doc_share: float = 1.0) -> Vocabulary:
        """Count tokens over ``documents``; keep words seen at least ``min_count`` times
        and in at most ``max_doc_share`` of the documents.

        Ties in count are broken alphabetically, so the ids do not depend on document order.

        Examples
        --------
        >>> v = Vocabulary.from_documents([["oil", "price"], ["oil", "wheat"]], max_doc_share=0.5)
        >>> v.words
        ('price', 'wheat')
        """
        check_params("Vocabulary.from_documents", {"min_count": min_count, "max_doc_share": max_doc_share},
                     {"min_count": Interval(int, 1, None), "max_doc_share": Interval(float, 0, 1, "right")})
        counts: Counter[str] = Counter()
        docs: Counter[str] = Counter()
        for doc in documents:
            counts.update(doc)
            docs.update(set(doc))
        limit = max_doc_share * len(documents)
        kept = [w for w, c in counts.items() if c >= min_count and docs[w] <= limit]
        kept.sort(key=lambda w: (-counts[w], w))
        return cls(tuple(kept), np.array([counts[w] for w in kept], dtype=np.int64),
                   np.array([docs[w] for w in kept], dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Vocabulary) and self.words == other.words
                and np.array_equal(self.counts, other.counts))

    __hash__ = None  # mutable numpy fields: equal vocabularies need not hash alike

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self._index

    def id(self, word: str) -> int:
        """The id of ``word``; an unknown word raises :class:`InvalidParameterError`."""
        try:
            return self._index[word]
        except KeyError:
            raise InvalidParameterError(f"{word!r} is not in the vocabulary of {len(self)} words") from None

    def encode(self, tokens: Iterable[str], *, unknown: int | None = None) -> np.ndarray:
        """Token ids as int64; unknown tokens are dropped, or mapped to ``unknown`` when given."""
        index = self._index
        if unknown is None:
            ids = [index[t] for t in tokens if t in index]
        else:
            ids = [index.get(t, unknown) for t in tokens]
        return np.array(ids, dtype=np.int64)


def count_matrix(docs: Sequence[np.ndarray], num_words: int) -> scipy.sparse.csr_matrix:
    """The documents x words matrix of token counts (CSR, int64) of word-id arrays.

    Examples
    --------
    >>> count_matrix([np.array([0, 2, 2]), np.array([1])], 3).toarray()
    array([[1, 0, 2],
           [0, 1, 0]])
    """
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    rows = np.repeat(np.arange(len(docs)), lengths)
    cols = np.concatenate(docs) if len(docs) else np.zeros(0, np.int64)
    m = scipy.sparse.csr_matrix((np.ones(len(cols), np.int64), (rows, cols)),
                                shape=(len(docs), num_words))
    m.sum_duplicates()
    return m
