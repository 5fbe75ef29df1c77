"""Reference models and their training recipes."""

from modeldx.device import resolve_device  # re-exported: it lived here before
from modeldx.zoo.checkpoint import load_checkpoint, save_checkpoint
from modeldx.zoo.models import MODELS, DeepCNN, LeNet5, PlainCNN
from modeldx.zoo.training import TrainResult, evaluate_accuracy, train

__all__ = ["load_checkpoint", "save_checkpoint", "MODELS", "DeepCNN", "LeNet5", "PlainCNN", "TrainResult",
           "evaluate_accuracy", "resolve_device", "train"]
