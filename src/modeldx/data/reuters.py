"""Reuters-21578 (Distribution 1.0) with the ModApte split, read straight from its tarball.

The 22 SGML files ``reut2-000.sgm`` ... ``reut2-021.sgm`` are read from
``<data root>/reuters21578.tar.gz`` without extracting anything to disk; every member
is checked against its published SHA-256 as it is read. Our own parser (``re`` and
``html``) reads the Latin-1 bytes and the ``&#N;`` character references.

ModApte (Lewis' README, section VIII.B): training documents have
``LEWISSPLIT="TRAIN"``, test documents ``LEWISSPLIT="TEST"``, both with
``TOPICS="YES"`` -- 9,603 / 3,299 documents. The usual text-categorisation
convention (Yang & Liu 1999; NLTK's ApteMod) then keeps only documents with at least
one of the 90 topics that have a training and a test document: 7,770 / 3,019 here
(published: 7,769 / 3,019; we did not find the one-document difference).
"""

from __future__ import annotations

import functools
import hashlib
import html
import os
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse

from modeldx._params import Interval, OneOf, check_params
from modeldx.data.root import ENV_VAR, data_root
from modeldx.data.text import STOP_WORDS, Vocabulary, count_matrix, tokenize
from modeldx.errors import ChecksumError, DataNotFoundError

TARBALL = "reuters21578.tar.gz"

# SHA-256 of the 22 SGML members, as in the distribution's reuters21578.members.sha256
MEMBER_SHA256 = {
    "reut2-000.sgm": "45da19a1441452aa599ce7b549e23519b8bc78ee75f893159a2ee498818262de",
    "reut2-001.sgm": "1528e7e82d110d88d0234eb9619eadb7f9fd805711971df05975b92277dfdf4d",
    "reut2-002.sgm": "99f18068d0518952987dedd78c622e5c2a584e357d264d3754696c815f3e6628",
    "reut2-003.sgm": "78a3a8d7e04bc9d42c4614d5d5c60a4293dbe3f708df6fb5a71d9ef31f4b3fa3",
    "reut2-004.sgm": "726342c19a65873330b412378cd6a3f0d512035f5223146ddd60930c62eb6ff0",
    "reut2-005.sgm": "d09de619b6dd2d047d5124681f6df90550abaf592020d1c1ce338ae9b91522e7",
    "reut2-006.sgm": "b5535c0d66b01f4976f84621a4a795afbc00d2c4bd0a1b7ae426df6630fb361d",
    "reut2-007.sgm": "aa706007ec84a03537a3921ca976d60e11b3f99e4b9e9b2d5c81dd384d2c2062",
    "reut2-008.sgm": "a3994583694a00b7c744097c1d7eabfcf90f2e6650cc21663e46828035a336cb",
    "reut2-009.sgm": "29995f606dd1a9bdf907eacc9d879846c716860d9d9141676979474aaea39c7d",
    "reut2-010.sgm": "996df6008089bd09fa5b28a4d2eb0ee5f7b9d4601cde566fed3926ac82960fa3",
    "reut2-011.sgm": "d3a2782015247d9c2bffb8926267827fdd449c70d619435ef01a25a1c56a53ca",
    "reut2-012.sgm": "da31035d483851f2aebce5b66d779e5e2c0ac9dcfe098596c6d544e81c5604ab",
    "reut2-013.sgm": "8f7700bc0455fac3fcc12377ced4807b7df8aba1f21ecad059b9cc2b1cf0b8be",
    "reut2-014.sgm": "ef936bd3e0f36cf722afa9a6957563549775af32e9e28b4f539c8737ceda83ab",
    "reut2-015.sgm": "6d3bcec73eff871b8a5403588af814c4e50a0de6bc25707480522ab836f74026",
    "reut2-016.sgm": "be2f03a185fff70131f3b4fdbd6229b7ee2be077eba9691eaa597c8cfbda8812",
    "reut2-017.sgm": "f370e610b4b1342e41a98e0c426a08541044bd1d7e539674f32372a6060b73b5",
    "reut2-018.sgm": "a5f971bf25448e915781962309e669359a35fbcaf3017a806eca0590897f209a",
    "reut2-019.sgm": "d3b07097fba2633d130b4914aceba671645985248943ce9e39c289315339dffb",
    "reut2-020.sgm": "f6ad1b724125c202566c63b35ea0b5ee23881f8b7ed47a32829d5af05d8e860d",
    "reut2-021.sgm": "3f5196d32869723c9042aa5756805b4e90360f1f45ea17f4594fa0e2b3630b18",
}

