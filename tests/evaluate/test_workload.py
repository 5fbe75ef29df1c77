import pytest

from modeldx.evaluate import sweep, workload
from modeldx.queries import QUERIES, Evaluation, confusion_matrix, register


def test_the_workload_is_read_from_the_query_registry():
    assert set(workload()) == {"top-k-neurons", "top-k-neurons-mean", "confusion-matrix", "dead-neurons",
                               "top-k-confidence", "top-k-confidence-bootstrap"}


@pytest.fixture
def toy_query():
    @register("toy-confusion", example={}, evaluate=(Evaluation("toy-confusion", "confusion"),))
    def toy(store, *, items=None, weights=None):
        """The confusion matrix again, registered from outside modeldx."""
        frame = confusion_matrix(store, items=items, weights=weights)
        frame.attrs["query"] = "toy-confusion"
        return frame

    yield toy
    del QUERIES["toy-confusion"]


def test_a_newly_registered_query_is_evaluated_with_no_other_edit(toy_query, digits_store):
    results = sweep(digits_store, ["uniform"], [0.2], [0], queries=["toy-confusion"], progress=False)
    scored = results[results["query"] == "toy-confusion"]
    assert set(scored.metric) == {"js_divergence", "js_divergence_errors"}
    assert scored.value.between(0, 1).all()
    assert scored.set_index("metric").value["js_divergence"] < 0.1  # a 20% sample: close to exact
