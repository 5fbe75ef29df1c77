import pytest

from modeldx.engine import DaskEngine, LocalEngine, get_engine
from modeldx.errors import InvalidParameterError


def test_names_resolve_to_engines():
    assert isinstance(get_engine(), LocalEngine) and isinstance(get_engine("local"), LocalEngine)
    dask = get_engine("dask", scheduler="tcp://127.0.0.1:1")
    assert isinstance(dask, DaskEngine) and dask.scheduler == "tcp://127.0.0.1:1"
    assert get_engine("dask", workers=2).workers == 2
    mine = LocalEngine()
    assert get_engine(mine) is mine


@pytest.mark.parametrize("engine, kwargs, match", [
    ("spark", {}, r"'engine' parameter must be one of \('local', 'dask'\).*Got 'spark'"),
    (3, {}, "Got 3 instead"),
    (object(), {}, "an Engine instance"),
    ("local", {"workers": 2}, "settings of the Dask engine"),
    (None, {"scheduler": "tcp://x:1"}, "settings of the Dask engine"),
    (LocalEngine(), {"workers": 2}, "cannot reconfigure"),
])
def test_anything_else_is_a_clear_error(engine, kwargs, match):
    with pytest.raises(InvalidParameterError, match=match):
        get_engine(engine, **kwargs)


def test_a_query_names_a_bad_engine(digits_store):
    from modeldx.queries import top_k_neurons

    with pytest.raises(InvalidParameterError, match="'engine' parameter"):
        top_k_neurons(digits_store, k=2, engine="spark")


def test_a_dask_engine_takes_a_client_or_settings_not_both():
    with pytest.raises(InvalidParameterError, match="not both"):
        DaskEngine(object(), workers=2)