SPLITS = ("train", "test")
TOPIC_FILTERS = ("modapte90", "any", "none")

_DOC = re.compile(r"<REUTERS([^>]*)>(.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_TEXT = re.compile(r"<TEXT[^>]*>(.*?)</TEXT>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ReutersDocument:
    """One story as parsed: ``text`` is its title and body (entities resolved)."""

    newid: int
    lewis_split: str  # TRAIN, TEST or NOT-USED
    has_topics: str  # the TOPICS attribute: YES, NO or BYPASS
    topics: tuple[str, ...]
    title: str
    text: str


@dataclass(frozen=True)
class ReutersCorpus:
    """One ModApte split as bag-of-words.

    ``docs[i]`` holds document ``i``'s word ids (int64, in text order, words outside
    the vocabulary dropped); ids index ``vocabulary``, which is built on the training
    split whatever ``split`` is, so train and test share it.
    """

    split: str
    docs: list[np.ndarray]
    vocabulary: Vocabulary
    topics: list[tuple[str, ...]]
    titles: list[str]
    newids: np.ndarray

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def num_tokens(self) -> int:
        return int(sum(len(d) for d in self.docs))

    def counts(self) -> scipy.sparse.csr_matrix:
        """The documents x words count matrix (CSR, int64), e.g. for scikit-learn's LDA."""
        return count_matrix(self.docs, len(self.vocabulary))


def _parse_sgml(text: str) -> list[ReutersDocument]:
    out = []
    for attrs, inner in _DOC.findall(text):
        a = dict(_ATTR.findall(attrs))
        topics_block = _TOPICS.search(inner)
        topics = tuple(_D.findall(topics_block.group(1))) if topics_block else ()
        body_block = _TEXT.search(inner)
        raw = body_block.group(1) if body_block else ""
        title = _TITLE.search(raw)
        body = _BODY.search(raw)
        if title or body:
            parts = [title.group(1) if title else "", body.group(1) if body else ""]
        else:  # TYPE="UNPROC": the story is the untagged text itself
            parts = ["", _TAG.sub(" ", raw)]
        title_text, body_text = (html.unescape(p).strip() for p in parts)
        out.append(ReutersDocument(int(a["NEWID"]), a["LEWISSPLIT"], a["TOPICS"], topics,
                                   title_text, f"{title_text}\n{body_text}".strip()))
    return out


def _checked_members(path: Path) -> dict[str, bytes]:
    """The 22 SGML files' bytes, each checked against its SHA-256."""
    found: dict[str, bytes] = {}
    damaged = f"{path} is damaged or truncated"
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in MEMBER_SHA256 and member.isfile():
                    found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ChecksumError(f"{damaged} ({type(exc).__name__}: {exc}); replace it with the "
                            "published reuters21578.tar.gz") from exc
    missing = sorted(set(MEMBER_SHA256) - set(found))
    if missing:
        raise ChecksumError(f"{damaged}: it lacks {len(missing)} of the 22 SGML files "
                            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    for name, data in found.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != MEMBER_SHA256[name]:
            raise ChecksumError(f"{damaged}: member {name} has SHA-256 {digest}, expected "
                                f"{MEMBER_SHA256[name]}")
    return found


@functools.lru_cache(maxsize=2)
def _read_documents(path: str, size: int, mtime_ns: int) -> tuple[ReutersDocument, ...]:
    # keyed by size and mtime too, so a file replaced on disk is read again
    members = _checked_members(Path(path))
    docs = []
    for name in sorted(members):
        # the files are Latin-1 (reut2-017.sgm holds one 0xFC byte)
        docs.extend(_parse_sgml(members[name].decode("latin-1")))
    return tuple(docs)


def read_reuters_documents(root: str | os.PathLike | None = None) -> tuple[ReutersDocument, ...]:
    """All 21,578 stories of ``<data root>/reuters21578.tar.gz``, checked and parsed.

    Raises :class:`DataNotFoundError` when the tarball is missing and
    :class:`ChecksumError` when it is damaged, truncated or lacks a file.
    Parsed documents are cached per tarball (path, size and modification time).
    """
    base = data_root(root)
    path = base / TARBALL
    if not path.is_file():
        raise DataNotFoundError(
            f"Reuters-21578 not found: no {TARBALL} in {base} (data root from "
            f"{'the argument' if root is not None else ENV_VAR + ' or ./data'}). Put the published "
            f"tarball there or point {ENV_VAR} at the folder holding it."
        )
    stat = path.stat()
    return _read_documents(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def modapte_split(documents, split: str, topic_filter: str = "modapte90") -> list[ReutersDocument]:
    """The ModApte ``split`` ("train" or "test") of parsed ``documents``.

    ``topic_filter``: "none" keeps all 9,603 / 3,299 ModApte documents, "any" those with
    at least one topic, "modapte90" those with at least one of the 90 topics that occur
    in both splits (their other topics are dropped).
    """
    check_params("modapte_split", {"split": split, "topic_filter": topic_filter},
                 {"split": OneOf(*SPLITS), "topic_filter": OneOf(*TOPIC_FILTERS)})
    wanted = split.upper()
    docs = [d for d in documents if d.has_topics == "YES" and d.lewis_split == wanted]
    if topic_filter == "any":
        return [d for d in docs if d.topics]
    if topic_filter == "modapte90":
        keep = _topics_in_both(documents)
        docs = [d.__class__(d.newid, d.lewis_split, d.has_topics,
                            tuple(t for t in d.topics if t in keep), d.title, d.text) for d in docs]
        return [d for d in docs if d.topics]
    return docs


def _topics_in_both(documents) -> frozenset[str]:
    seen: dict[str, set[str]] = {"TRAIN": set(), "TEST": set()}
    for d in documents:
        if d.has_topics == "YES" and d.lewis_split in seen:
            seen[d.lewis_split].update(d.topics)
    return frozenset(seen["TRAIN"] & seen["TEST"])


def load_reuters(
    split: str = "train",
    *,
    root: str | os.PathLike | None = None,
    topic_filter: str = "modapte90",
    min_count: int = 1,
    max_doc_share: float = 1.0,
    min_length: int = 2,
    stop_words: bool = True,
    vocabulary: Vocabulary | None = None,
) -> ReutersCorpus:
    """Reuters-21578's ModApte ``split`` as a bag-of-words corpus for topic models.

    Parameters
    ----------
    split
        "train" or "test".
    root
        The data root holding ``reuters21578.tar.gz`` (default: ``$MODELDX_DATA``, then ``./data``).
    topic_filter
        "modapte90" (default, the usual convention: 7,770 / 3,019 documents), "any"
        (at least one topic: 7,775 / 3,019) or "none" (all 9,603 / 3,299).
    min_count, max_doc_share
        Keep words seen at least ``min_count`` times in the training split and in at most
        ``max_doc_share`` of its documents.
    min_length, stop_words
        Tokenising: drop tokens shorter than ``min_length``, and the English stop words of
        :data:`modeldx.data.text.STOP_WORDS` unless ``stop_words=False``.
    vocabulary
        Use this vocabulary instead of building one on the training split.

    Examples
    --------
    >>> train = load_reuters("train")  # doctest: +SKIP
    >>> test = load_reuters("test", vocabulary=train.vocabulary)  # doctest: +SKIP
    >>> train.counts().shape  # doctest: +SKIP
    (7770, 24645)
    """
    check_params("load_reuters",
                 {"split": split, "topic_filter": topic_filter, "min_count": min_count,
                  "max_doc_share": max_doc_share, "min_length": min_length, "stop_words": stop_words},
                 {"split": OneOf(*SPLITS), "topic_filter": OneOf(*TOPIC_FILTERS),
                  "min_count": Interval(int, 1, None), "max_doc_share": Interval(float, 0, 1, "right"),
                  "min_length": Interval(int, 1, None), "stop_words": bool})
    documents = read_reuters_documents(root)
    stop = STOP_WORDS if stop_words else None

    def tokens(docs: list[ReutersDocument]) -> list[list[str]]:
        return [tokenize(d.text, stop_words=stop, min_length=min_length) for d in docs]

    chosen = modapte_split(documents, split, topic_filter)
    chosen_tokens = tokens(chosen)
    if vocabulary is None:
        train_tokens = chosen_tokens if split == "train" else tokens(
            modapte_split(documents, "train", topic_filter))
        vocabulary = Vocabulary.from_documents(train_tokens, min_count=min_count,
                                               max_doc_share=max_doc_share)
    return ReutersCorpus(
        split=split,
        docs=[vocabulary.encode(t) for t in chosen_tokens],
        vocabulary=vocabulary,
        topics=[d.topics for d in chosen],
        titles=[d.title for d in chosen],
        newids=np.array([d.newid for d in chosen], dtype=np.int64),
    )
