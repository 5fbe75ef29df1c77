"""Progressive answers over a capture running in a background thread: they refine as chunks land, carry a
confidence in [0, 1], and the last one is the exact answer."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

import modeldx
from modeldx import capture
from modeldx.errors import BiasedAnswerWarning, InvalidParameterError, StoreIncompleteError, StoreWriteError
from modeldx.queries import top_k_confidence, top_k_neurons
from modeldx.queries.progressive import progressive_answer, snapshot_sample
from modeldx.store import store as store_module
from modeldx.store.partial import PartialStore
from tests.store.test_partial import CHUNK, interrupted

K = 3
COLUMNS = ["layer", "label", "correct", "rank", "neuron", "value", "n_items"]


class GatedCapture:
    """A capture in a thread whose chunk writes wait for the test's go: the test decides when chunks land
    (no sleeps), ``release(n)`` lets ``n`` more through."""

    def __init__(self, monkeypatch, model, data, path, **kwargs) -> None:
        self.gate = threading.Semaphore(0)
        self.error: BaseException | None = None
        real = store_module.StoreWriter.write_chunk

        def write(writer, index, arrays, items):
            if not self.gate.acquire(timeout=60):
                raise TimeoutError("the test never let this chunk through")
            return real(writer, index, arrays, items)

        monkeypatch.setattr(store_module.StoreWriter, "write_chunk", write)

        def run():
            try:
                capture(model, data, path, encoding="float32", chunk_items=CHUNK, batch_size=64,
                        progress=False, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def release(self, n: int) -> None:
        for _ in range(n):
            self.gate.release()

    def join(self) -> None:
        self.release(1000)
        self.thread.join(60)
        if self.error is not None:
            raise self.error


def precision(answer: pd.DataFrame, exact: pd.DataFrame) -> float:
    """Mean over the exact answer's groups of |returned ∩ exact| / k (a missing group counts 0)."""
    key = ["layer", "label", "correct"]
    got = answer.groupby(key)["neuron"].apply(set)
    want = exact.groupby(key)["neuron"].apply(set)
    hits = [len(got.get(g, set()) & w) / len(w) for g, w in want.items()]
    return float(np.mean(hits))


def test_answers_refine_as_chunks_land_and_end_exact(tmp_path, monkeypatch, tiny_model, digits, digits_store):
    running = GatedCapture(monkeypatch, tiny_model, digits, tmp_path / "s", chunk_order="random", seed=0)
    exact = top_k_neurons(digits_store, k=K)
    seen = []
    try:
        running.release(1)
        for done, total, answer in modeldx.progressive(tmp_path / "s", k=K, every=0.01, timeout=60):
            seen.append((done, total, answer))
            running.release(2)
    finally:
        running.join()
    dones = [d for d, _, _ in seen]
    total = seen[0][1]
    assert total == -(-len(digits) // CHUNK) and all(t == total for _, t, _ in seen)
    assert dones == sorted(set(dones)) and dones[-1] == total and len(seen) >= 4  # refined, several times
    for done, _, answer in seen:
        assert list(answer.columns) == [*COLUMNS, "confidence", "replicates"]
        c, r = answer["confidence"].to_numpy(), answer["replicates"].to_numpy()
        assert (((c >= 0) & (c <= 1)) | (np.isnan(c) & (r == 0))).all()  # NaN only without a replicate
        assert answer.attrs["progress"]["chunks_done"] == done and not answer.attrs["progress"]["biased"]
    # the last answer is the plain query on the complete store, and top_k_confidence's over every item
    final = seen[-1][2]
    assert final.attrs["progress"]["complete"]
    pd.testing.assert_frame_equal(final[COLUMNS], exact)
    pd.testing.assert_frame_equal(final, top_k_confidence(digits_store, k=K), check_like=True)
    # converging: the answers' precision against the exact one rises, and the confidence with it
    scores = [precision(a, exact) for _, _, a in seen]
    half = len(seen) // 2
    assert np.mean(scores[half:]) > np.mean(scores[:half]) and scores[-1] == 1.0
    # one chunk tells nothing of how chunks differ: no confidence yet; then it rises with the precision
    first = seen[0][2]
    assert seen[0][0] == 1 and first["confidence"].isna().all() and (first["replicates"] == 0).all()
    confidence = [float(a["confidence"].mean()) for d, _, a in seen if d >= 2]
    half = len(confidence) // 2
    assert np.mean(confidence[half:]) > np.mean(confidence[:half])


def test_ascending_order_warns_that_the_answer_is_biased(tmp_path, monkeypatch, tiny_model, digits):
    interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch)  # default order: the first chunks
    with pytest.warns(BiasedAnswerWarning, match="ascending"):
        done, total, answer = next(modeldx.progressive(tmp_path / "s", k=K, every=0.01))
    assert (done, total) == (3, 15) and answer.attrs["progress"]["biased"]


def test_a_stalled_capture_times_out(tmp_path, monkeypatch, tiny_model, digits):
    gated = GatedCapture(monkeypatch, tiny_model, digits, tmp_path / "s", chunk_order="random")
    gated.release(2)  # then the writer hangs, holding its lock
    answers = modeldx.progressive(tmp_path / "s", k=K, every=0.01, timeout=0.5)
    done = next(answers).done
    while done < 2:  # the two chunks may land between two looks
        done = next(answers).done
    with pytest.raises(StoreIncompleteError, match="landed for 0.5 s .* a writer holds its lock"):
        next(answers)
    gated.join()


