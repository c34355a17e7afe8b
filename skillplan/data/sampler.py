"""Seeded sampling of skill windows that never cross an episode end."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from skillplan.data.loading import Episodes
from skillplan.errors import DatasetError


class SkillWindows(NamedTuple):
    """A batch of `n_skills` consecutive skills: states s_0..s_{N·H}, actions a_0..a_{N·H-1}."""

    observations: torch.Tensor  # (B, N*H + 1, obs_dim)
    actions: torch.Tensor  # (B, N*H, act_dim)


class WindowSampler:
    """Draws windows of `n_skills` consecutive H-step skills uniformly over valid start steps.

    The arrays are shared with `episodes` (no copy); each batch is two row gathers.
    """

    def __init__(self, episodes: Episodes, horizon: int, n_skills: int = 1, seed: int = 0) -> None:
        self.horizon, self.n_skills = horizon, n_skills
        length = horizon * n_skills
        room = episodes.lengths - length + 1  # valid start steps per episode
        if room.max(initial=0) < 1:
            raise DatasetError(
                f"No episode is long enough for a window of {n_skills} skill(s) × H={horizon} "
                f"steps (longest episode: {episodes.lengths.max(initial=0)} steps)."
            )
        keep = room > 0
        episode_of_start = np.repeat(np.flatnonzero(keep), room[keep])
        step = np.arange(len(episode_of_start)) - np.repeat(np.cumsum(room[keep]) - room[keep], room[keep])
        self._obs_start = torch.from_numpy(episodes.obs_offsets[episode_of_start] + step)
        self._act_start = torch.from_numpy(episodes.act_offsets[episode_of_start] + step)
        self._obs = torch.from_numpy(episodes.observations)
        self._act = torch.from_numpy(episodes.actions)
        self._obs_steps = torch.arange(length + 1)
        self._act_steps = torch.arange(length)
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def generator(self) -> torch.Generator:
        """The generator of the draws: its state goes into checkpoints, so a resume draws on as before."""
        return self._generator

    @property
    def n_windows(self) -> int:
        """How many distinct windows there are to draw from."""
        return len(self._obs_start)

    def sample(self, batch_size: int) -> SkillWindows:
        """A batch of windows drawn with replacement."""
        pick = torch.randint(self.n_windows, (batch_size,), generator=self._generator)
        obs_rows = (self._obs_start[pick, None] + self._obs_steps).view(-1)
        act_rows = (self._act_start[pick, None] + self._act_steps).view(-1)
        # index_select on flat rows: advanced indexing is ~50× slower once a core is busy.
        obs = self._obs.index_select(0, obs_rows).view(batch_size, -1, self._obs.shape[1])
        act = self._act.index_select(0, act_rows).view(batch_size, -1, self._act.shape[1])
        return SkillWindows(obs, act)
