import torch

from modeldx.zoo import DeepCNN, LeNet5


def test_lenet5_has_the_papers_shape():
    model = LeNet5()
    assert model.fc1.out_features == 120 and model.fc2.out_features == 84
    assert model.fc3.in_features == 84 and model.fc3.out_features == 10
    assert model.conv1.out_channels == 6 and model.conv2.out_channels == 16
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_deep_cnn_runs_on_mnist_and_rgb_shapes():
    assert DeepCNN()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert DeepCNN(in_channels=3, image_size=32)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