def test_weights_and_post_stratification(tmp_path, monkeypatch, tiny_model, digits, digits_store):
    interrupted(tmp_path / "s", tiny_model, digits, 5, monkeypatch, chunk_order="random", seed=2)
    snap = PartialStore(tmp_path / "s").snapshot()
    sample = snapshot_sample(snap)
    assert np.allclose(sample.weights, len(digits) / snap.n_items)  # N / n: sums estimate totals
    assert sample.weights.sum() == pytest.approx(len(digits))
    from modeldx.engine.groups import group_codes, group_sizes

    population = group_sizes(digits_store.items(), 10)
    strat = snapshot_sample(snap, group_items=population)
    codes = group_codes(snap.items())
    # each group's weights add up to its true size
    seen = np.bincount(codes, minlength=20) > 0
    np.testing.assert_allclose(np.bincount(codes, strat.weights, minlength=20)[seen], population[seen])
    with pytest.raises(InvalidParameterError, match="group_items"):
        snapshot_sample(snap, group_items=population[:5])
    # other queries are answered weighted, without a confidence
    cm = progressive_answer(snap, "confusion-matrix")
    assert "confidence" not in cm.columns and cm.attrs["progress"]["chunks_done"] == 5
    with pytest.raises(InvalidParameterError, match="'nope'"):
        progressive_answer(snap, k=K, nope=1)


def test_every_chunk_landed_before_the_store_is_finalized(tmp_path, monkeypatch, tiny_model, digits,
                                                          digits_store):
    def fail(self):
        raise StoreWriteError(28, "the disk is full (test)")

    monkeypatch.setattr(store_module.StoreWriter, "finalize", fail)
    with pytest.raises(StoreWriteError):
        capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=CHUNK, batch_size=64,
                progress=False, chunk_order="random")
    monkeypatch.undo()
    answers = modeldx.progressive(tmp_path / "s", k=K, every=0.01)
    done, total, answer = next(answers)  # every chunk, the store not finalized: not yet the exact answer
    assert done == total and not answer.attrs["progress"]["complete"]
    assert (answer["confidence"] == 1).all()  # every chunk: nothing left to change it
    pd.testing.assert_frame_equal(answer[COLUMNS], top_k_neurons(digits_store, k=K), check_like=True,
                                  check_exact=False)
    capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=CHUNK, batch_size=64,
            progress=False, chunk_order="random")  # resumed: only the finalizing was left
    done, total, final = next(answers)
    assert done == total and final.attrs["progress"]["complete"]
    pd.testing.assert_frame_equal(final[COLUMNS], top_k_neurons(digits_store, k=K))
    assert next(answers, None) is None


def test_an_item_not_captured_yet_is_named_as_such(tmp_path, monkeypatch, tiny_model, digits):
    """nearest-neighbors of an item whose chunk has not landed said "item 0 is not in the store": it is,
    the capture has not reached it."""
    interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch, chunk_order="random", seed=1)
    snap = PartialStore(tmp_path / "s").snapshot()
    missing = next(i for i in range(len(digits)) if i // CHUNK not in snap.chunks)
    with pytest.raises(InvalidParameterError, match=rf"item {missing} is not captured yet.*3 of 15 chunks"):
        progressive_answer(snap, "nearest-neighbors", layer="act2", item_id=missing)


def test_a_capture_that_stopped_is_named_at_once_not_after_the_timeout(tmp_path, monkeypatch, tiny_model,
                                                                       digits):
    interrupted(tmp_path / "s", tiny_model, digits, 2, monkeypatch, chunk_order="random")
    answers = modeldx.progressive(tmp_path / "s", k=K, every=0.01, timeout=None)
    assert next(answers).done == 2
    with pytest.raises(StoreIncompleteError, match="stopped with 2 of 15 chunks done: no process holds"):
        next(answers)


def test_a_lock_file_left_by_a_killed_writer_does_not_count_as_a_writer(tmp_path, monkeypatch, tiny_model,
                                                                        digits):
    interrupted(tmp_path / "s", tiny_model, digits, 2, monkeypatch, chunk_order="random")
    (tmp_path / "s" / ".lock").write_text("pid 4242 on elsewhere\n")  # no process holds its flock
    watched = PartialStore(tmp_path / "s")
    assert watched.writing() is False
    answers = modeldx.progressive(tmp_path / "s", k=K, every=0.01, timeout=None)
    next(answers)
    with pytest.raises(StoreIncompleteError, match="stopped"):
        next(answers)


def test_a_live_writer_is_waited_for(tmp_path, monkeypatch, tiny_model, digits):
    gated = GatedCapture(monkeypatch, tiny_model, digits, tmp_path / "s", chunk_order="random", seed=3)
    gated.release(2)
    answers = modeldx.progressive(tmp_path / "s", k=K, every=0.01, timeout=None)
    first = next(answers)
    assert PartialStore(tmp_path / "s").writing() is True
    gated.release(1000)
    last = list(answers)[-1]
    gated.join()
    assert first.done >= 1 and last.done == last.total == 15
