"""Capture on a Dask cluster (``engine="dask"``): workers write chunks into one store by path.

One local cluster of two worker processes serves the module; the killed-worker test kills
one of them with SIGKILL mid-capture (its nanny starts a new one).
"""

import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from modeldx import capture, latent_pass, open_store
from modeldx.engine.cluster import SCHEDULER_ENV, connect
from modeldx.errors import InvalidParameterError, NonFiniteActivationError
from modeldx.store.store import PROGRESS


@pytest.fixture(scope="module")
def client():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(SCHEDULER_ENV, raising=False)
        with connect(workers=2) as c:
            yield c


@pytest.fixture(scope="module")
def local_digits(tmp_path_factory, tiny_model, digits):
    """The reference: the same capture in this process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' float summation order (one thread each)
    try:
        return capture(tiny_model, digits, tmp_path_factory.mktemp("ref") / "local", chunk_items=60,
                       batch_size=30, progress=False)
    finally:
        torch.set_num_threads(before)


def assert_same_store(got, want):
    assert got.complete and got.manifest.settings() == want.manifest.settings()
    for name in want.array_names():
        # bit-identical: eval mode, the same batches (chunk-aligned), one thread per process
        assert np.array_equal(got.read(name), want.read(name)), name
    assert got.items().equals(want.items())


def test_a_killed_worker_loses_nothing(tmp_path, tiny_model, digits, local_digits, client):
    model = type(tiny_model)()
    model.load_state_dict(tiny_model.state_dict())
    model.register_forward_pre_hook(lambda m, i: time.sleep(0.02))
    path = tmp_path / "dask"
    result: dict = {}

    def run():
        try:
            result["store"] = capture(model, digits, path, chunk_items=60, batch_size=30,
                                      progress=False, engine="dask", scheduler=client.scheduler.address)
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    coordinator = threading.Thread(target=run)
    coordinator.start()
    deadline = time.monotonic() + 120
    busy = {}
    while time.monotonic() < deadline and "store" not in result and "error" not in result:
        progress = path / PROGRESS
        if progress.is_dir() and any(progress.glob("chunk-*.done")):
            busy = {w: keys for w, keys in client.processing().items() if keys}
            if busy:
                break
        time.sleep(0.01)  # polling for the first marker, with the deadline above
    assert busy, f"no worker was capturing when the first chunk was done: {result}"
    victim = next(iter(busy))
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    coordinator.join(timeout=180)
    assert not coordinator.is_alive()
    assert "error" not in result, result.get("error")
    assert pid not in client.run(os.getpid).values()  # it died (its nanny started another)
    assert_same_store(result["store"], local_digits)


def test_random_chunk_order_and_latent_pass(tmp_path, tiny_model, digits, local_digits, client):
    st = capture(tiny_model, digits, tmp_path / "random", chunk_items=60, batch_size=30,
                 progress=False, engine="dask", scheduler=client.scheduler.address,
                 chunk_order="random", seed=3)
    assert_same_store(st, local_digits)
    lat = latent_pass(tiny_model, digits, tmp_path / "latent", chunk_items=60, batch_size=30,
                      progress=False, engine="dask", scheduler=client.scheduler.address)
    assert lat.layers == [] and np.array_equal(lat.read("latent"), local_digits.read("latent"))
    assert lat.items().equals(local_digits.items())


def test_a_failing_chunk_lets_the_others_land_before_capture_returns(tmp_path, tiny_model, digits,
                                                                   client):
    from modeldx.data import ArrayDataset

    inputs = digits.inputs.copy()
    inputs[600, 3, 3] = np.inf  # chunk 10 of 30 turns into NaN
    data = ArrayDataset(inputs, digits.labels, scale=1 / 16, add_channel=True)
    with pytest.raises(NonFiniteActivationError, match=r"item ids: \[600\]"):
        capture(tiny_model, data, tmp_path / "s", chunk_items=60, batch_size=30, progress=False,
                engine="dask", scheduler=client.scheduler.address)
    # every other chunk was written before capture returned (and released the lock): no
    # task of this capture is left to write into the store later
    st = open_store(tmp_path / "s")
    assert st.status == "capturing" and st.done_chunks() == set(range(30)) - {10}
    assert not (tmp_path / "s" / ".lock").exists()


def test_a_data_set_that_does_not_pickle_is_named(tmp_path, tiny_model, digits, client):
    from modeldx.data import ArrayDataset

    x, y = digits.get_batch(np.arange(40))
    ds = ArrayDataset(x.numpy(), y.numpy())
    ds.unpicklable = threading.Lock()
    with pytest.raises(InvalidParameterError, match="cannot be sent to Dask workers"):
        capture(tiny_model, ds, tmp_path / "s", progress=False, engine="dask",
                scheduler=client.scheduler.address)


def test_a_data_loader_with_workers_is_read_in_the_dask_workers_without_child_processes(
        tmp_path, tiny_model, digits, local_digits, client):
    # a Dask worker is a daemon process and may not start a DataLoader's worker processes
    x, y = digits.get_batch(np.arange(len(digits)))
    items = torch.utils.data.Subset(torch.utils.data.TensorDataset(x, y), range(len(digits)))
    loader = torch.utils.data.DataLoader(items, batch_size=30, num_workers=2)
    got = capture(tiny_model, loader, tmp_path / "s", chunk_items=60, batch_size=30, progress=False,
                  engine="dask", scheduler=client.scheduler.address)
    for name in local_digits.array_names():
        np.testing.assert_allclose(got.read(name), local_digits.read(name), rtol=0, atol=1e-6)
