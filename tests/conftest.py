"""Shared fixtures: a temporary Minari root and tiny datasets written in Minari's format."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest
import torch
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer

from skillplan.data.writing import write_dataset

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
torch.set_num_threads(1)  # pytest-xdist runs one worker per core


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch) -> str:
    """Every test gets its own empty MINARI_DATASETS_PATH."""
    root = tmp_path / "minari"
    root.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return str(root)


def tiny_episodes(
    n_episodes: int,
    length: int | tuple[int, int],
    obs_dim: int = 6,
    act_dim: int = 3,
    *,
    seed: int = 0,
    dict_obs: bool = False,
    policy: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
) -> tuple[list[EpisodeBuffer], spaces.Space, spaces.Box]:
    """Episodes of a small linear system, s' = s + 0.1·A a, driven by `policy` (default: random).

    Returns (episodes, observation_space, action_space); with `dict_obs` the state sits in a
    goal-env style dict (`observation`, `achieved_goal`, `desired_goal`).
    """
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(1234).normal(size=(act_dim, obs_dim)).astype(np.float32)
    policy = policy or (lambda s, r: r.uniform(-1, 1, act_dim))
    episodes = []
    for i in range(n_episodes):
        T = length if isinstance(length, int) else int(rng.integers(length[0], length[1] + 1))
        states = [rng.normal(size=obs_dim).astype(np.float32)]
        actions = []
        for _ in range(T):
            a = np.clip(policy(states[-1], rng), -1, 1).astype(np.float32)
            actions.append(a)
            states.append((states[-1] + 0.1 * a @ mix).astype(np.float32))
        obs = np.stack(states)
        if dict_obs:
            goal = np.zeros_like(obs[:, :2])
            obs = {"observation": obs, "achieved_goal": obs[:, :2].copy(), "desired_goal": goal}
        truncations = np.zeros(T, dtype=bool)
        truncations[-1] = True
        episodes.append(EpisodeBuffer(
            id=i, seed=i, observations=obs, actions=np.stack(actions),
            rewards=np.zeros(T), terminations=np.zeros(T, dtype=bool), truncations=truncations,
        ))
    box = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    obs_space = box
    if dict_obs:
        goal = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        obs_space = spaces.Dict({"observation": box, "achieved_goal": goal, "desired_goal": goal})
    return episodes, obs_space, spaces.Box(-1, 1, (act_dim,), np.float32)


@pytest.fixture
def make_dataset() -> Callable[..., str]:
    """Write a tiny Minari dataset (see `tiny_episodes`) under the temp root; returns its id."""

    def make(dataset_id: str, n_episodes: int = 8, length: int | tuple[int, int] = 40, **kwargs) -> str:
        episodes, obs_space, act_space = tiny_episodes(n_episodes, length, **kwargs)
        write_dataset(dataset_id, episodes, observation_space=obs_space, action_space=act_space)
        return dataset_id

    return make
