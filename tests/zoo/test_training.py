import numpy as np
import pytest
import torch

from modeldx.errors import CheckpointError, InvalidParameterError
from modeldx.fingerprint import model_fingerprint
from modeldx.zoo import evaluate_accuracy, load_checkpoint, train


def test_lenet5_reaches_the_accuracy_goal_on_mnist(mnist_model, mnist_test):
    """The default recipe: at least 98.5% MNIST test accuracy."""
    assert mnist_model.test_accuracy >= 0.985
    assert evaluate_accuracy(mnist_model.model, mnist_test) == pytest.approx(mnist_model.test_accuracy)


def test_checkpoint_round_trip_keeps_weights_and_metadata(mnist_model):
    model, meta = load_checkpoint(mnist_model.checkpoint)
    assert meta["arch"] == "lenet5" and meta["dataset"] == "mnist" and meta["seed"] == 0
    assert meta["test_accuracy"] == mnist_model.test_accuracy
    assert meta["fingerprint"] == model_fingerprint(model) == model_fingerprint(mnist_model.model)
    assert not model.training


def test_corrupt_or_missing_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"arch": "resnet999", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no known architecture"):
        load_checkpoint(tmp_path / "other.pt")


def test_bad_training_parameters(digits):
    with pytest.raises(InvalidParameterError, match="'arch' parameter of train"):
        train("vgg", digits, digits)
    with pytest.raises(InvalidParameterError, match="'epochs'.*Got 0"):
        train("lenet5", digits, digits, epochs=0)
    with pytest.raises(InvalidParameterError, match=f"'train_items'.*Got {len(digits) + 1}"):
        train("lenet5", digits, digits, train_items=len(digits) + 1)


def test_train_items_trains_on_a_seeded_subset_and_losses_has_every_step(mnist_test):
    small = mnist_test.subset(np.arange(1000))
    a = train("lenet5", small, small, epochs=2, batch_size=50, train_items=300, progress=False)
    b = train("lenet5", small, small, epochs=2, batch_size=50, train_items=300, progress=False)
    other = train("lenet5", small, small, epochs=2, batch_size=50, train_items=300, seed=1,
                  progress=False)
    assert len(a.losses) == 2 * 6 and a.losses == b.losses
    assert a.losses != other.losses


def test_parameter_averaging_returns_the_mean_of_the_late_weights(mnist_test, tmp_path):
    small = mnist_test.subset(np.arange(2000))
    plain = train("lenet5", small, small, epochs=2, progress=False)
    averaged = train("lenet5", small, small, epochs=2, average_from=1, progress=False,
                     checkpoint=tmp_path / "avg.pt")
    # same seed, same steps: the averaged model is not the last iterate
    assert not torch.equal(plain.model.fc3.weight, averaged.model.fc3.weight)
    assert averaged.test_accuracy > 0.5  # 16 steps per epoch: the mean still holds early weights
    assert load_checkpoint(tmp_path / "avg.pt")[1]["average_from"] == 1
    with pytest.raises(InvalidParameterError, match="average_from"):
        train("lenet5", small, small, epochs=2, average_from=2, progress=False)


def test_a_device_the_machine_lacks_is_a_clear_error(monkeypatch):
    import torch

    from modeldx.errors import DeviceUnavailableError, InvalidParameterError, ModeldxError
    from modeldx.zoo import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="'cuda'.*CUDA is not available") as info:
        resolve_device("cuda")
    assert isinstance(info.value, ModeldxError)
    with pytest.raises(InvalidParameterError, match="'gpu' is not a torch device"):
        resolve_device("gpu")
    assert resolve_device("auto") == torch.device("cpu") == resolve_device("cpu")


@pytest.mark.parametrize("arch", ["lenet5", "deepcnn"])  # deepcnn trains with dropout
def test_training_leaves_the_callers_rng_alone_and_is_reproducible(arch, mnist_test):
    small = mnist_test.subset(np.arange(256))
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    first = train(arch, small, small, epochs=1, batch_size=64, seed=3, progress=False, device="cpu")
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(99)  # another caller state: the same seed still gives the same weights
    again = train(arch, small, small, epochs=1, batch_size=64, seed=3, progress=False, device="cpu")
    other = train(arch, small, small, epochs=1, batch_size=64, seed=4, progress=False, device="cpu")
    assert model_fingerprint(first.model) == model_fingerprint(again.model)
    assert model_fingerprint(first.model) != model_fingerprint(other.model)
