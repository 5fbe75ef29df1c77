"""`modeldx query --engine dask`: the same answer as the local engine, on a local cluster or the
scheduler that --scheduler or $MODELDX_SCHEDULER names."""

import pytest
from typer.testing import CliRunner

from modeldx.cli import app
from modeldx.engine.cluster import SCHEDULER_ENV
from tests.test_cli import _assert_one_line_error

runner = CliRunner()


def _query(store, *extra):
    return runner.invoke(app, ["query", "top-k-neurons", str(store.path), "-p", "k=3", "--format", "csv",
                               "--quiet", *extra])


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        yield c


def _opened_on(cluster) -> list:
    from distributed import Client

    from modeldx.store import cache

    with Client(cluster, set_as_default=False) as client:
        return [key[0] for keys in client.run(lambda: list(cache._OPEN)).values() for key in keys]


def test_dask_engine_from_the_environment_answers_as_the_local_engine(digits_store, cluster, monkeypatch):
    local = _query(digits_store)
    assert local.exit_code == 0, local.output
    monkeypatch.setenv(SCHEDULER_ENV, cluster.scheduler_address)
    on_dask = _query(digits_store, "--engine", "dask")
    assert on_dask.exit_code == 0, on_dask.output
    assert on_dask.stdout == local.stdout
    assert str(digits_store.path.absolute()) in _opened_on(cluster)  # the cluster's worker read it


def test_scheduler_option_and_a_local_cluster_of_workers(digits_store, cluster, monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    local = _query(digits_store)
    given = _query(digits_store, "--engine", "dask", "--scheduler", cluster.scheduler_address)
    assert given.exit_code == 0, given.output
    assert given.stdout == local.stdout
    started = _query(digits_store, "--engine", "dask", "--workers", "2")
    assert started.exit_code == 0, started.output
    assert started.stdout == local.stdout


@pytest.mark.parametrize("extra, needle", [
    (["--engine", "spark"], "'spark'"),
    (["--workers", "2"], "settings of the Dask engine"),
])
def test_a_bad_engine_option_is_one_line(digits_store, extra, needle):
    _assert_one_line_error(_query(digits_store, *extra), needle)


def test_a_store_at_a_url_is_read_by_the_commands_that_read_stores(tmp_path, tiny_model, digits):
    from modeldx import capture

    url = f"file://{tmp_path / 'at a url'}"
    settings = dict(encoding="float32", chunk_items=256, batch_size=100, progress=False)
    capture(tiny_model, digits, url, **settings)
    # the same capture on a path, made now: an earlier test's torch thread count moves floats by an ulp
    digits_store = capture(tiny_model, digits, tmp_path / "on-a-path", **settings)
    by_url = runner.invoke(app, ["query", "top-k-neurons", url, "-p", "k=3", "--format", "csv", "--quiet"])
    assert by_url.exit_code == 0, by_url.output
    assert by_url.stdout == _query(digits_store).stdout
    for command in (["info", url, "--quick"], ["check", url, "--quiet"]):
        got = runner.invoke(app, command)
        assert got.exit_code == 0, got.output


def test_a_capture_into_memory_is_refused_before_any_work(tmp_path):
    got = runner.invoke(app, ["capture", str(tmp_path / "no-checkpoint.pt"), "memory://runs/x"])
    _assert_one_line_error(got, "gone when it ends")
