"""Capture activations (and gradients) from any model into a store."""

from modeldx.capture.driver import capture, latent_pass
from modeldx.capture.hooks import HookGroup, hook_count, hook_group
from modeldx.capture.layers import auto_layers, head_module, select_layers
from modeldx.capture.reduce import REDUCTIONS, reduce_output

__all__ = ["capture", "latent_pass", "HookGroup", "hook_count", "hook_group", "auto_layers",
           "head_module", "select_layers", "REDUCTIONS", "reduce_output"]
