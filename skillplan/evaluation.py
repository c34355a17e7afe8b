"""Prior rollouts: run skills sampled from a model's prior in its dataset's environment.

SPiRL's maintainers recommend these as the check of a pretrained prior: draw z ~ p(z | s), run it
with the closed-loop decoder for H steps, repeat. Kitchen reports completed subtasks (of the
dataset env's task, or of a chosen task, in order or in any order), mazes their success
(`info["success"]`), others the return.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from skillplan.device import resolve_device
from skillplan.envs.base import make_base_env
from skillplan.envs.tasks import (
    KITCHEN_SUBTASKS,
    SKILL_KITCHEN_TASKS,
    SubtaskProgress,
    parse_subtasks,
    subtasks_in_goal,
)
from skillplan.errors import ConfigError
from skillplan.models.distributions import sample
from skillplan.models.skill_model import SkillModel

# A reset state this many data standard deviations out in some dimension is off the data.
OFF_DATA_SIGMA = 4.0

# Evaluation episode lengths that differ from what datasets record (kitchen data is often collected
# in longer episodes): SPiRL, SkiMo and D4RL evaluate kitchen in 280-step episodes.
EVAL_EPISODE_STEPS = {"FrankaKitchen-v1": 280}


@dataclass(frozen=True)
class KitchenGoal:
    """A kitchen task to judge a prior on: its subtasks, and whether they count only in order."""

    subtasks: tuple[str, ...]
    ordered: bool


def chosen_task(env: str | None, tasks: str | None, ordered: bool) -> KitchenGoal | None:
    """The task `evaluate-prior --env | --tasks [--ordered]` asks for; None: the dataset env's own."""
    if env is not None and tasks is not None:
        misaligned = ",".join(SKILL_KITCHEN_TASKS["SkillKitchenMisaligned-v0"])
        raise ConfigError("Give --env or --tasks, not both: --env SkillKitchenMisaligned-v0 stands for "
                          f'--tasks "{misaligned}" --ordered.')
    if env is not None:
        if env not in SKILL_KITCHEN_TASKS:
            raise ConfigError(f"--env '{env}' has no kitchen task to judge a prior on. Valid: "
                              f"{', '.join(SKILL_KITCHEN_TASKS)}; or give the subtasks with --tasks.")
        return KitchenGoal(SKILL_KITCHEN_TASKS[env], ordered=True)
    if tasks is not None:
        return KitchenGoal(parse_subtasks(tasks), ordered)
    if ordered:
        raise ConfigError('--ordered needs the task it orders: add --tasks "microwave,kettle,...".')
    return None


@dataclass
class PriorRollouts:
    """Per-episode outcomes of prior rollouts."""

    env_id: str
    returns: list[float] = field(default_factory=list)
    # kitchen: subtasks completed per episode, counted as the task asks (in order or not)
    subtasks: list[int] = field(default_factory=list)
    subtasks_in_order: list[int] = field(default_factory=list)
    subtasks_any_order: list[int] = field(default_factory=list)
    goal: KitchenGoal | None = None  # kitchen: a chosen task; None: the dataset env's tasks
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
            if self.goal is not None:
                out["mean_subtasks_in_order"] = float(np.mean(self.subtasks_in_order))
                out["mean_subtasks_any_order"] = float(np.mean(self.subtasks_any_order))
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
        """State dimensions in which a reset state lay more than `threshold` data std's off the data
        (both its mean and its first states).

        Every episode's first skill is chosen at a reset state; off the data, the prior (and a PU
        classifier weighting it) answer arbitrarily.
        """
        return {dim: sigma for dim, sigma in enumerate(self.reset_sigma) if sigma > threshold}


def _sigmas(model: SkillModel, states: np.ndarray) -> np.ndarray:
    """How far flat states lie off the data, in data std's, unclipped: (batch, obs_dim).

    A state is as far as the nearer of the data's mean and the data's own first states: a reset
    state equal to the data's first states is on the data even where later states all settle
    elsewhere (FrankaKitchen's kettle quaternion moves 0.006 in the first step, 6 floored std's).
    """
    std = model.obs_std.cpu().numpy()
    sigma = np.abs((states - model.obs_mean.cpu().numpy()) / std)
    meta = model.metadata
    if meta.start_mean is not None and meta.start_std is not None:
        spread = np.maximum(np.asarray(meta.start_std, dtype=np.float32), std)
        sigma = np.minimum(sigma, np.abs((states - np.asarray(meta.start_mean, dtype=np.float32)) / spread))
    return sigma


