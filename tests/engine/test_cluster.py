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
