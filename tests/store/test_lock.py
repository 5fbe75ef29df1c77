"""The writer lock and the store id, with real separate processes."""

import multiprocessing as mp
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from modeldx import capture, open_store
from modeldx.errors import StoreLockedError, StoreReplacedError
from modeldx.queries import top_k_neurons
from modeldx.store.lock import LOCK, WriterLock
from tests.conftest import TinyNet

WAIT = 120  # seconds an event may take to arrive on a loaded machine (a bound, not a pause)


def _model(seed: int) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def _gated(dataset, path, action):
    """Run ``action`` once, at the first batch the data set serves while the writer holds the
    store's lock: the probe and layer discovery read batches before the writer exists."""
    original, fired = dataset.get_batch, [False]

    def get_batch(ids):
        if not fired[0] and (Path(path) / LOCK).exists():
            fired[0] = True
            action()
        return original(ids)

    dataset.get_batch = get_batch
    return dataset


def _capture_child(path, seed, overwrite, started, go, kill):
    from modeldx.data.datasets import load_digits

    def pause():
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        started.set()
        go.wait(WAIT)

    capture(_model(seed), _gated(load_digits(), path, pause), path, encoding="float32",
            chunk_items=256, batch_size=128, progress=False, overwrite=overwrite)


def _start(path, seed=0, overwrite=False, kill=False):
    ctx = mp.get_context("spawn")  # a fresh interpreter: no torch state forked mid-use
    started, go = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_capture_child, args=(str(path), seed, overwrite, started, go, kill))
    proc.start()
    proc.events = (started, go)  # the child unpickles them after start: keep them alive till then
    return proc, started, go


def _capture(path, digits, seed=0, **kwargs):
    return capture(_model(seed), digits, path, encoding="float32", chunk_items=256, batch_size=128,
                   progress=False, **kwargs)


def test_a_second_capture_into_the_same_path_fails_at_once(tmp_path, digits):
    path = tmp_path / "s"
    proc, started, go = _start(path)
    try:
        assert started.wait(WAIT)
        with pytest.raises(StoreLockedError, match=f"being written by pid {proc.pid} on "):
            _capture(path, digits, overwrite=True)
    finally:
        go.set()
        proc.join(WAIT)
    assert proc.exitcode == 0
    st = open_store(path)
    assert st.complete and st.verify() == [] and not (path / LOCK).exists()


def test_a_reader_notices_the_store_was_replaced(tmp_path, digits):
    path = tmp_path / "s"
    old = _capture(path, digits)
    before = old.read("acts/act2")
    proc, started, go = _start(path, seed=1, overwrite=True)
    try:
        assert started.wait(WAIT)  # the old store is gone, the new one is being written
        with pytest.raises(StoreReplacedError, match=f"the store at {path} was replaced"):
            old.read("acts/act2")
        with pytest.raises(StoreReplacedError, match="open it again"):
            top_k_neurons(old, layers=["act2"])
    finally:
        go.set()
        proc.join(WAIT)
    assert proc.exitcode == 0
    for call in (lambda: old.read("acts/act2", 0, 10), lambda: old.read("latent"),
                 lambda: top_k_neurons(old, layers=["act2"])):
        with pytest.raises(StoreReplacedError):
            call()
    new = open_store(path)
    assert new.store_id != old.store_id
    assert not np.array_equal(new.read("acts/act2"), before)


def test_a_stale_lock_of_a_killed_capture_is_taken_over(tmp_path, digits):
    path = tmp_path / "s"
    proc, _, _ = _start(path, kill=True)
    proc.join(WAIT)
    assert proc.exitcode == -signal.SIGKILL
    assert (path / LOCK).read_text().startswith(f"pid {proc.pid} on ")
    st = _capture(path, digits)  # same settings: resumes the killed capture
    assert st.complete and st.verify() == [] and not (path / LOCK).exists()


def test_the_lock_is_released_on_error_and_keyboard_interrupt(tmp_path, digits):
    path = tmp_path / "s"

    def interrupt():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        capture(_model(0), _gated(digits.subset(np.arange(600)), path, interrupt), path,
                chunk_items=256, batch_size=128, progress=False)
    assert not (path / LOCK).exists()
    with WriterLock(path) as lock:
        assert lock.held and (path / LOCK).read_text().startswith(f"pid {os.getpid()} ")
        with pytest.raises(StoreLockedError):
            WriterLock(path).acquire()  # also within one process: a second writer waits its turn
    assert not (path / LOCK).exists()


def test_a_watchers_probe_of_a_stale_lock_does_not_refuse_the_capture_that_resumes(tmp_path, monkeypatch):
    # progressive() and the capture app ask live_holder() whether a writer is alive: it holds a shared
    # flock for an instant. A capture taking over a stale lock at that instant must not be told
    # "being written by another process" (the killed writer's pid)
    import fcntl

    import modeldx.store.lock as lock_module

    (tmp_path / LOCK).write_text("pid 999999 on elsewhere\n")  # left by a killed capture
    real = fcntl.flock
    probed = []

    def flock(fd, op):
        if op & fcntl.LOCK_EX and not probed:  # the watcher's probe lands just before the writer's try
            probe = os.open(tmp_path / LOCK, os.O_RDONLY)
            real(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            probed.append(True)
            try:
                return real(fd, op)
            finally:
                os.close(probe)
        return real(fd, op)

    monkeypatch.setattr(lock_module.fcntl, "flock", flock)
    lock = WriterLock(tmp_path).acquire()
    assert probed and lock.held
    lock.release()
