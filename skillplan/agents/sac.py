"""Soft actor-critic with a pluggable regulariser: entropy (flat SAC) or KL to a skill prior (SSAC).

SSAC (SPiRL, SeRLA) is SAC whose entropy bonus is replaced by −KL(π(z|s) ‖ p(z|s)) in both the
actor loss and the critic target. Written once: the "divergence" d(s, a) is log π(a|s) for SAC
and log π(a|s) − log p(a|s) (a one-sample KL estimate) for SSAC, and α is tuned so E[d] → δ.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from pydantic import Field
from torch import nn

from skillplan.agents.base import Agent, LoopConfig, load_optimizer_tensors, optimizer_tensors
from skillplan.agents.networks import SquashedGaussian, TwinQ
from skillplan.agents.replay import Batch, ReplayBuffer
from skillplan.config import Section
from skillplan.device import Precision, bf16_autocast
from skillplan.errors import ConfigError
from skillplan.models.mlp import mlp
from skillplan.models.polyak import polyak_update

# The prior p(a | s) for SSAC: a distribution over whole actions (its log_prob sums the dimensions), read
# from a batch's state features where the replay stores them (SSAC: the prior's output), else its states.
PriorFn = Callable[[torch.Tensor], torch.distributions.Distribution]


class SACConfig(Section):
    """SAC hyper-parameters; the defaults follow SPiRL's kitchen SSAC runs where they apply."""

    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    batch_size: int = 256
    init_alpha: float = 0.1
    auto_alpha: bool = True
    target_divergence: float | None = None  # δ; None: SAC's entropy target, δ = action dim
    max_divergence: float | None = None  # clamp on the KL estimate (SPiRL's max_divergence_range)
    precision: Precision = Field(
        "fp32", description="bf16: the networks' matrix products in an update run under bfloat16 "
        "autocast (faster on CPUs with bf16 units); auto: bf16 only on such devices; log-probabilities, "
        "targets and losses stay fp32"
    )