def make_vector_env(
    model: SkillModel, n_envs: int, max_steps: int | None, all_subtasks: bool = False,
    video_dir: Path | None = None,
) -> gym.vector.VectorEnv:
    """`n_envs` copies of the model's dataset env; subprocesses (spawned) when there are several.

    `all_subtasks`: a kitchen that observes and completes all seven subtasks, whatever its data's did.
    `video_dir`: each env records every episode there as an MP4 (see `skillplan.video`).
    """
    kwargs = dict(model.metadata.env_kwargs)
    if all_subtasks:
        if model.metadata.env_id != "FrankaKitchen-v1":
            raise ConfigError(f"--env and --tasks choose a kitchen task, but this prior was pretrained on "
                              f"{model.metadata.env_id}. Drop them to run the prior in its dataset's env.")
        kwargs.update(tasks_to_complete=list(KITCHEN_SUBTASKS), terminate_on_tasks_completed=False)
    max_steps = max_steps or EVAL_EPISODE_STEPS.get(model.metadata.env_id)
    if max_steps is not None:
        kwargs["max_episode_steps"] = max_steps
    if video_dir is not None:
        from skillplan.video import make_recorded_env

        env_id, horizon = model.metadata.env_id, model.config.model.horizon
        prefixes = ["prior"] if n_envs == 1 else [f"prior-env{i}" for i in range(n_envs)]
        fns = [partial(make_recorded_env, env_id, video_dir, None, horizon, prefix, **kwargs)
               for prefix in prefixes]
    else:
        fns = [partial(make_base_env, model.metadata.env_id, **kwargs) for _ in range(n_envs)]
    if n_envs == 1:
        return gym.vector.SyncVectorEnv(fns)
    # spawn, not fork: this process holds torch's thread pool, which a fork would break.
    return gym.vector.AsyncVectorEnv(fns, context="spawn")


@torch.no_grad()
def evaluate_prior(
    model: SkillModel, episodes: int, *, workers: int = 2, seed: int = 0, max_steps: int | None = None,
    goal: KitchenGoal | None = None, video_dir: Path | None = None, on_episode=None,
    device: torch.device | str = "cpu",
) -> PriorRollouts:
    """Run `episodes` prior-rollout episodes, `workers` environments at a time, in lockstep.

    Every H steps each env draws a fresh z from the prior at its current state. A kitchen counts
    the subtasks of `goal` (default: its dataset env's, in any order). With `video_dir`, every
    episode is recorded there. `on_episode` is called once per finished episode (for progress bars).
    The model runs on `device` (moved there); the skills' noise is drawn on the CPU, so a seed gives
    the same rollouts on every device.
    """
    device = resolve_device(device)
    model.eval().to(device)
    horizon = model.config.model.horizon
    result = PriorRollouts(model.metadata.env_id, goal=goal)
    generator = torch.Generator().manual_seed(seed)
    n_envs = max(1, min(workers, episodes))
    envs = make_vector_env(model, n_envs, max_steps, all_subtasks=goal is not None, video_dir=video_dir)
    try:
        for first in range(0, episodes, n_envs):
            batch = min(n_envs, episodes - first)
            obs, info = envs.reset(seed=[seed + first + i for i in range(n_envs)])
            states = model.layout.flatten(obs)  # the raw observations the model's states are kept from
            reset_sigma = _sigmas(model, states)[:batch].max(0)
            result.reset_sigma = np.maximum(result.reset_sigma or 0.0, reset_sigma).tolist()
            kitchen, maze = "tasks_to_complete" in info, "success" in info
            if kitchen:
                counted = goal or KitchenGoal(tuple(obs["desired_goal"]), ordered=False)
                result.n_tasks = len(counted.subtasks)
                progress = [SubtaskProgress(counted.subtasks) for _ in range(n_envs)]
            running = np.arange(n_envs) < batch
            returns = np.zeros(n_envs)
            opener: list[str | None] = [None] * n_envs  # each env's first completed subtask
            reached = np.zeros(n_envs, dtype=bool)
            step = 0
            while running.any():
                if step % horizon == 0:
                    z = sample(model.prior_dist(states), generator)
                actions = model.decode_action(states, z, step % horizon).cpu().numpy()
                obs, reward, terminated, truncated, info = envs.step(actions)
                states = model.layout.flatten(obs)
                step += 1
                returns += reward * running
                if kitchen:
                    in_goal = subtasks_in_goal(obs, counted.subtasks)
                    done_lists = info["episode_task_completions"]  # in the order they were completed
                    for i in np.flatnonzero(running):
                        progress[i].update([t for t, done in in_goal.items() if done[i]])
                        if opener[i] is None and len(done_lists[i]):
                            opener[i] = str(done_lists[i][0])
                if maze:
                    reached |= running & info["success"].astype(bool)
                for i in np.flatnonzero(running & (terminated | truncated)):
                    running[i] = False
                    result.returns.append(float(returns[i]))
                    if kitchen:
                        result.subtasks.append(progress[i].count(counted.ordered))
                        result.subtasks_in_order.append(progress[i].in_order)
                        result.subtasks_any_order.append(progress[i].any_order)
                        result.first_subtasks.append(opener[i])
                        result.orders.append([str(name) for name in done_lists[i]])
                    if maze:
                        result.successes.append(bool(reached[i]))
                    if on_episode is not None:
                        on_episode()
    finally:
        envs.close()
    return result
