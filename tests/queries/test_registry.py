import pytest

from modeldx.errors import DuplicateNameError, ModeldxError, UnknownNameError
from modeldx.queries import get, register


def test_unknown_query_is_a_modeldx_error_with_a_plain_message():
    with pytest.raises(UnknownNameError) as info:
        get("top-k-neuron")
    assert isinstance(info.value, ModeldxError) and isinstance(info.value, KeyError)
    assert str(info.value).startswith("no query named 'top-k-neuron'. Did you mean 'top-k-neurons'")


def test_registering_a_taken_name_is_a_modeldx_error():
    with pytest.raises(DuplicateNameError, match="'top-k-neurons' is already registered"):
        register("top-k-neurons")(lambda store: None)