class SoftActorCritic(nn.Module):
    """Actor, twin critic, target critic and temperature, with one `update(batch)` step."""

    def __init__(self, obs_dim: int, action_dim: int, bound: float, config: SACConfig,
                 prior: PriorFn | None = None, actor_net: nn.Module | None = None) -> None:
        super().__init__()
        self.config, self.prior = config, prior
        actor_net = actor_net or mlp(obs_dim, 2 * action_dim, config.hidden, activation="relu",
                                     layer_norm=True)
        self.actor = SquashedGaussian(actor_net, bound)
        self.critic = TwinQ(obs_dim, action_dim, config.hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(config.init_alpha)))
        self.target_divergence = (
            config.target_divergence if config.target_divergence is not None else float(action_dim)
        )
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr, fused=True)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr, fused=True)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.lr, fused=True)

    def divergence(self, prior_input: torch.Tensor, action: torch.Tensor,
                   log_prob: torch.Tensor) -> torch.Tensor:
        """log π(a|s) for SAC; log π(a|s) − log p(a|s) for SSAC (a one-sample KL estimate), the prior
        read from `prior_input` (s, or the replay's features of s)."""
        if self.prior is None:
            return log_prob
        divergence = log_prob - self.prior(prior_input).log_prob(action)
        if self.config.max_divergence is not None:
            divergence = divergence.clamp(-self.config.max_divergence, self.config.max_divergence)
        return divergence

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.actor(obs, deterministic)[0]

    def forward_precision(self) -> torch.autocast:
        """The autocast region of the update's forward passes. Backward passes and optimizer steps run
        outside it: autocast keeps its bf16 copies of the weights for as long as a region lasts."""
        return bf16_autocast(self.log_alpha.device, self.config.precision)

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on critic, actor and α; returns the losses for logging."""
        cfg, alpha = self.config, self.log_alpha.exp().detach()
        cached = batch.obs_features is not None
        prior_input = batch.obs_features if cached else batch.obs
        next_prior_input = batch.next_obs_features if cached else batch.next_obs

        with torch.no_grad(), self.forward_precision():
            next_action, next_log_prob = self.actor(batch.next_obs)
            next_q = self.critic_target(batch.next_obs, next_action).min(0).values
            soft_next = next_q - alpha * self.divergence(next_prior_input, next_action, next_log_prob)
            target = batch.reward + cfg.gamma * (1 - batch.terminated) * soft_next
        with self.forward_precision():
            q = self.critic(batch.obs, batch.action)
        critic_loss = (q - target).pow(2).mean()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        self.critic.requires_grad_(False)  # the actor step needs dQ/da, not the critic's weight grads
        with self.forward_precision():
            action, log_prob = self.actor(batch.obs)
            divergence = self.divergence(prior_input, action, log_prob)
            q_pi = self.critic(batch.obs, action).min(0).values
        self.critic.requires_grad_(True)
        actor_loss = (alpha * divergence - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()

        metrics = {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                   "divergence": divergence.mean().item(), "alpha": alpha.item(), "q": q.mean().item()}
        if cfg.auto_alpha:
            # raise α when the policy strays past δ (too far from the prior / too little entropy)
            alpha_loss = -(self.log_alpha * (divergence.detach() - self.target_divergence)).mean()
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()

        polyak_update(self.critic_target, self.critic, cfg.tau)
        return metrics


class SACAgentConfig(LoopConfig):
    """Flat SAC on the low-level env: the loop settings plus the SAC hyper-parameters."""

    sac: SACConfig = SACConfig()
    sde_eta: float = 0.0  # skill-level data enhancement on replayed actions (SSAC/SeRLA)


class SAC(Agent):
    """Flat SAC on a Box-action env with flat observations (the baseline without skills)."""

    name = "sac"
    config_class = SACAgentConfig
    config: SACAgentConfig

    def __init__(self, env: gym.Env, config: SACAgentConfig | None = None,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(env, config, device)
        space = env.action_space
        if not isinstance(space, spaces.Box) or not np.allclose(space.low, -space.high):
            raise ConfigError(f"SAC needs a symmetric Box action space, not {space}.")
        self.obs_dim = int(np.prod(env.observation_space.shape))
        self.action_dim = int(np.prod(space.shape))
        self.bound = float(space.high.max())
        self.learner = self.build_learner().to(self.device)
        self.replay = ReplayBuffer(self.obs_dim, self.action_dim, self.config.buffer_size, self.config.seed,
                                   self.device, features=self.replay_features())

    def build_learner(self) -> SoftActorCritic:
        return SoftActorCritic(self.obs_dim, self.action_dim, self.bound, self.config.sac)

    def replay_features(self) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """What the replay stores per state for the learner's prior (none: flat SAC has no prior)."""
        return None

    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        if explore and self.env_steps < self.config.learning_starts and self.learner.prior is None:
            space = self.env.action_space  # uniform warm-up, as SAC does without a prior; seeded by the run
            return self.rng.uniform(space.low, space.high).astype(space.dtype)
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        return self.learner.act(obs_t, deterministic=not explore)[0].cpu().numpy()

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        self.replay.add(obs, action, reward, next_obs, terminated)

    def update(self) -> dict[str, float]:
        batch = self.replay.sample(self.config.sac.batch_size)
        if self.config.sde_eta > 0:  # decode z and z + ηε alike: both earn the same return
            noisy = batch.action + self.config.sde_eta * torch.randn_like(batch.action)
            batch = batch._replace(action=noisy.clamp(-self.bound, self.bound))
        return self.learner.update(batch)

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {name: getattr(self.learner, name) for name in ("actor_opt", "critic_opt", "alpha_opt")}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        learner = {f"learner.{k}": v for k, v in self.learner.state_dict().items()}
        replay = {f"replay.{k}": v for k, v in self.replay.state_dict().items()}
        return {**learner, **optimizer_tensors(self._optimizers()), **replay}

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        self.learner.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("learner.")})
        load_optimizer_tensors(self._optimizers(), state)
        self.replay.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("replay.")})
