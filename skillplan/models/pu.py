"""Positive-unlabeled learning: the non-negative PU risk (Kiryo et al., 2017) and its two users.

Expert data is positive (P); general data is unlabeled (U), a mixture with class prior π of
expert-like samples. Both networks output one logit per sample.
"""

from __future__ import annotations

import torch
from torch import nn

from skillplan.models.mlp import Activation, mlp


def _risks(positive_logits: torch.Tensor, unlabeled_logits: torch.Tensor, class_prior: float):
    """(π·E_P[ℓ(g, +1)], E_U[ℓ(g, −1)] − π·E_P[ℓ(g, −1)]) with the sigmoid loss ℓ(g, y) = σ(−y·g)."""
    positive_risk = class_prior * torch.sigmoid(-positive_logits).mean()
    negative_risk = (
        torch.sigmoid(unlabeled_logits).mean() - class_prior * torch.sigmoid(positive_logits).mean()
    )
    return positive_risk, negative_risk


def nnpu_risk(
    positive_logits: torch.Tensor, unlabeled_logits: torch.Tensor, class_prior: float
) -> torch.Tensor:
    """The non-negative PU risk estimate π·R_P⁺ + max(0, R_U⁻ − π·R_P⁻) (Kiryo et al., 2017)."""
    positive_risk, negative_risk = _risks(positive_logits, unlabeled_logits, class_prior)
    return positive_risk + negative_risk.clamp_min(0)


def nnpu_loss(
    positive_logits: torch.Tensor, unlabeled_logits: torch.Tensor, class_prior: float
) -> torch.Tensor:
    """Kiryo et al.'s nnPU training objective: the risk above, except that when the negative-class
    estimate R_U⁻ − π·R_P⁻ falls below zero (overfitting) it steps on −(that estimate) alone."""
    positive_risk, negative_risk = _risks(positive_logits, unlabeled_logits, class_prior)
    return torch.where(negative_risk >= 0, positive_risk + negative_risk, -negative_risk)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by −scale backward (Ganin & Lempitsky, 2015)."""
    return _ReverseGradient.apply(x, scale)


class SkillDiscriminator(nn.Module):
    """SeRLA's adversary: tells expert skill embeddings from general ones."""

    def __init__(self, z_dim: int, hidden: int, depth: int, activation: Activation = "elu"):
        super().__init__()
        self.net = mlp(z_dim, 1, hidden, depth, activation)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


class WindowClassifier(nn.Module):
    """A (non-adversarial) PU classifier on raw skill windows: the first state and the H actions."""

    def __init__(self, obs_dim: int, act_dim: int, horizon: int, hidden: int, depth: int,
                 activation: Activation = "elu"):
        super().__init__()
        self.net = mlp(obs_dim + horizon * act_dim, 1, hidden, depth, activation)

    def forward(self, first_obs: torch.Tensor, act_seq: torch.Tensor) -> torch.Tensor:
        """first_obs (..., obs_dim), act_seq (..., H, act_dim) -> logit (...)."""
        return self.net(torch.cat([first_obs, act_seq.flatten(-2)], dim=-1)).squeeze(-1)
