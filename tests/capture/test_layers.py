import pytest
import torch.nn.functional as F
from torch import nn

from modeldx.capture import auto_layers, head_module, select_layers
from modeldx.errors import InvalidParameterError, LayerNotFoundError
from modeldx.zoo import DeepCNN, LeNet5


def test_auto_takes_every_nonlinearity_and_the_logits():
    assert auto_layers(LeNet5()) == ["act1", "act2", "act3", "act4", "fc3"]
    assert auto_layers(DeepCNN())[-1] == "classifier.4"


def test_functional_model_falls_back_to_weighted_layers():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 8)
            self.b = nn.Linear(8, 3)

        def forward(self, x):
            return self.b(F.relu(self.a(x)))

    assert auto_layers(Functional()) == ["a", "b"]
    assert head_module(Functional())[0] == "b"


def test_selectors():
    model = LeNet5()
    assert select_layers(model, "fc2") == ["fc2"]
    assert select_layers(model, ["fc3", "conv1"]) == ["conv1", "fc3"]  # model order
    assert select_layers(model, nn.Conv2d) == ["conv1", "conv2"]
    assert select_layers(model, (nn.Conv2d, nn.MaxPool2d)) == ["conv1", "pool1", "conv2", "pool2"]
    assert select_layers(model, lambda name, m: name.startswith("act")) == ["act1", "act2", "act3", "act4"]
    assert select_layers(model, None) == []


def test_unknown_layer_suggests_close_names():
    with pytest.raises(LayerNotFoundError, match="no layer 'fc4'; did you mean 'fc3'") as info:
        select_layers(LeNet5(), ["fc4"])
    assert "act1" in str(info.value)  # lists what exists


def test_bad_selector_types():
    with pytest.raises(InvalidParameterError, match="must be strings"):
        select_layers(LeNet5(), [3])
    with pytest.raises(InvalidParameterError, match="unique"):
        select_layers(LeNet5(), ["fc1", "fc1"])
    with pytest.raises(LayerNotFoundError, match="no module of type"):
        select_layers(LeNet5(), nn.LSTM)
