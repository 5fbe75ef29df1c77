"""LDAM as a live session: chains animate in the dashboard while sliders change the sampler.

Controls: the L2 weight, step size β, noise σ, momentum γ and (with real images)
the discriminator weight of Algorithm 2; what to show (running averages or the
current samples); a restart button; the target — the output neurons, or one
neuron picked from the relevance table or the neuron map, whose rows and points
send their neuron here when clicked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from modeldx.ldam.discriminator import DiscriminatorTrainer, OnlineDiscriminator
from modeldx.ldam.sampler import LDAM, to_display
from modeldx.live import LiveSession, StepContext
from modeldx.neurons.relevance import top_down, weighted_layers

OUTPUTS = "output neurons"


def _grid_for_display(ldam: LDAM, which: str) -> np.ndarray:
    grid = ldam.grid(which)  # (chains, neurons, C, H, W)
    rows, cols, c, h, w = grid.shape
    shown = to_display(grid.reshape(rows * cols, c, h, w)).astype(np.float32) / 255.0
    return shown[:, 0] if c == 1 else shown.transpose(0, 2, 3, 1)


def _spread(xy: np.ndarray, count: int) -> list[int]:
    """``count`` points far apart (farthest-point order from the first), so thumbnails cover the map."""
    chosen = [int(np.argmax(np.linalg.norm(xy - xy.mean(0), axis=1)))]
    dist = np.linalg.norm(xy - xy[chosen[0]], axis=1)
    while len(chosen) < min(count, len(xy)):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, np.linalg.norm(xy - xy[chosen[-1]], axis=1))
    return chosen


def map_thumbnails(model: nn.Module, image_shape, layer: str, points: pd.DataFrame, *, count: int = 12,
                   steps: int = 60, seed: int = 0, device: str = "auto") -> dict[int, np.ndarray]:
    """Short LDAM averages (one chain each) of ``count`` live neurons spread over the map, for its points.

    Grey images in [0, 1] (grey is 0), keyed by row of ``points``; empty where
    LDAM cannot target the layer (a store layer that is not a module of the model).
    """
    from modeldx.capture.layers import leaf_modules

    live = np.flatnonzero(~points.dead.to_numpy())
    if layer not in leaf_modules(model) or len(live) == 0:
        return {}
    rows = live[_spread(points[["x", "y"]].to_numpy()[live], count)]
    ldam = LDAM(model, image_shape, layer=layer, neurons=points.neuron.to_numpy()[rows].tolist(), chains=1,
                burn_in=steps // 3, seed=seed, device=device)
    ldam.step(steps)
    shown = _grid_for_display(ldam, "average")  # (neurons, H, W) or (neurons, H, W, 3)
    if shown.ndim == 4:
        shown = shown.mean(-1)
    return {int(r): shown[k] for k, r in enumerate(rows)}


def ldam_session(model: nn.Module, image_shape, *, real_images: torch.Tensor | None = None,
                 store=None, chains: int = 8, every: int = 2, seed: int = 0,
                 device: str = "auto") -> LiveSession:
    """A live LDAM session; ``real_images`` enable the discriminator, ``store`` the neuron map."""
    layers = weighted_layers(model)
    head_name, head = layers[-1]
    options = [OUTPUTS] + [f"{name}:{i}" for name, m in layers for i in range(m.weight.shape[0])]
    map_layers = list(store.layers) if store is not None else []
    if store is not None:
        options += [f"{layer}:{i}" for layer in map_layers for i in range(store.neurons(layer))
                    if f"{layer}:{i}" not in options]
    session = LiveSession("ldam")
    session.slider("L2 weight", 0.0, 5.0, 0.1)
    session.slider("step size", 1e-3, 1.0, 0.05, log=True)
    session.slider("noise", 0.0, 0.5, 0.05)
    session.slider("momentum", 0.0, 0.99, 0.9)
    disc = None
    if real_images is not None:
        # a live view cannot wait long for D(x) > 0.9: update the discriminator at least every 20 steps
        disc = OnlineDiscriminator(real_images, seed=seed, max_wait=20,
                                   device=next(model.parameters()).device)
        session.slider("discriminator weight", 0.0, 5.0, 0.5)
    session.choice("show", ["average", "sample"])
    session.choice("target", options)
    session.choice("explain class", list(range(head.weight.shape[0])))
    if map_layers:
        session.choice("map layer", map_layers, map_layers[-2] if len(map_layers) > 1 else map_layers[0])
    session.button("restart")
    state = {"target": None, "explain": None, "map": None, "ldam": None, "trainer": None}

    def build(target: str) -> tuple[LDAM, DiscriminatorTrainer | None]:
        if target == OUTPUTS:
            spec = {"layer": head_name, "neurons": list(range(head.weight.shape[0])), "chains": chains}
        else:
            layer, neuron = target.rsplit(":", 1)
            spec = {"layer": layer, "neurons": [int(neuron)], "chains": chains}
        ldam = LDAM(model, image_shape, discriminator=disc, seed=seed, device=device, **spec)
        trainer = None
        if disc is not None:
            trainer = DiscriminatorTrainer(
                lambda: LDAM(model, image_shape, discriminator=disc, disc_weight=1.0, burn_in=0,
                             seed=seed + 1, device=device, **{**spec, "chains": 2}), disc)
        return ldam, trainer

    def retarget(target: str) -> None:
        if target != state["target"]:
            state["ldam"], state["trainer"] = build(target)
            state["target"] = target

    def get_state() -> dict:
        """The target, its chains, the discriminator and its chains: a restore continues from them."""
        retarget(session.controls["target"].value)  # a snapshot before the first step
        snap = {"target": state["target"], "ldam": state["ldam"].get_state()}
        if disc is not None:
            snap["disc"] = {"net": disc.net.state_dict(), "opt": disc.opt.state_dict(),
                            "rng": disc.rng.bit_generator.state, "updates": disc.updates,
                            "chains": state["trainer"].chains.get_state(), "waited": state["trainer"].waited}
        return snap  # LiveSession deep-copies it

    def set_state(snap: dict) -> None:
        retarget(snap["target"])  # chains of another target: rebuild for it, then put its chains back
        state["ldam"].set_state(snap["ldam"])
        if disc is not None:
            disc.net.load_state_dict(snap["disc"]["net"])
            disc.opt.load_state_dict(snap["disc"]["opt"])
            disc.rng.bit_generator.state = snap["disc"]["rng"]
            disc.updates = snap["disc"]["updates"]
            state["trainer"].chains.set_state(snap["disc"]["chains"])
            state["trainer"].waited = snap["disc"]["waited"]

    def step(ctx: StepContext) -> None:
        c = ctx.controls
        retarget(c["target"])
        ldam, trainer = state["ldam"], state["trainer"]
        if ctx.presses.get("restart"):
            ldam.restart()
        ldam.l2, ldam.beta, ldam.sigma, ldam.gamma = c["L2 weight"], c["step size"], c["noise"], c["momentum"]
        if disc is not None:
            ldam.disc_weight = c["discriminator weight"]
            if trainer.step():
                ctx.scalar("discriminator loss", disc.last_loss)
        activation = ldam.step()
        ctx.scalar("activation (mean over chains)", float(activation.mean()))
        if disc is not None:
            ctx.scalar("D(x) of the samples", float(disc.probability(ldam.x).mean()))
        if ctx.step % every == 0:
            # columns are neurons; one neuron's chains are laid out as a square instead of a thin column
            columns = ldam.neurons if ldam.neurons > 1 else int(np.ceil(np.sqrt(ldam.chains)))
            target = ldam.target
            names = ([f"{target.layer}:{n}" for n in target.neurons] if ldam.neurons > 1
                     else [f"{target.layer}:{target.neurons[0]}"] + [""] * (columns - 1))
            ctx.images("chains", _grid_for_display(ldam, c["show"]), columns=columns, scaled=True,
                       column_names=names)
        if c["explain class"] != state["explain"]:
            state["explain"] = c["explain class"]
            tree = top_down(model, int(c["explain class"]), k=3, depth=2)
            rows = [{"depth": int(r.depth), "target": f"{r.layer}:{r.neuron}",
                     "feeds": "" if pd.isna(r.parent) else f"{r.parent_layer}:{int(r.parent)}",
                     "weight": None if pd.isna(r.weight) else round(float(r.weight), 4)}
                    for r in tree.itertuples()]
            ctx.table("relevance", rows, control="target", key="target")
        if map_layers and c["map layer"] != state["map"]:
            from modeldx.neurons.maps import neuron_map

            state["map"] = c["map layer"]
            layer = c["map layer"]
            points = neuron_map(store, layer, items=1000, seed=seed)
            keys = [f"{layer}:{n}" for n in points.neuron]
            hover = [f"{k}, mean activation {m:.3g}" + (", dead" if dead else "")
                     for k, m, dead in zip(keys, points["mean"], points.dead, strict=True)]
            thumbs = map_thumbnails(model, image_shape, layer, points, seed=seed, device=device)
            ctx.scatter("neuron map", points.x, points.y, labels=points.neuron, keys=keys, control="target",
                        x_title="PCA 1", y_title="PCA 2", hover=hover, thumbnails=thumbs)

    session.step_fn = step
    session.state_fns = (get_state, set_state)
    session.model = state
    return session
