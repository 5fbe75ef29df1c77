"""Reuters-21578 from the real tarball (MODELDX_DATA), and damaged copies of it."""

import gzip
import io
import tarfile
import time

import numpy as np
import pytest

from modeldx.data import load_reuters
from modeldx.data.reuters import MEMBER_SHA256, modapte_split, read_reuters_documents
from modeldx.data.reuters import _read_documents as cached_reader
from modeldx.data.text import STOP_WORDS, Vocabulary, count_matrix, tokenize
from modeldx.errors import ChecksumError, DataNotFoundError, InvalidParameterError
from tests.conftest import other_data_root


def reuters_root():
    root = other_data_root()
    if not (root / "reuters21578.tar.gz").is_file():
        pytest.fail(f"this test needs {root / 'reuters21578.tar.gz'} (the shared Reuters-21578 tarball)")
    return root


@pytest.fixture(scope="module")
def documents():
    return read_reuters_documents(reuters_root())


@pytest.fixture(scope="module")
def train():
    return load_reuters("train", root=reuters_root())


def test_all_stories_parsed_with_unique_ids(documents):
    assert len(documents) == 21578
    assert sorted(d.newid for d in documents) == list(range(1, 21579))


def test_modapte_counts_match_the_published_ones(documents):
    count = {f: (len(modapte_split(documents, "train", f)), len(modapte_split(documents, "test", f)))
             for f in ("none", "any", "modapte90")}
    assert count["none"] == (9603, 3299)  # Lewis' README, ModApte
    assert count["any"] == (7775, 3019)
    # published 7,769 / 3,019 (NLTK's ApteMod); our parse keeps one training story more
    assert count["modapte90"] == (7770, 3019)
    topics = {t for d in modapte_split(documents, "train") for t in d.topics}
    assert len(topics) == 90


def test_first_story_title_body_topics_and_entities(documents):
    first = next(d for d in documents if d.newid == 1)
    assert first.title == "BAHIA COCOA REVIEW" and first.topics == ("cocoa",)
    assert first.text.startswith("BAHIA COCOA REVIEW\nShowers continued throughout the week")
    second = next(d for d in documents if d.newid == 2)
    assert second.title == "STANDARD OIL <SRD> TO FORM FINANCIAL UNIT"  # from "&lt;SRD>"
    assert not any("&#" in d.text or "&lt;" in d.text for d in documents)
    # reut2-017.sgm's one Latin-1 byte 0xFC decodes to "ü"
    assert "üside" in next(d for d in documents if d.newid == 17980).text


def test_unprocessed_story_keeps_its_untagged_text(documents):
    unproc = next(d for d in documents if d.newid == 14682)  # TYPE="UNPROC": no TITLE or BODY tag
    assert unproc.title == "" and unproc.text.startswith("N.Y. SUGAR FREIGHTS")


def test_train_and_test_share_the_training_vocabulary(train):
    test = load_reuters("test", root=reuters_root())
    assert (len(train), len(test)) == (7770, 3019)
    assert test.vocabulary == train.vocabulary
    v = train.vocabulary
    assert np.all(np.diff(v.counts) <= 0)  # ids are frequency ranks
    assert not STOP_WORDS & set(v.words)
    assert all(w.isalpha() and w == w.lower() and len(w) >= 2 for w in v.words)
    assert max(int(d.max()) for d in test.docs if len(d)) < len(v)
    assert train.topics[0] == ("cocoa",) and train.newids[0] == 1


def test_count_matrix_agrees_with_documents_and_counts(train):
    m = train.counts()
    assert m.shape == (len(train), len(train.vocabulary)) and m.dtype == np.int64
    assert m.sum() == train.num_tokens
    np.testing.assert_array_equal(np.asarray(m.sum(axis=0)).ravel(), train.vocabulary.counts)
    np.testing.assert_array_equal(np.asarray((m > 0).sum(axis=0)).ravel(), train.vocabulary.doc_counts)
    np.testing.assert_array_equal(m[5].toarray().ravel(), np.bincount(train.docs[5], minlength=m.shape[1]))


