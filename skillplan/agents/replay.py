"""A fixed-size replay buffer of transitions, stored as preallocated tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    obs_features: torch.Tensor | None = None  # the replay's `features` of obs and next_obs, when it has them
    next_obs_features: torch.Tensor | None = None


class ReplayBuffer:
    """Ring buffer of (obs, action, reward, next_obs, terminated); oldest entries are overwritten.

    `terminated` (not `truncated`) stops bootstrapping: a time-limit cut keeps its value.
    `episode_end` (terminated or truncated) marks where consecutive sequences must not cross.
    The transitions live on `device`, where batches are drawn; the draws themselves (seeded) and the
    episode ends stay on the CPU, so a seed gives the same batches on every device.
    `features`, a fixed function of states that every update reads (SSAC: the frozen prior's output),
    is computed once per stored transition, for obs and next_obs, instead of once per draw.
    """

    def __init__(self, obs_dim: int, action_dim: int, capacity: int, seed: int = 0,
                 device: torch.device | str = "cpu",
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.capacity, self.device = capacity, torch.device(device)
        self.obs = torch.zeros(capacity, obs_dim, device=device)
        self.action = torch.zeros(capacity, action_dim, device=device)
        self.reward = torch.zeros(capacity, device=device)
        self.next_obs = torch.zeros(capacity, obs_dim, device=device)
        self.terminated = torch.zeros(capacity, device=device)
        self.episode_end = torch.zeros(capacity, dtype=torch.bool)
        self.features = features
        width = self._features(torch.zeros(1, obs_dim, device=device)).shape[-1] if features else 0
        self.obs_features = torch.zeros(capacity, width, device=device)
        self.next_obs_features = torch.zeros(capacity, width, device=device)
        self.size = self.cursor = 0
        # rows [0, pinned) hold offline data: never overwritten, drawn as `pinned_share` of each batch
        self.pinned, self.pinned_share = 0, 0.0
        self._generator = torch.Generator().manual_seed(seed)

    def pin(self, share: float) -> None:
        """Keep the rows written so far (offline data) apart: each batch then draws `share` of its rows
        from them and the rest from later rows, as RLPD's symmetric sampling (Ball et al., 2023) does."""
        self.pinned, self.pinned_share = self.size, share

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray,
            terminated: bool, episode_end: bool | None = None) -> None:
        i = self.cursor
        self.episode_end[i] = terminated if episode_end is None else episode_end
        self.obs[i] = torch.as_tensor(obs)
        self.action[i] = torch.as_tensor(action)
        self.reward[i] = float(reward)
        self.next_obs[i] = torch.as_tensor(next_obs)
        self.terminated[i] = float(terminated)
        if self.features is not None:
            self.obs_features[i], self.next_obs_features[i] = self._features(
                torch.stack([self.obs[i], self.next_obs[i]]))
        self.cursor = (i + 1) % self.capacity or self.pinned  # a full ring wraps past the pinned rows
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """A batch drawn with replacement: uniform, or `pinned_share` of it from the pinned rows."""
        if self.pinned:
            k = round(batch_size * self.pinned_share)  # rows from the pinned part
            idx = torch.cat([torch.randint(self.pinned, (k,), generator=self._generator),
                             self.pinned + torch.randint(self.size - self.pinned, (batch_size - k,),
                                                         generator=self._generator)])
        else:
            idx = torch.randint(self.size, (batch_size,), generator=self._generator)
        return Batch(*(t.index_select(0, idx.to(self.device)) for t in self._columns()))

    def sample_sequences(self, batch_size: int, length: int) -> Batch:
        """Runs of `length` consecutive transitions of one episode: every field is (B, length, ...)."""
        ends = self.episode_end[: self.size].long()
        crossings = torch.cat([torch.zeros(1, dtype=torch.long), ends.cumsum(0)])
        starts = torch.arange(self.size - length + 1)
        # no episode end before the run's last transition
        valid = crossings[starts + length - 1] - crossings[starts] == 0
        if self.size == self.capacity:  # nor may a run straddle the write head (old | new data)
            valid &= (starts + length <= self.cursor) | (starts >= self.cursor)
        starts = starts[valid]
        if len(starts) == 0:
            raise ValueError(f"no run of {length} consecutive transitions in the buffer yet")
        if self.pinned:
            k = round(batch_size * self.pinned_share)  # rows from the pinned part
            pinned, later = starts[starts < self.pinned], starts[starts >= self.pinned]
            if len(pinned) == 0 or len(later) == 0:
                raise ValueError(f"no run of {length} consecutive transitions on each side of the pinned "
                                 "rows")
            pick = torch.cat([pinned[torch.randint(len(pinned), (k,), generator=self._generator)],
                              later[torch.randint(len(later), (batch_size - k,), generator=self._generator)]])
        else:
            pick = starts[torch.randint(len(starts), (batch_size,), generator=self._generator)]
        rows = (pick[:, None] + torch.arange(length)).view(-1).to(self.device)
        return Batch(*(t.index_select(0, rows).view(batch_size, length, *t.shape[1:])
                       for t in self._columns()))

    def _columns(self) -> tuple[torch.Tensor, ...]:
        """The stored fields, in `Batch`'s order (the features only where there are any)."""
        columns = (self.obs, self.action, self.reward, self.next_obs, self.terminated)
        return columns + (self.obs_features, self.next_obs_features) if self.features is not None else columns

    @torch.no_grad()
    def _features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.features(obs).float()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The filled part of the buffer and its sampler's state, for checkpoints (safetensors-compatible
        CPU tensors)."""
        n = self.size
        return {"obs": self.obs[:n].cpu(), "action": self.action[:n].cpu(), "reward": self.reward[:n].cpu(),
                "next_obs": self.next_obs[:n].cpu(), "terminated": self.terminated[:n].cpu(),
                "episode_end": self.episode_end[:n], "cursor": torch.tensor([self.cursor]),
                "pinned": torch.tensor([self.pinned]), "pinned_share": torch.tensor([self.pinned_share]),
                "generator": self._generator.get_state(),
                **({"obs_features": self.obs_features[:n].cpu(),
                    "next_obs_features": self.next_obs_features[:n].cpu()}
                   if self.features is not None else {})}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        n = len(state["reward"])
        for name in ("obs", "action", "reward", "next_obs", "terminated", "episode_end"):
            getattr(self, name)[:n] = state[name]
        self.size, self.cursor = n, int(state["cursor"][0])
        if "pinned" in state:  # absent from checkpoints of earlier releases
            self.pinned, self.pinned_share = int(state["pinned"][0]), float(state["pinned_share"][0])
        if "generator" in state:  # absent from checkpoints of earlier releases
            self._generator.set_state(state["generator"])
        if self.features is not None:  # computed afresh for checkpoints written without them
            for name, source in (("obs_features", self.obs), ("next_obs_features", self.next_obs)):
                stored = state.get(name)
                getattr(self, name)[:n] = stored if stored is not None else torch.cat(
                    [self._features(chunk) for chunk in source[:n].split(4096)])
