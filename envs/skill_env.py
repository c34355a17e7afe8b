"""The skill wrapper: an env whose action is a skill latent z, executed closed-loop for H steps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

from skillplan.data.flatten import ObservationLayout
from skillplan.envs.tasks import KITCHEN_EVAL_STEPS, KITCHEN_TASK, make_kitchen_task, make_maze_task
from skillplan.errors import CheckpointError, ConfigError
from skillplan.models.skill_model import SkillModel

# Skills live in [-Z_BOUND, Z_BOUND]^z_dim. With SPiRL's weak KL (β = 5e-4) the kitchen prior's
# means reach about ±4.5, so a tighter box cuts off skills the prior proposes.
Z_BOUND = 5.0


class SkillWrapper(gym.Wrapper, RecordConstructorArgs):
    """Runs skill z with the pretrained decoder for H low-level steps and returns the summed reward.

    Observations are the flat float32 states the skill model was trained on. The episode ends early
    when the low-level env terminates or truncates. `info` adds `low_level_steps` (steps taken
    in this skill step) to the low-level info of the last step (e.g. `subtasks_completed`,
    `success`). The skill model is reachable as `env.get_wrapper_attr("skill_model")`.
    """

    def __init__(self, env: gym.Env, prior: str, z_bound: float = Z_BOUND) -> None:
        RecordConstructorArgs.__init__(self, prior=str(prior), z_bound=z_bound)
        gym.Wrapper.__init__(self, env)
        self.skill_model = SkillModel.load(Path(prior))
        meta = self.skill_model.metadata
        self.layout = check_fits(self.skill_model, env, str(prior))
        self.horizon = meta.horizon
        self.observation_space = self.layout.space()
        self.action_space = spaces.Box(-z_bound, z_bound, (meta.z_dim,), np.float32)
        model = self.skill_model
        self._fast_decoder = model.numpy_decoder() if model.decodes_closed_loop else None
        self._obs: Any = None

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        self._obs, info = self.env.reset(**kwargs)
        return self.layout.flatten(self._obs), info

    def step(self, z: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        z = np.clip(np.asarray(z, dtype=np.float32), self.action_space.low, self.action_space.high)
        if self._fast_decoder is None:  # open loop: the whole action sequence is known up front
            with torch.inference_mode():
                plan = self.skill_model.decode_plan(z).numpy()
        total, terminated, truncated, info = 0.0, False, False, {}
        for t in range(self.horizon):
            state = self.layout.flatten(self._obs)
            action = self._fast_decoder(state, z) if self._fast_decoder is not None else plan[t]
            self._obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        info = {**info, "low_level_steps": t + 1}
        return self.layout.flatten(self._obs), total, terminated, truncated, info


def check_fits(model: SkillModel, env: gym.Env, prior: str) -> ObservationLayout:
    """The model's observation layout, after checking the model was trained for this env."""
    meta = model.metadata
    inner = env.unwrapped.spec.id if env.unwrapped.spec is not None else None
    if meta.env_id and inner and meta.env_id != inner:
        raise CheckpointError(
            f"The prior '{prior}' was pretrained on {meta.env_id} (dataset '{meta.dataset}') but this "
            f"environment runs {inner}. Pretrain a prior on data from {inner}, e.g. "
            f"`skillplan pretrain --dataset {_suggest(inner)}`."
        )
    try:
        layout = ObservationLayout.for_space(env.observation_space, tuple(meta.obs_keys), meta.obs_dims or ())
    except Exception as exc:
        raise CheckpointError(f"The prior '{prior}' reads observation keys {meta.obs_keys}, which "
                              f"this environment can't provide: {exc}") from None
    act_shape = env.action_space.shape
    if layout.dim != meta.obs_dim or act_shape != (meta.act_dim,):
        raise CheckpointError(
            f"The prior '{prior}' expects {meta.obs_dim}-dim states and {meta.act_dim}-dim actions, "
            f"but this environment has {layout.dim}-dim states and actions of shape {act_shape}."
        )
    return layout


def _suggest(env_id: str) -> str:
    return {"FrankaKitchen-v1": "kitchen-scripted", "PointMaze_Large-v3": "pointmaze-scripted"}.get(
        env_id, "<a dataset from that env>"
    )


def require_prior(prior: str | None, env_name: str, dataset: str) -> str:
    """`prior` as given, or an error that says what a prior is and how to make one."""
    if prior is None:
        raise ConfigError(
            f"The skill envs need `prior=DIR`, e.g. gym.make(\"{env_name}\", prior=DIR): DIR is the "
            "checkpoint directory of a pretrained skill model (skill decoder, skill prior and "
            "normalisation), whose skills become the env's actions. Make one with `skillplan pretrain "
            f"--dataset {dataset} --out runs/{dataset}` and pass prior=\"runs/{dataset}/prior\"."
        )
    return prior


def make_skill_kitchen(
    prior: str | None = None,
    tasks: Sequence[str] = KITCHEN_TASK,
    enforce_order: bool = True,
    low_level_steps: int = KITCHEN_EVAL_STEPS,
    z_bound: float = Z_BOUND,
    render_mode: str | None = None,
) -> gym.Env:
    """FrankaKitchen-v1 with an ordered subtask task, driven by skills from `prior`."""
    prior = require_prior(prior, "SkillKitchen-v0", "kitchen-scripted")
    env = make_kitchen_task(tasks, enforce_order, low_level_steps, render_mode)
    return SkillWrapper(env, prior, z_bound)


def make_skill_maze(
    prior: str | None = None,
    low_level_steps: int = 800,
    z_bound: float = Z_BOUND,
    render_mode: str | None = None,
) -> gym.Env:
    """PointMaze_Large-v3 from the scripted expert's start to its goal, driven by skills."""
    prior = require_prior(prior, "SkillPointMaze-v0", "pointmaze-scripted")
    return SkillWrapper(make_maze_task(low_level_steps, render_mode), prior, z_bound)
