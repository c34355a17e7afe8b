"""The one MLP builder every network in `SkillModel` uses."""

from __future__ import annotations

from torch import nn

from skillplan.config import Activation

ACTIVATIONS: dict[str, type[nn.Module]] = {"elu": nn.ELU, "relu": nn.ReLU}


def mlp(in_dim: int, out_dim: int, hidden: int, depth: int, activation: Activation = "elu") -> nn.Sequential:
    """`depth` hidden layers of width `hidden`, then a linear output.

    ELU is SkiMo's `dense_act`; ReLU trains faster on CPU, where ELU's bf16 kernels are slow
    (benchmarks/pretrain_architectures.py measures both).
    """
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), ACTIVATIONS[activation]()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)
