"""Prior rollouts: run skills sampled from a model's prior in its dataset's environment.

SPiRL's maintainers recommend these as the check of a pretrained prior: draw z ~ p(z | s), run it
with the closed-loop decoder for H steps, repeat. Kitchen reports completed subtasks
(`info["episode_task_completions"]`), mazes their success (`info["success"]`), others the return.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import gymnasium as gym
import numpy as np
import torch

from skillplan.envs.base import make_base_env
from skillplan.models.distributions import sample
from skillplan.models.skill_model import SkillModel

# A reset state this many data standard deviations out in some dimension is off the data.
OFF_DATA_SIGMA = 4.0

# Evaluation episode lengths that differ from what datasets record (kitchen data is often collected
# in longer episodes): SPiRL, SkiMo and D4RL evaluate kitchen in 280-step episodes.
EVAL_EPISODE_STEPS = {"FrankaKitchen-v1": 280}


@dataclass
class PriorRollouts:
    """Per-episode outcomes of prior rollouts."""

    env_id: str
    returns: list[float] = field(default_factory=list)
    subtasks: list[int] = field(default_factory=list)  # kitchen: subtasks completed per episode
    first_subtasks: list[str | None] = field(default_factory=list)  # kitchen: what each episode did first
    orders: list[list[str]] = field(default_factory=list)  # kitchen: each episode's subtasks, in order done
    n_tasks: int = 0  # kitchen: subtasks the env asks for
    successes: list[bool] = field(default_factory=list)  # mazes: goal reached per episode
    reset_sigma: list[float] = field(default_factory=list)  # per state dim: largest |z-score| at a reset

    @property
    def kind(self) -> str:
        return "kitchen" if self.subtasks else "success" if self.successes else "return"

    def summary(self) -> dict[str, float]:
        """Headline numbers: mean subtasks and full-completion rate, success rate, or mean return."""
        out = {"episodes": float(len(self.returns)), "mean_return": float(np.mean(self.returns))}
        if self.kind == "kitchen":
            out["mean_subtasks"] = float(np.mean(self.subtasks))
            out["full_completion_rate"] = float(np.mean([n >= self.n_tasks for n in self.subtasks]))
        elif self.kind == "success":
            out["success_rate"] = float(np.mean(self.successes))
        return out

    def distribution(self) -> dict[int, int]:
        """Kitchen: how many episodes completed 0, 1, 2, ... subtasks."""
        counts = Counter(self.subtasks)
        return {n: counts.get(n, 0) for n in range(max(self.n_tasks, max(self.subtasks, default=0)) + 1)}

    def first_subtask_counts(self) -> dict[str, int]:
        """Kitchen: how many episodes completed each subtask first ('none': nothing), most common first.

        An ordered task (SkillKitchen-v0 starts with the microwave) pays a downstream agent only
        when its prior opens with the right subtask, so this says which tasks a prior can start.
        """
        counts = Counter(name or "none" for name in self.first_subtasks)
        return dict(counts.most_common())

    def reset_outliers(self, threshold: float = OFF_DATA_SIGMA) -> dict[int, float]:
        """State dimensions in which a reset state lay more than `threshold` data std's from the mean.

        Every episode's first skill is chosen at a reset state; off the data, the prior (and a PU
        classifier weighting it) answer arbitrarily. FrankaKitchen-v1's reset noise perturbs the
        kettle's quaternion, which the first physics step settles: kitchen data shows that only at t = 0.
        """
        return {dim: sigma for dim, sigma in enumerate(self.reset_sigma) if sigma > threshold}


def _sigmas(model: SkillModel, obs: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
    """|z-scores| of states against the model's data statistics, unclipped: (batch, obs_dim)."""
    flat = model.layout.flatten(obs) if isinstance(obs, Mapping) else obs
    return np.abs((np.asarray(flat) - model.obs_mean.numpy()) / model.obs_std.numpy())


def make_vector_env(model: SkillModel, n_envs: int, max_steps: int | None) -> gym.vector.VectorEnv:
    """`n_envs` copies of the model's dataset env; subprocesses (spawned) when there are several."""
    kwargs = dict(model.metadata.env_kwargs)
    max_steps = max_steps or EVAL_EPISODE_STEPS.get(model.metadata.env_id)
    if max_steps is not None:
        kwargs["max_episode_steps"] = max_steps
    fns = [partial(make_base_env, model.metadata.env_id, **kwargs) for _ in range(n_envs)]
    if n_envs == 1:
        return gym.vector.SyncVectorEnv(fns)
    # spawn, not fork: this process holds torch's thread pool, which a fork would break.
    return gym.vector.AsyncVectorEnv(fns, context="spawn")


@torch.no_grad()
def evaluate_prior(
    model: SkillModel, episodes: int, *, workers: int = 2, seed: int = 0, max_steps: int | None = None,
    on_episode=None,
) -> PriorRollouts:
    """Run `episodes` prior-rollout episodes, `workers` environments at a time, in lockstep.

    Every H steps each env draws a fresh z from the prior at its current state. `on_episode` is
    called once per finished episode (for progress bars).
    """
    model.eval()
    horizon = model.config.model.horizon
    result = PriorRollouts(model.metadata.env_id)
    generator = torch.Generator().manual_seed(seed)
    n_envs = max(1, min(workers, episodes))
    envs = make_vector_env(model, n_envs, max_steps)
    try:
        for first in range(0, episodes, n_envs):
            batch = min(n_envs, episodes - first)
            obs, info = envs.reset(seed=[seed + first + i for i in range(n_envs)])
            reset_sigma = _sigmas(model, obs)[:batch].max(0)
            result.reset_sigma = np.maximum(result.reset_sigma or 0.0, reset_sigma).tolist()
            kitchen, maze = "tasks_to_complete" in info, "success" in info
            if kitchen:
                result.n_tasks = len(info["tasks_to_complete"][0])
            running = np.arange(n_envs) < batch
            returns, completed = np.zeros(n_envs), np.zeros(n_envs, dtype=int)
            opener: list[str | None] = [None] * n_envs  # each env's first completed subtask
            reached = np.zeros(n_envs, dtype=bool)
            step = 0
            while running.any():
                if step % horizon == 0:
                    z = sample(model.prior_dist(obs), generator)
                actions = model.decode_action(obs, z, step % horizon).numpy()
                obs, reward, terminated, truncated, info = envs.step(actions)
                step += 1
                returns += reward * running
                if kitchen:
                    done_lists = info["episode_task_completions"]  # in the order they were completed
                    completed = np.where(running, [len(done) for done in done_lists], completed)
                    for i in np.flatnonzero(running):
                        if opener[i] is None and len(done_lists[i]):
                            opener[i] = str(done_lists[i][0])
                if maze:
                    reached |= running & info["success"].astype(bool)
                for i in np.flatnonzero(running & (terminated | truncated)):
                    running[i] = False
                    result.returns.append(float(returns[i]))
                    if kitchen:
                        result.subtasks.append(int(completed[i]))
                        result.first_subtasks.append(opener[i])
                        result.orders.append([str(name) for name in done_lists[i]])
                    if maze:
                        result.successes.append(bool(reached[i]))
                    if on_episode is not None:
                        on_episode()
    finally:
        envs.close()
    return result
