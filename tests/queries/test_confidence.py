import numpy as np
import pytest

from modeldx.engine.local import run_reduction
from modeldx.errors import InvalidParameterError
from modeldx.queries import top_k_confidence, top_k_neurons
from modeldx.queries.confidence import ReplicateTopK, inclusion_frequency, poisson_counts, replicate_weights


def test_poisson_counts_are_poisson_and_a_function_of_seed_and_id():
    ids = np.arange(20_000)
    c = poisson_counts(ids, 50, seed=3).astype(float)
    assert c.mean() == pytest.approx(1.0, abs=0.01) and c.var() == pytest.approx(1.0, abs=0.02)
    assert (c == 0).mean() == pytest.approx(np.exp(-1), abs=0.005)
    # replicates of one item are not correlated with each other or with neighbouring ids
    assert abs(np.corrcoef(c[:, 0], c[:, 1])[0, 1]) < 0.03
    assert abs(np.corrcoef(c[:-1, 0], c[1:, 0])[0, 1]) < 0.03
    np.testing.assert_array_equal(poisson_counts(ids[::7], 50, seed=3), c[::7])
    assert not np.array_equal(poisson_counts(ids, 50, seed=4), c)


def brute_force(store, layer, by, replicates, seed, keep=None):
    """Each replicate's per-group max or mean, from every item at once."""
    items = store.items()
    acts = store.read(f"acts/{layer}").astype(np.float64)
    codes = items.label.to_numpy() * 2 + items.correct.to_numpy().astype(int)
    counts = replicate_weights(items.item_id.to_numpy(), replicates, seed,
                               None if keep is None else keep[codes]).astype(np.float64)
    out = {}
    for g in np.unique(codes):
        m = codes == g
        c, a = counts[m], acts[m]
        if by == "max":
            s = np.where(c.T[:, :, None] > 0, a[None], -np.inf).max(axis=1)  # (replicates, neurons)
            s[~(c > 0).any(axis=0)] = np.nan
        else:
            with np.errstate(invalid="ignore"):
                s = (c.T @ a) / c.sum(axis=0)[:, None]
        out[int(g)] = s
    return out


@pytest.mark.parametrize("by", ["max", "mean"])
@pytest.mark.parametrize("scheme", ["bootstrap", "thinning"])
def test_streamed_replicates_equal_brute_force(digits_store, by, scheme):
    # small chunks (256 items) make the state merge many times
    keep = None if scheme == "bootstrap" else np.linspace(0.05, 1.0, 20)
    reduction = ReplicateTopK(["act2"], 10, by, replicates=40, seed=1, keep=keep)
    state = run_reduction(digits_store, reduction)
    misses = 0
    for g, want in brute_force(digits_store, "act2", by, 40, 1, keep).items():
        got = reduction.replicate_scores(state, "act2", g)
        if by == "max":
            # a replicate holding none of a neuron's kept candidates (chance 1e-4) takes the smallest
            same = np.isclose(got, want, equal_nan=True)
            assert (got[~same] > want[~same]).all()
            misses += (~same).sum()
        else:
            np.testing.assert_allclose(got, want, rtol=1e-6)
    assert misses <= 2


def test_thinning_keeps_items_with_the_given_chance():
    ids = np.arange(50_000)
    kept = replicate_weights(ids, 20, 0, np.where(ids < 25_000, 0.1, 0.7))
    assert kept.max() == 1
    assert kept[:25_000].mean() == pytest.approx(0.1, abs=0.005)
    assert kept[25_000:].mean() == pytest.approx(0.7, abs=0.005)


def test_inclusion_frequency_breaks_ties_to_the_lower_index_and_skips_empty_replicates():
    scores = np.array([[3.0, 3.0, 1.0], [1.0, 2.0, 3.0], [np.nan] * 3])
    freq, n = inclusion_frequency(scores, 1)
    assert n == 2 and freq.tolist() == [0.5, 0.0, 0.5]


def test_bootstrap_confidence_is_the_top_k_answer_with_a_probability(digits_store):
    top = top_k_confidence(digits_store, k=3, replicates=100, scheme="bootstrap")
    point = top_k_neurons(digits_store, k=3)
    assert top[point.columns].equals(point)
    assert top.confidence.between(0, 1).all()
    # a group of one item is empty in a replicate with probability e^-1
    one = top.n_items == 1
    assert one.any() and (top.replicates[~one] > 90).all()
    assert top.replicates[one].between(100 * (1 - np.exp(-1)) - 15, 100 * (1 - np.exp(-1)) + 15).all()
    # over all items the answer is stable: most returned neurons come back in most replicates
    assert top.confidence.mean() > 0.7
    assert top.attrs["query"] == "top-k-confidence" and top.attrs["params"]["replicates"] == 100


def test_thinning_is_certain_of_an_exact_answer_and_less_so_of_a_smaller_sample(digits_store):
    exact = top_k_confidence(digits_store, k=3, layers="act2", replicates=50)
    assert (exact.confidence == 1).all()
    rng = np.random.default_rng(0)
    means = []
    for n in (900, 300, 90):
        ids = np.sort(rng.choice(1797, n, replace=False))
        top = top_k_confidence(digits_store, k=3, layers="act2", items=ids, replicates=100)
        assert top.attrs["source"]["exact"] is False
        means.append(top[top.correct].confidence.mean())
    assert means[0] > means[1] > means[2]


def test_thinning_confidence_tracks_the_precision_of_a_sample(digits_store):
    """Averaged over many samples, the mean confidence is close to the precision against the exact answer."""
    exact = top_k_neurons(digits_store, k=3, layers="act2")
    truth = {key: set(g.neuron) for key, g in exact.groupby(["label", "correct"])}
    rng = np.random.default_rng(1)
    confidence, hits = [], []
    for _ in range(12):
        ids = np.sort(rng.choice(1797, 180, replace=False))
        top = top_k_confidence(digits_store, k=3, layers="act2", items=ids, replicates=100)
        top = top[top.correct]  # the misclassified groups hold a few items each
        confidence.extend(top.confidence)
        hits.extend(n in truth[(lbl, ok)]
                    for lbl, ok, n in zip(top.label, top.correct, top.neuron, strict=True))
    assert np.mean(confidence) == pytest.approx(np.mean(hits), abs=0.08)


def test_weighted_mean_confidence_uses_the_weights(digits_store):
    ids = np.arange(0, 1797, 2)
    w = np.random.default_rng(0).uniform(1, 20, ids.size)
    top = top_k_confidence(digits_store, k=3, by="mean", layers="act2", items=ids, weights=w, replicates=50)
    point = top_k_neurons(digits_store, k=3, by="mean", layers="act2", items=ids, weights=w)
    assert top.neuron.tolist() == point.neuron.tolist()


@pytest.mark.parametrize("bad", [{"replicates": 5}, {"scheme": "jackknife"}, {"by": "median"}, {"seed": -1}])
def test_bad_parameters_name_the_value(digits_store, bad):
    with pytest.raises(InvalidParameterError, match=str(list(bad.values())[0])):
        top_k_confidence(digits_store, **bad)


def test_a_sample_whose_population_does_not_fit_the_store_is_an_error(digits_store):
    from modeldx.sampling import Sample

    bad = Sample(np.arange(0, 1797, 2), np.full(899, 2.0), {"sample": "s", "group_items": [1] * 20})
    with pytest.raises(InvalidParameterError, match="group_items"):
        top_k_confidence(digits_store, items=bad)
