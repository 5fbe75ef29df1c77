import pytest
import torch

from modeldx.capture.output import check_picker, describe, pick_logits
from modeldx.errors import InvalidParameterError, ModelOutputError


def test_describe_names_the_structure():
    out = {"logits": torch.zeros(2, 3), "extra": (torch.zeros(2), "note")}
    assert describe(out) == ("dict with keys ['logits', 'extra']: 'logits' tensor (2, 3), "
                             "'extra' tuple of 2: [0] tensor (2,), [1] str")


def test_pick_logits():
    t = torch.zeros(2, 3)
    assert pick_logits(t, None) is t
    assert pick_logits((t, 1), 0) is t
    assert pick_logits([1, t], -1) is t
    assert pick_logits({"y": t}, "y") is t
    assert pick_logits({"y": t}, lambda out: out["y"]) is t
    with pytest.raises(ModelOutputError, match="picked a int"):
        pick_logits((t, 1), 1)
    with pytest.raises(ModelOutputError, match="cannot pick"):
        pick_logits(t, "y")
    with pytest.raises(InvalidParameterError, match="'output' parameter"):
        check_picker(1.5)
