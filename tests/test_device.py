import torch

import modeldx.zoo
from modeldx.device import resolve_device


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert modeldx.zoo.resolve_device is resolve_device  # kept for compatibility


def test_capture_does_not_import_the_zoo():
    import importlib

    driver = importlib.import_module("modeldx.capture.driver")
    assert driver.resolve_device.__module__ == "modeldx.device"
