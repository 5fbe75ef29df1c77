"""LDAM: what a neuron responds to, sampled with Langevin dynamics (thesis ch. 4)."""

from modeldx.ldam.discriminator import Discriminator, DiscriminatorTrainer, OnlineDiscriminator
from modeldx.ldam.sampler import LDAM, grid_image, save_png, to_display
from modeldx.ldam.targets import Target, make_target

__all__ = ["Discriminator", "DiscriminatorTrainer", "OnlineDiscriminator", "LDAM", "grid_image", "save_png",
           "to_display", "Target", "make_target"]
