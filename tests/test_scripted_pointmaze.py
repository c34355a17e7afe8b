"""The scripted PointMaze demonstrator: valid BFS paths, goal reaching, deterministic episodes."""

from __future__ import annotations

import gymnasium as gym
import minari
import numpy as np
import pytest

from skillplan.data.writing import write_dataset
from skillplan.envs.scripted.pointmaze import (
    DEMONSTRATOR,
    EXPERT_GOAL_CELL,
    EXPERT_START_CELL,
    MIN_GENERAL_DISTANCE,
    WaypointController,
    bfs_distances,
    bfs_path,
    free_cells,
    sample_start_goal,
)


@pytest.fixture(scope="module")
def env():
    env = DEMONSTRATOR.make_env("general")
    yield env
    env.close()


@pytest.fixture(scope="module")
def maze(env):
    return env.unwrapped.maze


def test_bfs_path_is_a_shortest_chain_of_adjacent_free_cells(maze):
    rng = np.random.default_rng(0)
    cells = free_cells(maze.maze_map)
    for _ in range(20):
        start, goal = (cells[i] for i in rng.integers(len(cells), size=2))
        path = bfs_path(maze.maze_map, start, goal)
        assert path[0] == start and path[-1] == goal
        assert all(maze.maze_map[r][c] != 1 for r, c in path)
        steps = np.abs(np.diff(np.array(path), axis=0)).sum(axis=1)
        assert (steps == 1).all()
        assert len(path) - 1 == bfs_distances(maze.maze_map, start)[goal]


def test_expert_cells_are_free_and_far_apart(maze):
    assert {EXPERT_START_CELL, EXPERT_GOAL_CELL} <= set(free_cells(maze.maze_map))
    assert len(bfs_path(maze.maze_map, EXPERT_START_CELL, EXPERT_GOAL_CELL)) - 1 >= 15


def test_general_start_goal_pairs_are_far_apart(maze):
    rng = np.random.default_rng(1)
    for _ in range(20):
        start, goal = sample_start_goal(maze.maze_map, rng)
        assert bfs_distances(maze.maze_map, start)[goal] >= MIN_GENERAL_DISTANCE


def test_vectorised_cells_match_the_maze_conversion(maze):
    controller = WaypointController(maze, maze.cell_rowcol_to_xy(np.array(EXPERT_GOAL_CELL)))
    xy = np.random.default_rng(2).uniform(-5.9, 5.9, size=(50, 2)) * [1.0, 0.75]
    expected = np.array([maze.cell_xy_to_rowcol(p) for p in xy])
    np.testing.assert_array_equal(controller.cells(xy), expected)


def maze_cell(env, xy: np.ndarray) -> tuple[int, int]:
    return tuple(int(i) for i in env.unwrapped.maze.cell_xy_to_rowcol(xy))


@pytest.mark.parametrize(("kind", "seed"), [("expert", 0), ("general", 0), ("general", 7)])
def test_episode_reaches_goal_with_consistent_shapes(env, kind, seed):
    ep = DEMONSTRATOR.episode(env, seed, kind)
    T = len(ep.actions)
    assert ep.actions.shape == (T, 2) and ep.actions.dtype == np.float32
    assert np.abs(ep.actions).max() <= 1.0
    for key, space in env.observation_space.items():
        assert ep.observations[key].shape == (T + 1, *space.shape)
        assert ep.observations[key].dtype == space.dtype
    assert ep.rewards.shape == ep.terminations.shape == ep.truncations.shape == (T,)
    assert ep.infos["success"].shape == (T + 1,) and ep.infos["success"].dtype == bool
    # Reached the goal: terminated on the last step only, never truncated.
    assert ep.terminations[-1] and not ep.terminations[:-1].any() and not ep.truncations.any()
    assert ep.infos["success"][-1] and ep.rewards[-1] == 1.0
    if kind == "expert":
        assert maze_cell(env, ep.observations["achieved_goal"][0]) == EXPERT_START_CELL
        assert maze_cell(env, ep.observations["desired_goal"][0]) == EXPERT_GOAL_CELL


@pytest.mark.parametrize("kind", ["general", "expert"])
def test_episode_is_deterministic_per_seed(env, kind):
    a, b = (DEMONSTRATOR.episode(env, 3, kind) for _ in range(2))
    c = DEMONSTRATOR.episode(env, 4, kind)
    for key in a.observations:
        np.testing.assert_array_equal(a.observations[key], b.observations[key])
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.observations["observation"][0], c.observations["observation"][0])


def test_episode_ends_truncated_at_the_time_limit(env):
    short = gym.make(env.spec, max_episode_steps=30)
    ep = DEMONSTRATOR.episode(short, 0, "expert")
    short.close()
    assert len(ep.actions) == 30 and len(ep.observations["observation"]) == 31
    assert ep.truncations[-1] and not ep.terminations.any()


def test_episodes_write_as_a_minari_dataset(env):
    episodes = [DEMONSTRATOR.episode(env, seed, "general") for seed in (0, 1)]
    write_dataset("test/pointmaze/general-v0", episodes, env=env.spec)
    dataset = minari.load_dataset("test/pointmaze/general-v0")
    assert dataset.total_episodes == 2
    assert dataset.total_steps == sum(len(ep.actions) for ep in episodes)
