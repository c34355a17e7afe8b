"""SkiMo's downstream agent: CEM planning over skills inside the pretrained skill dynamics.

The skill model's state encoder E and dynamics D (copied, then finetuned on task data) give latent
states; task heads learned here give the reward R(h, z), twin values Q(h, z) and a task policy
π(z | h) regularised toward the skill prior p(z | s). As in SkiMo, the task policy starts as the
prior, so the first plans search around prior rollouts. Each decision plans a skill sequence with
`CEMPlanner`; each update rolls the latent model along replayed runs of consecutive skills
(TD-MPC's objective: latent consistency, reward, TD value, each discounted by ρ^k).
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from skillplan.agents.base import (
    Agent,
    LoopConfig,
    frozen_skill_model,
    load_optimizer_tensors,
    optimizer_tensors,
)
from skillplan.agents.networks import TwinQ, mlp
from skillplan.agents.planning import CEMConfig, CEMPlanner
from skillplan.agents.replay import ReplayBuffer
from skillplan.errors import ConfigError
from skillplan.models.distributions import floor_std
from skillplan.models.prior import dominant_head
from skillplan.models.skill_model import standardize_obs


class CEMLearnConfig(BaseModel):
    """Task-head learning; SkiMo's kitchen values where it gives them, TD-MPC's otherwise."""

    hidden: tuple[int, ...] = (256, 256)
    lr: float = 1e-3
    batch_size: int = 256
    sequence: int = 5  # consecutive skills per replayed run (SkiMo: 5)
    rho: float = 0.5  # per-step discount of the rollout losses
    gamma: float = 0.99  # per skill step
    tau: float = 0.01  # target network EMA rate
    consistency_coef: float = 2.0
    reward_coef: float = 0.5
    value_coef: float = 0.1
    # SkiMo's kitchen value: the policy pays a fixed α = 0.5 per nat of KL(π ‖ prior). Tuned toward δ
    # instead (None), α sat at 0.02-0.26, the policy drifted onto skills whose values the critic had
    # inflated, and the kitchen skillplan arm fell from 3 subtasks to 0-0.2 within 30-70k steps. With
    # α fixed and the planner's max_std at SkiMo's 0.5, seed 0 held 2.6-3.0 from 30k to 60k.
    fixed_alpha: float | None = 0.5
    init_alpha: float = 0.1  # where α is tuned
    target_divergence: float = 5.0  # δ for KL(π ‖ prior), as SSAC, where α is tuned
    # Past α = 1 a nat of divergence outweighs a whole subtask's reward: the policy is pinned to the
    # prior already. Where the actor cannot bring the KL under δ at all (the skimo preset's policy,
    # reading finetuned latents, stayed at 7-11 nats), α would otherwise grow without end.
    max_alpha: float = 1.0
    prior_min_std: float = 0.05  # floor on the prior's std in the KL, as SSAC (over-confident off the data)
    max_divergence: float = 100.0  # clamp on the KL, as SSAC (SPiRL's max_divergence_range)
    kl_samples: int = 8  # draws of the sampled KL against a mixture prior (a Gaussian one's is analytic)
    grad_clip: float = 20.0
    # How the TD target reads the target twins: their minimum (TD3, TD-MPC, SkiMo) or their mean. Both
    # drift on the kitchen, in opposite directions. With the minimum, skillplan seed 0's critic fell
    # to mean Q -3.0 on rewards ≥ 0 by 180k, and the planner chased latents off the data whose
    # extrapolated values beat the drifted on-data ones (plans 0.0 subtasks, the policy alone 2.9).
    # With the mean, seed 0's critic rose to mean Q 1.8 (max 7.1, above any return) and it scored 0.0
    # at 100k-110k, the task policy with the planner (2.9 at 120k); seed 1 fell to 1.4 at 120k.
    td_target: Literal["min", "mean"] = "min"


class CEMAgentConfig(LoopConfig):
    planner: CEMConfig = CEMConfig()
    learn: CEMLearnConfig = CEMLearnConfig()


class TaskModel(nn.Module):
    """Finetuned E and D plus task heads: the `LatentModel` the planner plans through."""

    def __init__(self, skill_model, hidden: tuple[int, ...]) -> None:
        super().__init__()
        dynamics = skill_model.dynamics  # copied, so finetuning leaves the pretrained prior as it was
        self.encoder = copy.deepcopy(dynamics.encoder).requires_grad_(True)
        self.target_encoder = copy.deepcopy(dynamics.encoder).requires_grad_(False)
        self.step = copy.deepcopy(dynamics.step).requires_grad_(True)
        latent, z_dim = self.step[-1].out_features, skill_model.metadata.z_dim
        self.reward_head = mlp(latent + z_dim, hidden, 1)
        self.critic = TwinQ(latent, z_dim, hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # The task policy starts as the skill prior, as in SkiMo. SkiMo's prior reads h, ours reads
        # states, so the policy is a copy of the prior network reading the state O(h) that a copy of
        # the pretrained observation decoder gives for h (O(E(s)) ≈ s on the data: MSE 3e-4).
        # A mixture prior's policy starts at its dominant component (`dominant_head`).
        self.actor = nn.Sequential(copy.deepcopy(dynamics.obs_decoder), copy.deepcopy(skill_model.prior.net),
                                   dominant_head(skill_model.prior)).requires_grad_(True)
        self.register_buffer("obs_mean", skill_model.obs_mean.clone())
        self.register_buffer("obs_std", skill_model.obs_std.clone())

    def encode(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        encoder = self.target_encoder if target else self.encoder
        return encoder(standardize_obs(obs, self.obs_mean, self.obs_std))

    def next_latent(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.step(torch.cat([h, z], -1))

    def reward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.reward_head(torch.cat([h, z], -1)).squeeze(-1)

    def q_value(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.critic(h, z).min(0).values

    def policy(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.actor(h).chunk(2, -1)
        return mean, log_std.clamp(-5, 2).exp()


def twin_value(twins: torch.Tensor, how: Literal["min", "mean"]) -> torch.Tensor:
    """The value the TD target bootstraps from: the twins' [2, ...] minimum or mean."""
    return twins.min(0).values if how == "min" else twins.mean(0)


