import numpy as np
import pytest
import torch
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import silhouette_samples

from modeldx.errors import InvalidParameterError
from modeldx.interactive import InteractiveKMeans


@pytest.fixture(scope="module")
def mnist_pixels(mnist_test):
    x = mnist_test.get_batch(np.arange(len(mnist_test)))[0]
    return x.reshape(len(mnist_test), -1).numpy()


def test_without_size_weight_it_matches_scikit_learn(mnist_pixels):
    """The issue's check: with lambda = 0, inertia on MNIST within a few percent of MiniBatchKMeans."""
    km = InteractiveKMeans(mnist_pixels, 32, batch_size=1024, seed=0)
    for _ in range(200):
        km.step()
    ours = km.inertia()
    theirs = MiniBatchKMeans(32, batch_size=1024, random_state=0, n_init=1).fit(mnist_pixels).inertia_
    assert ours <= theirs * 1.03, (ours, theirs)
    # inertia is the sum of squared distances to the nearest centre
    nearest = km.centres.numpy()[km.labels().numpy()]
    assert ours == pytest.approx(float(((mnist_pixels - nearest) ** 2).sum()), rel=1e-3)


def test_size_weight_balances_cluster_sizes(mnist_pixels):
    def sizes(weight):
        km = InteractiveKMeans(mnist_pixels, 16, batch_size=512, seed=1)
        km.size_weight = weight
        for _ in range(150):
            km.step()
        counts = np.bincount(km.labels().numpy(), minlength=16)
        return counts.std() / counts.mean(), km.inertia()

    spread0, inertia0 = sizes(0.0)
    spread1, inertia1 = sizes(2.0)
    assert spread1 < 0.6 * spread0  # more even sizes ...
    assert inertia1 > inertia0  # ... at some cost in the main loss (the thesis' trade-off)


def test_block_weights_follow_eq_2_6():
    rng = np.random.default_rng(0)
    # block A separates two groups, block B separates two other groups; the weights pick which counts
    a = np.concatenate([np.zeros((200, 2)), np.full((200, 2), 10.0)]) + rng.normal(0, 0.1, (400, 2))
    b = np.tile(np.concatenate([np.zeros((100, 3)), np.full((100, 3), 10.0)]), (2, 1))
    b = b + rng.normal(0, 0.1, (400, 3))
    x = np.hstack([a, b])
    truth_a, truth_b = np.repeat([0, 1], 200), np.tile(np.repeat([0, 1], 100), 2)
    for weights, truth in (([1.0, 0.0], truth_a), ([0.0, 1.0], truth_b)):
        km = InteractiveKMeans(x, 2, blocks=[2, 3], batch_size=128, seed=0)
        km.set_block_weights(weights)
        km.restart()  # seed the centres under these weights
        for _ in range(50):
            km.step()
        labels = km.labels().numpy()
        agree = max((labels == truth).mean(), (labels != truth).mean())
        assert agree == 1.0
    # normalisers put both blocks on the same scale
    km = InteractiveKMeans(x, 2, blocks=[2, 3])
    w = km._dim_weights()
    assert float(w[0]) * 2 * 25 == pytest.approx(float(w[2]) * 3 * 25, rel=0.2)


def test_silhouette_matches_scikit_learn(mnist_pixels):
    km = InteractiveKMeans(mnist_pixels[:3000], 8, batch_size=512, seed=0)
    for _ in range(30):
        km.step()
    rows = torch.arange(500)
    ids, scores = km.silhouette(rows)
    expected = silhouette_samples(mnist_pixels[:500], ids)
    np.testing.assert_allclose(scores, expected, atol=2e-3)


def test_errors():
    x = np.random.default_rng(0).random((50, 4))
    with pytest.raises(InvalidParameterError, match="'k'"):
        InteractiveKMeans(x, 1)
    with pytest.raises(InvalidParameterError, match="2-d"):
        InteractiveKMeans(x[0], 2)
    with pytest.raises(InvalidParameterError, match="blocks"):
        InteractiveKMeans(x, 2, blocks=[1, 2])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InvalidParameterError, match="NaN"):
        InteractiveKMeans(bad, 2)
    km = InteractiveKMeans(x, 2, blocks=[2, 2])
    with pytest.raises(InvalidParameterError, match="at least one block weight"):
        km.set_block_weights([0, 0])
    with pytest.raises(InvalidParameterError, match="2 finite numbers"):
        km.set_block_weights([1.0])
