import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from modeldx.errors import InvalidParameterError
from modeldx.interactive.lda import (
    InteractiveLDA,
    heldout_perplexity,
    mean_overlap,
    multinomial_counts,
    npmi_coherence,
    topic_similarity,
)


def synthetic(topics: np.ndarray, docs: int = 400, length: int = 60, alpha: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(topics.shape[0], alpha), docs)
    out = []
    for d in range(docs):
        z = rng.choice(topics.shape[0], length, p=theta[d])
        out.append(np.array([rng.choice(topics.shape[1], p=topics[k]) for k in z], dtype=np.int64))
    return out


@pytest.fixture(scope="module")
def disjoint():
    """5 topics over 50 words, each uniform on its own 10 words."""
    topics = np.zeros((5, 50))
    for k in range(5):
        topics[k, 10 * k:10 * k + 10] = 0.1
    return topics, synthetic(topics)


@pytest.fixture(scope="module")
def overlapping():
    """8 dense topics over 200 words (Dirichlet(0.3)): shared words, many weights >= 0.01."""
    topics = np.random.default_rng(1).dirichlet(np.full(200, 0.3), 8)
    return topics, synthetic(topics, docs=300, length=80, seed=2)


def test_multinomial_counts_sum_to_m_and_follow_the_probabilities():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.0, 1.0, 0.0]]).repeat(2000, 1)
    counts = multinomial_counts(probs, 10, torch.Generator().manual_seed(0))
    assert torch.all(counts.sum(1) == 10) and torch.all(counts >= 0)
    assert torch.all(counts[1::2, 1] == 10)
    assert torch.allclose(counts[::2].mean(0) / 10, torch.tensor([0.5, 0.3, 0.2]), atol=0.01)


def test_multinomial_counts_are_exact_whatever_the_order_and_take_trials_per_row():
    """The chain runs in each row's order of decreasing probability and stops when no trials are left:
    still the multinomial's mean m p and variance m p (1 - p), per row with a tensor of trials."""
    probs = torch.tensor([[0.05, 0.6, 0.05, 0.3], [0.25, 0.25, 0.25, 0.25]]).repeat(20000, 1)
    trials = torch.tensor([7.0, 300.0]).repeat(20000)
    counts = multinomial_counts(probs, trials, torch.Generator().manual_seed(1))
    assert torch.equal(counts.sum(1), trials)
    for row, m in ((0, 7.0), (1, 300.0)):
        p = probs[row].double()
        c = counts[row::2].double()
        assert torch.allclose(c.mean(0) / m, p, atol=0.01 * p.max().item())
        assert torch.allclose(c.var(0), m * p * (1 - p), rtol=0.05)


def test_repeated_words_are_sampled_once_with_their_count(disjoint):
    """A document's repeated word is one row with its count: the same θ as one row per token."""
    _, docs = disjoint
    lda = InteractiveLDA(docs, 50, 5, batch_size=100, nsamps=20, seed=0, device="cpu")
    for _ in range(5):
        lda.step()
    tokens = torch.tensor([3, 3, 3, 7, 12, 12, 40, 3])
    doc = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])
    theta, _ = lda.infer(tokens, doc, 2, nsamps=0)
    pairs, weights = torch.tensor([3, 7, 12, 40, 3]), torch.tensor([3, 1, 2, 1, 1])
    theta_pairs, counts = lda.infer(pairs, torch.tensor([0, 0, 0, 1, 1]), 2, nsamps=0, weights=weights)
    assert torch.allclose(theta, theta_pairs, atol=1e-6)
    assert torch.allclose(counts.sum(1), weights.float())
    _, drawn = lda.infer(pairs, torch.tensor([0, 0, 0, 1, 1]), 2, nsamps=7, weights=weights)
    assert torch.allclose(drawn.sum(1), weights.float())  # m c draws per row, averaged over m


def test_topics_of_a_synthetic_corpus_are_recovered(disjoint):
    topics, docs = disjoint
    lda = InteractiveLDA(docs, 50, 5, batch_size=100, nsamps=20, seed=0, device="cpu")
    for _ in range(60):
        lda.step()
    sim = topic_similarity(np.vstack([topics, lda.phi.numpy()]))[:5, 5:]
    rows, cols = linear_sum_assignment(-sim)
    assert sim[rows, cols].min() > 0.95
    assert abs(lda.sizes.sum().item() - 1) < 1e-5 and torch.allclose(lda.phi.sum(1), torch.ones(5))
    # as good as the true topics at completing documents (both fold θ in on the first halves)
    assert lda.perplexity(docs[:100]) < 1.05 * heldout_perplexity(topics, docs[:100])


def test_more_same_samples_make_steps_steadier(overlapping):
    _, docs = overlapping

    def mean_change(m: int) -> float:
        lda = InteractiveLDA(docs, 200, 8, batch_size=50, nsamps=m, seed=0, min_rate=0.1, device="cpu")
        for _ in range(30):
            lda.step()
        changes = []
        for _ in range(20):
            before = lda.phi.clone()
            lda.step()
            changes.append(float((lda.phi - before).abs().sum()))
        return float(np.mean(changes))

    assert mean_change(100) < 0.8 * mean_change(1)


