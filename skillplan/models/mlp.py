"""The one MLP builder every network uses: `SkillModel`'s and the downstream agents' heads."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from skillplan.config import Activation

ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU}


def mlp(in_dim: int, out_dim: int, hidden: int | Sequence[int], depth: int = 1,
        activation: Activation = "elu", layer_norm: bool = False) -> nn.Sequential:
    """Hidden layers (`depth` of width `hidden`, or one per width in a sequence), then a linear output.

    ELU is SkiMo's `dense_act`; ReLU trains faster on CPU, where ELU's bf16 kernels are slow
    (benchmarks/pretrain_architectures.py measures both). `layer_norm` puts a LayerNorm before each
    activation: TD-MPC2's block, which the agents' heads use with ReLU for its Mish.
    """
    widths = [hidden] * depth if isinstance(hidden, int) else list(hidden)
    layers: list[nn.Module] = []
    for width in widths:
        layers.append(nn.Linear(in_dim, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(ACTIVATIONS[activation]())
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)
