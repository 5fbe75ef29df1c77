"""The Dask engine answers every registered query exactly as the local engine does, on a real
LocalCluster of worker processes; a replaced store and a dying worker are handled."""

import os
import shutil
import signal

import dask
import numpy as np
import pandas as pd
import pytest

from modeldx.engine import DaskEngine, LocalEngine, make_subset
from modeldx.engine.chunks import ChunkTask, chunk_tasks, load_chunk
from modeldx.errors import StoreReplacedError, WorkerLostError
from modeldx.queries import QUERIES
from modeldx.store import open_store
from tests.queries.test_conformance import args_of

IDS = np.arange(0, 1797, 3)
WEIGHTS = np.random.default_rng(0).uniform(0.5, 3.0, IDS.size)


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # one retry per task: a task whose worker dies once is run again, twice is an error
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def _same(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert a.attrs == b.attrs
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("subset", [False, True], ids=["all", "weighted"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_answers_on_dask_exactly_as_locally(name, subset, digits_store, client, monkeypatch):
    func = QUERIES[name].func
    args = args_of(name)
    if subset:
        args = {**args, "items": IDS, "weights": WEIGHTS}
    local = func(digits_store, **args)
    # on Dask, no chunk is read in this process: the workers build them from the store's path
    import modeldx.engine.local as local_engine

    def no_local_chunks(*a, **k):
        raise AssertionError("the Dask engine read chunks in the client process")

    monkeypatch.setattr(local_engine, "iter_chunks", no_local_chunks)
    on_dask = func(digits_store, **args, engine="dask")
    _same(local, on_dask)
    explicit = func(digits_store, **args, engine=DaskEngine(client))
    _same(local, explicit)


class Sum:
    arrays = ["acts/act2"]

    def map(self, chunk):
        return (chunk.weights[:, None] * chunk.arrays["acts/act2"].astype(np.float64)).sum(0)

    def combine(self, a, b):
        return a + b

    def finalize(self, state):
        return state


def test_chunks_on_a_worker_equal_the_local_chunks(digits_store, client):
    from modeldx.engine import iter_chunks

    sub = make_subset(digits_store, IDS, WEIGHTS)
    local = list(iter_chunks(digits_store, ["acts/act2", "probs"], sub))
    remote = client.gather(client.map(load_chunk, chunk_tasks(digits_store, ["acts/act2", "probs"], sub)))
    assert [c.index for c in remote] == [c.index for c in local]
    for a, b in zip(local, remote, strict=True):
        pd.testing.assert_frame_equal(a.items, b.items)
        np.testing.assert_array_equal(a.rows, b.rows)
        np.testing.assert_array_equal(a.weights, b.weights)
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])


def test_progress_is_shown_as_the_local_engine_shows_it(digits_store, client, capsys):
    DaskEngine(client).run(digits_store, Sum(), progress=True)
    err = capsys.readouterr().err
    assert "query" in err and "8/8" in err and "chunk" in err
    DaskEngine(client).run(digits_store, Sum())
    assert capsys.readouterr().err == ""


def test_a_relative_store_path_reaches_the_workers_absolute(digits_store, client, monkeypatch):
    monkeypatch.chdir(digits_store.path.parent)
    st = open_store(digits_store.path.name)
    assert not st.path.is_absolute()
    tasks = chunk_tasks(st, ["acts/act2"])
    assert all(os.path.isabs(t.path) for t in tasks)
    np.testing.assert_array_equal(DaskEngine(client).run(st, Sum()), LocalEngine().run(st, Sum()))


def test_a_replaced_store_answers_store_replaced_error(tmp_path, digits_store, client):
    import json

    path = tmp_path / "s"
    shutil.copytree(digits_store.path, path)
    st = open_store(path)
    engine = DaskEngine(client)
    expected = LocalEngine().run(st, Sum())
    np.testing.assert_array_equal(engine.run(st, Sum()), expected)  # the workers now hold it open
    task = chunk_tasks(st, ["acts/act2"])[0]
    meta = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**meta, "store_id": "another"}))
    with pytest.raises(StoreReplacedError, match=f"the store at {path} was replaced"):
        engine.run(st, Sum())
    # and on the workers themselves, which opened it before it was replaced
    for worker in client.scheduler_info()["workers"]:
        with pytest.raises(StoreReplacedError, match="was replaced"):
            client.submit(load_chunk, task, workers=[worker], pure=False).result()
    stale = ChunkTask(task.path, "never-this-one", 0, task.start, task.stop, task.arrays)
    with pytest.raises(StoreReplacedError):
        client.submit(load_chunk, stale, pure=False).result()