def test_the_l1_mixin_lowers_density_and_the_cosine_mixin_lowers_overlap(overlapping):
    _, docs = overlapping

    def run(l1: float = 0.0, cosine: float = 0.0) -> InteractiveLDA:
        lda = InteractiveLDA(docs, 200, 8, batch_size=100, seed=0, device="cpu")
        lda.l1, lda.cosine = l1, cosine
        for _ in range(40):
            lda.step()
        return lda

    plain, sparse, apart = run(), run(l1=0.005), run(cosine=0.3)
    assert sparse.density() < 0.8 * plain.density()
    assert mean_overlap(apart.phi.numpy()) < 0.8 * mean_overlap(plain.phi.numpy())
    for lda in (sparse, apart):
        assert torch.all(lda.phi >= 0) and torch.allclose(lda.phi.sum(1), torch.ones(8))


def test_restart_changes_the_number_of_topics(disjoint):
    _, docs = disjoint
    lda = InteractiveLDA(docs, 50, 5, batch_size=50, device="cpu")
    lda.step()
    lda.restart(k=7)
    assert lda.phi.shape == (7, 50) and lda.updates == 0
    lda.step()
    assert lda.top_words(3).shape == (7, 3) and lda.similarity().shape == (7, 7)


def test_heldout_perplexity_matches_a_direct_computation():
    phi = np.array([[0.5, 0.3, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]])
    docs = [np.array([0, 1, 3, 2, 0]), np.array([3, 3, 2, 1]), np.array([2])]
    alpha, iterations = 0.1, 30
    total, n = 0.0, 0
    for d in docs[:2]:  # the one-token document is skipped
        first, second = d[:len(d) // 2], d[len(d) // 2:]
        theta = np.full(2, 0.5)
        for _ in range(iterations):
            resp = np.array([theta * phi[:, w] for w in first])
            resp /= resp.sum(1, keepdims=True)
            theta = resp.sum(0) + alpha
            theta /= theta.sum()
        for w in second:
            total += np.log(theta @ phi[:, w])
            n += 1
    expected = np.exp(-total / n)
    got = heldout_perplexity(phi, docs, alpha=alpha, iterations=iterations)
    assert got == pytest.approx(expected, rel=1e-9)


def test_npmi_matches_a_direct_computation():
    docs = [np.array([0, 1, 1]), np.array([0, 2]), np.array([1, 2, 3]), np.array([0, 1]), np.array([3])]
    top = np.array([[0, 1, 2], [1, 3, 0]])
    sets = [set(d.tolist()) for d in docs]

    def p(*ws):
        return sum(all(w in s for w in ws) for s in sets) / len(sets)

    def npmi(a, b):
        joint = p(a, b)
        return -1.0 if joint == 0 else np.log(joint / (p(a) * p(b))) / -np.log(joint)

    expected = [np.mean([npmi(r[i], r[j]) for i in range(3) for j in range(i + 1, 3)]) for r in top]
    assert npmi_coherence(top, docs, 4) == pytest.approx(expected)
    import scipy.sparse
    rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    matrix = scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(docs))), shape=(5, 4))
    assert npmi_coherence(top, matrix) == pytest.approx(expected)


def test_bad_arguments_are_rejected_with_clear_errors(disjoint):
    _, docs = disjoint
    with pytest.raises(InvalidParameterError, match="k"):
        InteractiveLDA(docs, 50, 1)
    with pytest.raises(InvalidParameterError, match="nsamps"):
        InteractiveLDA(docs, 50, 5, nsamps=0)
    with pytest.raises(InvalidParameterError, match=r"expected ids in \[0, 39\]"):
        InteractiveLDA(docs, 40, 5)
    with pytest.raises(InvalidParameterError, match="no documents"):
        InteractiveLDA([], 50, 5)
    with pytest.raises(InvalidParameterError, match="at least 2 tokens"):
        heldout_perplexity(np.full((2, 3), 1 / 3), [np.array([1])])
    with pytest.raises(InvalidParameterError, match="top_words"):
        npmi_coherence(np.array([1, 2]), docs)
    lda = InteractiveLDA(docs, 50, 5, device="cpu")
    with pytest.raises(InvalidParameterError, match="k"):
        lda.restart(k=0)
    with pytest.raises(InvalidParameterError, match="draws"):
        InteractiveLDA(docs, 50, 5, sweeps=3, draws=4)
    with pytest.raises(InvalidParameterError, match=r"k .*at most the number of words \(50\)"):
        InteractiveLDA(docs, 50, 51)
    with pytest.raises(InvalidParameterError, match=r"at most the number of words"):
        lda.restart(k=51)
    assert lda.k == 5


def test_empty_and_one_word_documents_and_unseen_words():
    """A stranger's corpus: an empty document, one-word documents, words that never occur (ids 40-59)."""
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 40, 30) for _ in range(30)] + [np.array([], dtype=np.int64), np.array([7])] * 5
    lda = InteractiveLDA(docs, 60, 4, batch_size=8, nsamps=5, seed=0, device="cpu")
    only_empty = lda.step(torch.tensor([30]))  # a minibatch of one empty document
    assert only_empty.tokens == 0 and torch.isfinite(lda.phi).all()
    one_word = lda.step(torch.tensor([31, 33]))
    assert one_word.tokens == 2 and np.isfinite(one_word.perplexity)
    for _ in range(30):
        lda.step()
    assert torch.isfinite(lda.phi).all() and torch.allclose(lda.phi.sum(1), torch.ones(4))
    assert lda.phi[:, 40:].max() < lda.phi[:, :40].max()  # unseen words stay at the prior
    assert np.isfinite(lda.perplexity(docs))
    assert np.isfinite(npmi_coherence(lda.top_words(10), docs, 60)).all()
