"""SSAC (SPiRL, SeRLA): SAC over skills z, regularised toward the pretrained prior p(z | s).

The prior comes from the skill env (`env.get_wrapper_attr("skill_model")`); the policy network
starts as a copy of the prior's, so the first episodes behave like prior rollouts.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import torch
from torch import nn

from skillplan.agents.sac import SAC, SACAgentConfig, SACConfig, SoftActorCritic
from skillplan.errors import ConfigError


class SSACConfig(SACAgentConfig):
    """SPiRL's kitchen settings where they apply: target divergence δ = 5, α₀ = 0.1 (per skill step)."""

    sac: SACConfig = SACConfig(target_divergence=5.0, init_alpha=0.1)
    learning_starts: int = 5_000


class _NormalisedPrior(nn.Module):
    """Raw state → the skill prior network's (mean, log-std) output, normalising inside."""

    def __init__(self, model) -> None:
        super().__init__()
        self.net = copy.deepcopy(model.prior.net).requires_grad_(True)  # the model is frozen
        self.register_buffer("mean", model.obs_mean.clone())
        self.register_buffer("std", model.obs_std.clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net((obs - self.mean) / self.std)


class SSAC(SAC):
    """SAC in skill space with KL(π(z|s) ‖ p(z|s)) in place of the entropy."""

    name = "ssac"
    config_class = SSACConfig

    def __init__(self, env: gym.Env, config: SSACConfig | None = None) -> None:
        try:
            self.skill_model = env.get_wrapper_attr("skill_model").requires_grad_(False)
        except AttributeError:
            raise ConfigError(
                "SSAC needs a skill environment (e.g. gym.make('SkillKitchen-v0', prior=DIR)); this env "
                "has no skill model. Use --agent sac for the low-level env."
            ) from None
        super().__init__(env, config)

    def build_learner(self) -> SoftActorCritic:
        model = self.skill_model

        def prior(obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            dist = model.prior_dist(obs)
            return dist.mean, dist.stddev

        return SoftActorCritic(self.obs_dim, self.action_dim, self.bound, self.config.sac,
                               prior=prior, actor_net=_NormalisedPrior(model))
