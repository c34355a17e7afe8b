"""The one MLP builder every network in `SkillModel` uses."""

from __future__ import annotations

from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: int, depth: int) -> nn.Sequential:
    """`depth` hidden layers of width `hidden` with ELU (SkiMo's `dense_act`), then a linear output."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_dim if i == 0 else hidden, hidden), nn.ELU()]
    layers.append(nn.Linear(hidden, out_dim))
    return nn.Sequential(*layers)
