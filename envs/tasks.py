"""Task wrappers on the low-level envs: the downstream rewards, termination and success info.

They serve both the skill environments and the flat baselines, so both see the same task.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs

from skillplan.envs.base import make_base_env
from skillplan.errors import SkillplanError

KITCHEN_SUBTASKS = ("microwave", "kettle", "bottom burner", "top burner", "light switch",
                    "slide cabinet", "hinge cabinet")
KITCHEN_TASK = ("microwave", "kettle", "bottom burner", "light switch")
KITCHEN_MISALIGNED_TASK = ("microwave", "light switch", "slide cabinet", "hinge cabinet")
# The kitchen skill envs' tasks; both count subtasks in order.
SKILL_KITCHEN_TASKS = {"SkillKitchen-v0": KITCHEN_TASK, "SkillKitchenMisaligned-v0": KITCHEN_MISALIGNED_TASK}
KITCHEN_SUCCESS_DISTANCE = 0.3  # FrankaKitchen-v1's own completion threshold
KITCHEN_EVAL_STEPS = 280


def check_subtasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """The tasks as a tuple, or an error that lists the seven valid names."""
    unknown = [t for t in tasks if t not in KITCHEN_SUBTASKS]
    if unknown or not tasks:
        raise SkillplanError(
            f"Unknown kitchen subtask(s) {unknown or '(none given)'}. The seven subtasks are: "
            + ", ".join(KITCHEN_SUBTASKS) + "."
        )
    if len(set(tasks)) != len(tasks):
        raise SkillplanError(f"Kitchen subtasks repeat in {list(tasks)}; give each at most once.")
    return tuple(tasks)


def parse_subtasks(text: str) -> tuple[str, ...]:
    """A comma-separated list of kitchen subtasks, e.g. "microwave,light switch", checked."""
    return check_subtasks([name.strip() for name in text.split(",") if name.strip()])


def subtasks_in_goal(obs: Mapping[str, Any], tasks: Sequence[str]) -> dict[str, np.ndarray]:
    """Which of `tasks` are in their goal state, judged as FrankaKitchen does (goal distance < 0.3).

    Works on one observation (bools) and on a vector env's batch (one bool per env).
    """
    achieved, desired = obs["achieved_goal"], obs["desired_goal"]
    return {t: np.linalg.norm(achieved[t] - desired[t], axis=-1) < KITCHEN_SUCCESS_DISTANCE for t in tasks}


class SubtaskProgress:
    """A task's subtasks done so far, fed each step with the subtasks in their goal state, counted
    two ways.

    In order (D4RL's rule, which SPiRL and SkiMo evaluate by): a subtask counts once every earlier
    one counts, if it is in its goal state then; one done too early counts later only if it stays
    done. In any order: a subtask counts once it has reached its goal state.
    """

    def __init__(self, tasks: Sequence[str]) -> None:
        self.tasks = tuple(tasks)
        self.in_order = 0
        self.reached: list[str] = []  # in the order they were first reached

    def update(self, in_goal: Collection[str]) -> None:
        self.reached += [t for t in self.tasks if t in in_goal and t not in self.reached]
        while self.in_order < len(self.tasks) and self.tasks[self.in_order] in in_goal:
            self.in_order += 1

    @property
    def any_order(self) -> int:
        return len(self.reached)

    def count(self, ordered: bool) -> int:
        return self.in_order if ordered else self.any_order


def kitchen_goals(states: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """FrankaKitchen-v1's achieved and desired goals of all seven subtasks, from its 59-dim
    observations (robot qpos 9, robot qvel 9, then the objects' qpos: qpos index i is state i + 9).
    The observation carries the env's noise (about 1e-4), far inside the 0.3 completion distance."""
    from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_GOALS, OBS_ELEMENT_INDICES

    states = np.asarray(states)
    achieved = {t: states[..., np.asarray(OBS_ELEMENT_INDICES[t]) + 9] for t in KITCHEN_SUBTASKS}
    desired = {t: np.broadcast_to(OBS_ELEMENT_GOALS[t], achieved[t].shape) for t in KITCHEN_SUBTASKS}
    return {"achieved_goal": achieved, "desired_goal": desired}


class KitchenTask(gym.Wrapper, RecordConstructorArgs):
    """Rewards +1 per target subtask completed, in order when `enforce_order` (SPiRL/SkiMo's eval).

    Completion is judged from the state, as FrankaKitchen does (goal distance < 0.3). With the
    order enforced, a subtask done out of order pays only once every earlier one is done and it
    is still in its goal state. Terminates when all are done. `info` carries
    `subtasks_completed` (count) and `success` (all done).
    """

    def __init__(self, env: gym.Env, tasks: Sequence[str] = KITCHEN_TASK, enforce_order: bool = True):
        RecordConstructorArgs.__init__(self, tasks=list(tasks), enforce_order=enforce_order)
        gym.Wrapper.__init__(self, env)
        self.tasks = check_subtasks(tasks)
        self.enforce_order = enforce_order
        self._progress = SubtaskProgress(self.tasks)

    def reset(self, **kwargs) -> tuple[dict, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._progress = SubtaskProgress(self.tasks)
        return _copy_obs(obs), self._info(info)

    def step(self, action) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        before = self._done()
        self._progress.update([t for t, done in subtasks_in_goal(obs, self.tasks).items() if done])
        reward, success = float(self._done() - before), self._done() == len(self.tasks)
        return _copy_obs(obs), reward, terminated or success, truncated, self._info(info)

    def relabel(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rewards and terminations this task would have paid along a recorded episode.

        `states`: the episode's T + 1 FrankaKitchen observations (59-dim, reset state first), e.g. a
        Minari dataset's `observations["observation"]`. Returns (T,) rewards and (T,) terminations,
        step for step as `step` gives them.
        """
        in_goal = subtasks_in_goal(kitchen_goals(states), self.tasks)
        progress, rewards, terminated = SubtaskProgress(self.tasks), [], []
        for t in range(1, len(states)):
            before = progress.count(self.enforce_order)
            progress.update([task for task in self.tasks if in_goal[task][t]])
            done = progress.count(self.enforce_order)
            rewards.append(float(done - before))
            terminated.append(done == len(self.tasks))
        return np.asarray(rewards, dtype=np.float32), np.asarray(terminated, dtype=bool)

    def _done(self) -> int:
        return self._progress.count(self.enforce_order)

    def _info(self, info: dict) -> dict[str, Any]:
        return {**info, "subtasks_completed": self._done(), "success": self._done() == len(self.tasks)}


def _copy_obs(obs: dict) -> dict:
    """FrankaKitchen reuses its goal dicts between steps; hand out copies."""
    return {k: ({t: np.array(g) for t, g in v.items()} if isinstance(v, dict) else np.array(v))
            for k, v in obs.items()}


def make_kitchen_task(
    tasks: Sequence[str] = KITCHEN_TASK,
    enforce_order: bool = True,
    max_episode_steps: int = KITCHEN_EVAL_STEPS,
    render_mode: str | None = None,
) -> KitchenTask:
    """FrankaKitchen-v1 with all seven subtasks observed, wrapped in the downstream task."""
    # Gymnasium's passive checker would warn, every run, that FrankaKitchen shares its observation
    # arrays between steps; KitchenTask hands out copies, and the skill envs over it are checked.
    env = make_base_env(
        "FrankaKitchen-v1", tasks_to_complete=list(KITCHEN_SUBTASKS), terminate_on_tasks_completed=False,
        max_episode_steps=max_episode_steps, render_mode=render_mode, disable_env_checker=True,
    )
    return KitchenTask(env, tasks, enforce_order)


class MazeTask(gym.Wrapper, RecordConstructorArgs):
    """PointMaze with a fixed start and goal cell (the scripted expert's), sparse reward.

    `info` carries `success`; the episode terminates on it (`continuing_task=False`).
    """

    def __init__(self, env: gym.Env, start_cell: Sequence[int], goal_cell: Sequence[int]):
        RecordConstructorArgs.__init__(self, start_cell=list(start_cell), goal_cell=list(goal_cell))
        gym.Wrapper.__init__(self, env)
        self.start_cell, self.goal_cell = np.array(start_cell), np.array(goal_cell)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        options = {"reset_cell": self.start_cell, "goal_cell": self.goal_cell, **(options or {})}
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, {**info, "success": bool(info.get("success", False))}

    def step(self, action) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward), terminated, truncated, {**info, "success": bool(info["success"])}


def make_maze_task(max_episode_steps: int = 800, render_mode: str | None = None) -> MazeTask:
    """PointMaze_Large-v3 from the scripted expert data's start to its goal, ending on success."""
    from skillplan.envs.scripted.pointmaze import EXPERT_GOAL_CELL, EXPERT_START_CELL

    env = make_base_env("PointMaze_Large-v3", continuing_task=False, reward_type="sparse",
                        max_episode_steps=max_episode_steps, render_mode=render_mode)
    return MazeTask(env, EXPERT_START_CELL, EXPERT_GOAL_CELL)


def make_flat_task(skill_env_id: str, render_mode: str | None = None) -> gym.Env:
    """The low-level task behind a skill env, with flat float32 observations (for flat SAC)."""
    from skillplan.data.flatten import ObservationLayout
    from skillplan.envs.base import flatten_observations

    if skill_env_id in SKILL_KITCHEN_TASKS:
        task = SKILL_KITCHEN_TASKS[skill_env_id]
        env, keys = make_kitchen_task(task, render_mode=render_mode), ("observation",)
    elif skill_env_id == "SkillPointMaze-v0":
        env, keys = make_maze_task(render_mode=render_mode), ()
    else:
        valid = ", ".join([*SKILL_KITCHEN_TASKS, "SkillPointMaze-v0"])
        raise SkillplanError(f"Unknown env '{skill_env_id}'. Valid envs: {valid}.")
    return flatten_observations(env, ObservationLayout.for_space(env.observation_space, keys))
