"""CEM/MPPI planning over skill sequences inside a learned latent model (SkiMo, after TD-MPC).

Each decision optimises a sequence of T skills from the current latent state h0 by the cross-entropy
method: sample N skill sequences from a diagonal Gaussian, score each by its model return

    G = Σ_t γ^t r(h_t, z_t) + γ^T Q(h_T, π(h_T))      (π(h_T): the task policy's mean skill),

refit the Gaussian to the top-k sequences weighted by softmax(temperature · G) (MPPI-style), repeat.
The task policy proposes P more sequences, which compete for the elites in every iteration. The
first Gaussian is fitted to those proposals (or, as in TD-MPC, is N(0, max_std²)), and the previous
decision's plan, shifted by one skill, overrides its mean where it reaches.

The N samples are scored in one batched rollout per iteration (the P proposals once per decision):
the only Python loops are over iterations and horizon steps. Nearly all the time is the model's
forward passes, so two optional switches trade exactness (`precision="bf16"`) or start-up time
(`compile`) for speed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from skillplan.device import Precision, bf16_autocast


class LatentModel(Protocol):
    """What the planner needs from a skill model with task heads; every method is batched over dim 0.

    A model may add `reward_and_next_latent(h, z) -> (reward, next_latent)`, computing both in one
    call where they share work (their input); the planner then calls it instead of the two methods.
    """

    def next_latent(self, h: Tensor, z: Tensor) -> Tensor:
        """Skill dynamics: latent state [B, Dh] after executing skill z [B, Dz] (H env steps) from h."""
        ...

    def reward(self, h: Tensor, z: Tensor) -> Tensor:
        """Predicted reward summed over the H env steps of skill z from h: [B]."""
        ...

    def q_value(self, h: Tensor, z: Tensor) -> Tensor:
        """Value of executing skill z from h, then acting on: [B]. Bootstraps the plan's tail."""
        ...

    def policy(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Task policy over skills at h: (mean, std), each [B, Dz]."""
        ...


class CEMConfig(BaseModel):
    """CEM/MPPI settings; the defaults are TD-MPC's and SkiMo's (one planning step = one skill)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: int = Field(5, ge=1, description="T: skills per planned sequence, after the ramp")
    horizon_ramp_steps: int = Field(
        25_000, ge=0, description="env steps over which the horizon grows linearly from 1 to T; 0: no ramp"
    )
    iterations: int = Field(6, ge=1)
    samples: int = Field(512, ge=1, description="N: sequences sampled from the CEM Gaussian per iteration")
    policy_samples: int = Field(25, ge=0, description="P: sequences proposed by the task policy per decision")
    first_skill_samples: int = Field(
        0, ge=0, description="sequences per decision whose first skill the agent draws from the skill "
        "prior (all its modes) and whose later skills follow the task policy: they compete for the "
        "elites, so the search can leave the policy's mode for another one the model rates higher"
    )
    elites: int = Field(64, ge=1)
    temperature: float = Field(
        0.5, gt=0, description="TD-MPC's 'temperature': elites weigh exp(temperature · G); larger is greedier"
    )
    momentum: float = Field(0.1, ge=0, lt=1, description="share of the old mean kept at each refit")
    min_std: float = Field(0.05, gt=0)
    max_std: float = Field(
        0.5, gt=0, description="SkiMo's (TD-MPC: 2); also the initial std of a plan not started at the "
        "policy. Wider searches find skills whose model returns are errors"
    )
    start_at_policy: bool = Field(
        True, description="start each plan's Gaussian fitted to the policy's proposals instead of "
        "N(0, max_std²) (TD-MPC, SkiMo): in a skill space shaped by a N(0, I) prior, most wide samples "
        "decode to skills no data showed, and the model's returns for them are guesses"
    )
    discount: float = Field(0.99, gt=0, le=1, description="γ per skill")
    z_bound: float = Field(2.0, gt=0, description="skills live in the box [-z_bound, z_bound]^Dz")
    # Speed switches (figures: benchmarks/results/cem_latency.md): bf16 pays off for wide models on CPUs
    # with bf16 units; compile fuses the model's elementwise ops after a slow first call per batch size.
    precision: Precision = Field(
        "fp32", description="bf16: run the model under bfloat16 autocast; auto: only on devices with "
        "bf16 units; returns stay fp32"
    )
    compile: bool = Field(False, description="torch.compile the rollouts (weights are not frozen)")

    @model_validator(mode="after")
    def _check(self) -> CEMConfig:
        if self.elites > self.samples + self.policy_samples + self.first_skill_samples:
            raise ValueError(f"elites ({self.elites}) must not exceed samples + policy_samples + "
                             "first_skill_samples")
        if self.min_std > self.max_std:
            raise ValueError(f"min_std ({self.min_std}) must not exceed max_std ({self.max_std})")
        if self.start_at_policy and self.policy_samples < 2:
            raise ValueError("start_at_policy fits the first Gaussian to the policy's proposals: it needs "
                             "policy_samples ≥ 2")
        return self

    def planning_horizon(self, step: int) -> int:
        """The horizon at env step `step`: 1 at step 0, growing linearly to `horizon` at the ramp's end."""
        if self.horizon_ramp_steps == 0:
            return self.horizon
        progress = min(max(step, 0) / self.horizon_ramp_steps, 1.0)
        return int(1 + (self.horizon - 1) * progress)


class CEMPlanner:
    """Plans skills through a `LatentModel`; call `reset()` at each episode start, `plan()` per decision.

    `generator` seeds every random draw, for reproducible plans; it must live on the latent's device.
    `returns(h0, z)` scores skill sequences as `plan` does (its steps compiled when `config.compile`).
    """

    def __init__(self, model: LatentModel, skill_dim: int, config: CEMConfig | None = None, *,
                 generator: torch.Generator | None = None) -> None:
        self.model, self.skill_dim, self.generator = model, skill_dim, generator
        self.config = config if config is not None else CEMConfig()
        self._prev_mean: Tensor | None = None
        step = getattr(model, "reward_and_next_latent", None) or (
            lambda h, z: (model.reward(h, z), model.next_latent(h, z)))
        # The rollouts' per-skill steps, compiled on request: a graph per batch size, not per horizon, and
        # bf16 autocast is entered outside them (its device query breaks a graph); weights not frozen.
        compiled = torch.compile(dynamic=False) if self.config.compile else (lambda f: f)
        self._step, self._tail_value, self._policy_step = (
            compiled(f) for f in (step, self._bootstrap_value, self._sample_and_step))

    @property
    def last_plan(self) -> Tensor | None:
        """The last decision's planned skill sequence [T, Dz] (its first skill was returned), if any."""
        return self._prev_mean

    def reset(self) -> None:
        """Forget the previous plan: the next decision starts from a zero mean."""
        self._prev_mean = None

    def resume(self, plan: Tensor | None) -> None:
        """Take up a saved `last_plan` as the next decision's warm start (None: as after `reset`)."""
        self._prev_mean = plan

    def returns(self, h0: Tensor, z: Tensor) -> Tensor:
        """Model return G of each skill sequence z [T, B, Dz] from h0 [1, Dh], in float32: [B]."""
        cfg = self.config
        with bf16_autocast(h0.device, cfg.precision):
            h = h0.expand(z.shape[1], -1).contiguous()  # every step's graph sees one memory layout
            total = torch.zeros(z.shape[1], device=z.device)
            discount = 1.0
            for t in range(z.shape[0]):
                reward, h = self._step(h, z[t])
                total += discount * reward.float()
                discount *= cfg.discount
            return total + discount * self._tail_value(h).float()

    def _bootstrap_value(self, h: Tensor) -> Tensor:
        """Q of the task policy's mean skill at the horizon's end."""
        return self.model.q_value(h, self.model.policy(h)[0].clamp(-self.config.z_bound, self.config.z_bound))

    def _sample_and_step(self, h: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """A skill sampled from the task policy at h with standard normal `noise`, and the next latent."""
        mean, std = self.model.policy(h)
        skill = (mean + std * noise).clamp(-self.config.z_bound, self.config.z_bound)
        return skill, self.model.next_latent(h, skill)

    def _randn(self, *shape: int, like: Tensor) -> Tensor:
        return torch.randn(shape, generator=self.generator, device=like.device, dtype=like.dtype)

    def _policy_proposals(self, h0: Tensor, noise: Tensor,
                          first: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The task policy's proposals: skill sequences [T, P, Dz] sampled along its own rollout, and returns.

        `noise` [T, P, Dz] is standard normal; `first` [P, Dz], if given, replaces the first skills. The
        model is deterministic, so the returns [P] hold for every CEM iteration: they are scored once
        per decision.
        """
        with bf16_autocast(h0.device, self.config.precision):
            h, z = h0.expand(noise.shape[1], -1).contiguous(), torch.empty_like(noise)
            for t in range(noise.shape[0]):
                if t == 0 and first is not None:
                    z[0] = first.clamp(-self.config.z_bound, self.config.z_bound)
                    h = self._step(h, z[0])[1]
                else:
                    z[t], h = self._policy_step(h, noise[t])
        return z, self.returns(h0, z)

    @torch.inference_mode()
    def plan(self, h0: Tensor, *, step: int, eval_mode: bool = False,
             first_skill_score: Callable[[Tensor], Tensor] | None = None,
             first_skills: Tensor | None = None) -> Tensor:
        """The skill [Dz] to execute now from latent state h0 ([Dh] or [1, Dh]).

        eval_mode returns the plan's mean first skill. Otherwise, as in TD-MPC, the first skill of one
        elite drawn by its weight, plus Gaussian noise of the final std, for exploration.
        `first_skill_score` maps first skills [B, Dz] to scores [B] added to their sequences' returns.
        `first_skills` [F, Dz] start F more fixed candidates, continued by the task policy.
        """
        cfg = self.config
        h0 = h0.reshape(1, -1).float()
        horizon = cfg.planning_horizon(step)
        if cfg.policy_samples:
            proposals, proposal_returns = self._policy_proposals(h0, self._randn(horizon, cfg.policy_samples,
                                                                         self.skill_dim, like=h0))
            if first_skill_score is not None:
                proposal_returns = proposal_returns + first_skill_score(proposals[0])
        else:
            proposals, proposal_returns = h0.new_empty(horizon, 0, self.skill_dim), h0.new_empty(0)

        if cfg.start_at_policy:
            mean, std = proposals.mean(1), proposals.std(1).clamp(cfg.min_std, cfg.max_std)
        else:
            mean = torch.zeros(horizon, self.skill_dim, device=h0.device)
            std = torch.full_like(mean, cfg.max_std)
        if first_skills is not None:  # after the fit above: they compete, they do not set the start
            noise = self._randn(horizon, len(first_skills), self.skill_dim, like=h0)
            extra, extra_returns = self._policy_proposals(h0, noise, first_skills.to(h0))
            if first_skill_score is not None:
                extra_returns = extra_returns + first_skill_score(extra[0])
            proposals = torch.cat([proposals, extra], 1)
            proposal_returns = torch.cat([proposal_returns, extra_returns])
        if self._prev_mean is not None:  # warm start: last decision's plan, one skill on
            kept = min(horizon, len(self._prev_mean) - 1)
            mean[:kept] = self._prev_mean[1 : kept + 1]

        noise = self._randn(cfg.iterations, horizon, cfg.samples, self.skill_dim, like=mean)
        # Every iteration's candidates: its samples, then the proposals (written once); returns alike.
        candidates = h0.new_empty(horizon, cfg.samples + proposals.shape[1], self.skill_dim)
        candidates[:, cfg.samples:] = proposals
        samples = candidates[:, : cfg.samples]
        candidate_returns = h0.new_empty(candidates.shape[1])
        candidate_returns[cfg.samples:] = proposal_returns
        for i in range(cfg.iterations):
            torch.addcmul(mean[:, None], std[:, None], noise[i], out=samples)
            samples.clamp_(-cfg.z_bound, cfg.z_bound)
            candidate_returns[: cfg.samples] = self.returns(h0, samples)
            if first_skill_score is not None:
                candidate_returns[: cfg.samples] += first_skill_score(samples[0])
            elite_returns, idx = candidate_returns.topk(cfg.elites)
            elites = candidates[:, idx]  # [T, K, Dz]
            weight = torch.softmax(cfg.temperature * elite_returns, dim=0)
            elite_mean = torch.einsum("k,tkd->td", weight, elites)
            var = torch.einsum("k,tkd->td", weight, (elites - elite_mean[:, None]).square())
            std = var.sqrt().clamp_(cfg.min_std, cfg.max_std)
            mean = torch.lerp(elite_mean, mean, cfg.momentum)
        self._prev_mean = mean

        if eval_mode:
            return mean[0].clone()  # not a view into the warm-start state
        chosen = elites[0, torch.multinomial(weight, 1, generator=self.generator)[0]]
        return (chosen + std[0] * self._randn(self.skill_dim, like=std)).clamp_(-cfg.z_bound, cfg.z_bound)
