"""Diagonal Gaussians as plain (mean, log_std) tensors: fewer kernels than torch.distributions."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

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

    def to_torch(self) -> torch.distributions.Normal:
        """The same distribution as a `torch.distributions.Normal` (for downstream KLs and sampling)."""
        return torch.distributions.Normal(self.mean, self.log_std.exp(), validate_args=False)