def prior_kl(mean: torch.Tensor, std: torch.Tensor, prior: torch.distributions.Distribution,
             samples: int) -> torch.Tensor:
    """KL(N(mean, std) ‖ prior) over whole skills: analytic against a Gaussian prior, else (a mixture)
    −H(π) − E_π[log p(z)], the entropy exact and the cross-entropy averaged over `samples` draws."""
    policy = torch.distributions.Independent(torch.distributions.Normal(mean, std), 1)
    if isinstance(prior, torch.distributions.Independent):
        return torch.distributions.kl_divergence(policy, prior)
    return -policy.entropy() - prior.log_prob(policy.rsample((samples,))).mean(0)


class CEM(Agent):
    """Plans skills with CEM/MPPI in the learned latent model; learns task heads from its own data."""

    name = "cem"
    config_class = CEMAgentConfig
    config: CEMAgentConfig

    def __init__(self, env: gym.Env, config: CEMAgentConfig | None = None) -> None:
        super().__init__(env, config)
        self.skill_model = frozen_skill_model(env, "CEM")
        if self.skill_model.dynamics is None:
            raise ConfigError(f"CEM needs a prior pretrained with skill dynamics; this one is preset "
                              f"'{self.skill_model.config.preset}'. Pretrain with --preset skimo or "
                              "skillplan.")
        cfg = self.config
        self.model = TaskModel(self.skill_model, cfg.learn.hidden)
        self.z_dim = self.skill_model.metadata.z_dim
        self.bound = float(env.action_space.high.max())
        planner_cfg = cfg.planner.model_copy(update={"z_bound": self.bound})
        self.planner = CEMPlanner(self.model, self.z_dim, planner_cfg,
                                  generator=torch.Generator().manual_seed(cfg.seed))
        world = [*self.model.encoder.parameters(), *self.model.step.parameters(),
                 *self.model.reward_head.parameters(), *self.model.critic.parameters()]
        self.model_opt = torch.optim.Adam(world, lr=cfg.learn.lr, fused=True)
        self.actor_opt = torch.optim.Adam(self.model.actor.parameters(), lr=cfg.learn.lr, fused=True)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.learn.init_alpha)))
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.learn.lr, fused=True)
        obs_dim = int(np.prod(env.observation_space.shape))
        self.replay = ReplayBuffer(obs_dim, self.z_dim, cfg.buffer_size, cfg.seed)

    def episode_start(self) -> None:
        self.planner.reset()

    @torch.inference_mode()
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        obs_t = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)
        if explore and self.env_steps < self.config.learning_starts:
            return self.skill_model.prior_dist(obs_t).sample()[0].clamp(-self.bound, self.bound).numpy()
        return self.planner.plan(self.model.encode(obs_t), step=self.env_steps, eval_mode=not explore).numpy()

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        self.replay.add(obs, action, reward, next_obs, terminated, episode_end=terminated or truncated)

    def update(self) -> dict[str, float]:
        cfg = self.config.learn
        model = self.model
        runs = self.replay.sample_sequences(cfg.batch_size, cfg.sequence)
        obs, z, reward, next_obs, terminated = (t.transpose(0, 1) for t in runs)  # time-major

        # ---- world model and values along the replayed run ------------------------------------
        with torch.no_grad():
            next_h_target = model.encode(next_obs, target=True)
            next_h_online = model.encode(next_obs)
            next_z = model.policy(next_h_online)[0].clamp(-self.bound, self.bound)
            next_value = twin_value(model.critic_target(next_h_online, next_z), cfg.td_target)
            td_target = reward + cfg.gamma * (1 - terminated) * next_value
        h = model.encode(obs[0])
        latents, predicted = [], []
        for k in range(cfg.sequence):  # roll the latent model along the replayed skills
            latents.append(h)
            h = model.next_latent(h, z[k])
            predicted.append(h)
        weights = cfg.rho ** torch.arange(cfg.sequence, dtype=torch.float32)  # ρ^k, per skill step
        h_k = torch.stack(latents)  # (sequence, batch, latent): the heads see every step in one call

        def per_step(error: torch.Tensor) -> torch.Tensor:
            return (weights * error.square().flatten(1).mean(1)).sum()

        consistency = per_step(torch.stack(predicted) - next_h_target)
        reward_loss = per_step(model.reward(h_k, z) - reward)
        value_loss = per_step((model.critic(h_k, z) - td_target).transpose(0, 1))  # (step, head, batch)
        world_loss = (cfg.consistency_coef * consistency + cfg.reward_coef * reward_loss
                      + cfg.value_coef * value_loss) / cfg.sequence
        self.model_opt.zero_grad(set_to_none=True)
        world_loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model_opt.param_groups[0]["params"], cfg.grad_clip)
        self.model_opt.step()

        # ---- task policy: high value, close to the skill prior ---------------------------------
        h = torch.cat(latents).detach()
        states = obs.reshape(-1, obs.shape[-1])
        mean, std = model.policy(h)
        policy_z = (mean + std * torch.randn_like(std)).clamp(-self.bound, self.bound)
        with torch.no_grad():
            prior = floor_std(self.skill_model.prior_dist(states), cfg.prior_min_std)
        kl = prior_kl(mean, std, prior, cfg.kl_samples)
        # Past the clamp (states off the data where the prior is sharply, confidently elsewhere) the KL
        # gives the actor no gradient, so α must not answer to it either: counted, those samples kept
        # the mean above δ whatever the actor did, and α grew without bound (to 1e9 by 250k kitchen steps).
        reachable = kl.detach() < cfg.max_divergence
        kl = kl.clamp(max=cfg.max_divergence)
        reachable_kl = (kl.detach() * reachable).sum() / reachable.sum().clamp_min(1)
        alpha = self.log_alpha.exp().detach() if cfg.fixed_alpha is None else torch.tensor(cfg.fixed_alpha)
        model.critic.requires_grad_(False)  # the actor step needs dQ/dz, not the critic's weight grads
        actor_loss = (alpha * kl - model.q_value(h, policy_z)).mean()
        model.critic.requires_grad_(True)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        if cfg.fixed_alpha is None:
            alpha_loss = -self.log_alpha * (reachable_kl - cfg.target_divergence)
            self.alpha_opt.zero_grad(set_to_none=True)
            alpha_loss.backward()
            self.alpha_opt.step()
            with torch.no_grad():
                self.log_alpha.clamp_(max=math.log(cfg.max_alpha))

        with torch.no_grad():
            for online, target in ((model.critic, model.critic_target),
                                   (model.encoder, model.target_encoder)):
                torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), cfg.tau)
        return {"consistency_loss": consistency.item(), "reward_loss": reward_loss.item(),
                "value_loss": value_loss.item(), "actor_loss": actor_loss.item(),
                "prior_kl": reachable_kl.item(), "prior_kl_clamped": 1 - reachable.float().mean().item(),
                "alpha": alpha.item(), "grad_norm": float(grad_norm)}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model_opt": self.model_opt, "actor_opt": self.actor_opt, "alpha_opt": self.alpha_opt}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        model = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        replay = {f"replay.{k}": v for k, v in self.replay.state_dict().items()}
        return {**model, "log_alpha": self.log_alpha.detach().reshape(1),
                **optimizer_tensors(self._optimizers()), **replay}

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"][0])
        load_optimizer_tensors(self._optimizers(), state)
        self.replay.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("replay.")})
