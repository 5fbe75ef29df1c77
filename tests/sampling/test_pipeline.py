"""Latent pass -> sample -> capture the sample only -> the same queries, labelled with their source."""

import pandas as pd
import pytest

import modeldx
from modeldx.queries import confusion_matrix, top_k_confidence, top_k_neurons


def test_sampled_pipeline(tmp_path, tiny_model, digits, digits_store):
    latent = modeldx.latent_pass(tiny_model, digits, tmp_path / "latent", progress=False)
    s = modeldx.sample(latent, "latent-svm", 0.2, seed=0, j=0.3)
    assert s.name in latent.samples() and s.info["params"]["j"] == 0.3
    small = modeldx.capture(tiny_model, digits, tmp_path / "sample", items=s.item_ids,
                            encoding="float32", chunk_items=256, batch_size=100, progress=False)
    assert small.n_items == s.size

    # the sample's store answers what the full store answers when restricted to the sample
    from_small = top_k_neurons(small, k=3, items=s)
    from_full = top_k_neurons(digits_store, k=3, items=s)
    pd.testing.assert_frame_equal(from_small, from_full, check_exact=False, rtol=1e-6)
    source = from_small.attrs["source"]
    assert source["exact"] is False and source["method"] == "latent-svm" and source["sample"] == s.name
    assert source["fraction"] == 0.2  # of the full data, not of the sample's own store

    # every SVM class is in a 20% sample, so the post-stratified weights add up to every item
    cm = confusion_matrix(small, items=s)
    assert cm["count"].sum() == pytest.approx(len(digits_store.items()))

    # the confidence of the sampled answer: the sample knows its population's group sizes, so the
    # sample's own store gives what the full store gives
    assert sum(s.info["group_items"]) == len(digits_store.items())
    conf_small = top_k_confidence(small, k=3, items=s, replicates=50)
    conf_full = top_k_confidence(digits_store, k=3, items=s, replicates=50)
    pd.testing.assert_frame_equal(conf_small, conf_full, check_exact=False, rtol=1e-6)
    assert conf_small.confidence.lt(1).any()
