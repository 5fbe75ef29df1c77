"""Distributed capture as a user who did not write it calls it: relative paths, a cluster the user
already has, settings that only a cluster takes, data sets that do not travel, a worker that
cannot see the store, a chunk that kills every worker it runs on."""

import os
import signal
import threading

import dask
import numpy as np
import pytest
import torch

from modeldx import capture
from modeldx.engine import DaskEngine
from modeldx.engine.cluster import SCHEDULER_ENV
from modeldx.errors import InvalidParameterError, StoreNotFoundError, WorkerLostError


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # no retry: a task whose worker dies is lost at once (the killing test below)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(SCHEDULER_ENV, raising=False)
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
                LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                             dashboard_address=None) as cluster, \
                Client(cluster, set_as_default=False) as c:
            yield c


@pytest.fixture(scope="module")
def small(digits):
    from modeldx.data import ArrayDataset

    x, y = digits.get_batch(np.arange(240))
    return ArrayDataset(x.numpy(), y.numpy())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_model, small):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return capture(tiny_model, small, tmp_path_factory.mktemp("ref") / "local", chunk_items=60,
                       batch_size=30, progress=False)
    finally:
        torch.set_num_threads(before)


def _same(got, want):
    assert got.complete
    for name in want.array_names():
        assert np.array_equal(got.read(name), want.read(name)), name
    assert got.items().equals(want.items())


def test_a_relative_store_path_reaches_workers_that_run_in_another_folder(
        tmp_path, tiny_model, small, reference, client, monkeypatch):
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    before = client.run(os.getcwd)
    client.run(os.chdir, str(there))
    try:
        monkeypatch.chdir(here)
        st = capture(tiny_model, small, "rel", chunk_items=60, batch_size=30, progress=False,
                     engine="dask", scheduler=client.scheduler.address)
    finally:
        for worker, cwd in before.items():
            client.run(os.chdir, cwd, workers=[worker])
    _same(st, reference)
    assert not list(there.iterdir())  # nothing written beside the workers


def test_cluster_settings_without_the_dask_engine_are_refused(tmp_path, tiny_model, small):
    for kwargs in ({"workers": 2}, {"scheduler": "tcp://127.0.0.1:8786"}):
        with pytest.raises(InvalidParameterError, match="engine='dask'"):
            capture(tiny_model, small, tmp_path / "s", progress=False, **kwargs)
    assert not (tmp_path / "s").exists()


def test_the_users_own_client_is_used_by_default_or_given_as_an_engine(
        tmp_path, tiny_model, small, reference, client, monkeypatch):
    import modeldx.engine.dask_engine as dask_engine

    def no_new_cluster(*args, **kwargs):
        raise AssertionError("capture started a cluster of its own beside the user's client")

    monkeypatch.setattr(dask_engine, "connect", no_new_cluster)
    _same(capture(tiny_model, small, tmp_path / "given", chunk_items=60, batch_size=30,
                  progress=False, engine=DaskEngine(client)), reference)
    with client.as_current():
        _same(capture(tiny_model, small, tmp_path / "current", chunk_items=60, batch_size=30,
                      progress=False, engine="dask"), reference)
    with pytest.raises(InvalidParameterError, match="not both"):
        capture(tiny_model, small, tmp_path / "x", progress=False, engine=DaskEngine(client), workers=2)


class Unpicklable(torch.utils.data.Dataset):
    def __init__(self, inner):
        self.inner, self.lock = inner, threading.Lock()

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        return self.inner[i]


def test_a_data_set_that_does_not_pickle_is_named_by_its_own_class(tmp_path, tiny_model, small, client):
    with pytest.raises(InvalidParameterError, match="the data set Unpicklable cannot be sent"):
        capture(tiny_model, Unpicklable(small), tmp_path / "s", progress=False, engine="dask",
                scheduler=client.scheduler.address)


def test_a_store_the_workers_cannot_see_is_named_as_such(tiny_model, small, client):
    with pytest.raises(StoreNotFoundError, match="cannot see it") as info:
        capture(tiny_model, small, "memory://only-here/s", chunk_items=60, batch_size=30,
                progress=False, engine="dask", scheduler=client.scheduler.address)
    assert "memory://" in str(info.value)


class KillsWorkers(torch.utils.data.Dataset):
    """Item 130 kills any process but the coordinator that reads it (chunk 2 of 4)."""

    def __init__(self, inner):
        self.inner, self.coordinator = inner, os.getpid()

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        if i == 130 and os.getpid() != self.coordinator:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner[i]


def test_a_chunk_that_kills_its_worker_is_worker_lost_error_and_the_rest_is_kept(
        tmp_path, tiny_model, small, client):
    from modeldx import open_store

    with pytest.raises(WorkerLostError, match="workers kept dying while capturing chunk"):
        capture(tiny_model, KillsWorkers(small), tmp_path / "s", chunk_items=60, batch_size=30,
                progress=False, engine="dask", scheduler=client.scheduler.address)
    st = open_store(tmp_path / "s")
    assert st.status == "capturing" and 2 not in st.done_chunks()
    client.wait_for_workers(1, timeout=60)  # its nanny starts another


class KillsOnce(torch.utils.data.Dataset):
    """Item 130 kills the first worker that reads it (a marker file remembers it)."""

    def __init__(self, inner, marker):
        self.inner, self.marker, self.coordinator = inner, str(marker), os.getpid()

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, i):
        if i == 130 and os.getpid() != self.coordinator and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner[i]


def test_the_only_worker_killed_mid_capture_loses_nothing(tmp_path, tiny_model, small, reference):
    # the job (model and data set) must outlive the worker that held it: a one-GPU machine runs
    # one worker, and its nanny starts a fresh one with nothing in memory
    from distributed import Client, LocalCluster

    marker = tmp_path / "killed"
    with dask.config.set({"distributed.scheduler.allowed-failures": 2}), \
            LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as c:
        st = capture(tiny_model, KillsOnce(small, marker), tmp_path / "s", chunk_items=60,
                     batch_size=30, progress=False, engine=DaskEngine(c))
    assert marker.exists()
    _same(st, reference)


class Slow(torch.nn.Module):
    """The tiny model, a tenth of a second per batch: a chunk is running when Ctrl-C comes."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        import time

        time.sleep(0.1)
        return self.inner(x)


def test_ctrl_c_leaves_no_chunk_running_after_capture_returns(tmp_path, tiny_model, small, client,
                                                            monkeypatch):
    import importlib

    from modeldx import open_store

    driver = importlib.import_module("modeldx.capture.driver")

    class Interrupted(driver.tqdm):
        def update(self, n=1):
            raise KeyboardInterrupt  # Ctrl-C as the first chunk lands

    monkeypatch.setattr(driver, "tqdm", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        capture(Slow(tiny_model), small, tmp_path / "s", chunk_items=60, batch_size=30,
                progress=False, engine=DaskEngine(client))
    # nothing of this capture runs on the cluster any more: no chunk lands after the lock is free
    assert not any(client.run(driver._running_tasks, "modeldx-capture-").values())
    st = open_store(tmp_path / "s")
    assert st.status == "capturing" and len(st.done_chunks()) < 4
    assert not (tmp_path / "s" / ".lock").exists()
