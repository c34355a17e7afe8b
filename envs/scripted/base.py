"""The interface every scripted demonstrator implements, so one generator writes any of them."""

from __future__ import annotations

from typing import Literal, Protocol

import gymnasium as gym
from minari.data_collector import EpisodeBuffer

DataKind = Literal["general", "expert"]


class ScriptedDemonstrator(Protocol):
    """Produces seeded demonstration episodes for one scripted dataset.

    `general` episodes are task-agnostic (the PU learner's unlabeled data); `expert`
    episodes perform the downstream target task (its positive data).
    """

    name: str
    default_episodes: dict[DataKind, int]

    def make_env(self, kind: DataKind) -> gym.Env:
        """The environment episodes of `kind` are collected in; its spec goes into the dataset."""
        ...

    def episode(
        self, env: gym.Env, seed: int, kind: DataKind, quantile: float | None = None
    ) -> EpisodeBuffer:
        """One episode, fully determined by `seed` (and `quantile`). Observations hold T+1
        entries, the rest T. `quantile`, in [0, 1), is the episode's stratum in its dataset: a
        demonstrator that draws a plan per episode from a table picks it there, so that the
        dataset's plan mix matches the table's weights; others ignore it."""
        ...

    def dataset_metadata(self, kind: DataKind) -> dict[str, str]:
        """Extra string fields for the Minari metadata of the `kind` dataset."""
        ...
