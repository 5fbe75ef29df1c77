"""Reference models and their training recipes."""

from modeldx.device import resolve_device  # re-exported: it lived here before
from modeldx.zoo.checkpoint import load_checkpoint, save_checkpoint
from modeldx.zoo.language import LMResult, WordLSTM, batchify, evaluate_perplexity, train_language_model
from modeldx.zoo.models import CLASSIFIERS, MODELS, VAE, BasicBlock, DeepCNN, LeNet5, PlainCNN, ResNet
from modeldx.zoo.training import TrainResult, evaluate_accuracy, train, train_vae, vae_images

__all__ = ["load_checkpoint", "save_checkpoint", "CLASSIFIERS", "MODELS", "BasicBlock", "DeepCNN", "LeNet5",
           "PlainCNN", "ResNet", "VAE", "TrainResult", "evaluate_accuracy", "resolve_device", "train",
           "train_vae", "vae_images",
           "LMResult", "WordLSTM", "batchify", "evaluate_perplexity", "train_language_model"]
