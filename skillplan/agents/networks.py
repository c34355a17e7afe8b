"""Small network blocks the downstream agents share: a fused twin critic and a squashed Gaussian."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F


class EnsembleLinear(nn.Module):
    """`n` independent linear layers applied in one batched matmul: input (n, B, in) → (n, B, out)."""

    def __init__(self, n: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class TwinQ(nn.Module):
    """Two Q-functions Q(s, a) evaluated together: inputs (..., dim) give values (2, ...)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        dims = [obs_dim + action_dim, *hidden]
        self.layers = nn.ModuleList(EnsembleLinear(2, i, o) for i, o in pairwise(dims))
        self.norms = nn.ModuleList(nn.LayerNorm(w, elementwise_affine=False) for w in hidden)
        self.head = EnsembleLinear(2, dims[-1], 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, action], -1)
        batch_shape = x.shape[:-1]
        x = x.reshape(1, -1, x.shape[-1]).expand(2, -1, -1)
        for layer, norm in zip(self.layers, self.norms, strict=True):
            x = F.relu(norm(layer(x)))
        return self.head(x).float().reshape(2, *batch_shape)  # fp32 out, also under bf16 autocast


class SquashedGaussian(nn.Module):
    """π(a | s): a Gaussian squashed by tanh into [-bound, bound], with its exact log-density.

    `net` maps observations to (mean, log-std) stacked on the last dimension; SSAC passes a copy
    of the skill prior's network so the policy starts as the (squashed) prior.
    """

    LOG_STD_RANGE = (-5.0, 2.0)

    def __init__(self, net: nn.Module, bound: float) -> None:
        super().__init__()
        self.net, self.bound = net, bound

    def forward(self, obs: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability (summed over dimensions)."""
        mean, log_std = self.net(obs).float().chunk(2, -1)  # the density math stays fp32 under autocast
        log_std = log_std.clamp(*self.LOG_STD_RANGE)
        noise = torch.zeros_like(mean) if deterministic else torch.randn_like(mean)
        pre = mean + log_std.exp() * noise
        action = self.bound * torch.tanh(pre)
        # log N(pre) − log|d action / d pre|, with log(1 − tanh²x) = 2(log2 − x − softplus(−2x))
        log_prob = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre - F.softplus(-2 * pre)) + math.log(self.bound)).sum(-1)
        return action, log_prob
