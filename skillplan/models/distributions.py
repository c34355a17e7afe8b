"""Diagonal Gaussians as plain (mean, log_std) tensors (fewer kernels than torch.distributions), and
mixtures of them for a multimodal skill prior (density math by torch's `MixtureSameFamily`)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


class DiagGaussian(NamedTuple):
    """A diagonal Gaussian over the last dimension."""

    mean: torch.Tensor
    log_std: torch.Tensor

    @classmethod
    def from_params(cls, params: torch.Tensor) -> DiagGaussian:
        """Split a network output (..., 2·D) into mean and a clamped log-std."""
        mean, log_std = params.chunk(2, dim=-1)
        return cls(mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))

    def rsample(self) -> torch.Tensor:
        return self.mean + self.log_std.exp() * torch.randn_like(self.mean)

    def detach(self) -> DiagGaussian:
        return DiagGaussian(self.mean.detach(), self.log_std.detach())

    def kl(self, other: DiagGaussian) -> torch.Tensor:
        """KL(self ‖ other) per dimension."""
        var_ratio = (2 * (self.log_std - other.log_std)).exp()
        mahalanobis = ((self.mean - other.mean) * (-other.log_std).exp()).square()
        return 0.5 * (var_ratio + mahalanobis - 1) - (self.log_std - other.log_std)

    def kl_standard(self) -> torch.Tensor:
        """KL(self ‖ N(0, I)) per dimension."""
        return 0.5 * ((2 * self.log_std).exp() + self.mean.square() - 1) - self.log_std

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """−log density of `x`, summed over the last dimension."""
        z = (x - self.mean) * (-self.log_std).exp()
        return (0.5 * z.square() + self.log_std + 0.5 * math.log(2 * math.pi)).sum(-1)

    def to_torch(self) -> Normal:
        """The same distribution as a `torch.distributions.Normal` (for downstream KLs and sampling)."""
        return Normal(self.mean, self.log_std.exp(), validate_args=False)

    def entropy(self) -> torch.Tensor:
        """Differential entropy, summed over the last dimension."""
        return (self.log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


class GaussianMixture(NamedTuple):
    """A mixture of K diagonal Gaussians over the last dimension: weights, then per-component params.

    The network output it is read from is laid out [K logits | K·D means | K·D log-stds].
    """

    logits: torch.Tensor  # (..., K)
    mean: torch.Tensor  # (..., K, D)
    log_std: torch.Tensor  # (..., K, D)

    @classmethod
    def from_params(cls, params: torch.Tensor, components: int) -> GaussianMixture:
        logits, rest = params.split([components, params.shape[-1] - components], dim=-1)
        mean, log_std = rest.unflatten(-1, (2, components, -1)).unbind(-3)
        return cls(logits, mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX))

    def detach(self) -> GaussianMixture:
        return GaussianMixture(self.logits.detach(), self.mean.detach(), self.log_std.detach())

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """−log density of `x` (..., D)."""
        return -self.to_torch().log_prob(x.float())

    def to_torch(self) -> MixtureSameFamily:
        """The same distribution as torch's `MixtureSameFamily`, in fp32 (also under autocast)."""
        return mixture(self.logits.float(), self.mean.float(), self.log_std.float().exp())


def mixture(logits: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> MixtureSameFamily:
    """Mixture weights softmax(`logits`) (..., K) over diagonal Gaussians N(`mean`, `std`²) (..., K, D)."""
    weights = Categorical(logits=logits, validate_args=False)
    components = Independent(Normal(mean, std, validate_args=False), 1)
    return MixtureSameFamily(weights, components, validate_args=False)


# What `SkillModel.prior_dist` gives: per-dimension Normals (the Gaussian prior) or a mixture over z.
SkillDistribution = Normal | MixtureSameFamily


def floor_std(dist: SkillDistribution, min_std: float) -> Distribution:
    """`dist` in fp32 with every std floored at `min_std`, as a distribution over whole z vectors
    (its `log_prob` sums the dimensions): an over-confident prior off the data can't swamp a KL."""
    if isinstance(dist, Normal):
        return Independent(Normal(dist.mean.float(), dist.stddev.float().clamp_min(min_std)), 1)
    gaussians = dist.component_distribution.base_dist
    return mixture(dist.mixture_distribution.logits.float(), gaussians.loc.float(),
                   gaussians.scale.float().clamp_min(min_std))


def sample(dist: SkillDistribution, generator: torch.Generator) -> torch.Tensor:
    """One draw of z from `dist` per batch row, reproducible from `generator` on any device: the
    draws are made on the generator's device and moved to the distribution's."""
    if isinstance(dist, Normal):
        noise = torch.randn(dist.mean.shape, generator=generator, device=generator.device)
        return dist.mean + dist.stddev * noise.to(dist.mean.device)
    weights = dist.mixture_distribution.probs
    flat = weights.reshape(-1, weights.shape[-1]).to(generator.device)
    chosen = torch.multinomial(flat, 1, generator=generator).to(weights.device)
    gaussians = dist.component_distribution.base_dist
    index = chosen.reshape(*weights.shape[:-1], 1, 1).expand(*weights.shape[:-1], 1, gaussians.loc.shape[-1])
    mean, std = gaussians.loc.gather(-2, index).squeeze(-2), gaussians.scale.gather(-2, index).squeeze(-2)
    return mean + std * torch.randn(mean.shape, generator=generator, device=generator.device).to(mean.device)


class DominantComponent(torch.nn.Module):
    """Mixture parameters [K logits | K·D means | K·D log-stds] → [D means | D log-stds] of the component
    with the largest weight at each input: how a single-Gaussian policy starts "as" a mixture prior."""

    def __init__(self, components: int) -> None:
        super().__init__()
        self.components = components

    def forward(self, params: torch.Tensor) -> torch.Tensor:
        logits, rest = params.split([self.components, params.shape[-1] - self.components], dim=-1)
        per_component = rest.unflatten(-1, (2, self.components, -1)).transpose(-3, -2)  # (..., K, 2, D)
        index = logits.argmax(-1)[..., None, None, None].expand(*per_component.shape[:-3], 1,
                                                                *per_component.shape[-2:])
        return per_component.gather(-3, index).squeeze(-3).flatten(-2)

    def extra_repr(self) -> str:
        return f"components={self.components}"
