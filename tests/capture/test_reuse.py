"""Latent-pass reuse: sampling from a capture's store, and a latent store built from arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import modeldx
from modeldx import latent_pass, latent_store, open_store
from modeldx.errors import InvalidParameterError, StoreExistsError


def _evaluate(model, data, batch_size: int = 100):
    """What a training loop's last evaluation has: the head's input and the logits, per item."""
    kept = []
    handle = model.fc2.register_forward_pre_hook(lambda _m, inputs: kept.append(inputs[0].detach()))
    try:
        with torch.no_grad():
            logits = [model(data.get_batch(np.arange(s, min(s + batch_size, len(data))))[0])
                      for s in range(0, len(data), batch_size)]
    finally:
        handle.remove()
    return torch.cat(kept), torch.cat(logits)


@pytest.fixture(scope="module")
def real_latent(tmp_path_factory, tiny_model, digits):
    # float32 and the batches of digits_store: the same latent vectors to the bit
    return latent_pass(tiny_model, digits, tmp_path_factory.mktemp("reuse") / "latent", encoding="float32",
                       batch_size=100, progress=False)


@pytest.mark.parametrize("method", ["latent-svm", "latent-gmm", "stratified-cm"])
def test_a_capture_store_samples_as_its_latent_pass_does(digits_store, real_latent, method):
    # a full capture already holds latent, probs and the items table: no second pass is needed
    on_capture = modeldx.sample(digits_store, method, 0.1, save=False)
    on_latent = modeldx.sample(real_latent, method, 0.1, save=False)
    np.testing.assert_array_equal(on_capture.item_ids, on_latent.item_ids)
    np.testing.assert_allclose(on_capture.weights, on_latent.weights)


@pytest.mark.parametrize("method", ["latent-svm", "latent-gmm"])
def test_a_store_from_a_training_loops_arrays_samples_as_a_real_latent_pass(tmp_path, tiny_model, digits,
                                                                             real_latent, method):
    latent, logits = _evaluate(tiny_model, digits)
    store = latent_store(tmp_path / "from-arrays", tiny_model, digits, latent=latent, logits=logits,
                         encoding="float32")
    ours, real = store.items(), real_latent.items()
    for col in ("item_id", "split", "label", "pred", "correct"):
        np.testing.assert_array_equal(ours[col].to_numpy(), real[col].to_numpy())
    np.testing.assert_allclose(ours.loss, real.loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(store.read("latent"), real_latent.read("latent"))
    assert store.manifest.latent_layer == real_latent.manifest.latent_layer == "input:fc2"
    open_store(store.path, model=tiny_model, dataset=digits)  # the fingerprints are the model's and data's
    a = modeldx.sample(store, method, 0.05, seed=1, save=False)
    b = modeldx.sample(real_latent, method, 0.05, seed=1, save=False)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)


def test_rows_are_stored_in_id_order_and_probs_work_too(tmp_path, tiny_model, digits):
    latent, logits = _evaluate(tiny_model, digits)
    ids = np.arange(len(digits))[::-1][:300].copy()  # a subset, given in reverse
    probs = torch.softmax(logits, 1)[ids]
    store = latent_store(tmp_path / "s", tiny_model, digits, latent=latent[ids], probs=probs, item_ids=ids)
    items = store.items()
    assert items.item_id.is_monotonic_increasing and len(items) == 300
    np.testing.assert_allclose(store.read("probs"), probs.numpy()[::-1], rtol=1e-6)
    assert store.manifest.extra["subset"] is True


def test_bad_arrays_are_named_and_nothing_complete_is_overwritten(tmp_path, tiny_model, digits):
    latent, logits = _evaluate(tiny_model, digits)
    with pytest.raises(InvalidParameterError, match="exactly one of logits= and probs="):
        latent_store(tmp_path / "a", tiny_model, digits, latent=latent)
    with pytest.raises(InvalidParameterError, match=r"logits must have shape \(1797, classes"):
        latent_store(tmp_path / "a", tiny_model, digits, latent=latent, logits=logits[:10])
    with pytest.raises(InvalidParameterError, match="item_ids must be distinct ids"):
        latent_store(tmp_path / "a", tiny_model, digits, latent=latent[:2], logits=logits[:2],
                     item_ids=[3, 3])
    latent_store(tmp_path / "b", tiny_model, digits, latent=latent, logits=logits)
    with pytest.raises(StoreExistsError):
        latent_store(tmp_path / "b", tiny_model, digits, latent=latent, logits=logits)


def test_arrays_that_cannot_be_a_latent_pass_are_refused_before_anything_is_written(tmp_path, tiny_model,
                                                                                    digits):
    latent, logits = _evaluate(tiny_model, digits)
    n = len(digits)
    # a latent with no columns wrote a store that then said it was damaged ("run the capture again")
    with pytest.raises(InvalidParameterError, match=r"latent must have at least one column"):
        latent_store(tmp_path / "a", tiny_model, digits, latent=latent[:, :0], logits=logits)
    probs = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    # probabilities that are not: negative, above 1, rows not summing to 1 (logits passed as probs=)
    for bad in (-probs, probs * 5, np.full_like(probs, 0.5)):
        with pytest.raises(InvalidParameterError, match=r"probs must be probabilities"):
            latent_store(tmp_path / "a", tiny_model, digits, latent=latent, probs=bad)
    # more rows than the data set has items, without item_ids: say that, not "item_ids must be distinct"
    extra = np.concatenate([latent, latent[:1]])
    with pytest.raises(InvalidParameterError, match=rf"latent has {n + 1} rows.*data set has {n} items"):
        latent_store(tmp_path / "a", tiny_model, digits, latent=extra,
                     logits=np.concatenate([logits, logits[:1]]))
    assert not (tmp_path / "a").exists()
    latent_store(tmp_path / "ok", tiny_model, digits, latent=latent, probs=probs)  # float32 rounding is fine
