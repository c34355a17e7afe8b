"""Import D4RL's own HDF5 files (from an old d4rl install) as local Minari datasets, without d4rl."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer

from skillplan.data.writing import write_dataset
from skillplan.errors import DatasetError

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


def split_episodes(terminals: np.ndarray, timeouts: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) row ranges of the episodes, ended by a terminal, a timeout or the file's end."""
    ends = np.flatnonzero(np.logical_or(terminals, timeouts)) + 1
    if len(ends) == 0 or ends[-1] != len(terminals):
        ends = np.append(ends, len(terminals))
    starts = np.concatenate([[0], ends[:-1]])
    return [(int(s), int(e)) for s, e in zip(starts, ends, strict=True) if e > s]


def import_d4rl(
    path: Path,
    dataset_id: str,
    *,
    env_id: str | None = None,
    overwrite: bool = False,
) -> tuple[Path, int, int]:
    """Write a D4RL HDF5 file as the Minari dataset `dataset_id`; return (dir, episodes, steps).

    D4RL stores one flat row per step and no final state, so each episode's last row only
    serves as its final observation (its action is dropped), unless `next_observations` exists.
    """
    if not path.is_file():
        raise DatasetError(f"D4RL file '{path}' does not exist.")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in REQUIRED_KEYS if k not in f]
            if missing:
                raise DatasetError(
                    f"'{path}' is not in D4RL's layout: it lacks {missing}. A D4RL file holds "
                    f"the datasets {list(REQUIRED_KEYS)} at its top level."
                )
            data = {k: np.asarray(f[k]) for k in REQUIRED_KEYS}
            next_obs = np.asarray(f["next_observations"]) if "next_observations" in f else None
    except OSError as exc:
        raise DatasetError(f"'{path}' can't be read as HDF5: {exc}.") from exc

    obs = data["observations"].astype(np.float32).reshape(len(data["observations"]), -1)
    actions = data["actions"].astype(np.float32).reshape(len(data["actions"]), -1)
    buffers = []
    for start, end in split_episodes(data["terminals"], data["timeouts"]):
        if next_obs is not None:
            ep_obs = np.concatenate([obs[start:end], next_obs[end - 1 : end].reshape(1, -1)])
            last = end
        else:
            if end - start < 2:
                continue
            ep_obs, last = obs[start:end], end - 1
        terminations = data["terminals"][start:last].astype(bool)
        truncations = np.zeros(last - start, dtype=bool)
        truncations[-1] = not terminations[-1]
        buffers.append(EpisodeBuffer(
            id=len(buffers),
            observations=ep_obs.astype(np.float32),
            actions=actions[start:last],
            rewards=data["rewards"][start:last].astype(np.float64),
            terminations=terminations,
            truncations=truncations,
        ))
    if not buffers:
        raise DatasetError(f"'{path}' holds no episode of two or more steps.")
    low = np.minimum(actions.min(0), -1.0)
    high = np.maximum(actions.max(0), 1.0)
    target = write_dataset(
        dataset_id,
        buffers,
        env=_env_spec(env_id) if env_id else None,
        observation_space=spaces.Box(-np.inf, np.inf, (obs.shape[1],), np.float32),
        action_space=spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32),
        overwrite=overwrite,
        description=f"Imported from the D4RL file {path.name} by skillplan.",
        algorithm_name="d4rl-import",
    )
    return target, len(buffers), sum(len(b.rewards) for b in buffers)


def _env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    import gymnasium_robotics  # its envs (kitchen, mazes) are the ones D4RL files come from

    gym.register_envs(gymnasium_robotics)
    try:
        return gym.spec(env_id)
    except gym.error.Error as exc:
        raise DatasetError(f"Unknown environment '{env_id}' for --env: {exc}") from exc
