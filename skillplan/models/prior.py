"""The skill prior p(z | s_0): which skills are likely from a state, a diagonal Gaussian or a mixture of K."""

from __future__ import annotations

import torch
from torch import nn

from skillplan.config import PriorFamily
from skillplan.models.distributions import DiagGaussian, DominantComponent, GaussianMixture
from skillplan.models.mlp import Activation, mlp


class SkillPrior(nn.Module):
    """p(z | s_0), trained toward the (stop-gradient) posterior of the skill that followed s_0.

    A Gaussian averages the skills a state has several of (the openings from a reset state); a
    mixture of `components` Gaussians can keep them apart.
    """

    def __init__(self, obs_dim: int, z_dim: int, hidden: int, depth: int, activation: Activation = "elu",
                 family: PriorFamily = "gaussian", components: int = 1):
        super().__init__()
        self.family, self.components = family, components if family == "mixture" else 1
        out_dim = 2 * z_dim if family == "gaussian" else components * (1 + 2 * z_dim)
        self.net = mlp(obs_dim, out_dim, hidden, depth, activation)

    def forward(self, obs: torch.Tensor) -> DiagGaussian | GaussianMixture:
        return self.distribution(self.net(obs))

    def distribution(self, params: torch.Tensor) -> DiagGaussian | GaussianMixture:
        """The distribution a network output (..., out_dim) describes."""
        if self.family == "gaussian":
            return DiagGaussian.from_params(params)
        return GaussianMixture.from_params(params, self.components)

    def extra_repr(self) -> str:
        return f"family={self.family}, components={self.components}"


def dominant_head(prior: SkillPrior) -> nn.Module:
    """What turns a copy of `prior.net`'s output into one Gaussian's [means | log-stds], for a policy that
    starts "as the prior": the Gaussian's own output, or the mixture's most probable component per state.
    """
    # Why the dominant component: KL(π ‖ p) for a one-Gaussian π is lowest on one mode (≈ −log of its weight).
    return nn.Identity() if prior.family == "gaussian" else DominantComponent(prior.components)
