"""SSAC (SPiRL, SeRLA): SAC over skills z, regularised toward the pretrained prior p(z | s).

The prior comes from the skill env (`env.get_wrapper_attr("skill_model")`); the policy network
starts as a copy of the prior's, so the first episodes behave like prior rollouts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import gymnasium as gym
import torch
from torch import nn

from skillplan.agents.base import frozen_skill_model, on_device
from skillplan.agents.sac import SAC, SACAgentConfig, SACConfig, SoftActorCritic
from skillplan.models.distributions import floor_std
from skillplan.models.standardize import standardize_obs


class SSACConfig(SACAgentConfig):
    """SPiRL's kitchen settings where they apply: δ = 5, KL clamped at ±100 (its max_divergence_range)."""

    sac: SACConfig = SACConfig(target_divergence=5.0, init_alpha=0.1, max_divergence=100.0)
    learning_starts: int = 5_000
    # Off the data the prior can be sharply over-confident (std down to e^-10); its KL then
    # swamps the reward and the critic diverges. Its std is floored here, in the KL only.
    prior_min_std: float = 0.05


class _PriorAsPolicy(nn.Module):
    """A trainable copy of the prior network whose output, once tanh-squashed, starts as the prior
    (a mixture prior: its dominant component at each state, see `SkillModel.prior_policy`).

    The prior's (mean μ, log-std) live in skill space; the squashed policy needs pre-tanh
    parameters. So the mean maps through atanh(μ / bound) and the std through the inverse of
    the squash's slope there (the delta method): bound·tanh(u) then has the prior's mean and,
    to first order, its spread.
    """

    def __init__(self, model, bound: float) -> None:
        super().__init__()
        self.net, self.head = model.prior_policy()  # apart: the head reads the net's output in fp32
        self.register_buffer("mean", model.obs_mean.clone())
        self.register_buffer("std", model.obs_std.clone())
        self.bound = bound

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # fp32 under bf16 autocast too: there 0.999 would round to 1 and atanh to infinity
        mean, log_std = self.head(self.net(standardize_obs(obs, self.mean, self.std)).float()).chunk(2, -1)
        ratio = (mean / self.bound).clamp(-0.999, 0.999)
        pre_log_std = log_std - torch.log(self.bound * (1 - ratio.square()))
        return torch.cat([torch.atanh(ratio), pre_log_std], -1)


class SSAC(SAC):
    """SAC in skill space with KL(π(z|s) ‖ p(z|s)) in place of the entropy."""

    name = "ssac"
    config_class = SSACConfig

    def __init__(self, env: gym.Env, config: SSACConfig | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.skill_model = frozen_skill_model(env, "SSAC")
        super().__init__(env, config, device)

    @cached_property
    def _model(self):
        return on_device(self.skill_model, self.device)

    def build_learner(self) -> SoftActorCritic:
        model, min_std = self._model, self.config.prior_min_std

        def prior(params: torch.Tensor) -> torch.distributions.Distribution:
            return floor_std(model.prior_from_params(params), min_std)

        return SoftActorCritic(self.obs_dim, self.action_dim, self.bound, self.config.sac,
                               prior=prior, actor_net=_PriorAsPolicy(model, self.bound))

    def replay_features(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The frozen prior's output per stored state: computed once, not at each of its draws."""
        return self._model.prior_params
