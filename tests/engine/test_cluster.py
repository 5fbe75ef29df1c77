import pytest

from modeldx.engine.cluster import SCHEDULER_ENV, connect, scheduler_address
from modeldx.errors import InvalidParameterError


def test_scheduler_address_prefers_argument_then_environment(monkeypatch):
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://from-env:8786")
    assert scheduler_address("tcp://given:1") == "tcp://given:1"
    assert scheduler_address() == "tcp://from-env:8786"
    monkeypatch.delenv(SCHEDULER_ENV)
    assert scheduler_address() is None


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_worker_count_is_named(workers, monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with pytest.raises(InvalidParameterError, match="workers must be a positive integer"), \
            connect(workers=workers):
        pass


def test_workers_with_an_address_is_refused():
    with pytest.raises(InvalidParameterError, match="local cluster only"), \
            connect("tcp://127.0.0.1:1", workers=2):
        pass


def test_local_cluster_of_processes(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    import os

    with connect(workers=2) as client:
        pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "bogus", "tcp://no-such-host.invalid:8786"])
def test_a_scheduler_that_cannot_be_reached_is_a_clear_error_within_the_connect_timeout(address):
    import time

    import dask
    import dask.array

    from modeldx.errors import SchedulerUnreachableError

    start = time.monotonic()
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), \
            pytest.raises(SchedulerUnreachableError, match="cannot reach the Dask scheduler at"), \
            connect(address):
        pass
    assert time.monotonic() - start < 20


def test_a_query_on_a_bad_scheduler_is_one_line_on_the_command_line(digits_store, monkeypatch):
    import dask
    import dask.array
    from typer.testing import CliRunner

    from modeldx.cli import app

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        got = CliRunner().invoke(app, ["query", "top-k-neurons", str(digits_store.path), "--engine", "dask",
                                       "--scheduler", "tcp://127.0.0.1:1", "--quiet"])
    assert got.exit_code != 0
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'" in got.output
    assert "Traceback" not in got.output


def test_a_cluster_of_ours_leaves_dasks_global_scheduler_alone(monkeypatch):
    # made the default, our client would point dask.compute at itself; closed out of order with
    # another default client, it left dask.compute pointing at a closed cluster (xarray broke)
    import dask
    import dask.array

    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    before = dask.config.get("scheduler", None)
    with connect(workers=1):
        assert dask.config.get("scheduler", None) == before
        assert dask.array.ones(3).sum().compute() == 3  # the user's scheduler, not our cluster
    assert dask.config.get("scheduler", None) == before
