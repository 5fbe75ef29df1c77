import numpy as np
import pytest

from modeldx.store.encoding import decode, encode


def test_float16_round_trip_and_overflow():
    x = np.array([[0.1, -3.5], [1000.0, 2.0]], np.float32)
    np.testing.assert_allclose(decode(encode(x, "float16").values, "float16"), x, rtol=1e-3)
    with pytest.raises(OverflowError, match="float16.*float32"):
        encode(np.array([[1e6]], np.float32), "float16")


def test_uint8_error_is_at_most_half_a_step_per_neuron():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 7)) * np.arange(1, 8)).astype(np.float32)
    x[:, 3] = 2.5  # a constant neuron decodes exactly
    enc = encode(x, "uint8")
    assert enc.values.dtype == np.uint8 and enc.params.shape == (2, 7)
    got = decode(enc.values, "uint8", enc.params)
    step = (x.max(0) - x.min(0)) / 255
    assert (np.abs(got - x) <= step / 2 + 1e-5).all()
    assert (got[:, 3] == 2.5).all()
    # extremes are kept exactly, which keeps "max activation" answers stable
    np.testing.assert_allclose(got.max(0), x.max(0), rtol=1e-6)


def test_uint8_needs_its_parameters():
    with pytest.raises(ValueError, match="offset, scale"):
        decode(np.zeros((1, 1), np.uint8), "uint8")
