import numpy as np
from sklearn.metrics import confusion_matrix as sk_confusion

from modeldx.queries import confusion_matrix, misclassified


def test_confusion_matches_scikit_learn(digits_store):
    items = digits_store.items()
    cm = confusion_matrix(digits_store).pivot(index="label", columns="pred", values="count")
    np.testing.assert_array_equal(cm.to_numpy(), sk_confusion(items.label, items.pred, labels=range(10)))


def test_weighted_confusion_estimates_counts(digits_store):
    ids = np.arange(0, 1797, 2)
    cm = confusion_matrix(digits_store, items=ids, weights=np.full(ids.size, 2.0))
    assert cm["count"].sum() == 2.0 * ids.size


def test_misclassified_most_confident_first(digits_store):
    items = digits_store.items()
    wrong = misclassified(digits_store)
    assert len(wrong) == (~items.correct).sum()
    assert (np.diff(wrong.confidence.to_numpy()) <= 0).all()
    assert (wrong.label != wrong.pred).all()
    assert len(misclassified(digits_store, limit=2)) == min(2, len(wrong))
