"""SkiMo's skill dynamics: a state encoder E(s) -> h, D(h, z) -> ĥ one skill (H steps) ahead, O(h) -> s."""

from __future__ import annotations

import copy

import torch
from torch import nn

from skillplan.models.mlp import Activation, mlp
from skillplan.models.polyak import polyak_update


class SkillDynamics(nn.Module):
    """The latent skill-level world model, with an EMA copy of the encoder as consistency target."""

    def __init__(self, obs_dim: int, z_dim: int, latent_dim: int, hidden: int, depth: int,
                 activation: Activation = "elu"):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = mlp(obs_dim, latent_dim, hidden, depth, activation)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.step = mlp(latent_dim + z_dim, latent_dim, hidden, depth, activation)
        self.obs_decoder = mlp(latent_dim, obs_dim, hidden, depth, activation)

    def predict(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """ĥ after executing skill z from latent state h."""
        return self.step(torch.cat([h, z], dim=-1))

    def rollout(self, h: torch.Tensor, zs: torch.Tensor) -> torch.Tensor:
        """Latent states after each of the skills zs (..., N, z_dim), from h: (..., N, latent_dim)."""
        predicted = []
        for i in range(zs.shape[-2]):
            h = self.predict(h, zs[..., i, :])
            predicted.append(h)
        return torch.stack(predicted, dim=-2)

    def update_target(self, tau: float) -> None:
        """Move the target encoder a step `tau` toward the online one."""
        polyak_update(self.target_encoder, self.encoder, tau)
