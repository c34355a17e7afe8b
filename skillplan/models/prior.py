"""The skill prior p(z | s_0): which skills are likely from a state, a diagonal Gaussian."""

from __future__ import annotations

import torch
from torch import nn

from skillplan.models.distributions import DiagGaussian
from skillplan.models.mlp import Activation, mlp


class SkillPrior(nn.Module):
    """p(z | s_0), trained toward the (stop-gradient) posterior of the skill that followed s_0."""

    def __init__(self, obs_dim: int, z_dim: int, hidden: int, depth: int, activation: Activation = "elu"):
        super().__init__()
        self.net = mlp(obs_dim, 2 * z_dim, hidden, depth, activation)

    def forward(self, obs: torch.Tensor) -> DiagGaussian:
        return DiagGaussian.from_params(self.net(obs))
