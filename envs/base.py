"""Making the underlying (low-level) Gymnasium environments that datasets come from."""

from __future__ import annotations

import warnings
from functools import cache

import gymnasium as gym
from gymnasium.wrappers import DtypeObservation, FilterObservation, FlattenObservation

from skillplan.data.flatten import ObservationLayout


@cache
def register_robotics() -> None:
    """Register gymnasium-robotics' environments (kitchen, mazes) once per process."""
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


def make_base_env(env_id: str, **kwargs) -> gym.Env:
    """`gym.make` for an env id recorded in a dataset, with gymnasium-robotics registered."""
    register_robotics()
    return gym.make(env_id, **kwargs)


def flatten_observations(env: gym.Env, layout: ObservationLayout) -> gym.Env:
    """The env with observations flattened exactly as the offline data was (float32 Box)."""
    if layout.keys:
        env = FlattenObservation(FilterObservation(env, list(layout.keys)))
    with warnings.catch_warnings():  # the cast to float32 is the point: the data is float32
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        return DtypeObservation(env, "float32")  # a string keeps env.spec JSON-serialisable