def test_vocabulary_options(train):
    small = load_reuters("train", root=reuters_root(), min_count=5, max_doc_share=0.2)
    assert small.vocabulary.counts.min() >= 5
    assert small.vocabulary.doc_counts.max() <= 0.2 * len(small)
    assert "said" in train.vocabulary and "said" not in small.vocabulary
    assert len(small.vocabulary) < len(train.vocabulary)
    with_stop = load_reuters("train", root=reuters_root(), stop_words=False)
    assert with_stop.vocabulary.words[0] == "the"


def test_parsing_is_fast():
    cached_reader.cache_clear()
    start = time.perf_counter()
    read_reuters_documents(reuters_root())
    assert time.perf_counter() - start < 10


def test_tokenize_and_vocabulary_helpers():
    assert tokenize("The U.S. cocoa crop, 6.4 mln bags.") == ["cocoa", "crop", "mln", "bags"]
    assert tokenize("a b cc", stop_words=None, min_length=1) == ["a", "b", "cc"]
    v = Vocabulary.from_documents([["b", "a", "a"], ["b", "c"]])
    assert v.words == ("a", "b", "c") and v.counts.tolist() == [2, 2, 1]
    assert v.encode(["c", "zz", "a"]).tolist() == [2, 0] and v.encode(["zz"], unknown=7).tolist() == [7]
    with pytest.raises(InvalidParameterError, match="'zz' is not in the vocabulary"):
        v.id("zz")
    assert count_matrix([], 3).shape == (0, 3)


def test_bad_arguments_are_rejected():
    with pytest.raises(InvalidParameterError, match="'split' parameter of load_reuters.*Got 'valid'"):
        load_reuters("valid", root=reuters_root())
    with pytest.raises(InvalidParameterError, match="'max_doc_share'"):
        load_reuters(root=reuters_root(), max_doc_share=0)
    with pytest.raises(InvalidParameterError, match="'topic_filter'"):
        load_reuters(root=reuters_root(), topic_filter="all")


# --- damaged copies -----------------------------------------------------------------------------

def _repack(path, members):
    """A gzip tarball of ``members`` (name -> bytes), like the published one."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1))


@pytest.fixture(scope="module")
def members():
    with tarfile.open(reuters_root() / "reuters21578.tar.gz") as tar:
        return {m.name.removeprefix("./"): tar.extractfile(m).read()
                for m in tar if m.name.removeprefix("./") in MEMBER_SHA256}


def test_missing_tarball_says_where_it_looked(tmp_path):
    with pytest.raises(DataNotFoundError, match="reuters21578.tar.gz") as info:
        load_reuters(root=tmp_path)
    assert str(tmp_path) in str(info.value) and "MODELDX_DATA" in str(info.value)


def test_flipped_byte_is_a_checksum_error(tmp_path):
    data = bytearray((reuters_root() / "reuters21578.tar.gz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "reuters21578.tar.gz").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="damaged or truncated"):
        load_reuters(root=tmp_path)


def test_truncated_tarball_is_a_checksum_error(tmp_path):
    data = (reuters_root() / "reuters21578.tar.gz").read_bytes()
    (tmp_path / "reuters21578.tar.gz").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ChecksumError, match="damaged or truncated"):
        load_reuters(root=tmp_path)


def test_altered_member_is_named(tmp_path, members):
    changed = dict(members)
    text = bytearray(changed["reut2-005.sgm"])
    text[1000] = ord("#") if text[1000] != ord("#") else ord("%")
    changed["reut2-005.sgm"] = bytes(text)
    _repack(tmp_path / "reuters21578.tar.gz", changed)
    with pytest.raises(ChecksumError, match="member reut2-005.sgm has SHA-256"):
        load_reuters(root=tmp_path)


def test_missing_member_is_named(tmp_path, members):
    _repack(tmp_path / "reuters21578.tar.gz", {k: v for k, v in members.items() if k != "reut2-021.sgm"})
    with pytest.raises(ChecksumError, match="lacks 1 of the 22 SGML files \\(reut2-021.sgm\\)"):
        load_reuters(root=tmp_path)


def test_repacked_identical_members_load(tmp_path, members):
    # another packing of the same files (e.g. the UCI copy) passes: the members are what is checked
    _repack(tmp_path / "reuters21578.tar.gz", members)
    assert len(read_reuters_documents(tmp_path)) == 21578
