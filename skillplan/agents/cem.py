"""SkiMo's downstream agent: CEM planning over skills inside the pretrained skill dynamics.

The skill model's state encoder E and dynamics D (copied, then finetuned on task data) give latent
states; task heads learned here give the reward R(h, z), twin values Q(h, z) and a task policy
π(z | h) regularised toward the skill prior p(z | s). As in SkiMo, the task policy starts as the
prior, so the first plans search around prior rollouts. Each decision plans a skill sequence with
`CEMPlanner` (with `plan_prior`, each plan also pays α per nat of the prior's surprise at the skill
it would execute, as the policy pays its KL); each update rolls the latent model along replayed runs
of consecutive skills (TD-MPC's objective: latent consistency, reward, TD value, each discounted by ρ^k).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field
from torch import nn

from skillplan.agents.base import (
    Agent,
    LoopConfig,
    frozen_skill_model,
    load_optimizer_tensors,
    on_device,
    optimizer_tensors,
)
from skillplan.agents.networks import TwinQ
from skillplan.agents.planning import CEMConfig, CEMPlanner
from skillplan.agents.replay import ReplayBuffer
from skillplan.config import Section
from skillplan.errors import ConfigError
from skillplan.models.distributions import floor_std, sample
from skillplan.models.mlp import mlp
from skillplan.models.polyak import polyak_update
from skillplan.models.standardize import standardize_obs


class CEMLearnConfig(Section):
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
    # SkiMo's kitchen value: the policy pays a fixed α per nat of KL(π ‖ prior); None tunes α toward
    # δ, which let the kitchen policy drift off the prior (sample_efficiency_kitchen/NOTES.md).
    fixed_alpha: float | None = 0.5
    init_alpha: float = 0.1  # where α is tuned
    target_divergence: float = 5.0  # δ for KL(π ‖ prior), as SSAC, where α is tuned
    # Past α = 1 a nat of divergence outweighs a whole subtask's reward: the policy is pinned to the
    # prior already. Where the actor cannot bring the KL under δ at all, α would otherwise grow without end.
    max_alpha: float = 1.0
    prior_min_std: float = 0.05  # floor on the prior's std in the KL, as SSAC (over-confident off the data)
    max_divergence: float = 100.0  # clamp on the KL, as SSAC (SPiRL's max_divergence_range)
    kl_samples: int = 8  # draws of the sampled KL against a mixture prior (a Gaussian one's is analytic)
    grad_clip: float = 20.0
    # How the TD target reads the target twins: their minimum (TD3, TD-MPC, SkiMo) or their mean. On
    # the kitchen the minimum drifts low and the mean high (sample_efficiency_kitchen/NOTES.md).
    td_target: Literal["min", "mean"] = "min"


class CEMAgentConfig(LoopConfig):
    # SkiMo's update rate: 10 updates every 500 env steps (`train_every: 500`, `train_iter: 10`) is one
    # update per 5 skills of 10 steps, spread evenly here.
    update_every: int = Field(5, ge=1)
    plan_prior: bool = Field(
        False, description="each plan pays α·(−log p(z₀|s₀)) for the skill it would execute now, as the "
        "task policy pays α per nat of KL to the prior: the planner then optimises the policy's own "
        "objective, and an early model's errors cannot pull it onto skills the prior finds implausible "
        "(docs/results.md). SkiMo and TD-MPC plan on the model's return alone")
    planner: CEMConfig = CEMConfig()
    learn: CEMLearnConfig = CEMLearnConfig()


class TaskModel(nn.Module):
    """Finetuned E and D plus task heads: the `LatentModel` the planner plans through."""

    def __init__(self, skill_model, hidden: tuple[int, ...]) -> None:
        super().__init__()
        dynamics = skill_model.finetunable_dynamics()  # a copy: the pretrained prior stays as it was
        self.encoder = dynamics.encoder
        self.target_encoder = copy.deepcopy(dynamics.encoder).requires_grad_(False)
        self.step = dynamics.step
        latent, z_dim = dynamics.latent_dim, skill_model.metadata.z_dim
        self.reward_head = mlp(latent + z_dim, 1, hidden, activation="relu", layer_norm=True)
        self.critic = TwinQ(latent, z_dim, hidden)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # The task policy starts as the skill prior, as in SkiMo. SkiMo's prior reads h, ours reads
        # states, so the policy is the prior's policy network reading the state O(h) that the copied
        # observation decoder gives for h (O(E(s)) ≈ s on the data: MSE 3e-4).
        self.actor = nn.Sequential(dynamics.obs_decoder, *skill_model.prior_policy())
        self.register_buffer("obs_mean", skill_model.obs_mean.clone())
        self.register_buffer("obs_std", skill_model.obs_std.clone())

    def encode(self, obs: torch.Tensor, target: bool = False) -> torch.Tensor:
        encoder = self.target_encoder if target else self.encoder
        return encoder(standardize_obs(obs, self.obs_mean, self.obs_std))

    def next_latent(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.step(torch.cat([h, z], -1))

    def reward(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.reward_head(torch.cat([h, z], -1)).squeeze(-1)

    def reward_and_next_latent(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hz = torch.cat([h, z], -1)  # one concatenation for both heads
        return self.reward_head(hz).squeeze(-1), self.step(hz)

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

    def __init__(self, env: gym.Env, config: CEMAgentConfig | None = None,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(env, config, device)
        self.skill_model = on_device(frozen_skill_model(env, "CEM"), self.device)
        if not self.skill_model.has_dynamics:
            raise ConfigError(f"CEM needs a prior pretrained with skill dynamics; this one is preset "
                              f"'{self.skill_model.config.preset}'. Pretrain with --preset skimo or "
                              "skillplan.")
        cfg = self.config
        self.model = TaskModel(self.skill_model, cfg.learn.hidden).to(self.device)
        self.z_dim = self.skill_model.metadata.z_dim
        self.bound = float(env.action_space.high.max())
        planner_cfg = cfg.planner.model_copy(update={"z_bound": self.bound})
        self.planner = CEMPlanner(self.model, self.z_dim, planner_cfg,
                                  generator=torch.Generator(self.device).manual_seed(cfg.seed))
        world = [*self.model.encoder.parameters(), *self.model.step.parameters(),
                 *self.model.reward_head.parameters(), *self.model.critic.parameters()]
        self.model_opt = torch.optim.Adam(world, lr=cfg.learn.lr, fused=True)
        self.actor_opt = torch.optim.Adam(self.model.actor.parameters(), lr=cfg.learn.lr, fused=True)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.learn.init_alpha), device=self.device))
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.learn.lr, fused=True)
        obs_dim = int(np.prod(env.observation_space.shape))
        self.replay = ReplayBuffer(obs_dim, self.z_dim, cfg.buffer_size, cfg.seed, self.device)

    def episode_start(self) -> None:
        self.planner.reset()

    @torch.inference_mode()
    def act(self, obs: np.ndarray, explore: bool) -> np.ndarray:
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        if explore and self.env_steps < self.config.learning_starts:
            z = self.skill_model.prior_dist(obs_t).sample()[0].clamp(-self.bound, self.bound)
        else:
            score = self.prior_score(obs_t) if self.config.plan_prior else None
            z = self.planner.plan(self.model.encode(obs_t), step=self.env_steps, eval_mode=not explore,
                                  first_skill_score=score, first_skills=self.prior_first_skills(obs_t))
        return z.cpu().numpy()

    def prior_first_skills(self, obs: torch.Tensor) -> torch.Tensor | None:
        """`planner.first_skill_samples` skills drawn from the prior at `obs` (None when 0), seeded by
        the planner's generator."""
        n = self.config.planner.first_skill_samples
        if n == 0:
            return None
        dist = self.skill_model.prior_dist(obs.expand(n, -1))
        return sample(dist, self.planner.generator).clamp(-self.bound, self.bound)

    def prior_score(self, obs: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """z ↦ α·log p(z | s) at state `obs`: the prior's plausibility of skills, priced as the KL is."""
        prior = floor_std(self.skill_model.prior_dist(obs), self.config.learn.prior_min_std)
        alpha = self.alpha()

        def score(z: torch.Tensor) -> torch.Tensor:
            return alpha * prior.log_prob(z)

        return score

    def alpha(self) -> torch.Tensor:
        """α, the price of a nat of divergence from the prior: fixed, or the tuned value."""
        fixed = self.config.learn.fixed_alpha
        return self.log_alpha.exp().detach() if fixed is None else torch.tensor(fixed, device=self.device)

    def observe(self, obs, action, reward, next_obs, terminated, truncated) -> None:
        self.replay.add(obs, action, reward, next_obs, terminated, episode_end=terminated or truncated)

    def update(self) -> dict[str, float]:
        cfg = self.config.learn
        model = self.model
        runs = self.replay.sample_sequences(cfg.batch_size, cfg.sequence)
        obs, z, reward, next_obs, terminated = (  # time-major
            t.transpose(0, 1) for t in (runs.obs, runs.action, runs.reward, runs.next_obs, runs.terminated))

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
        steps = torch.arange(cfg.sequence, dtype=torch.float32, device=self.device)
        weights = cfg.rho**steps  # ρ^k, per skill step
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
        # gives the actor no gradient, so α must not answer to it either: counted, those samples would
        # keep the mean above δ whatever the actor did, and α would grow without bound.
        reachable = kl.detach() < cfg.max_divergence
        kl = kl.clamp(max=cfg.max_divergence)
        reachable_kl = (kl.detach() * reachable).sum() / reachable.sum().clamp_min(1)
        alpha = self.alpha()
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

        polyak_update(model.critic_target, model.critic, cfg.tau)
        polyak_update(model.target_encoder, model.encoder, cfg.tau)
        return {"consistency_loss": consistency.item(), "reward_loss": reward_loss.item(),
                "value_loss": value_loss.item(), "actor_loss": actor_loss.item(),
                "prior_kl": reachable_kl.item(), "prior_kl_clamped": 1 - reachable.float().mean().item(),
                "alpha": alpha.item(), "grad_norm": float(grad_norm)}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model_opt": self.model_opt, "actor_opt": self.actor_opt, "alpha_opt": self.alpha_opt}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        model = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        replay = {f"replay.{k}": v for k, v in self.replay.state_dict().items()}
        planner = {"planner.generator": self.planner.generator.get_state()}
        if self.planner.last_plan is not None:  # the warm start of the episode under way
            planner["planner.plan"] = self.planner.last_plan
        return {**model, "log_alpha": self.log_alpha.detach().reshape(1),
                **optimizer_tensors(self._optimizers()), **replay, **planner}

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"][0])
        load_optimizer_tensors(self._optimizers(), state)
        self.replay.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("replay.")})
        if "planner.generator" in state:  # absent from checkpoints of earlier releases
            self.planner.generator.set_state(state["planner.generator"])
            self.planner.resume(state.get("planner.plan"))
