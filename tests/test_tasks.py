"""Downstream task wrappers: ordered kitchen rewards and the fixed-goal maze."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import OBS_ELEMENT_INDICES

from skillplan.envs.tasks import KITCHEN_SUBTASKS, make_kitchen_task, make_maze_task
from skillplan.errors import SkillplanError


def put_in_goal_state(env: gym.Env, task: str) -> None:
    """Teleport one kitchen object into its goal configuration."""
    kitchen = env.unwrapped
    kitchen.data.qpos[OBS_ELEMENT_INDICES[task]] = kitchen.goal[task]
    kitchen.data.qvel[9:] = 0.0  # objects at rest
    mujoco.mj_forward(kitchen.model, kitchen.data)


def still(env):
    return env.step(np.zeros(9, dtype=np.float32))


@pytest.mark.parametrize("enforce_order", [True, False])
def test_order_enforcement_pays_only_in_order(enforce_order):
    env = make_kitchen_task(enforce_order=enforce_order)
    env.reset(seed=0)
    assert still(env)[1] == 0.0
    put_in_goal_state(env, "kettle")  # second subtask first
    _, reward, terminated, _, info = still(env)
    assert reward == (0.0 if enforce_order else 1.0)
    put_in_goal_state(env, "microwave")
    _, reward, terminated, _, info = still(env)
    # in order, microwave now pays and unlocks the kettle, which is still in place
    assert reward == (2.0 if enforce_order else 1.0)
    assert info["subtasks_completed"] == 2 and not terminated and not info["success"]
    put_in_goal_state(env, "light switch")  # skips bottom burner
    _, reward, *_ = still(env)
    assert reward == (0.0 if enforce_order else 1.0)


def test_kitchen_terminates_with_success_when_all_done():
    env = make_kitchen_task(tasks=["microwave", "light switch"])
    env.reset(seed=0)
    put_in_goal_state(env, "microwave")
    put_in_goal_state(env, "light switch")
    _, reward, terminated, _, info = still(env)
    assert reward == 2.0 and terminated and info["success"]


def test_kitchen_observations_are_fresh_copies():
    env = make_kitchen_task()
    obs, _ = env.reset(seed=0)
    goal = obs["achieved_goal"]["kettle"].copy()
    put_in_goal_state(env, "kettle")
    still(env)
    np.testing.assert_array_equal(obs["achieved_goal"]["kettle"], goal)


def test_unknown_subtask_lists_the_seven():
    with pytest.raises(SkillplanError) as err:
        make_kitchen_task(tasks=["microwave", "dishwasher"])
    for name in KITCHEN_SUBTASKS:
        assert name in str(err.value)


def test_task_envs_pass_check_env():
    check_env(make_kitchen_task(), skip_render_check=True)
    check_env(make_maze_task(), skip_render_check=True)


def test_maze_starts_and_ends_at_the_fixed_cells():
    from skillplan.envs.scripted.pointmaze import EXPERT_GOAL_CELL, EXPERT_START_CELL

    env = make_maze_task()
    obs, info = env.reset(seed=0)
    maze = env.unwrapped.maze
    assert tuple(maze.cell_xy_to_rowcol(obs["observation"][:2])) == EXPERT_START_CELL
    assert tuple(maze.cell_xy_to_rowcol(obs["desired_goal"])) == EXPERT_GOAL_CELL
    assert not info["success"]


def test_env_side_flattening_matches_the_data_layout():
    from skillplan.data import ObservationLayout
    from skillplan.envs.base import flatten_observations

    env = make_maze_task()
    layout = ObservationLayout.for_space(env.observation_space)
    raw, _ = env.reset(seed=3)
    flat, _ = flatten_observations(make_maze_task(), layout).reset(seed=3)
    assert flat.dtype == np.float32
    np.testing.assert_allclose(flat, layout.flatten(raw))
