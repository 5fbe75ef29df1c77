"""The capture page's routes (FastAPI's TestClient): progress, the answer with its confidence, the history
with precision against the final answer, a store that does not exist yet, and the token and Host checks."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

from modeldx import capture
from modeldx.live.capture_app import CaptureView, create_capture_app
from modeldx.queries import top_k_neurons
from tests.store.test_partial import CHUNK, interrupted

TOKEN = "a-token-long-enough-1234"
BASE = "http://127.0.0.1:8765"
K = 3


def client(path, **options) -> TestClient:
    return TestClient(create_capture_app(CaptureView(path, k=K, replicates=50), **options), base_url=BASE)


def test_a_capture_in_progress_then_complete(tmp_path, monkeypatch, tiny_model, digits, digits_store):
    written = interrupted(tmp_path / "s", tiny_model, digits, 4, monkeypatch, chunk_order="random", seed=5)
    for i, c in enumerate(written):  # the chunks landed a second apart: 128 items/s
        os.utime(tmp_path / "s" / "_progress" / f"chunk-{c:06d}.done", (1000.0 + i, 1000.0 + i))
    app = client(tmp_path / "s")
    assert app.get("/").status_code == 200 and 'src="static/capture.js"' in app.get("/").text
    for name in ("capture.js", "capture.css", "pagekit.js"):
        assert app.get(f"/static/{name}").status_code == 200
    s = app.get("/api/status").json()
    total = -(-len(digits) // CHUNK)
    assert s["status"] == "capturing" and s["writing"] is False
    assert s["chunks_done"] == 4 and s["chunks_total"] == total
    assert s["items_done"] == 4 * CHUNK and s["items_total"] == len(digits)
    assert s["chunk_order"] == "random" and not s["biased"]
    assert s["rate"] == pytest.approx(CHUNK)
    assert s["eta_s"] == pytest.approx((len(digits) - 4 * CHUNK) / CHUNK)
    assert [layer["name"] for layer in s["layers"]] == ["act1", "act2", "fc2"]
    a = app.get("/api/answer", params={"layer": "act2"}).json()
    assert a["chunks_done"] == 4 and not a["complete"] and a["layer"] == "act2" and a["groups"]
    for g in a["groups"]:
        assert len(g["neurons"]) == K and all(0 <= n["confidence"] <= 1 for n in g["neurons"])
    h = app.get("/api/history", params={"layer": "act2"}).json()
    assert [(e["chunks"], e["precision"]) for e in h["entries"]] == [(4, None)]
    assert app.get("/api/answer", params={"layer": "nope"}).status_code == 404

    # the capture resumes to the end: the page's answer is the exact one, the history scored against it
    capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=CHUNK, batch_size=64,
            progress=False, chunk_order="random", seed=5)
    s = app.get("/api/status").json()
    assert s["status"] == "complete" and s["chunks_done"] == total and s["eta_s"] == 0
    a = app.get("/api/answer", params={"layer": "act2"}).json()
    exact = top_k_neurons(digits_store, k=K, layers="act2")
    got = [(g["label"], g["correct"], n["neuron"]) for g in a["groups"] for n in g["neurons"]]
    assert got == list(zip(exact.label, exact.correct, exact.neuron, strict=True))
    assert a["complete"] and a["mean_confidence"] == 1.0
    entries = app.get("/api/history", params={"layer": "act2"}).json()["entries"]
    assert [e["chunks"] for e in entries] == [4, total] and entries[-1]["precision"] == 1.0
    assert 0 <= entries[0]["precision"] <= 1


def test_before_the_store_exists_the_page_waits(tmp_path):
    app = client(tmp_path / "later")
    s = app.get("/api/status").json()
    assert s["status"] == "waiting" and s["items_total"] is None and s["layers"] == []
    assert app.get("/api/answer").json()["groups"] == []
    assert app.get("/api/history").json()["entries"] == []


def test_ascending_order_is_flagged_biased(tmp_path, monkeypatch, tiny_model, digits):
    interrupted(tmp_path / "s", tiny_model, digits, 2, monkeypatch)
    assert client(tmp_path / "s").get("/api/status").json()["biased"] is True


def test_token_and_host(digits_store):
    app = client(digits_store.path, token=TOKEN, host="0.0.0.0")
    assert app.get("/").status_code == 200  # the page holds no data
    assert app.get("/api/status").status_code == 403
    assert app.get("/api/status", params={"token": TOKEN}).json()["status"] == "complete"
    assert app.get("/api/status", headers={"X-Modeldx-Token": TOKEN}).status_code == 200
    plain = client(digits_store.path)  # DNS rebinding: a page of another site naming it
    assert plain.get("/api/status", headers={"host": "evil.example:8765"}).status_code == 403
    assert plain.get("/", headers={"host": "evil.example:8765"}).status_code == 403


def test_bad_settings():
    from modeldx.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="'k'"):
        CaptureView("anywhere", k=0)


def test_the_default_layer_is_one_whose_top_k_says_something(digits_store):
    """The head's output (10 logits) with k = 10: every neuron is in every group's top 10, confidence 1
    from the first chunk -- a page opened on it shows nothing. It starts on the last layer wider than k."""
    neurons = {s.name: s.neurons for s in digits_store.manifest.layers}
    k = neurons["fc2"]
    app = TestClient(create_capture_app(CaptureView(digits_store.path, k=k, replicates=50)), base_url=BASE)
    s = app.get("/api/status").json()
    assert s["default_layer"] == "act2" and neurons["act2"] > k
    assert app.get("/api/answer").json()["layer"] == "act2"
    assert app.get("/api/history").json()["layer"] == "act2"
    # when no layer is wider than k, the last one
    narrow = TestClient(create_capture_app(CaptureView(digits_store.path, k=10_000, replicates=50)),
                        base_url=BASE)
    assert narrow.get("/api/status").json()["default_layer"] == "fc2"
    waiting = CaptureView(digits_store.path.parent / "not-yet", k=k).status()
    assert waiting["default_layer"] is None


def test_a_store_at_a_url_is_watched(digits_store, tmp_path, monkeypatch, tiny_model, digits):
    """PartialStore reads fsspec stores; the page's view made a Path of the URL ('file:/...') and waited for
    ever for a store that was there."""
    view = CaptureView(f"file://{digits_store.path}", k=K, replicates=50)
    s = view.status()
    assert s["status"] == "complete" and s["chunks_done"] == s["chunks_total"]
    assert s["path"] == f"file://{digits_store.path}"
    assert view.answer_of("act2")["complete"]
    interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch, chunk_order="random")
    partial = CaptureView(f"file://{tmp_path / 's'}", k=K, replicates=50).status()
    assert partial["status"] == "capturing" and partial["chunks_done"] == 3


def test_a_store_replaced_by_a_new_capture_is_followed_afresh(tmp_path, monkeypatch, tiny_model, digits):
    """The page stayed on "the store was replaced" (HTTP 500) for good when a capture was run again with
    overwrite=True: it now follows the new capture, its history started over (precision against another
    capture's answer would mean nothing)."""
    interrupted(tmp_path / "s", tiny_model, digits, 3, monkeypatch, chunk_order="random", seed=1)
    app = client(tmp_path / "s")
    assert app.get("/api/status").json()["chunks_done"] == 3
    assert app.get("/api/history", params={"layer": "act2"}).json()["entries"][0]["chunks"] == 3
    capture(tiny_model, digits, tmp_path / "s", encoding="float32", chunk_items=256, batch_size=64,
            progress=False, overwrite=True)  # another capture, other chunks
    s = app.get("/api/status")
    assert s.status_code == 200 and s.json()["status"] == "complete" and s.json()["chunks_total"] == 8
    a = app.get("/api/answer", params={"layer": "act2"}).json()
    assert a["complete"] and a["chunks_done"] == 8
    entries = app.get("/api/history", params={"layer": "act2"}).json()["entries"]
    assert [e["chunks"] for e in entries] == [8] and entries[0]["precision"] == 1.0
