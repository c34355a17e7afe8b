"""The skill VAE: an encoder q(z | s_0..s_{H-1}, a_0..a_{H-1}) and two kinds of action decoder.

All tensors here are normalised (states by the data's mean/std, actions to [-1, 1]).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from skillplan.models.distributions import DiagGaussian
from skillplan.models.mlp import Activation, mlp


class SkillEncoder(nn.Module):
    """q(z | window): an MLP over the flattened H-step window of states and actions."""

    def __init__(self, obs_dim: int, act_dim: int, horizon: int, z_dim: int, hidden: int, depth: int,
                 activation: Activation = "elu"):
        super().__init__()
        self.net = mlp(horizon * (obs_dim + act_dim), 2 * z_dim, hidden, depth, activation)

    def forward(self, obs_seq: torch.Tensor, act_seq: torch.Tensor) -> DiagGaussian:
        """obs_seq (..., H, obs_dim), act_seq (..., H, act_dim) -> q over (..., z_dim)."""
        window = torch.cat([obs_seq, act_seq], dim=-1)
        return DiagGaussian.from_params(self.net(rearrange(window, "... h d -> ... (h d)")))


class ClosedLoopDecoder(nn.Module):
    """π(a_t | s_t, z): reacts to the state at every step of the skill (SPiRL-cl)."""

    def __init__(self, obs_dim: int, act_dim: int, horizon: int, z_dim: int, hidden: int, depth: int,
                 activation: Activation = "elu"):
        super().__init__()
        self.net = mlp(obs_dim + z_dim, act_dim, hidden, depth, activation)

    def action(self, obs: torch.Tensor, z: torch.Tensor, step: int = 0) -> torch.Tensor:
        """obs (..., obs_dim), z (..., z_dim) -> a (..., act_dim); `step` is not needed."""
        return self.net(torch.cat([obs, z], dim=-1))

    def skill(self, obs_seq: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Actions along the given states: (..., H, obs_dim), (..., z_dim) -> (..., H, act_dim)."""
        z_seq = z.unsqueeze(-2).expand(*obs_seq.shape[:-1], z.shape[-1])
        return self.net(torch.cat([obs_seq, z_seq], dim=-1))


class OpenLoopDecoder(nn.Module):
    """p(a_0..a_{H-1} | z): the whole action sequence from the latent alone (original SPiRL)."""

    def __init__(self, obs_dim: int, act_dim: int, horizon: int, z_dim: int, hidden: int, depth: int,
                 activation: Activation = "elu"):
        super().__init__()
        self.horizon, self.act_dim = horizon, act_dim
        self.net = mlp(z_dim, horizon * act_dim, hidden, depth, activation)

    def action(self, obs: torch.Tensor, z: torch.Tensor, step: int = 0) -> torch.Tensor:
        """The `step`-th action of skill z; `obs` is not read."""
        return self.sequence(z)[..., step, :]

    def skill(self, obs_seq: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(..., H, obs_dim), (..., z_dim) -> (..., H, act_dim); the states are not read."""
        return self.sequence(z)

    def sequence(self, z: torch.Tensor) -> torch.Tensor:
        return rearrange(self.net(z), "... (h a) -> ... h a", h=self.horizon)


DECODERS: dict[str, type[ClosedLoopDecoder] | type[OpenLoopDecoder]] = {
    "closed": ClosedLoopDecoder,
    "open": OpenLoopDecoder,
}