def test_a_client_that_is_not_the_default_one(digits_store, client):
    from distributed import Client

    with Client(client.scheduler.address, set_as_default=False) as other:
        got = DaskEngine(other).run(digits_store, Sum())
    np.testing.assert_array_equal(got, LocalEngine().run(digits_store, Sum()))


def test_the_neuron_views_reductions_run_on_dask(digits_store, client):
    from modeldx.neurons import neuron_map
    from modeldx.neurons.explore import ColumnPeaks, TopPerColumn
    from modeldx.neurons.features import cluster_top_items

    _same(cluster_top_items(digits_store, "act2", [1, 4, 5], k=5),
          cluster_top_items(digits_store, "act2", [1, 4, 5], k=5, engine="dask"))
    _same(neuron_map(digits_store, "act2", items=500, seed=3),
          neuron_map(digits_store, "act2", items=500, seed=3, engine="dask"))
    peaks = LocalEngine().run(digits_store, ColumnPeaks(["act1", "act2"]))
    on_dask = DaskEngine(client).run(digits_store, ColumnPeaks(["act1", "act2"]))
    assert peaks.keys() == on_dask.keys()
    for key in peaks:
        np.testing.assert_array_equal(peaks[key], on_dask[key])
    top = TopPerColumn({"act2": np.eye(16)[:, :3]}, 4)
    local, remote = LocalEngine().run(digits_store, top), DaskEngine(client).run(digits_store, top)
    for a, b in zip(local["act2"], remote["act2"], strict=True):
        np.testing.assert_array_equal(a, b)


class KillOnce(Sum):
    """Kills its worker process the first time it maps chunk 2 (a marker file remembers it)."""

    def __init__(self, marker, every_time=False):
        self.marker, self.every_time = str(marker), every_time

    def map(self, chunk):
        if chunk.index == 2 and (self.every_time or not os.path.exists(self.marker)):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().map(chunk)


def test_a_worker_killed_mid_query_is_retried_and_the_answer_is_the_same(tmp_path, digits_store, client):
    marker = tmp_path / "killed"
    got = DaskEngine(client).run(digits_store, KillOnce(marker))
    assert marker.exists()  # a worker did die
    np.testing.assert_array_equal(got, LocalEngine().run(digits_store, Sum()))


def test_a_task_that_kills_every_worker_is_a_clear_error(tmp_path, digits_store, client):
    with pytest.raises(WorkerLostError, match="chunk 2 of .* killed a Dask worker each time"):
        DaskEngine(client).run(digits_store, KillOnce(tmp_path / "k", every_time=True))
    client.wait_for_workers(2, timeout=120)  # the nannies restart them


def test_a_store_at_a_file_url_is_queried_on_workers(tmp_path, tiny_model, digits, client):
    from modeldx import capture
    from modeldx.queries import top_k_neurons

    url = f"file://{tmp_path / 'remote'}"
    store = capture(tiny_model, digits, url, chunk_items=256, batch_size=64, progress=False)
    assert store.location == url
    _same(top_k_neurons(store, k=3), top_k_neurons(store, k=3, engine=DaskEngine(client)))


def test_a_store_the_workers_cannot_see_is_named_as_such(tiny_model, digits, client):
    from modeldx import capture
    from modeldx.queries import top_k_neurons

    store = capture(tiny_model, digits, "memory://only-in-this-process/s", chunk_items=600,
                    batch_size=100, progress=False)
    with pytest.raises(StoreReplacedError, match="cannot see it") as info:
        top_k_neurons(store, k=3, engine=DaskEngine(client))
    assert "a memory:// store lives in the memory of the process that made it" in str(info.value)


def test_the_users_client_itself_is_an_engine_for_queries_and_capture(tmp_path, digits_store, tiny_model,
                                                                     digits, client):
    from modeldx import capture
    from modeldx.engine import get_engine
    from modeldx.queries import top_k_neurons

    assert isinstance(get_engine(client), DaskEngine) and get_engine(client).client is client
    _same(top_k_neurons(digits_store, k=3), top_k_neurons(digits_store, k=3, engine=client))
    st = capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=256, batch_size=100,
                 progress=False, engine=client)
    assert st.complete and st.n_items == digits_store.n_items
