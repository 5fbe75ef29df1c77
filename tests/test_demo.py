from rich.console import Console

from modeldx import demo
from modeldx.zoo import LeNet5, save_checkpoint
from modeldx.zoo.training import TrainResult


def test_a_damaged_checkpoint_is_kept_aside_and_said_before_retraining(monkeypatch, tmp_path, mnist_test):
    path = tmp_path / "lenet5-mnist.pt"
    path.write_bytes(b"not a checkpoint")

    def fake_train(arch, train_set, test_set, *, checkpoint, **kwargs):
        model = LeNet5()
        save_checkpoint(model, checkpoint, arch, {"test_accuracy": 0.5})
        return TrainResult(model, 0.5, 0.0, checkpoint)

    monkeypatch.setattr(demo, "train", fake_train)
    console = Console(record=True, width=400)
    demo._model(tmp_path, "lenet5", "mnist", mnist_test, mnist_test, False, console)
    text = console.export_text()
    assert "warning" in text and str(path) in text and "not a readable modeldx checkpoint" in text
    assert (tmp_path / "lenet5-mnist.pt.damaged").read_bytes() == b"not a checkpoint"
    assert path.is_file() and path.read_bytes() != b"not a checkpoint"


def test_a_missing_checkpoint_trains_without_a_warning(monkeypatch, tmp_path, mnist_test):
    def fake_train(arch, train_set, test_set, *, checkpoint, **kwargs):
        save_checkpoint(LeNet5(), checkpoint, arch, {"test_accuracy": 0.5})
        return TrainResult(LeNet5(), 0.5, 0.0, checkpoint)

    monkeypatch.setattr(demo, "train", fake_train)
    console = Console(record=True, width=400)
    demo._model(tmp_path, "lenet5", "mnist", mnist_test, mnist_test, False, console)
    assert "warning" not in console.export_text() and not list(tmp_path.glob("*.damaged"))
